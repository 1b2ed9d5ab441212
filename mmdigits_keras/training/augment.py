"""Training-time augmentation of the two modalities (the default recipe's; `Recipe` fields
switch each on): the one job of this module is the signal processing, as stateless TensorFlow ops
a `tf.data` pipeline maps over batches in parallel.

- speech, on the standardized 39-frame feature map: time shift, SpecAugment-style time and
  frequency masks (Park et al. 2019), vocal-tract-length perturbation of the cepstra (Jaitly &
  Hinton 2013, `vtlp_matrix`), simulated room reverberation of the mel envelope (`reverberate`),
  Gaussian noise (`augment_audio`);
- images: small translation, rotation and zoom, Keras's preprocessing layers' draws composed
  into one affine map (`image_jitter`).

Mel scale conversions and the cepstral lifter are python_speech_features' (`hz2mel`, `mel2hz`,
`lifter`), the library that computes the MFCC rows (`mmdigits_keras.data.features.mfcc_507`).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import python_speech_features as psf
import scipy.fft
import tensorflow as tf

from mmdigits_keras.data.constants import NUM_FRAMES

# The default recipe's image jitter, as Keras's RandomTranslation(0.1, 0.1), RandomRotation(0.05)
# and RandomZoom(0.1) draw it: shift up to 10% of the side, rotation up to 5% of a turn, zoom
# factor 1 +/- 10% (the same in both axes).
JITTER_SHIFT = 0.1
JITTER_TURNS = 0.05
JITTER_ZOOM = 0.1


def image_jitter(images, seed):
    """Random shift, rotation and zoom of a batch of images (B, H, W, C) float32, blank (0) fill.

    The draws are Keras's RandomTranslation, RandomRotation and RandomZoom's (`JITTER_SHIFT`,
    `JITTER_TURNS`, `JITTER_ZOOM`), composed into one affine map about the image centre and
    resampled once (bilinear, `keras.ops.image.affine_transform`) instead of three times.
    The draws are stateless (`tf.random.stateless_uniform` from `seed`, int64 (2,)), so a
    batch's jitter depends on its seed only: the `tf.data` pipeline can map batches in
    parallel and still give the same batches for the same seed.

    Returns:
        float32 (B, H, W, C).
    """
    batch = tf.shape(images)[0]
    height, width = float(images.shape[1]), float(images.shape[2])

    def draw(salt, low, high):
        return tf.random.stateless_uniform((batch,), seed + salt, low, high)

    shift_x = draw(0, -JITTER_SHIFT, JITTER_SHIFT) * width
    shift_y = draw(1, -JITTER_SHIFT, JITTER_SHIFT) * height
    angle = draw(2, -JITTER_TURNS, JITTER_TURNS) * 2.0 * np.pi
    zoom = draw(3, 1.0 - JITTER_ZOOM, 1.0 + JITTER_ZOOM)
    # Each output pixel p reads the input at A p + b: A = zoom * rotation about the centre c,
    # b = c - A c - shift (the three maps of Keras's layers, composed).
    cos, sin = tf.cos(angle) * zoom, tf.sin(angle) * zoom
    centre_x, centre_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    offset_x = centre_x - cos * centre_x + sin * centre_y - shift_x
    offset_y = centre_y - sin * centre_x - cos * centre_y - shift_y
    zeros = tf.zeros_like(angle)
    transform = tf.stack([cos, -sin, offset_x, sin, cos, offset_y, zeros, zeros], axis=1)
    return keras.ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                                            fill_value=0.0)


# Per-column statistics (39 frames x 13 values) of `mfcc_507` before standardization, over
# FSDD's 2,000 recordings (all four speakers). Data sets hold rows standardized per column
# whose raw statistics are unknown (the Kaggle files); the MFCC-domain augmentations map rows
# back to raw MFCC with these, change them, and map them back.
_REFERENCE = json.loads(Path(__file__).with_name("mfcc_reference.json").read_text())
MFCC_REFERENCE_MEAN = np.asarray(_REFERENCE["mean"], dtype=np.float32)
MFCC_REFERENCE_STD = np.asarray(_REFERENCE["std"], dtype=np.float32)
VTLP_STEPS = 21


def vtlp_matrix(factor, *, num_filters=26, num_cepstra=12, lifter=22, sample_rate=8000):
    """The linear map of one frame's cepstra c1..c12 under vocal-tract-length perturbation.

    Inverse DCT of the (unliftered) cepstra to the log-mel envelope, read at frequency
    f / `factor` for every mel band centre f (linear interpolation between bands, clamped at
    the band edges), DCT back, lifter again (Jaitly & Hinton, "Vocal Tract Length Perturbation
    (VTLP) improves speech recognition", ICML WDLASL 2013). The settings are `mfcc_507`'s (26
    mel filters over 0-4 kHz, lifter 22, orthonormal DCT-II).

    Args:
        factor: Warp factor (> 0); 1.0 gives the identity, > 1 moves formants up.

    Returns:
        float64 (12, 12) matrix W: warped cepstra = W @ cepstra.
    """
    to_logmel, to_cepstra = _cepstra_to_logmel(num_filters, num_cepstra, lifter)
    mel = psf.hz2mel(mel_centres_hz(num_filters, sample_rate))
    step = mel[1] - mel[0]  # band centres are equally spaced in mel
    source = psf.hz2mel(np.clip(mel_centres_hz(num_filters, sample_rate) / factor, 0, sample_rate / 2))
    position = np.clip((source - mel[0]) / step, 0, num_filters - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, num_filters - 1)
    weight = position - low
    interpolate = np.zeros((num_filters, num_filters))
    interpolate[np.arange(num_filters), low] += 1 - weight
    interpolate[np.arange(num_filters), high] += weight
    return to_cepstra @ interpolate @ to_logmel.T


def mel_centres_hz(num_filters=26, sample_rate=8000):
    """Centre frequencies (Hz, float64) of `mfcc_507`'s mel filters over 0..rate/2."""
    return psf.mel2hz(np.linspace(0, psf.hz2mel(sample_rate / 2), num_filters + 2)[1:-1])


