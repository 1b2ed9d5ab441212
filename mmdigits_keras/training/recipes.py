"""Training recipes: ``plain`` (seed 000's way) and ``default`` (robust to unseen speakers).

``plain``: Adam, sparse categorical cross-entropy, numpy arrays, batch 32, no augmentation —
the baseline the course papers use.

``default``: a `tf.data` pipeline (shuffle, batch, augment, prefetch; the arrays are in memory, so
no cache) whose augmentation
runs in training only, so the saved model stays a pure inference model:

- speech: SpecAugment-style time masks (up to 6 frames) and frequency masks (up to 3
  coefficients), a time shift of up to 3 frames (25 ms each), Gaussian noise (0.2 standard
  deviations), all on the standardized 39-frame feature map;
- images: small jitter with Keras preprocessing layers (shift 10%, rotation 5%, zoom 10%);
- modality dropout: per sample, the image is blanked with probability 0.15 or else the speech
  with probability 0.5, so the fusion head cannot lean on one branch;
- label smoothing 0.1, AdamW with weight decay 1e-5 (seed 001), batch 128;
- for seed 000's Models 1-4, per-utterance mean/variance normalization of the speech features
  (`build_model(utterance_normalization=True)`, part of the saved model), which removes a
  speaker's constant channel and level.

The speech of unseen speakers is what fused networks trained the plain way get wrong (issue:
Model 2 trained plainly scores below an image-only CNN on a speaker absent from training).

Levers against speaker, corpus and channel shift (issue 13; each a `Recipe` field, off unless a
recipe sets it; `benchmarks/bench_robust.py` measures them):

- ``vtlp``: vocal-tract-length perturbation of the MFCC rows (`vtlp_matrix`);
- ``equalization``: random band limits and spectral tilt of the mel power (`_equalize`);
- ``reverberation``: a simulated room tail on the mel envelope (`_reverberate`);
- ``audio_mismatch``: speech swapped between samples, the label staying the image's;
- ``auxiliary_weight``: per-modality classifiers on the backbone features during training
  (`auxiliary_training_model`), not part of the saved model;
- ``synthetic_share``: eSpeak NG voices mixed into the training rows (`mix_synthetic_speech`);
- ``utterance_normalization`` for more families than seed 000's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import scipy.fft
import tensorflow as tf

from mmdigits_keras.data.constants import NUM_FRAMES
from mmdigits_keras.utils.names import RECIPE_NAMES


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Settings of one training recipe (see the module docstring)."""

    name: str
    batch_size: int
    optimizer: str
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False
    image_dropout: float = 0.0
    audio_dropout: float = 0.0
    # Share of samples (of those with both modalities kept) whose speech is swapped for another
    # sample's in the batch, the label staying the image's: the head meets confident speech
    # that is wrong and learns when not to follow it (0: off).
    audio_mismatch: float = 0.0
    time_mask: int = 0
    frequency_mask: int = 0
    time_shift: int = 0
    noise: float = 0.0
    # Model families (registry `ModelInfo.family`) whose speech input is normalized per
    # utterance: measured to help seed 000's Models 1-4 on unseen speakers (docs/performance.md).
    utterance_normalization: tuple = ()
    # Drop each epoch's last, smaller batch (in-batch negatives need full batches).
    drop_remainder: bool = False
    # Vocal-tract-length perturbation of MFCC rows: warp factor drawn from 1 +/- vtlp per
    # utterance (0: off). Equalization: probability per utterance of a random channel
    # (`_equalize`: band limits and tilt; 0: off).
    vtlp: float = 0.0
    equalization: float = 0.0
    # Probability per utterance of simulated reverberation of MFCC rows (`_reverberate`; 0: off),
    # and the range of its direct-to-reverberant energy ratio in dB, drawn uniformly. Down to
    # -10 dB: a talker a few metres from the microphone in an ordinary room (the benchmark's
    # simulated room measures -7.9 dB at 2.2 m); the first range, -5..+5 dB, covered near
    # talkers only, and the fused model fell below the image alone in that room (docs/performance.md).
    reverberation: float = 0.0
    reverberation_drr_db: tuple = (-10.0, 5.0)
    # Weight of each per-modality auxiliary classifier's loss (0: no auxiliary heads).
    auxiliary_weight: float = 0.0
    # Share of training rows whose speech is synthetic (eSpeak NG voices, `mix_synthetic_speech`).
    synthetic_share: float = 0.0
    # Learning-rate schedule: "plateau" (ReduceLROnPlateau, early stopping with `patience`) or
    # "one_cycle" (linear warm-up over `warmup_epochs`, then cosine decay to 0 at the last step
    # of the run, every epoch trained and the best one kept: `WarmupCosine`).
    schedule: str = "plateau"
    warmup_epochs: int = 1


