"""Training-time augmentation of the two modalities (the default recipe's; `Recipe` fields
switch each on), written once in `keras.ops` so that it runs on every Keras backend, in either
place a run puts it (`mmdigits_keras.training.placement`): inside the training step on the
device, or in the input pipeline on the host.

- speech, on the standardized 39-frame feature map: time shift, SpecAugment-style time and
  frequency masks (Park et al. 2019), vocal-tract-length perturbation of the cepstra (Jaitly &
  Hinton 2013, `vtlp_matrix`), simulated room reverberation of the mel envelope (`reverberate`),
  Gaussian noise (`augment_audio`);
- images: small translation, rotation and zoom, Keras's preprocessing layers' draws composed
  into one affine map (`image_jitter`);
- both: modality dropout and swapped speech (`augment_batch`, the whole transform of a batch).

Every random number comes from a `draws` object (`SeedGeneratorDraws`: `keras.random` with a
`keras.random.SeedGenerator`; the `tf.data` pipeline's stateless draws), asked for with a
``salt`` that names the draw, so the same seed gives the same batches.

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
from keras import ops

from mmdigits_keras.data.constants import NUM_FRAMES

# The default recipe's image jitter, as Keras's RandomTranslation(0.1, 0.1), RandomRotation(0.05)
# and RandomZoom(0.1) draw it: shift up to 10% of the side, rotation up to 5% of a turn, zoom
# factor 1 +/- 10% (the same in both axes).
JITTER_SHIFT = 0.1
JITTER_TURNS = 0.05
JITTER_ZOOM = 0.1


class SeedGeneratorDraws:
    """Random draws from a `keras.random.SeedGenerator`: each draw advances the generator, so a
    generator seeded alike gives the same draws in the same order (the ``salt`` each draw is
    asked for with is not needed: the order names it).

    Args:
        generator: A `keras.random.SeedGenerator` (a layer's, inside a traced training step,
            or a fresh one per batch on the host).
    """

    def __init__(self, generator):
        self.generator = generator

    def uniform(self, shape, salt, minval=0.0, maxval=1.0):
        """float32 uniform in [minval, maxval)."""
        return keras.random.uniform(shape, minval=minval, maxval=maxval, seed=self.generator)

    def randint(self, shape, salt, minval, maxval):
        """int32 uniform in [minval, maxval)."""
        return keras.random.randint(shape, minval, maxval, dtype="int32", seed=self.generator)

    def normal(self, shape, salt):
        """float32 standard normal."""
        return keras.random.normal(shape, seed=self.generator)


def image_jitter(images, draws, salt=70):
    """Random shift, rotation and zoom of a batch of images (B, H, W, C) float32, blank (0) fill.

    The draws are Keras's RandomTranslation, RandomRotation and RandomZoom's (`JITTER_SHIFT`,
    `JITTER_TURNS`, `JITTER_ZOOM`), composed into one affine map about the image centre and
    resampled once (bilinear, `keras.ops.image.affine_transform`) instead of three times.

    Args:
        images: float32 (B, H, W, C).
        draws: The random source (`SeedGeneratorDraws` or the pipeline's stateless draws).
        salt: The first of the four salts of the draws (shift x, shift y, angle, zoom).

    Returns:
        float32 (B, H, W, C).
    """
    batch = ops.shape(images)[0]
    height, width = float(images.shape[1]), float(images.shape[2])
    shift_x = draws.uniform((batch,), salt, -JITTER_SHIFT, JITTER_SHIFT) * width
    shift_y = draws.uniform((batch,), salt + 1, -JITTER_SHIFT, JITTER_SHIFT) * height
    angle = draws.uniform((batch,), salt + 2, -JITTER_TURNS, JITTER_TURNS) * (2.0 * np.pi)
    zoom = draws.uniform((batch,), salt + 3, 1.0 - JITTER_ZOOM, 1.0 + JITTER_ZOOM)
    # Each output pixel p reads the input at A p + b: A = zoom * rotation about the centre c,
    # b = c - A c - shift (the three maps of Keras's layers, composed).
    cos, sin = ops.cos(angle) * zoom, ops.sin(angle) * zoom
    centre_x, centre_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    offset_x = centre_x - cos * centre_x + sin * centre_y - shift_x
    offset_y = centre_y - sin * centre_x - cos * centre_y - shift_y
    zeros = ops.zeros_like(angle)
    transform = ops.stack([cos, -sin, offset_x, sin, cos, offset_y, zeros, zeros], axis=1)
    return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
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


def _constant(array):
    """A numpy constant as a float32 tensor on the backend's device: arithmetic between a
    backend tensor and a numpy array would go through numpy (PyTorch), or fail on a GPU."""
    return ops.convert_to_tensor(np.asarray(array, dtype=np.float32))


def _to_raw(x):
    return x * _constant(MFCC_REFERENCE_STD) + _constant(MFCC_REFERENCE_MEAN)


def _from_raw(raw):
    return (raw - _constant(MFCC_REFERENCE_MEAN)) / _constant(MFCC_REFERENCE_STD)


def vtlp(x, spread, draws, salt=60):
    """Vocal-tract-length perturbation of a batch x (B, 39, 13) float32 of reference-standardized
    MFCC rows: each utterance's cepstra warped by `vtlp_matrix` with a factor drawn from
    1 +/- `spread` (on a grid of `VTLP_STEPS`)."""
    maps = np.stack([vtlp_matrix(f) for f in np.linspace(1 - spread, 1 + spread, VTLP_STEPS)]).astype(np.float32)
    pick = draws.randint((ops.shape(x)[0],), salt, 0, VTLP_STEPS)
    raw = _to_raw(x)
    cepstra = ops.einsum("bij,btj->bti", ops.take(maps, pick, axis=0), raw[:, :, 1:])
    return _from_raw(ops.concatenate([raw[:, :, :1], cepstra], axis=-1))


REVERB_TAPS = 16
RT60_SECONDS = (0.1, 0.8)


def to_mel_power(x):
    """Reference-standardized MFCC rows (B, 39, 13) -> (raw rows, mel power envelope (B, 39, 26)).

    Envelope = frame log energy + inverse DCT of c1..c12 (its constant level is unknown and
    cancels in every linear operation on the power), scaled to a peak of 1 per utterance."""
    raw = _to_raw(x)
    to_logmel, _ = _cepstra_to_logmel()
    envelope = raw[:, :, :1] + ops.einsum("btk,kj->btj", raw[:, :, 1:], to_logmel.astype(np.float32))
    # Floored 30 nats (130 dB) below the utterance's peak, so every frame has a finite log.
    return raw, ops.exp(ops.maximum(envelope - ops.max(envelope, axis=(1, 2), keepdims=True), -30.0))


def from_mel_power(raw, power, changed):
    """Back to reference-standardized rows: log energy moved by the change of each frame's
    total power, c1..c12 from the DCT of the changed log envelope."""
    _, to_cepstra = _cepstra_to_logmel()
    to_cepstra = to_cepstra.astype(np.float32)
    log_gain = ops.log(ops.sum(changed, -1, keepdims=True) / ops.sum(power, -1, keepdims=True))
    cepstra = ops.einsum("btj,kj->btk", ops.log(ops.maximum(changed, 1e-30)), to_cepstra)
    return _from_raw(ops.concatenate([raw[:, :, :1] + log_gain, cepstra], axis=-1))


def reverberate(x, probability, draws, drr_db, salt=80):
    """Simulated room reverberation of MFCC rows x (B, 39, 13), reference-standardized.

    Each chosen utterance (probability `probability`) has its mel power envelope convolved over
    time with an exponential decay (RT60 drawn from `RT60_SECONDS`, direct-to-reverberant
    ratio from ``drr_db``, in dB): the usual statistical model of a room's late reverberation
    (Polack). The others are returned unchanged.
    """
    batch = ops.shape(x)[0]
    rt60 = draws.uniform((batch, 1), salt, *RT60_SECONDS)
    ratio = 10.0 ** (draws.uniform((batch, 1), salt + 1, *drr_db) / 10.0)
    chosen = draws.uniform((batch,), salt + 2) < probability
    # Every utterance is reverberated and the chosen ones kept: fixed shapes, which a compiled
    # step on any backend needs.
    raw, power = to_mel_power(x)
    delays = _constant(np.arange(1, REVERB_TAPS)[None, :] * 0.025)  # seconds, one hop per frame
    tail = ops.exp(-6.9 * delays / rt60)  # 60 dB down at RT60
    tail = tail / ops.sum(tail, axis=1, keepdims=True) / ratio
    kernel = ops.concatenate([ops.ones_like(rt60), tail, ops.zeros_like(rt60)], axis=1)  # (B, taps + 1), last 0
    # The causal convolution over time as one matrix per utterance: frame t receives
    # kernel[t - s] of frame s (0 outside 0 <= t - s < taps, the extra zero tap).
    frames = x.shape[1]
    lag = np.arange(frames)[:, None] - np.arange(frames)[None, :]
    lag = np.where((lag >= 0) & (lag < REVERB_TAPS), lag, REVERB_TAPS)
    # kernel[:, lag] as a matrix product with lag's one-hot rows: a fifth of a gather's time.
    toeplitz = ops.reshape(ops.matmul(kernel, np.eye(REVERB_TAPS + 1, dtype=np.float32)[lag.reshape(-1)].T),
                           (batch, frames, frames))  # (B, 39, 39)
    wet = from_mel_power(raw, power, ops.einsum("bts,bsj->btj", toeplitz, power))
    return ops.where(chosen[:, None, None], wet, x)


def _band(draws, batch, size, length, salt):
    """(batch, length) mask, True inside one random band of 0..size-1 cells per sample."""
    span = draws.randint((batch, 1), salt, 0, size)
    start = draws.randint((batch, 1), salt + 1, 0, length)
    cells = ops.arange(length, dtype="int32")[None, :]
    return (cells >= start) & (cells < start + span)


def augment_audio(audio, mean, std, recipe, draws):
    """The speech augmentation `recipe` switches on, for a batch `audio` (B, 39 * k) float32 of
    raw features (k = 13 MFCC or 40 log-mel values per frame): standardized with `mean` / `std`
    (the training rows' per-column statistics), time shift, time and frequency masks, VTLP and
    reverberation (MFCC rows only), Gaussian noise.

    Returns:
        float32 (B, 39 * k), still standardized (the caller maps it back).
    """
    batch = ops.shape(audio)[0]
    width = audio.shape[-1]
    bins = width // NUM_FRAMES
    x = ops.reshape((audio - _constant(mean)) / _constant(std), (batch, NUM_FRAMES, bins))
    if recipe.time_shift:
        shift = draws.randint((batch, 1), 10, -recipe.time_shift, recipe.time_shift + 1)
        source = ops.arange(NUM_FRAMES, dtype="int32")[None, :] - shift
        valid = (source >= 0) & (source < NUM_FRAMES)
        index = ops.broadcast_to(ops.clip(source, 0, NUM_FRAMES - 1)[:, :, None], ops.shape(x))
        x = ops.take_along_axis(x, index, axis=1) * ops.cast(valid, x.dtype)[:, :, None]
    if recipe.time_mask:
        x = x * (1.0 - ops.cast(_band(draws, batch, recipe.time_mask + 1, NUM_FRAMES, 20), x.dtype))[:, :, None]
    if recipe.frequency_mask:
        x = x * (1.0 - ops.cast(_band(draws, batch, recipe.frequency_mask + 1, bins, 30), x.dtype))[:, None, :]
    mfcc = bins == MFCC_REFERENCE_MEAN.shape[1]  # the cepstral levers need MFCC rows, not log-mel
    if recipe.vtlp and mfcc:
        x = vtlp(x, recipe.vtlp, draws)
    if recipe.reverberation and mfcc:
        x = reverberate(x, recipe.reverberation, draws, recipe.reverberation_drr_db)
    if recipe.noise:
        x = x + recipe.noise * draws.normal(ops.shape(x), 40)
    return ops.reshape(x, (batch, width))


def augment_batch(inputs, *, mean, std, recipe, draws, multimodal=True):
    """The recipe's whole augmentation of one training batch, wherever it runs.

    Speech by `augment_audio`, images by `image_jitter`; then, for a model of both modalities,
    modality dropout (per sample, the image blanked with probability ``recipe.image_dropout``,
    else the speech with ``recipe.audio_dropout``; blank speech is the training mean) and, in a
    share ``recipe.audio_mismatch`` of the samples that keep both, the speech of the previous
    sample of the batch. Labels are never changed.

    Args:
        inputs: ``{"image": float32 (B, 28, 28, 1), "audio": float32 (B, F)}``: tensors, or
            numpy arrays (converted on the backend's current device).
        mean: float32 (F,): the training rows' per-column speech mean.
        std: float32 (F,): their standard deviation (> 0).
        recipe: The `Recipe` (``augment`` true).
        draws: The random source.
        multimodal: False for a model of one modality: no modality dropout (blanking its only
            input would teach it noise).

    Returns:
        The augmented inputs, the same keys, shapes and dtypes.
    """
    inputs = {name: ops.convert_to_tensor(value, dtype="float32") for name, value in inputs.items()}
    standardized = augment_audio(inputs["audio"], mean, std, recipe, draws)
    image = image_jitter(inputs["image"], draws, salt=70)
    if multimodal:
        draw = draws.uniform((ops.shape(image)[0],), 50)
        keep_image = ops.cast(draw >= recipe.image_dropout, "float32")
        keep_audio = ops.cast((draw < recipe.image_dropout)
                              | (draw >= recipe.image_dropout + recipe.audio_dropout), "float32")
        image = image * keep_image[:, None, None, None]
        standardized = standardized * keep_audio[:, None]
        if recipe.audio_mismatch:
            both = draw >= recipe.image_dropout + recipe.audio_dropout
            swap = both & (draws.uniform(ops.shape(draw), 90) < recipe.audio_mismatch)
            standardized = ops.where(swap[:, None], ops.roll(standardized, shift=1, axis=0), standardized)
    return {"image": image, "audio": standardized * _constant(std) + _constant(mean)}
