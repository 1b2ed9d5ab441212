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
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from mmdigits_keras.data.constants import NUM_FRAMES


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
    time_mask: int = 0
    frequency_mask: int = 0
    time_shift: int = 0
    noise: float = 0.0
    # Model families (registry `ModelInfo.family`) whose speech input is normalized per
    # utterance: measured to help seed 000's Models 1-4 on unseen speakers (README).
    utterance_normalization: tuple = ()
    # Drop each epoch's last, smaller batch (in-batch negatives need full batches).
    drop_remainder: bool = False


RECIPES = {
    "plain": Recipe(name="plain", batch_size=32, optimizer="adam"),
    "default": Recipe(name="default", batch_size=128, optimizer="adamw", weight_decay=1e-5, label_smoothing=0.1,
                      augment=True, image_dropout=0.15, audio_dropout=0.5, time_mask=6, frequency_mask=3,
                      time_shift=3, noise=0.2, utterance_normalization=("seed000",)),
}


def get_recipe(name):
    """Returns the `Recipe` called `name`; ValueError lists the known names."""
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
    if recipe.noise:
        x = x + recipe.noise * tf.random.stateless_normal(tf.shape(x), seed + 40)
    return tf.reshape(x, (batch, width))


def training_dataset(part, recipe, *, seed=0, num_classes=10):
    """A `tf.data.Dataset` of ((inputs dict), targets) batches for training with `recipe`.

    Args:
        part: The training `MultimodalDataset` (labels required).
        recipe: A `Recipe`; ``augment`` adds the module docstring's augmentation.
        seed: Seed of the shuffle and of every random draw (deterministic per epoch order).
        num_classes: Width of one-hot targets when the recipe smooths labels.

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
            draw = tf.random.stateless_uniform((tf.shape(image)[0],), step_seed + 50)
            keep_image = tf.cast(draw >= recipe.image_dropout, tf.float32)
            keep_audio = tf.cast((draw < recipe.image_dropout) | (draw >= recipe.image_dropout + recipe.audio_dropout),
                                 tf.float32)
            image = image * keep_image[:, None, None, None]
            audio = (standardized * keep_audio[:, None]) * std + mean  # blank speech = the mean
            return {"image": image, "audio": audio}, targets

        data = tf.data.Dataset.zip(counter, data).map(augment)
    return data.prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(part, recipe, *, batch_size=512, num_classes=10):
    """Un-augmented, batched validation data with targets shaped for `recipe`'s loss."""
    inputs = {"image": part.images, "audio": part.audio}
    data = tf.data.Dataset.from_tensor_slices((inputs, _targets(part.labels, recipe, num_classes)))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
