"""Training on every row after validation: once the validated run has picked the epoch count
and the learning rates, the model a run saves may also learn from the rows validation held out
(with the speaker split, a whole voice). Two protocols (`TrainingSettings.protocol`):

- fine-tuning (``"finetune"``, the default): the validated model trains on further on every row
  for a few epochs at its best epoch's learning rate, with a fresh optimizer;
- refit (``"refit"``, scikit-learn's ``refit`` of a search): a fresh model trains on every row
  for the validated epochs at the learning rates the validated run used.

Either way the saved model's validation scores stay the validated run's: it has no held-out
rows left to score. Both train through `fit_model` with a fixed schedule (no validation, early
stopping or plateau)."""

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
    at `learning_rate`, later ones as ReduceLROnPlateau had logged them). Its last entry is the
    best epoch's rate, the one fine-tuning trains at.

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


def finetune_schedule(history, *, monitor, learning_rate, epochs):
    """Fine-tuning's learning rates: the validated run's best epoch's rate (`refit_schedule`'s
    last), for `epochs` epochs but never more than the best epoch's number.

    Returns:
        A list of floats (at least one), all the same rate.
    """
    schedule = refit_schedule(history, monitor=monitor, learning_rate=learning_rate)
    return [schedule[-1]] * min(int(epochs), len(schedule))


def train_on_every_row(spec, net, prepared, recipe, history, *, protocol, settings, replicas, log_dir,
                       callbacks=()):
    """Trains the model a ``"finetune"`` or ``"refit"`` run saves on `prepared` (every row:
    ``prepare_data(validation=False)``).

    Args:
        spec: The engine's `TrainingSpec`.
        net: The validated run's model to fit (``"finetune"`` trains it on; ``"refit"``
            builds a fresh one from `spec` instead).
        prepared: The `PreparedData` of every row (no validation part).
        recipe: The run's `Recipe` (batch per replica).
        history: The validated run's Keras `History`.
        protocol: ``"finetune"`` or ``"refit"``.
        settings: The run's `TrainingSettings` (seed, learning rate, fine-tuning epochs,
            verbosity).
        replicas: Replicas of the distribution strategy in scope (the global batch is
            ``recipe.batch_size * replicas``).
        log_dir: TensorBoard folder of this stage.
        callbacks: More Keras callbacks.

    Returns:
        (model to save or None for `net`'s saved model, ``{protocol: {"epochs", "rows",
        "learning_rate", "seconds"}}`` for ``metrics.json``): ``learning_rate`` is the first
        epoch's.
    """
    rate = dict(monitor=spec.monitor, learning_rate=settings.learning_rate)
    if protocol == "finetune":
        schedule = finetune_schedule(history, epochs=settings.finetune_epochs, **rate)
        logger.info("fine-tuning: %d epochs on all %d rows at the best epoch's learning rate %.3g",
                    len(schedule), len(prepared.train), schedule[0])
        seed_everything(settings.seed)
        saved = None
    else:
        schedule = refit_schedule(history, **rate)
        logger.info("refit: %d epochs on all %d rows (the validated run's best epoch)", len(schedule),
                    len(prepared.train))
        seed_everything(settings.seed)
        net, saved = spec.build(prepared)
    # A fresh optimizer either way: the validated run's moments belong to its own data.
    compile_model(net, recipe, learning_rate=schedule[0], loss=spec.loss, metrics=spec.metrics)
    started = time.perf_counter()
    fit_model(net, prepared, dataclasses.replace(recipe, batch_size=recipe.batch_size * replicas),
              epochs=len(schedule), seed=settings.seed, schedule=schedule,
              callbacks=[tensorboard_callback(log_dir), *callbacks], verbose=settings.verbose)
    return saved, {protocol: {"epochs": len(schedule), "rows": len(prepared.train) - prepared.synthetic_rows,
                              "learning_rate": schedule[0], "seconds": round(time.perf_counter() - started, 2)}}
