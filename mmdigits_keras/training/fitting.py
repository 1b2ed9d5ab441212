"""Fitting one model with a recipe: the steps of one `fit`, in order: seeding, compiling (the
recipe's optimizer and loss) and `fit` on the recipe's batches, augmented where the run places
the augmentation (`mmdigits_keras.training.placement`), on the schedule of
`mmdigits_keras.training.schedule`. The engine (`mmdigits_keras.training.engine`) and
fine-tuning (`mmdigits_keras.training.finetune`) train through these."""

from __future__ import annotations

import logging

import keras

from mmdigits_keras.training.batches import model_inputs, recipe_targets
from mmdigits_keras.training.fused import fused_batch_normalization
from mmdigits_keras.training.placement import training_inputs, validation_inputs
from mmdigits_keras.training.recipes import make_loss, make_optimizer
from mmdigits_keras.training.schedule import EARLY_STOPPING_MONITOR, EpochEta, fit_callbacks, resolve_patience
from mmdigits_keras.utils.backends import enable_determinism
from mmdigits_keras.utils.progress import fit_verbosity

logger = logging.getLogger("mmdigits_keras")


def seed_everything(seed):
    """Seeds Python, NumPy and the backend (`keras.utils.set_random_seed`) and makes the
    backend's ops deterministic where it has a switch (`enable_determinism`)."""
    keras.utils.set_random_seed(int(seed))
    enable_determinism()


def compile_model(model, recipe, *, learning_rate, loss=None, metrics=("accuracy",)):
    """Compiles `model` with the recipe's optimizer and (unless `loss` is given) its loss.

    Classification (no `loss` given) also logs ``crossentropy``: the validation cross-entropy
    without label smoothing, which early stopping watches (with smoothing, ``val_loss`` is
    lowest for an under-confident model, so it would restore too early an epoch).

    Returns:
        The model.
    """
    metrics = list(metrics)
    if loss is None:
        loss = make_loss(recipe)
        metrics.append(keras.metrics.CategoricalCrossentropy(name="crossentropy") if recipe.one_hot
                       else keras.metrics.SparseCategoricalCrossentropy(name="crossentropy"))
    model.compile(optimizer=make_optimizer(recipe, learning_rate=learning_rate), loss=loss, metrics=metrics)
    return model


def build_training_state(model, part, recipe):
    """Creates a compiled `model`'s optimizer slots and compiled loss and metric variables
    eagerly, from the first two rows of `part`, and resets the metrics.

    Without a distribution strategy Keras creates them inside the first traced train step, and
    TensorFlow traces a function that creates variables twice; built here, the train step is
    traced once. The forward pass runs in inference mode: no weight, moving statistic or
    random state changes.

    Args:
        model: A compiled `keras.Model` with ``image`` and ``audio`` inputs.
        part: A labelled `MultimodalDataset` (at least one row).
        recipe: The `Recipe` the model was compiled with (its targets' shape: class ids, or
            one-hot rows when it smooths labels).
    """
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    inputs = model_inputs(part.subset(slice(0, 2)))
    targets = recipe_targets(part.labels[:2], recipe)
    predictions = model(inputs, training=False)
    model.compute_loss(inputs, targets, predictions)
    model.compute_metrics(inputs, targets, predictions)
    model.reset_metrics()


def fit_model(model, prepared, recipe, *, epochs, seed=0, patience=None, callbacks=(), initial_epoch=0,
              monitor=EARLY_STOPPING_MONITOR, verbose="auto", schedule=None, augment_on=None):
    """Fits a compiled `model` on `prepared` with `recipe`: a recipe without augmentation feeds
    numpy arrays (the course papers' way), every other recipe shuffled batches augmented on the
    host or on the device (`augment_on`: `mmdigits_keras.training.placement`); validation on the
    validation rows; `fit_callbacks` (watching `monitor`) plus `callbacks`. On TensorFlow, batch
    normalization trains with the fused kernel (`fused_batch_normalization`).
    ``verbose="auto"`` draws Keras's progress bar on a terminal or in a notebook and one line
    per epoch elsewhere (`fit_verbosity`); unless `verbose` is 0, each epoch also logs the time
    left (`EpochEta`).

    `patience` is early stopping's, in epochs; None: `scaled_patience` of the training rows.
    With `schedule` (fine-tuning: `finetune_schedule`), the model trains ``len(schedule)`` epochs at
    those learning rates, without validation, early stopping or plateau (`epochs` and
    `patience` are ignored).

    Returns:
        The Keras `History`.
    """
    verbose = fit_verbosity(verbose)
    if schedule is not None:
        epochs = len(schedule)
        every = [keras.callbacks.LearningRateScheduler(lambda epoch, rate: schedule[epoch]), *callbacks]
    else:
        patience = resolve_patience(patience, len(prepared.train))
        every = [*fit_callbacks(recipe, patience=patience, monitor=monitor), *callbacks]
    if verbose:
        every.append(EpochEta(epochs, initial_epoch=initial_epoch, early_stopping=schedule is None))
    trainer, training = training_inputs(model, prepared.train, recipe, seed=seed, augment_on=augment_on)
    build_training_state(trainer, prepared.train, recipe)
    with fused_batch_normalization(trainer):
        return trainer.fit(**training, **validation_inputs(prepared.validation, recipe), epochs=int(epochs),
                           initial_epoch=initial_epoch, callbacks=every, verbose=verbose)
