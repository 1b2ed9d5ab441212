"""The `tf.data` input pipeline of a recipe, on the TensorFlow backend only (what only
TensorFlow has): shuffled, batched, augmented in parallel on the host's cores with
`mmdigits_keras.training.augment.augment_batch` (``augment_on="host"``), prefetched; the arrays
are in memory, so no cache. Other backends feed `mmdigits_keras.training.batches.HostBatches`.
"""

from __future__ import annotations

import tensorflow as tf

from mmdigits_keras.training.augment import augment_batch
from mmdigits_keras.training.batches import audio_statistics, model_inputs, recipe_targets


class StatelessDraws:
    """Random draws for one batch inside `tf.data`: each draw is TensorFlow's stateless draw from
    the batch's seed plus the draw's salt, so batches can be augmented in parallel and still
    come out the same for the same seed.

    Args:
        seed: int64 (2,): (the run's seed, the batch's step).
    """

    def __init__(self, seed):
        self.seed = seed

    def uniform(self, shape, salt, minval=0.0, maxval=1.0):
        return tf.random.stateless_uniform(shape, self.seed + salt, minval, maxval)

    def randint(self, shape, salt, minval, maxval):
        return tf.random.stateless_uniform(shape, self.seed + salt, minval, maxval, dtype=tf.int32)

    def normal(self, shape, salt):
        return tf.random.stateless_normal(shape, self.seed + salt)


def training_dataset(part, recipe, *, seed=0, num_classes=10, multimodal=True, augment=True):
    """A `tf.data.Dataset` of ((inputs dict), targets) batches for training with `recipe`.

    Args:
        part: The training `MultimodalDataset` (labels required).
        recipe: A `Recipe`; with ``recipe.augment`` (and `augment`) each batch goes through
            `augment_batch` here, on the host.
        seed: Seed of the shuffle and of every augmentation draw: batch k of an epoch draws from
            the stateless seed (`seed`, k), so the batches are the same at any parallelism.
        num_classes: Width of one-hot targets when the recipe smooths labels.
        multimodal: False for a model that looks at one modality: no modality dropout.
        augment: False: batches as they are (the augmentation runs on the device instead).

    Returns:
        The dataset: shuffled each epoch, batched, augmented (when asked), prefetched.
    """
    # No .cache(): the arrays are in memory already, and a cache would hold another copy.
    data = tf.data.Dataset.from_tensor_slices((model_inputs(part), recipe_targets(part.labels, recipe, num_classes)))
    data = data.shuffle(len(part), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(recipe.batch_size, drop_remainder=recipe.drop_remainder)
    if recipe.augment and augment:
        mean, std = audio_statistics(part)

        def augmented(step, batch):
            features, targets = batch
            draws = StatelessDraws(tf.stack([tf.cast(seed, tf.int64), step]))
            return augment_batch(features, mean=mean, std=std, recipe=recipe, draws=draws,
                                 multimodal=multimodal), targets

        # Every draw is stateless, from the batch's step seed: batches are augmented in parallel
        # and come out in order, the same batches for the same seed at any parallelism.
        data = tf.data.Dataset.zip(tf.data.Dataset.counter(), data).map(
            augmented, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return data.prefetch(tf.data.AUTOTUNE)
