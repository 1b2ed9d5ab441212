"""The one training engine: data -> split -> statistics -> build -> compile with the recipe ->
fit -> run directory.

`train` (classification), `train_retrieval`, every tuning trial and a search's ``best/`` go
through it, so one recipe means one way of training. Its one job is that sequence, for any
`TrainingSpec`, written atomically into a run directory; the parts live beside it: the data
split (`mmdigits_keras.training.preparation`), compiling and fitting
(`mmdigits_keras.training.fitting`), fine-tuning on every row
(`mmdigits_keras.training.finetune`),
K-fold cross-validation (`mmdigits_keras.training.crossval`) and the run directory itself
(`mmdigits_keras.training.rundir`).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from pathlib import Path
from typing import Callable

from mmdigits_keras.training.distribute import make_strategy
from mmdigits_keras.training.finetune import finetune_model
from mmdigits_keras.training.fitting import compile_model, fit_model, seed_everything
from mmdigits_keras.training.logs import LOGS_DIR, tensorboard_callbacks
from mmdigits_keras.training.placement import resolve_augment_on
from mmdigits_keras.training.preparation import prepare_data
from mmdigits_keras.training.pseudo_labels import label_test_rows, unlabeled_test_rows, with_pseudo_labels
from mmdigits_keras.training.rundir import prepare_output, run_metadata, write_run
from mmdigits_keras.training.schedule import EARLY_STOPPING_MONITOR, resolve_patience
from mmdigits_keras.training.settings import TrainingSettings, resolve_protocol
from mmdigits_keras.utils.checks import check_positive
from mmdigits_keras.utils.defaults import MAX_PATIENCE
from mmdigits_keras.utils.files import staged_directory
from mmdigits_keras.utils.locks import claim

logger = logging.getLogger("mmdigits_keras")

# metrics.json's "validation", by protocol: which model the val_* scores belong to (a
# cross-validation run says "out-of-fold"), since a fine-tuned saved model has trained on the
# validation rows.
VALIDATION = {
    "single": "the saved model, on held-out rows it did not train on",
    "finetune": "the validated run's model, before fine-tuning: the saved model then trained on further on every "
                "row, the validation rows too",
}


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    """What a kind of training builds, optimizes and scores (classification, retrieval).

    Attributes:
        name: ``"classification"`` or ``"retrieval"`` (``config.json``'s ``task``).
        build: `PreparedData` -> (model to fit, model to save); they may share all layers.
        validate: (saved model, validation `MultimodalDataset`) -> dict of ``val_*`` scores.
        config: `PreparedData` -> the model entries of ``config.json`` (``model``, ``builder``,
            ``model_kwargs``).
        loss: A Keras loss, or None for the recipe's classification loss.
        metrics: Keras metrics logged per epoch.
        monitor: What early stopping and the learning-rate schedule watch.
    """

    name: str
    build: Callable
    validate: Callable
    config: Callable
    loss: object = None
    metrics: tuple = ("accuracy",)
    monitor: str = EARLY_STOPPING_MONITOR


def log_training_rows(prepared, recipe):
    """Logs, once a run, the rows it trains and validates on (synthetic speech rows named as such)
    and, when the recipe changes its training batches, why training accuracy sits below
    validation's: Keras's progress bar scores the batches as trained."""
    synthetic = f" + {prepared.synthetic_rows:,} synthetic speech rows" if prepared.synthetic_rows else ""
    held_out = f", validating on {len(prepared.validation):,} rows held out by {prepared.split}" \
        if prepared.validation is not None and len(prepared.validation) else ""
    logger.info("training on %s rows%s%s", f"{prepared.real_rows:,}", synthetic, held_out)
    changed = [name for name, on in (("augmentation", recipe.augment),
                                     ("modality dropout", recipe.image_dropout or recipe.audio_dropout),
                                     ("label smoothing", recipe.label_smoothing)) if on]
    if changed:
        logger.info("training accuracy is scored on the batches as trained (%s), so it sits below validation "
                    "accuracy", ", ".join(changed))


def training_entries(settings, recipe, prepared, *, protocol, patience, augment_on, distribution):
    """``config.json``'s ``training``: how the run trained (the settings it resolved)."""
    return {"epochs": int(settings.epochs), "batch_size": int(recipe.batch_size),
            "learning_rate": float(settings.learning_rate), "val_fraction": float(settings.val_fraction),
            "split": prepared.split, "fold": None if prepared.fold is None else list(prepared.fold),
            "strategy": distribution.name, "replicas": distribution.replicas, "augment_on": augment_on,
            "seed": int(settings.seed), "patience": patience, "protocol": protocol,
            "recipe": dataclasses.asdict(recipe),
            **({"finetune_epochs": int(settings.finetune_epochs)} if protocol == "finetune" else {})}


def run(data, spec, *, out, recipe, settings=None, overwrite=False, extra_config=None, callbacks=(), fold=None):
    """Trains `spec` on `data` with `recipe` and `settings` and writes the run directory `out`.

    The run directory is trained in a staging folder beside `out` (TensorBoard logs go there as
    the epochs pass) and renamed into place at the end; a failed or interrupted run leaves
    nothing at `out`. The protocol (``settings.protocol``) says what follows the validated run:
    ``"finetune"`` (the default) trains the validated model on further on every row
    (`mmdigits_keras.training.finetune`); ``"single"`` saves the validated model. The
    validation scores, history and curves stay the validated run's; ``metrics.json`` adds
    ``finetune`` (epochs, rows, learning rate, seconds), and its ``validation`` says which
    model the ``val_*`` scores belong to.

    Args:
        data: A data folder (its ``train`` split) or a labelled `MultimodalDataset`.
        spec: The `TrainingSpec`.
        out: Run directory (must not exist unless `overwrite`).
        recipe: The `Recipe` (its batch size is per replica: the global batch is
            ``recipe.batch_size * replicas``).
        settings: The `TrainingSettings` (None: the defaults). The model is built, compiled
            and fitted in the scope of ``settings.strategy``; the saved model loads without it.
        overwrite: Replace an existing `out`.
        extra_config: More top-level ``config.json`` entries (e.g. the tuning trial).
        callbacks: More Keras callbacks for `fit`.
        fold: None, or ``(k, folds)``: train fold k of a cross-validation run (protocol
            ``"single"``: the folds together already cover every row).

    Returns:
        The run directory as a `Path`.

    Raises:
        ValueError: bad data, a bad argument value, a fold asked to fine-tune, an existing `out`
            without `overwrite`, or `out` claimed by another live process
            (`mmdigits_keras.utils.locks.claim`).
    """
    settings = settings or TrainingSettings()
    check_positive("batch_size", recipe.batch_size)
    protocol = resolve_protocol(settings.protocol, folds=fold is not None, semi_supervised=settings.semi_supervised)
    # Claimed before anything is read or trained: a second writer of `out` is refused at once.
    with claim(out, what="run directory"):
        prepare_output(out, overwrite=overwrite)
        prepared = prepare_data(data, val_fraction=settings.val_fraction, seed=settings.seed,
                                synthetic_share=recipe.synthetic_share, split=settings.split, fold=fold)
        unlabeled = unlabeled_test_rows(data, settings.semi_supervised, prepared.fingerprint)  # before training
        distribution = make_strategy(settings.strategy)
        replicas = distribution.replicas
        augment_on = resolve_augment_on(settings.augment_on) if recipe.augment else None
        with staged_directory(out) as staging, distribution.scope():
            seed_everything(settings.seed)
            net, saved = spec.build(prepared)
            compile_model(net, recipe, learning_rate=settings.learning_rate, loss=spec.loss, metrics=spec.metrics)
            patience = resolve_patience(settings.patience, len(prepared.train))
            log_training_rows(prepared, recipe)
            if settings.patience is None and patience != MAX_PATIENCE:
                logger.info("early stopping: a patience of %d epochs, scaled to %s training rows (`patience` sets it)",
                            patience, f"{len(prepared.train):,}")
            started = time.perf_counter()
            # The recipe's batch is per replica; fit splits each global batch across replicas.
            history = fit_model(net, prepared, dataclasses.replace(recipe, batch_size=recipe.batch_size * replicas),
                                epochs=settings.epochs, seed=settings.seed, patience=patience,
                                monitor=spec.monitor, verbose=settings.verbose, augment_on=augment_on,
                                callbacks=[*tensorboard_callbacks(staging / LOGS_DIR), *callbacks])
            seconds = time.perf_counter() - started
            scores = spec.validate(saved, prepared.validation)
            # Labelled by the validated model (or a teacher), calibrated on the validation rows.
            pseudo = label_test_rows(unlabeled, settings.semi_supervised, saved, prepared.validation)
            model_entries = spec.config(prepared)
            config = {
                "task": spec.name,
                **model_entries,
                "training": {**training_entries(settings, recipe, prepared, protocol=protocol, patience=patience,
                                                augment_on=augment_on, distribution=distribution),
                             "semi_supervised": None if pseudo is None else pseudo.record()},
                **run_metadata(prepared),
                **(extra_config or {}),
            }
            metrics = {**scores, "validation_rows": len(prepared.validation),
                       "validation": VALIDATION[protocol], "epochs": len(history.history["loss"]),
                       "seconds": round(seconds, 2), "data": prepared.source}
            title = f"{model_entries.get('model') or spec.name} on {Path(prepared.source.split(' ')[0]).name}"
            if protocol == "finetune":  # `saved` shares every weight with `net`
                # The validated split's arrays (and the first fit's pipeline) go before every row
                # is loaded: two copies of course-size data would double the peak memory.
                del prepared
                gc.collect()
                every_row = prepare_data(data, seed=settings.seed, synthetic_share=recipe.synthetic_share,
                                         validation=False)
                if pseudo is not None:  # the confident test rows join every labelled row
                    every_row, metrics["semi_supervised"] = with_pseudo_labels(every_row, pseudo)
                metrics.update(finetune_model(spec, net, every_row, recipe, history, settings=settings,
                                              replicas=replicas, augment_on=augment_on,
                                              log_dir=staging / LOGS_DIR / "finetune", callbacks=callbacks))
            return write_run(out, saved, config=config, metrics=metrics, history=history, overwrite=overwrite,
                             title=title, staging=staging)
