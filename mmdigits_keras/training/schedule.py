"""The schedule every fit runs on: early stopping on the validation cross-entropy with its
patience rule (`scaled_patience`), the learning-rate plateau, and the time-left line each epoch
(`EpochEta`)."""

from __future__ import annotations

import logging

import keras

from mmdigits_keras.utils.defaults import MAX_PATIENCE, MIN_PATIENCE, PATIENCE_SAMPLES
from mmdigits_keras.utils.progress import Eta

logger = logging.getLogger("mmdigits_keras")

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
    ReduceLROnPlateau (factor 0.5 after `patience` // 2 epochs), as in Tseng's training set-up."""
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
