"""Training-time augmentation of the two modalities (the default recipe's; `Recipe` fields
switch each on): the one job of this module is the signal processing, as TensorFlow ops a
`tf.data` pipeline maps over batches.

- speech, on the standardized 39-frame feature map: time shift, SpecAugment-style time and
  frequency masks (Park et al. 2019), vocal-tract-length perturbation of the cepstra (Jaitly &
  Hinton 2013, `vtlp_matrix`), simulated room reverberation of the mel envelope (`reverberate`),
  Gaussian noise (`augment_audio`);
- images: small translation, rotation and zoom with Keras preprocessing layers (`image_jitter`).

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


def image_jitter(seed):
    """Keras preprocessing layers jittering a batch of images (N, 28, 28, 1) in training: shift
    up to 10%, rotation up to 5% of a turn, zoom up to 10%, blank (0) fill; `seed` seeds each."""
    return keras.Sequential([
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
        keras.layers.RandomRotation(0.05, fill_mode="constant", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2),
    ], name="image_jitter")


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
    raw, power = to_mel_power(x)
    batch = tf.shape(x)[0]
    rt60 = tf.random.stateless_uniform((batch, 1), seed, *RT60_SECONDS)
    ratio = 10.0 ** (tf.random.stateless_uniform((batch, 1), seed + 1, *drr_db) / 10.0)
    delays = tf.range(1, REVERB_TAPS, dtype=tf.float32)[None, :] * 0.025  # seconds, one hop per frame
    tail = tf.exp(-6.9 * delays / rt60)  # 60 dB down at RT60
    tail = tail / tf.reduce_sum(tail, axis=1, keepdims=True) / ratio
    kernel = tf.concat([tf.ones((batch, 1)), tail], axis=1)  # (B, taps)
    padded = tf.pad(power, [[0, 0], [REVERB_TAPS - 1, 0], [0, 0]])
    frames = x.shape[1]
    shifted = tf.stack([padded[:, REVERB_TAPS - 1 - k : REVERB_TAPS - 1 - k + frames] for k in range(REVERB_TAPS)],
                       axis=1)  # (B, taps, 39, 26)
    wet = from_mel_power(raw, power, tf.einsum("bk,bktj->btj", kernel, shifted))
    chosen = tf.random.stateless_uniform((batch, 1, 1), seed + 2) < probability
    return tf.where(chosen, wet, x)


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

