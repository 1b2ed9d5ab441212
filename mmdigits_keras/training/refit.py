"""Refit on every row (scikit-learn's ``refit`` of a search): after the validated run has
picked the epoch count, a fresh model trains on every row -- the validation rows too, with the
speaker split the held-out speaker -- for those epochs at the learning rates the validated run
used, and is the model saved. Its validation scores stay the validated run's: it has no
held-out rows left to score."""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from mmdigits_keras.training.fitting import compile_model, fit_model, seed_everything
from mmdigits_keras.training.logs import tensorboard_callback

logger = logging.getLogger("mmdigits_keras")


def refit_schedule(history, *, monitor, learning_rate):
    """The learning rate of every epoch up to the best one, to replay on all rows (a refit).

    Early stopping restored the weights of the epoch with the best (lowest) `monitor`; the
    refit trains that many epochs, each at the rate the selection run used for it (the first
    at `learning_rate`, later ones as ReduceLROnPlateau had logged them).

    Args:
        history: The selection run's Keras `History`.
        monitor: The watched quantity (e.g. ``"val_crossentropy"``).
        learning_rate: The initial learning rate (> 0).

    Returns:
        A list of floats, one learning rate per refit epoch (at least one).

    Raises:
        ValueError: `monitor` was not logged, or never finite.
    """
    values = np.asarray(history.history.get(monitor, []), dtype=np.float64)
    if not np.isfinite(values).any():
        raise ValueError(f"cannot refit: the selection run logged no finite {monitor!r} to pick the epoch count from")
    epochs = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan))) + 1
    # Logged at the end of an epoch: the rate the *next* epoch trains at.
    rates = [float(learning_rate), *(float(r) for r in history.history.get("learning_rate", []))][:epochs]
    return rates + [rates[-1]] * (epochs - len(rates))


def refit_model(spec, prepared, recipe, history, *, settings, replicas, log_dir, callbacks=()):
    """Builds `spec`'s model afresh on `prepared` (every row: ``prepare_data(validation=False)``)
    and trains it with the validated run's `refit_schedule` from `history`.

    Args:
        spec: The engine's `TrainingSpec`.
        prepared: The `PreparedData` of every row (no validation part).
        recipe: The run's `Recipe` (batch per replica).
        history: The validated run's Keras `History`.
        settings: The run's `TrainingSettings` (seed, learning rate, verbosity).
        replicas: Replicas of the distribution strategy in scope (the global batch is
            ``recipe.batch_size * replicas``).
        log_dir: TensorBoard folder of the refit.
        callbacks: More Keras callbacks.

    Returns:
        (model to save, ``{"refit": {"epochs", "rows", "seconds"}}`` for ``metrics.json``).
    """
    schedule = refit_schedule(history, monitor=spec.monitor, learning_rate=settings.learning_rate)
    logger.info("refit: %d epochs on all %d rows (the validated run's best epoch)", len(schedule), len(prepared.train))
    seed_everything(settings.seed)
    net, saved = spec.build(prepared)
    compile_model(net, recipe, learning_rate=settings.learning_rate, loss=spec.loss, metrics=spec.metrics)
    started = time.perf_counter()
    fit_model(net, prepared, dataclasses.replace(recipe, batch_size=recipe.batch_size * replicas),
              epochs=len(schedule), seed=settings.seed, schedule=schedule,
              callbacks=[tensorboard_callback(log_dir), *callbacks], verbose=settings.verbose)
    return saved, {"refit": {"epochs": len(schedule), "rows": len(prepared.train) - prepared.synthetic_rows,
                             "seconds": round(time.perf_counter() - started, 2)}}
