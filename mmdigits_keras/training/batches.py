"""Training batches on any backend: the inputs and targets a recipe trains on, and
`HostBatches`, a `keras.utils.PyDataset` of shuffled batches that can augment each batch on the
host's CPU (``augment_on="host"`` where TensorFlow's `tf.data` is not the backend's)."""

from __future__ import annotations

import math
import os

import keras
import numpy as np

from mmdigits_keras.training.augment import SeedGeneratorDraws, augment_batch


def recipe_targets(labels, recipe, num_classes=10):
    """Targets shaped for `recipe`'s loss: int64 (N,) class ids, or float32 (N, `num_classes`)
    one-hot rows when the recipe smooths labels (`Recipe.one_hot`, `make_loss`)."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.eye(num_classes, dtype=np.float32)[labels] if recipe.one_hot else labels


def model_inputs(part):
    """The inputs dict of `part`: ``image`` float32 (N, 28, 28, 1) and ``audio`` float32 (N, F)."""
    return {"image": part.images, "audio": part.audio}


def audio_statistics(part):
    """The training rows' per-column speech mean and standard deviation (+ 1e-6), float32 (F,)
    each: what the augmentation standardizes the speech with."""
    audio = np.asarray(part.audio, dtype=np.float32)
    return audio.mean(axis=0), audio.std(axis=0) + np.float32(1e-6)


def host_workers():
    """Threads that augment batches on the host: the cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


class HostBatches(keras.utils.PyDataset):
    """Shuffled training batches of a `MultimodalDataset`, on any backend.

    Epoch e's order is a permutation drawn from (`seed`, e); with augmentation, batch k of epoch
    e is augmented (`augment_batch`) on the host's CPU (`keras.device("cpu:0")`) from a
    `keras.random.SeedGenerator` seeded by (`seed`, e, k), in `host_workers` threads. A batch
    depends on its seed, epoch and index only: the same seed gives the same batches.

    Args:
        part: The training `MultimodalDataset` (labels required).
        recipe: A `Recipe` (batch size, ``drop_remainder``, the augmentation).
        seed: Seed of the order and the draws (int).
        num_classes: Width of one-hot targets when the recipe smooths labels.
        multimodal: False for a model of one modality: no modality dropout.
        augment: False: batches as they are (the augmentation runs on the device, or not at all).
    """

    def __init__(self, part, recipe, *, seed=0, num_classes=10, multimodal=True, augment=True):
        self.augment = bool(recipe.augment and augment)
        super().__init__(workers=host_workers() if self.augment else 1)
        self.inputs = model_inputs(part)
        self.targets = recipe_targets(part.labels, recipe, num_classes)
        self.recipe, self.seed, self.multimodal = recipe, int(seed), multimodal
        self.mean, self.std = audio_statistics(part)
        self.rows = len(part)
        self.epoch = 0
        self._order = (None, None)

    def __len__(self):
        size = self.recipe.batch_size
        return self.rows // size if self.recipe.drop_remainder else math.ceil(self.rows / size)

    def on_epoch_end(self):
        self.epoch += 1

    def order(self, epoch):
        """Epoch `epoch`'s permutation of the rows."""
        cached_epoch, order = self._order
        if cached_epoch != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.rows)
            self._order = (epoch, order)
        return order

    def __getitem__(self, index):
        epoch = self.epoch
        size = self.recipe.batch_size
        rows = self.order(epoch)[index * size:(index + 1) * size]
        inputs = {name: values[rows] for name, values in self.inputs.items()}
        if self.augment:
            batch_seed = int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1)[0] >> 1)
            with keras.device("cpu:0"):
                draws = SeedGeneratorDraws(keras.random.SeedGenerator(batch_seed))
                augmented = augment_batch(inputs, mean=self.mean, std=self.std, recipe=self.recipe, draws=draws,
                                          multimodal=self.multimodal)
                inputs = {name: keras.ops.convert_to_numpy(value) for name, value in augmented.items()}
        return inputs, self.targets[rows]