_BASELINE = Recipe(name="baseline", batch_size=128, optimizer="adamw", weight_decay=1e-5, label_smoothing=0.1,
                   augment=True, image_dropout=0.15, audio_dropout=0.5, time_mask=6, frequency_mask=3, time_shift=3,
                   noise=0.2, utterance_normalization=("seed000",))
RECIPES = {
    "plain": Recipe(name="plain", batch_size=32, optimizer="adam"),
    # 0.2.0's default: augmentation and modality dropout, per-utterance normalization for seed 000.
    "baseline": _BASELINE,
    # What won the robustness benchmark (docs/performance.md, "Robustness"): the baseline plus per-utterance
    # normalization for every family, speech swapped in 40% of the samples that keep both
    # modalities, simulated reverberation of 30% of the utterances, eSpeak NG voices as a
    # quarter of the training rows, and VTLP +/-10%.
    "default": dataclasses.replace(_BASELINE, name="default", utterance_normalization=("seed000", "seed001", "seed003"),
                                   audio_mismatch=0.4, reverberation=0.3, synthetic_share=0.25, vtlp=0.1),
}


if tuple(sorted(RECIPES)) != tuple(sorted(RECIPE_NAMES)):  # the CLI's choices come from RECIPE_NAMES
    raise ImportError(f"RECIPES {sorted(RECIPES)} and utils.names.RECIPE_NAMES {sorted(RECIPE_NAMES)} differ")


def get_recipe(name):
    """Returns the `Recipe` called `name` (a `Recipe` is returned as it is, so a variant made
    with ``dataclasses.replace(get_recipe("default"), ...)`` goes wherever a name does);
    ValueError lists the known names."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ValueError(f"`recipe` must be one of {sorted(RECIPES)}. Received: recipe={name!r}")
    return RECIPES[name]


def make_optimizer(recipe, *, learning_rate):
    """The recipe's optimizer: AdamW (with its weight decay) or Adam."""
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def make_loss(recipe):
    """The recipe's classification loss: cross-entropy, with label smoothing (one-hot targets)
    when the recipe asks for it."""
    if recipe.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def _targets(labels, recipe, num_classes=10):
    labels = np.asarray(labels, dtype=np.int64)
    return np.eye(num_classes, dtype=np.float32)[labels] if recipe.label_smoothing else labels


def _image_jitter(seed):
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
    mel = _hz_to_mel(_mel_centres_hz(num_filters, sample_rate))
    step = mel[1] - mel[0]  # band centres are equally spaced in mel
    source = _hz_to_mel(np.clip(_mel_centres_hz(num_filters, sample_rate) / factor, 0, sample_rate / 2))
    position = np.clip((source - mel[0]) / step, 0, num_filters - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, num_filters - 1)
    weight = position - low
    interpolate = np.zeros((num_filters, num_filters))
    interpolate[np.arange(num_filters), low] += 1 - weight
    interpolate[np.arange(num_filters), high] += weight
    return to_cepstra @ interpolate @ to_logmel.T


def _hz_to_mel(hz):
    return 2595 * np.log10(1 + np.asarray(hz) / 700)


def _mel_centres_hz(num_filters=26, sample_rate=8000):
    """Centre frequencies (Hz, float64) of `mfcc_507`'s mel filters over 0..rate/2."""
    points = np.linspace(0, _hz_to_mel(sample_rate / 2), num_filters + 2)[1:-1]
    return 700 * (10 ** (points / 2595) - 1)


def _cepstra_to_logmel(num_filters=26, num_cepstra=12, lifter=22):
    """(12, 26) float64 maps: liftered c1..c12 -> the log-mel envelope's shape (inverse DCT of
    the unliftered cepstra), and the envelope -> liftered c1..c12 (DCT, lifter)."""
    dct = scipy.fft.dct(np.eye(num_filters), type=2, norm="ortho", axis=0)[1 : num_cepstra + 1]
    lift = 1 + (lifter / 2) * np.sin(np.pi * np.arange(1, num_cepstra + 1) / lifter)
    return dct / lift[:, None], lift[:, None] * dct


