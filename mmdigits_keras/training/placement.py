"""Where a run's augmentation runs (`TrainingSettings.augment_on`), and what `fit` is fed.

- ``"host"``: an input pipeline augments each batch on the host's CPU cores while the model
  trains: TensorFlow's `tf.data` on the TensorFlow backend (`mmdigits_keras.training.tfdata`),
  `HostBatches` (a `keras.utils.PyDataset`) on the others;
- ``"device"``: the batches arrive as they are and `DeviceAugmentation`, a training-only
  wrapper around the model, augments them inside the training step, on the model's device.

Both run the same `augment_batch`. None picks `DEFAULT_AUGMENT_ON`, the placement the
training-speed benchmark chose (docs/results.md).
"""

from __future__ import annotations

import importlib

from mmdigits_keras.models.backbone import modalities_of
from mmdigits_keras.training.batches import HostBatches, audio_statistics, model_inputs, recipe_targets
from mmdigits_keras.training.on_device import augmenting_trainer
from mmdigits_keras.utils.backends import backend
from mmdigits_keras.utils.checks import check_choice
from mmdigits_keras.utils.defaults import AUGMENT_ON, DEFAULT_AUGMENT_ON

# tf.data is TensorFlow's: other backends feed `HostBatches`.
tfdata = importlib.import_module("mmdigits_keras.training.tfdata") if backend() == "tensorflow" else None
# Validation rows a batch (inference: larger batches than training's are cheaper).
EVALUATION_BATCH_SIZE = 512


def resolve_augment_on(augment_on):
    """`augment_on` itself, or with None `DEFAULT_AUGMENT_ON`, ``"device"`` on every backend and
    device (`mmdigits_keras.utils.defaults`; ValueError for another value)."""
    check_choice("augment_on", augment_on, (None, *AUGMENT_ON))
    return augment_on or DEFAULT_AUGMENT_ON


def is_multimodal(model):
    """Whether `model` looks at both modalities (modality dropout applies); a flat 0.1.0 model
    without a backbone is taken to."""
    try:
        return len(modalities_of(model)) > 1
    except ValueError:
        return True


def training_inputs(model, train_part, recipe, *, seed, augment_on):
    """The model `fit` trains and the training data it is fed, for `recipe`'s batches.

    Args:
        model: The compiled task model.
        train_part: The training `MultimodalDataset`.
        recipe: The `Recipe`; one without augmentation feeds numpy arrays, as the course
            papers ran it.
        seed: Seed of the order and the augmentation draws.
        augment_on: ``"host"``, ``"device"`` or None (`resolve_augment_on`).

    Returns:
        ``(trainer, fit keyword arguments)``: `trainer` is `model` itself, or with
        ``"device"`` its compiled `DeviceAugmentation` (sharing every weight).
    """
    if not recipe.augment:
        return model, {"x": model_inputs(train_part), "y": recipe_targets(train_part.labels, recipe),
                       "batch_size": recipe.batch_size, "shuffle": True}
    on_device = resolve_augment_on(augment_on) == "device"
    multimodal = is_multimodal(model)
    trainer = model
    if on_device:
        mean, std = audio_statistics(train_part)
        trainer = augmenting_trainer(model, mean=mean, std=std, recipe=recipe, seed=seed, multimodal=multimodal)
    if tfdata is not None:
        batches = tfdata.training_dataset(train_part, recipe, seed=seed, multimodal=multimodal, augment=not on_device)
    else:
        batches = HostBatches(train_part, recipe, seed=seed, multimodal=multimodal, augment=not on_device)
    return trainer, {"x": batches, "shuffle": False}  # the batches come shuffled


def validation_inputs(val_part, recipe):
    """`fit`'s validation arguments: the validation rows as they are, targets shaped for
    `recipe`'s loss, 512 rows a batch for a recipe that augments (no validation without rows)."""
    if not len(val_part):
        return {"validation_data": None}
    data = {"validation_data": (model_inputs(val_part), recipe_targets(val_part.labels, recipe))}
    return {**data, "validation_batch_size": EVALUATION_BATCH_SIZE} if recipe.augment else data
