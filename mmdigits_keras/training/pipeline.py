"""The input pipeline of training: `tf.data` datasets of a recipe's batches (shuffled,
batched, augmented in parallel with `mmdigits_keras.training.augment`, prefetched; the arrays
are in memory, so no cache), and un-augmented evaluation batches with targets shaped for the recipe's loss."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmdigits_keras.training.augment import augment_audio, image_jitter


def recipe_targets(labels, recipe, num_classes=10):
    """Targets shaped for `recipe`'s loss: int64 (N,) class ids, or float32 (N, `num_classes`)
    one-hot rows when the recipe smooths labels (`Recipe.one_hot`, `make_loss`)."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.eye(num_classes, dtype=np.float32)[labels] if recipe.one_hot else labels


def model_inputs(part):
    """The inputs dict of `part`: ``image`` float32 (N, 28, 28, 1) and ``audio`` float32 (N, F)."""
    return {"image": part.images, "audio": part.audio}


def training_dataset(part, recipe, *, seed=0, num_classes=10, multimodal=True):
    """A `tf.data.Dataset` of ((inputs dict), targets) batches for training with `recipe`.

    Args:
        part: The training `MultimodalDataset` (labels required).
        recipe: A `Recipe`; ``augment`` adds `augment_audio` and `image_jitter`.
        seed: Seed of the shuffle and of every augmentation draw: batch k of an epoch draws from
            the stateless seed (`seed`, k), so the batches are the same at any parallelism.
        num_classes: Width of one-hot targets when the recipe smooths labels.
        multimodal: False for a model that looks at one modality: no modality dropout
            (blanking its only input would teach it noise).

    Returns:
        The dataset: shuffled each epoch, batched, augmented (when asked), prefetched.
    """
    # No .cache(): the arrays are in memory already, and a cache would hold another copy.
    data = tf.data.Dataset.from_tensor_slices((model_inputs(part), recipe_targets(part.labels, recipe, num_classes)))
    data = data.shuffle(len(part), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(recipe.batch_size, drop_remainder=recipe.drop_remainder)
    if recipe.augment:
        mean = tf.constant(part.audio.mean(axis=0), tf.float32)
        std = tf.constant(part.audio.std(axis=0) + 1e-6, tf.float32)
        counter = tf.data.Dataset.counter()

        def augment(step, batch):
            features, targets = batch
            step_seed = tf.stack([tf.cast(seed, tf.int64), step])
            standardized = augment_audio(features["audio"], mean, std, recipe, step_seed)
            image = image_jitter(features["image"], step_seed + 70)
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

        # Every draw is stateless, from the batch's step seed: batches are augmented in parallel
        # and come out in order, the same batches for the same seed at any parallelism.
        data = tf.data.Dataset.zip(counter, data).map(augment, num_parallel_calls=tf.data.AUTOTUNE,
                                                      deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(part, recipe, *, batch_size=512, num_classes=10):
    """Un-augmented, batched validation data with targets shaped for `recipe`'s loss."""
    data = tf.data.Dataset.from_tensor_slices((model_inputs(part), recipe_targets(part.labels, recipe, num_classes)))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