def _to_raw(x):
    return x * MFCC_REFERENCE_STD + MFCC_REFERENCE_MEAN


def _from_raw(raw):
    return (raw - MFCC_REFERENCE_MEAN) / MFCC_REFERENCE_STD


def _vtlp(x, spread, seed):
    """Warps each utterance of x (B, 39, 13) by a factor drawn from 1 +/- spread (VTLP_STEPS grid)."""
    maps = np.stack([vtlp_matrix(f) for f in np.linspace(1 - spread, 1 + spread, VTLP_STEPS)]).astype(np.float32)
    pick = tf.random.stateless_uniform((tf.shape(x)[0],), seed, 0, VTLP_STEPS, dtype=tf.int32)
    raw = _to_raw(x)
    cepstra = tf.einsum("bij,btj->bti", tf.gather(maps, pick), raw[:, :, 1:])
    return _from_raw(tf.concat([raw[:, :, :1], cepstra], axis=-1))


REVERB_TAPS = 16
RT60_SECONDS = (0.1, 0.8)


def _to_mel_power(x):
    """Reference-standardized MFCC rows (B, 39, 13) -> (raw rows, mel power envelope (B, 39, 26)).

    Envelope = frame log energy + inverse DCT of c1..c12 (its constant level is unknown and
    cancels in every linear operation on the power), scaled to a peak of 1 per utterance."""
    raw = _to_raw(x)
    to_logmel, _ = _cepstra_to_logmel()
    envelope = raw[:, :, :1] + tf.einsum("btk,kj->btj", raw[:, :, 1:], to_logmel.astype(np.float32))
    # Floored 30 nats (130 dB) below the utterance's peak, so every frame has a finite log.
    return raw, tf.exp(tf.maximum(envelope - tf.reduce_max(envelope, axis=[1, 2], keepdims=True), -30.0))


def _from_mel_power(raw, power, changed):
    """Back to reference-standardized rows: log energy moved by the change of each frame's
    total power, c1..c12 from the DCT of the changed log envelope."""
    _, to_cepstra = _cepstra_to_logmel()
    to_cepstra = to_cepstra.astype(np.float32)
    log_gain = tf.math.log(tf.reduce_sum(changed, -1, keepdims=True) / tf.reduce_sum(power, -1, keepdims=True))
    cepstra = tf.einsum("btj,kj->btk", tf.math.log(tf.maximum(changed, 1e-30)), to_cepstra)
    return _from_raw(tf.concat([raw[:, :, :1] + log_gain, cepstra], axis=-1))


def _reverberate(x, probability, seed, drr_db):
    """Simulated room reverberation of MFCC rows x (B, 39, 13), reference-standardized.

    Each chosen utterance's mel power envelope is convolved over time with an exponential
    decay (RT60 drawn from `RT60_SECONDS`, direct-to-reverberant ratio from
    ``drr_db``, in dB): the usual statistical model of a room's late reverberation
    (Polack).
    """
    raw, power = _to_mel_power(x)
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
    wet = _from_mel_power(raw, power, tf.einsum("bk,bktj->btj", kernel, shifted))
    chosen = tf.random.stateless_uniform((batch, 1, 1), seed + 2) < probability
    return tf.where(chosen, wet, x)


LOW_CUTOFF_HZ = (0.0, 500.0)
HIGH_CUTOFF_HZ = (2500.0, 4000.0)
TILT_DB = 6.0
STOPBAND_DB = -30.0
NOISE_FLOOR = 1e-4


def _equalize(x, probability, seed):
    """Random channel equalization of MFCC rows x (B, 39, 13), reference-standardized: each
    chosen utterance's mel power is band-limited (bands below a cutoff drawn from
    `LOW_CUTOFF_HZ` or above one from `HIGH_CUTOFF_HZ` lose 30 dB, as on a telephone line or a
    small microphone), tilted by up to +/-6 dB across the band, over a fixed noise floor.
    A constant spectral colour alone would be removed by per-utterance normalization; the band
    edges and the floor are what a real channel leaves behind."""
    raw, power = _to_mel_power(x)
    batch = tf.shape(x)[0]
    centres = tf.constant(_mel_centres_hz(), tf.float32)[None, None, :]
    low = tf.random.stateless_uniform((batch, 1, 1), seed, *LOW_CUTOFF_HZ)
    high = tf.random.stateless_uniform((batch, 1, 1), seed + 1, *HIGH_CUTOFF_HZ)
    tilt = tf.random.stateless_uniform((batch, 1, 1), seed + 2, -TILT_DB, TILT_DB)
    gain_db = tilt * (centres / 4000.0 - 0.5) + tf.where((centres < low) | (centres > high), STOPBAND_DB, 0.0)
    shaped = _from_mel_power(raw, power, power * 10 ** (gain_db / 10) + NOISE_FLOOR)
    chosen = tf.random.stateless_uniform((batch, 1, 1), seed + 3) < probability
    return tf.where(chosen, shaped, x)