def _cepstra_to_logmel(num_filters=26, num_cepstra=12, lifter=22):
    """(12, 26) float64 maps: liftered c1..c12 -> the log-mel envelope's shape (inverse DCT of
    the unliftered cepstra), and the envelope -> liftered c1..c12 (DCT, lifter)."""
    dct = scipy.fft.dct(np.eye(num_filters), type=2, norm="ortho", axis=0)[1 : num_cepstra + 1]
    lift = psf.lifter(np.ones((1, num_cepstra + 1)), lifter)[0, 1:]  # c1..c12's weights
    return dct / lift[:, None], lift[:, None] * dct


def _to_raw(x):
    return x * MFCC_REFERENCE_STD + MFCC_REFERENCE_MEAN


def _from_raw(raw):
    return (raw - MFCC_REFERENCE_MEAN) / MFCC_REFERENCE_STD


def vtlp(x, spread, seed):
    """Vocal-tract-length perturbation of a batch x (B, 39, 13) float32 of reference-standardized
    MFCC rows: each utterance's cepstra warped by `vtlp_matrix` with a factor drawn from
    1 +/- `spread` (on a grid of `VTLP_STEPS`), by the stateless seed `seed` (int64 (2,))."""
    maps = np.stack([vtlp_matrix(f) for f in np.linspace(1 - spread, 1 + spread, VTLP_STEPS)]).astype(np.float32)
    pick = tf.random.stateless_uniform((tf.shape(x)[0],), seed, 0, VTLP_STEPS, dtype=tf.int32)
    raw = _to_raw(x)
    cepstra = tf.einsum("bij,btj->bti", tf.gather(maps, pick), raw[:, :, 1:])
    return _from_raw(tf.concat([raw[:, :, :1], cepstra], axis=-1))


REVERB_TAPS = 16
RT60_SECONDS = (0.1, 0.8)


def to_mel_power(x):
    """Reference-standardized MFCC rows (B, 39, 13) -> (raw rows, mel power envelope (B, 39, 26)).

    Envelope = frame log energy + inverse DCT of c1..c12 (its constant level is unknown and
    cancels in every linear operation on the power), scaled to a peak of 1 per utterance."""
    raw = _to_raw(x)
    to_logmel, _ = _cepstra_to_logmel()
    envelope = raw[:, :, :1] + tf.einsum("btk,kj->btj", raw[:, :, 1:], to_logmel.astype(np.float32))
    # Floored 30 nats (130 dB) below the utterance's peak, so every frame has a finite log.
    return raw, tf.exp(tf.maximum(envelope - tf.reduce_max(envelope, axis=[1, 2], keepdims=True), -30.0))


def from_mel_power(raw, power, changed):
    """Back to reference-standardized rows: log energy moved by the change of each frame's
    total power, c1..c12 from the DCT of the changed log envelope."""
    _, to_cepstra = _cepstra_to_logmel()
    to_cepstra = to_cepstra.astype(np.float32)
    log_gain = tf.math.log(tf.reduce_sum(changed, -1, keepdims=True) / tf.reduce_sum(power, -1, keepdims=True))
    cepstra = tf.einsum("btj,kj->btk", tf.math.log(tf.maximum(changed, 1e-30)), to_cepstra)
    return _from_raw(tf.concat([raw[:, :, :1] + log_gain, cepstra], axis=-1))


