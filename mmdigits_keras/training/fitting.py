"""Fitting one model with a recipe: seeding, compiling (the recipe's optimizer and loss), the
recipe's schedule (early stopping, learning-rate plateau) and `fit` on the recipe's batches,
augmented where the run places the augmentation (`mmdigits_keras.training.placement`). The
engine (`mmdigits_keras.training.engine`) and fine-tuning (`mmdigits_keras.training.finetune`)
train through these."""

from __future__ import annotations

import logging

import keras

from mmdigits_keras.training.batches import model_inputs, recipe_targets
from mmdigits_keras.training.fused import fused_batch_normalization
from mmdigits_keras.training.placement import training_inputs, validation_inputs
from mmdigits_keras.training.recipes import make_loss, make_optimizer
from mmdigits_keras.utils.backends import enable_determinism
from mmdigits_keras.utils.names import MAX_PATIENCE, MIN_PATIENCE, PATIENCE_SAMPLES
from mmdigits_keras.utils.progress import Eta, fit_verbosity

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


# What early stopping watches in a classifier's training: the validation cross-entropy without
# label smoothing (`compile_model`); its best epoch is the one restored and saved.
EARLY_STOPPING_MONITOR = "val_crossentropy"


def scaled_patience(rows):
    """Early stopping's default patience for `rows` training rows an epoch (synthetic rows
    included): about `PATIENCE_SAMPLES` (42,000) samples, in whole epochs, from 2 to 10. So 10
    up to 4,400 rows an epoch and 2 from 16,800: on large data, where early stopping keeps an
    early epoch, a patience of 10 epochs trains ten epochs past it for nothing. Chosen on the
    four FSDD rotations tiled to 20,000 and 60,000 rows (docs/experiments.md, "The default
    patience scales with the training rows").

    Args:
        rows: Training rows an epoch (int >= 0).

    Returns:
        The patience in epochs (int in [2, 10]).
    """
    return int(min(MAX_PATIENCE, max(MIN_PATIENCE, round(PATIENCE_SAMPLES / max(int(rows), 1)))))


def resolve_patience(patience, rows):
    """`patience` itself, or with None the `scaled_patience` of `rows` training rows."""
    return scaled_patience(rows) if patience is None else int(patience)


def fit_callbacks(recipe, *, patience=MAX_PATIENCE, monitor=EARLY_STOPPING_MONITOR):
    """The recipes' schedule: EarlyStopping on `monitor` (best weights restored) and
    ReduceLROnPlateau (factor 0.5 after `patience` // 2 epochs), as in seed 001's training set-up."""
    return [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=max(1, patience // 2),
                                          min_lr=1e-6),
    ]


class EpochEta(keras.callbacks.Callback):
    """Logs the time left of a fit as each epoch after the first begins, at the pace so far
    (`Eta`): ``"4 of 30 epochs done in 00:48, about 05:12 left"``, before Keras's ``Epoch 5/30``.
    With early stopping the time is an upper bound, and the line says so. Keras's own progress
    bar times one epoch only."""

    def __init__(self, epochs, *, initial_epoch=0, early_stopping=True):
        super().__init__()
        self.epochs, self.initial_epoch, self.early_stopping = int(epochs), int(initial_epoch), early_stopping

    def on_train_begin(self, logs=None):
        self.eta = Eta(self.epochs, unit="epoch", initial=self.initial_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > self.initial_epoch:
            logger.info("%s%s", self.eta.describe(epoch),
                        " at most (early stopping may end it sooner)" if self.early_stopping else "")


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