def _augment_audio(audio, mean, std, recipe, seed):
    """Masks, shift, noise and modality dropout on a batch (B, 39 * k) of raw features."""
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
        x = _vtlp(x, recipe.vtlp, seed + 60)
    if recipe.reverberation and mfcc:
        x = _reverberate(x, recipe.reverberation, seed + 80, recipe.reverberation_drr_db)
    if recipe.equalization and mfcc:
        x = _equalize(x, recipe.equalization, seed + 70)
    if recipe.noise:
        x = x + recipe.noise * tf.random.stateless_normal(tf.shape(x), seed + 40)
    return tf.reshape(x, (batch, width))


def _targets_for(targets, outputs):
    return {name: targets for name in outputs} if outputs else targets


def training_dataset(part, recipe, *, seed=0, num_classes=10, multimodal=True, outputs=None):
    """A `tf.data.Dataset` of ((inputs dict), targets) batches for training with `recipe`.

    Args:
        part: The training `MultimodalDataset` (labels required).
        recipe: A `Recipe`; ``augment`` adds the module docstring's augmentation.
        seed: Seed of the shuffle and of every random draw (deterministic per epoch order).
        num_classes: Width of one-hot targets when the recipe smooths labels.
        multimodal: False for a model that looks at one modality: no modality dropout
            (blanking its only input would teach it noise).
        outputs: Output names of a dict-output model: each gets the targets.

    Returns:
        The dataset: shuffled each epoch, batched, augmented (when asked), prefetched.
    """
    inputs = {"image": part.images, "audio": part.audio}
    # No .cache(): the arrays are in memory already, and a cache would hold another copy.
    data = tf.data.Dataset.from_tensor_slices((inputs, _targets(part.labels, recipe, num_classes)))
    data = data.shuffle(len(part), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(recipe.batch_size, drop_remainder=recipe.drop_remainder)
    if recipe.augment:
        mean = tf.constant(part.audio.mean(axis=0), tf.float32)
        std = tf.constant(part.audio.std(axis=0) + 1e-6, tf.float32)
        jitter = _image_jitter(seed)
        counter = tf.data.Dataset.counter()

        def augment(step, batch):
            features, targets = batch
            step_seed = tf.stack([tf.cast(seed, tf.int64), step])
            standardized = _augment_audio(features["audio"], mean, std, recipe, step_seed)
            image = jitter(features["image"], training=True)
            if multimodal:
                draw = tf.random.stateless_uniform((tf.shape(image)[0],), step_seed + 50)
                keep_image = tf.cast(draw >= recipe.image_dropout, tf.float32)
                keep_audio = tf.cast((draw < recipe.image_dropout)
                                     | (draw >= recipe.image_dropout + recipe.audio_dropout), tf.float32)
                image = image * keep_image[:, None, None, None]
                standardized = standardized * keep_audio[:, None]
                if recipe.audio_mismatch:
                    both = draw >= recipe.image_dropout + recipe.audio_dropout
                    swap = both & (tf.random.stateless_uniform(tf.shape(draw), step_seed + 90) < recipe.audio_mismatch)
                    standardized = tf.where(swap[:, None], tf.roll(standardized, shift=1, axis=0), standardized)
            audio = standardized * std + mean  # blank speech = the mean
            return {"image": image, "audio": audio}, targets

        data = tf.data.Dataset.zip(counter, data).map(augment)
    if outputs:
        data = data.map(lambda features, targets: (features, _targets_for(targets, outputs)))
    return data.prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(part, recipe, *, batch_size=512, num_classes=10, outputs=None):
    """Un-augmented, batched validation data with targets shaped for `recipe`'s loss (one per
    output name in `outputs` for a dict-output model)."""
    inputs = {"image": part.images, "audio": part.audio}
    data = tf.data.Dataset.from_tensor_slices((inputs, _targets_for(_targets(part.labels, recipe, num_classes),
                                                                    outputs)))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