def reverberate(x, probability, seed, drr_db):
    """Simulated room reverberation of MFCC rows x (B, 39, 13), reference-standardized.

    Each chosen utterance's mel power envelope is convolved over time with an exponential
    decay (RT60 drawn from `RT60_SECONDS`, direct-to-reverberant ratio from
    ``drr_db``, in dB): the usual statistical model of a room's late reverberation
    (Polack).
    """
    batch = tf.shape(x)[0]
    rt60 = tf.random.stateless_uniform((batch, 1), seed, *RT60_SECONDS)
    ratio = 10.0 ** (tf.random.stateless_uniform((batch, 1), seed + 1, *drr_db) / 10.0)
    chosen = tf.where(tf.random.stateless_uniform((batch,), seed + 2) < probability)[:, 0]
    # Only the chosen utterances are reverberated (every step works per utterance); the draws
    # are made for the whole batch, so they do not depend on which are chosen.
    raw, power = to_mel_power(tf.gather(x, chosen))
    delays = tf.range(1, REVERB_TAPS, dtype=tf.float32)[None, :] * 0.025  # seconds, one hop per frame
    tail = tf.exp(-6.9 * delays / tf.gather(rt60, chosen))  # 60 dB down at RT60
    tail = tail / tf.reduce_sum(tail, axis=1, keepdims=True) / tf.gather(ratio, chosen)
    count = tf.shape(chosen)[0]
    kernel = tf.concat([tf.ones((count, 1)), tail, tf.zeros((count, 1))], axis=1)  # (C, taps + 1), last 0
    # The causal convolution over time as one matrix per utterance: frame t receives
    # kernel[t - s] of frame s (0 outside 0 <= t - s < taps, the extra zero tap).
    frames = x.shape[1]
    lag = np.arange(frames)[:, None] - np.arange(frames)[None, :]
    lag = np.where((lag >= 0) & (lag < REVERB_TAPS), lag, REVERB_TAPS)
    # kernel[:, lag] as a matrix product with lag's one-hot rows: a fifth of a gather's time.
    toeplitz = tf.reshape(kernel @ np.eye(REVERB_TAPS + 1, dtype=np.float32)[lag.reshape(-1)].T,
                          (count, frames, frames))  # (C, 39, 39)
    wet = from_mel_power(raw, power, tf.einsum("bts,bsj->btj", toeplitz, power))
    return tf.tensor_scatter_nd_update(x, chosen[:, None], wet)


def augment_audio(audio, mean, std, recipe, seed):
    """The speech augmentation `recipe` switches on, for a batch `audio` (B, 39 * k) float32 of
    raw features (k = 13 MFCC or 40 log-mel values per frame): standardized with `mean` / `std`
    (the training rows' per-column statistics), time shift, time and frequency masks, VTLP and
    reverberation (MFCC rows only), Gaussian noise. Random draws are stateless from `seed`
    (int64 (2,)), so an epoch's batches are reproducible.

    Returns:
        float32 (B, 39 * k), still standardized (the caller maps it back).
    """
    batch = tf.shape(audio)[0]
    width = audio.shape[-1]
    bins = width // NUM_FRAMES
    x = tf.reshape((audio - mean) / std, (batch, NUM_FRAMES, bins))

    def band(size, length, salt):
        """(batch, length) mask, True inside one random band of 0..size-1 cells per sample."""
        span = tf.random.stateless_uniform((batch, 1), seed + salt, 0, size, dtype=tf.int32)
        start = tf.random.stateless_uniform((batch, 1), seed + salt + 1, 0, length, dtype=tf.int32)
        cells = tf.range(length)[None, :]
        return (cells >= start) & (cells < start + span)

    if recipe.time_shift:
        shift = tf.random.stateless_uniform((batch, 1), seed + 10, -recipe.time_shift, recipe.time_shift + 1,
                                            dtype=tf.int32)
        source = tf.range(NUM_FRAMES)[None, :] - shift
        valid = (source >= 0) & (source < NUM_FRAMES)
        x = tf.gather(x, tf.clip_by_value(source, 0, NUM_FRAMES - 1), batch_dims=1)
        x = x * tf.cast(valid, x.dtype)[:, :, None]
    if recipe.time_mask:
        x = x * (1.0 - tf.cast(band(recipe.time_mask + 1, NUM_FRAMES, 20), x.dtype))[:, :, None]
    if recipe.frequency_mask:
        x = x * (1.0 - tf.cast(band(recipe.frequency_mask + 1, bins, 30), x.dtype))[:, None, :]
    mfcc = bins == MFCC_REFERENCE_MEAN.shape[1]  # the cepstral levers need MFCC rows, not log-mel
    if recipe.vtlp and mfcc:
        x = vtlp(x, recipe.vtlp, seed + 60)
    if recipe.reverberation and mfcc:
        x = reverberate(x, recipe.reverberation, seed + 80, recipe.reverberation_drr_db)
    if recipe.noise:
        x = x + recipe.noise * tf.random.stateless_normal(tf.shape(x), seed + 40)
    return tf.reshape(x, (batch, width))

