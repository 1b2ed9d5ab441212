"""Augmentation on the device (``augment_on="device"``): a training-only wrapper around the
model, so that `augment_batch` runs inside the compiled training step, where the model runs (a
GPU's, or the CPU's), on every backend.

The wrapper is what `fit` trains; the model it wraps is what is saved, and it stays the plain
model of built-in layers: the wrapper's own `save` and `save_weights` write the wrapped model,
so a checkpoint callback (keras-tuner's, `keras.callbacks.ModelCheckpoint`) saves what loads.
"""

from __future__ import annotations

import keras
import numpy as np

from mmdigits_keras.training.augment import SeedGeneratorDraws, augment_batch


class DeviceAugmentation(keras.Model):
    """Trains `model` on augmented batches: in training (``training=True``) each batch goes
    through `augment_batch` first, with draws from the wrapper's `keras.random.SeedGenerator`
    (part of the training step's state, so the same seed gives the same batches on a backend);
    in inference the batch goes to `model` as it is.

    Args:
        model: The task model: inputs ``{"image": (B, 28, 28, 1), "audio": (B, F)}``.
        mean: float32 (F,): the training rows' per-column speech mean.
        std: float32 (F,): their standard deviation (> 0).
        recipe: The `Recipe` (``augment`` true).
        seed: Seed of the draws (int).
        multimodal: False for a model of one modality: no modality dropout.
    """

    def __init__(self, model, *, mean, std, recipe, seed=0, multimodal=True, **kwargs):
        super().__init__(name=f"{model.name}_device_augmentation", **kwargs)
        self.wrapped = model
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.recipe, self.multimodal = recipe, multimodal
        self.seed_generator = keras.random.SeedGenerator(int(seed), name="augmentation_seed")

    def call(self, inputs, training=False):
        if training:
            inputs = augment_batch(inputs, mean=self.mean, std=self.std, recipe=self.recipe,
                                   draws=SeedGeneratorDraws(self.seed_generator), multimodal=self.multimodal)
        return self.wrapped(inputs, training=training)

    def save(self, filepath, *args, **kwargs):
        """Saves the wrapped model (`keras.Model.save`)."""
        return self.wrapped.save(filepath, *args, **kwargs)

    def save_weights(self, filepath, *args, **kwargs):
        """Saves the wrapped model's weights (`keras.Model.save_weights`)."""
        return self.wrapped.save_weights(filepath, *args, **kwargs)

    def load_weights(self, filepath, *args, **kwargs):
        """Loads weights saved by the wrapped model into it."""
        return self.wrapped.load_weights(filepath, *args, **kwargs)


def augmenting_trainer(model, *, mean, std, recipe, seed, multimodal):
    """A `DeviceAugmentation` around a compiled `model`, compiled as `model` is: the same
    optimizer object (its learning rate, schedule and slots), the same loss, fresh copies of its
    metrics (`model.get_compile_config`).

    Returns:
        The compiled wrapper; it shares every weight with `model`.
    """
    trainer = DeviceAugmentation(model, mean=mean, std=std, recipe=recipe, seed=seed, multimodal=multimodal)
    metrics = model.get_compile_config().get("metrics")
    trainer.compile(optimizer=model.optimizer, loss=model.loss,
                    metrics=keras.saving.deserialize_keras_object(metrics) if metrics else None)
    return trainer
