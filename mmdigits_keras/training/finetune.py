"""Fine-tuning on every row after validation (`TrainingSettings.protocol`, ``"finetune"``, the
default): once the validated run has picked its best epoch, the model it restored trains on
further on every row -- the validation rows too; with the speaker split, a whole voice -- for a
few epochs at that epoch's learning rate, with a fresh optimizer and without validation, and
is the model saved. Its validation scores stay the validated run's: it has no held-out rows
left to score."""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from mmdigits_keras.training.fitting import compile_model, fit_model, seed_everything
from mmdigits_keras.training.logs import tensorboard_callbacks

logger = logging.getLogger("mmdigits_keras")


def finetune_schedule(history, *, monitor, learning_rate, epochs):
    """Fine-tuning's learning rate per epoch: the rate the validated run's best epoch trained
    at, for `epochs` epochs but never more than that epoch's number.

    Early stopping restored the weights of the epoch with the best (lowest) `monitor`; that
    epoch trained at `learning_rate` or at the rate ReduceLROnPlateau had logged at the end of
    the epoch before it.

    Args:
        history: The validated run's Keras `History`.
        monitor: The watched quantity (e.g. ``"val_crossentropy"``).
        learning_rate: The validated run's initial learning rate (> 0).
        epochs: Fine-tuning's epochs (int > 0), before the cap.

    Returns:
        A list of floats, one (the same) learning rate per fine-tuning epoch (at least one).

    Raises:
        ValueError: `monitor` was not logged, or never finite.
    """
    values = np.asarray(history.history.get(monitor, []), dtype=np.float64)
    if not np.isfinite(values).any():
        raise ValueError(f"cannot fine-tune: the validated run logged no finite {monitor!r} to find its best epoch")
    best = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
    # Logged at the end of an epoch: the rate the *next* epoch trains at.
    rates = [float(learning_rate), *(float(r) for r in history.history.get("learning_rate", []))]
    return [rates[min(best, len(rates) - 1)]] * min(int(epochs), best + 1)


def finetune_model(spec, net, prepared, recipe, history, *, settings, replicas, log_dir, callbacks=(),
                   augment_on=None):
    """Trains the validated model `net` on further on `prepared` (every row:
    ``prepare_data(validation=False)``) with `finetune_schedule`.

    Args:
        spec: The engine's `TrainingSpec` (loss, metrics, monitor).
        net: The validated run's fitted model (it shares its weights with the model saved).
        prepared: The `PreparedData` of every row (no validation part).
        recipe: The run's `Recipe` (batch per replica).
        history: The validated run's Keras `History`.
        settings: The run's `TrainingSettings` (seed, learning rate, ``finetune_epochs``,
            verbosity).
        replicas: Replicas of the distribution strategy in scope (the global batch is
            ``recipe.batch_size * replicas``).
        log_dir: TensorBoard folder of the fine-tuning.
        callbacks: More Keras callbacks.
        augment_on: Where the augmentation runs (the validated run's placement).

    Returns:
        ``{"finetune": {"epochs", "rows", "learning_rate", "seconds"}}`` for ``metrics.json``.
    """
    schedule = finetune_schedule(history, monitor=spec.monitor, learning_rate=settings.learning_rate,
                                 epochs=settings.finetune_epochs)
    synthetic = f" (+ {prepared.synthetic_rows:,} synthetic speech rows)" if prepared.synthetic_rows else ""
    logger.info("fine-tuning: %d epochs on all %s rows%s at the best epoch's learning rate %.3g", len(schedule),
                f"{prepared.real_rows:,}", synthetic, schedule[0])
    seed_everything(settings.seed)
    # A fresh optimizer: the validated run's moments belong to its own rows.
    compile_model(net, recipe, learning_rate=schedule[0], loss=spec.loss, metrics=spec.metrics)
    started = time.perf_counter()
    fit_model(net, prepared, dataclasses.replace(recipe, batch_size=recipe.batch_size * replicas),
              epochs=len(schedule), seed=settings.seed, schedule=schedule, augment_on=augment_on,
              callbacks=[*tensorboard_callbacks(log_dir), *callbacks], verbose=settings.verbose)
    return {"finetune": {"epochs": len(schedule), "rows": prepared.real_rows,
                         "learning_rate": schedule[0], "seconds": round(time.perf_counter() - started, 2)}}
