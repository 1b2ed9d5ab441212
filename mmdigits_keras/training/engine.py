"""The one training engine: data -> split -> statistics -> build -> compile with the recipe ->
fit -> run directory.

`train` (classification), `train_retrieval` and every tuning trial (and the export of a
search's ``best/``) go through it, so one recipe means one way of training:

- `prepare_data` loads a data folder, splits it (stratified, seeded, grouped by recording or
  speaker: `mmdigits_keras.data.splits`) and fits the speech statistics on the training rows only;
- `compile_model` and `fit_model` apply a `Recipe` (optimizer, loss, batch size,
  augmentation, early stopping) to any model;
- `run` does the whole sequence for a `Task` and writes the run directory.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from mmdigits_keras.data.constants import NUM_CLASSES
from mmdigits_keras.data.features import fit_audio_statistics
from mmdigits_keras.data.layouts import MultimodalDataset, load_dataset
from mmdigits_keras.data.mixing import mix_synthetic_speech
from mmdigits_keras.data.splits import folds_for, resolve_split, train_val_split
from mmdigits_keras.models.backbone import modalities_of
from mmdigits_keras.training.distribute import make_strategy, strategy_name
from mmdigits_keras.training.fused import fused_batch_normalization
from mmdigits_keras.training.logs import LOGS_DIR, tensorboard_callback
from mmdigits_keras.training.pipeline import evaluation_dataset, model_inputs, recipe_targets, training_dataset
from mmdigits_keras.training.recipes import make_loss, make_optimizer
from mmdigits_keras.training.rundir import prepare_output, run_metadata, write_run
from mmdigits_keras.utils.checks import check_positive
from mmdigits_keras.utils.files import staged_directory
from mmdigits_keras.utils.locks import claim
from mmdigits_keras.utils.progress import fit_verbosity

logger = logging.getLogger("mmdigits_keras")


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedData:
    """A data set split for training, with the speech statistics of its training rows.

    Attributes:
        train: The training `MultimodalDataset`.
        validation: The validation `MultimodalDataset` (stratified, seeded, sharing no
            recording or speaker with `train`: see `split`).
        source: Where the rows came from (text).
        rows: Rows before the split.
        fingerprint: SHA-256 of the whole labelled data (`MultimodalDataset.fingerprint`).
        path: The data folder (absolute) or None for an in-memory data set.
        audio_mean: float32 (columns,) mean of the training speech features.
        audio_variance: float32 (columns,) variance of the training speech features.
        synthetic_rows: Rows of synthetic speech added to `train` (`mix_synthetic_speech`).
        split: What validation holds out: ``"speaker"``, ``"recording"`` or ``"row"``
            (`mmdigits_keras.data.splits`), or ``"none"`` (no validation rows: a refit).
        fold: None, or ``(k, folds)`` for fold k of a cross-validation run.
    """

    train: MultimodalDataset
    validation: MultimodalDataset
    source: str
    rows: int
    fingerprint: str
    path: str | None
    audio_mean: np.ndarray
    audio_variance: np.ndarray
    synthetic_rows: int = 0
    split: str = "row"
    fold: tuple | None = None

    @property
    def audio_features(self):
        """Speech values per row: 507 (MFCC) or 1560 (log-mel)."""
        return int(self.train.audio.shape[1])


def prepare_data(data, *, val_fraction=0.2, seed=0, synthetic_share=0.0, split=None, fold=None, validation=True):
    """Loads `data` (a folder's ``train`` split, or a labelled `MultimodalDataset`), splits it
    (`train_val_split`: no recording, or speaker, on both sides), fits the speech statistics on
    the training part and, when `synthetic_share` > 0, adds synthetic-speech rows to the
    training part only (`mix_synthetic_speech`; validation stays real).

    Args:
        split: ``"speaker"``, ``"recording"``, ``"row"`` or None (the strictest the data supports).
        fold: None, or ``(k, folds)``: fold k of a `folds`-fold cross-validation is validation.
        validation: False: no split, every row trains and the validation part is empty (the
            refit of `run`; ``split`` is then ``"none"``).

    Returns:
        A `PreparedData`.

    Raises:
        ValueError: bad files (see `load_kaggle`), no labels, a bad `val_fraction`, or too few
            groups for the split asked for.
    """
    dataset = data if isinstance(data, MultimodalDataset) else load_dataset(data, "train")
    source, rows, fingerprint = dataset.source, len(dataset), dataset.fingerprint()
    if validation:
        split = resolve_split(dataset, split, folds=fold[1] if fold else folds_for(val_fraction), holdout=fold is None)
        train_part, val_part = train_val_split(dataset, val_fraction=val_fraction, seed=seed, split=split, fold=fold)
    else:
        split, train_part, val_part = "none", dataset, dataset.subset(np.zeros(0, dtype=np.int64))
    del dataset  # the split parts are copies: keep one copy of the data in memory, not two
    missing = sorted(set(range(NUM_CLASSES)) - set(np.unique(train_part.labels).tolist()))
    if missing:
        logger.warning("no training rows of class(es) %s in %s; the model cannot learn to predict them",
                       missing, source)
    mean, variance = fit_audio_statistics(train_part.audio)
    real_rows = len(train_part)
    train_part = mix_synthetic_speech(train_part, share=synthetic_share, seed=seed)
    path = None if isinstance(data, MultimodalDataset) else str(Path(data).resolve())
    return PreparedData(train=train_part, validation=val_part, source=source, rows=rows, fingerprint=fingerprint,
                        path=path, audio_mean=mean, audio_variance=variance,
                        synthetic_rows=len(train_part) - real_rows, split=split,
                        fold=None if fold is None else (int(fold[0]), int(fold[1])))


def seed_everything(seed):
    """Seeds Python, NumPy and TensorFlow and makes TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def compile_model(model, recipe, *, learning_rate, loss=None, metrics=("accuracy",)):
    """Compiles `model` with the recipe's optimizer and (unless `loss` is given) its loss.

    Classification (no `loss` given) also logs ``crossentropy``: the validation cross-entropy
    without label smoothing, which early stopping watches (with smoothing, ``val_loss`` is
    lowest for an under-confident model: measured, it restored epoch 3 of 13).

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


def fit_callbacks(recipe, *, patience=10, monitor="val_crossentropy"):
    """The recipes' schedule: EarlyStopping on `monitor` (best weights restored) and
    ReduceLROnPlateau (factor 0.5 after `patience` // 2 epochs), as in seed 001's training set-up."""
    return [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=max(1, patience // 2),
                                          min_lr=1e-6),
    ]


def build_training_state(model, part, recipe):
    """Creates a compiled `model`'s optimizer slots and compiled loss and metric variables
    eagerly, from the first two rows of `part`, and resets the metrics.

    Without a distribution strategy Keras creates them inside the first traced train step, and
    TensorFlow traces a function that creates variables twice; built here, the train step is
    traced once (about 1.2 s less per training of a small model on this CPU). The forward pass
    runs in inference mode: no weight, moving statistic or random state changes.

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


def fit_model(model, prepared, recipe, *, epochs, seed=0, patience=10, callbacks=(), initial_epoch=0,
              monitor="val_crossentropy", verbose="auto", schedule=None):
    """Fits a compiled `model` on `prepared` with `recipe`: the ``plain`` recipe feeds numpy
    arrays (seed 000's way), every other recipe a `training_dataset` pipeline; validation on
    the validation rows; `fit_callbacks` (watching `monitor`) plus `callbacks`. Batch
    normalization trains with TensorFlow's fused kernel (`fused_batch_normalization`).
    ``verbose="auto"`` draws Keras's progress bar on a terminal or in a notebook and one line
    per epoch elsewhere (`fit_verbosity`).

    With `schedule` (a refit: `refit_schedule`), the model trains ``len(schedule)`` epochs at
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
        every = [*fit_callbacks(recipe, patience=patience, monitor=monitor), *callbacks]
    train_part, val_part = prepared.train, prepared.validation
    validate = len(val_part) > 0
    if not recipe.augment:  # the baseline as the papers ran it: numpy arrays into fit
        training = dict(x=model_inputs(train_part), y=train_part.labels, batch_size=recipe.batch_size, shuffle=True,
                        validation_data=(model_inputs(val_part), val_part.labels) if validate else None)
    else:
        try:
            multimodal = len(modalities_of(model)) > 1
        except ValueError:  # no backbone (a flat 0.1.0 model): assume both inputs matter
            multimodal = True
        training = dict(x=training_dataset(train_part, recipe, seed=seed, multimodal=multimodal),
                        validation_data=evaluation_dataset(val_part, recipe) if validate else None,
                        shuffle=False)  # tf.data shuffles
    build_training_state(model, train_part, recipe)
    with fused_batch_normalization(model):
        return model.fit(**training, epochs=int(epochs), initial_epoch=initial_epoch, callbacks=every, verbose=verbose)


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


def refit_model(task, prepared, recipe, history, *, learning_rate, seed, replicas, log_dir, callbacks, verbose):
    """Builds `task`'s model afresh on `prepared` (every row: ``prepare_data(validation=False)``)
    and trains it with the validated run's `refit_schedule` from `history`.

    Returns:
        (model to save, ``{"refit": {"epochs", "rows", "seconds"}}`` for ``metrics.json``).
    """
    schedule = refit_schedule(history, monitor=task.monitor, learning_rate=learning_rate)
    logger.info("refit: %d epochs on all %d rows (the validated run's best epoch)", len(schedule), len(prepared.train))
    seed_everything(seed)
    net, saved = task.build(prepared)
    compile_model(net, recipe, learning_rate=learning_rate, loss=task.loss, metrics=task.metrics)
    started = time.perf_counter()
    fit_model(net, prepared, dataclasses.replace(recipe, batch_size=recipe.batch_size * replicas),
              epochs=len(schedule), seed=seed, schedule=schedule,
              callbacks=[tensorboard_callback(log_dir), *callbacks], verbose=verbose)
    return saved, {"refit": {"epochs": len(schedule), "rows": len(prepared.train) - prepared.synthetic_rows,
                             "seconds": round(time.perf_counter() - started, 2)}}


@dataclasses.dataclass(frozen=True)
class Task:
    """What a kind of training builds, optimizes and scores (classification, retrieval).

    Attributes:
        name: ``"classification"`` or ``"retrieval"``.
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
    config: dict
    loss: object = None
    metrics: tuple = ("accuracy",)
    monitor: str = "val_crossentropy"


def run(data, task, *, out, recipe, epochs, learning_rate, val_fraction=0.2, seed=0, patience=10,
        overwrite=False, extra_config=None, callbacks=(), verbose="auto", split=None, fold=None, strategy=None,
        refit=False):
    """Trains `task` on `data` with `recipe` and writes the run directory `out`.

    With `refit`, the validated model picks the epoch count and learning rates
    (`refit_schedule`), then a fresh model (same seed) trains on every row, its speech
    statistics fitted on all of them, and is the one saved: scikit-learn's ``refit`` of a
    search. The validation scores, history and curves stay the selection run's (the refit
    model has no held-out rows to score); ``metrics.json`` adds ``refit`` (epochs, rows,
    seconds). With a speaker split, this is how the saved model hears every training voice.

    Args:
        data: A data folder (its ``train`` split) or a labelled `MultimodalDataset`.
        task: The `Task`.
        out: Run directory (must not exist unless `overwrite`).
        recipe: The `Recipe` (its batch size is per replica: the global batch is
            ``recipe.batch_size * replicas``).
        epochs: Maximum epochs (int > 0); EarlyStopping may end sooner.
        learning_rate: The optimizer's learning rate (> 0).
        val_fraction: Stratified validation fraction in (0, 1).
        seed: Seed of split, initialization, shuffling and augmentation.
        split: What validation holds out (`prepare_data`); None: the strictest the data supports.
        fold: None, or ``(k, folds)``: train fold k of a cross-validation run.
        patience: EarlyStopping patience (epochs, int > 0).
        overwrite: Replace an existing `out`.
        extra_config: More top-level ``config.json`` entries (e.g. the tuning trial).
        callbacks: More Keras callbacks for `fit`.
        verbose: Keras `fit` verbosity.
        strategy: None (the strategy in scope, one device unless the caller opened one),
            ``"default"``, ``"mirrored"`` (every visible GPU) or a `tf.distribute.Strategy`
            (`mmdigits_keras.training.distribute.make_strategy`). The model is built, compiled
            and fitted in its scope; the saved model loads without it.
        refit: After validation, train again on every row and save that model (above); not
            with `fold` (a cross-validation's folds already cover every row).

    Returns:
        The run directory as a `Path`.

    Raises:
        ValueError: bad data, a bad argument value, an existing `out` without `overwrite`, or
            `out` claimed by another live process (`mmdigits_keras.utils.locks.claim`).
    """
    check_positive("epochs", epochs)
    check_positive("batch_size", recipe.batch_size)
    check_positive("patience", patience)
    check_positive("learning_rate", learning_rate, float)
    if refit and fold is not None:
        raise ValueError("`refit` trains one model on every row; a cross-validation fold cannot refit "
                         f"(its folds together already cover every row). Received: refit=True, fold={fold!r}")
    # Claimed before anything is read or trained: a second writer of `out` is refused at once.
    with claim(out, what="run directory"):
        prepare_output(out, overwrite=overwrite)
        prepared = prepare_data(data, val_fraction=val_fraction, seed=seed, synthetic_share=recipe.synthetic_share,
                                split=split, fold=fold)
        # Trained into a staging folder (TensorBoard logs go there as the epochs pass), renamed
        # into place at the end; removed if training fails or is interrupted.
        distribution = make_strategy(strategy)
        replicas = int(distribution.num_replicas_in_sync)
        with staged_directory(out) as staging, distribution.scope():
            seed_everything(seed)
            net, saved = task.build(prepared)
            compile_model(net, recipe, learning_rate=learning_rate, loss=task.loss, metrics=task.metrics)
            started = time.perf_counter()
            # The recipe's batch is per replica; fit splits each global batch across replicas.
            history = fit_model(net, prepared, dataclasses.replace(recipe, batch_size=recipe.batch_size * replicas),
                                epochs=epochs, seed=seed, patience=patience, monitor=task.monitor,
                                callbacks=[tensorboard_callback(staging / LOGS_DIR), *callbacks], verbose=verbose)
            seconds = time.perf_counter() - started
            scores = task.validate(saved, prepared.validation)
            final, refitted = prepared, {}
            if refit:
                final = prepare_data(data, seed=seed, synthetic_share=recipe.synthetic_share, validation=False)
                saved, refitted = refit_model(task, final, recipe, history, learning_rate=learning_rate, seed=seed,
                                              replicas=replicas, log_dir=staging / LOGS_DIR / "refit",
                                              callbacks=callbacks, verbose=verbose)
            model_entries = task.config(final)
            config = {
                "task": task.name,
                **model_entries,
                "training": {"epochs": int(epochs), "batch_size": int(recipe.batch_size),
                             "learning_rate": float(learning_rate), "val_fraction": float(val_fraction),
                             "split": prepared.split, "fold": None if fold is None else list(prepared.fold),
                             "strategy": strategy_name(distribution), "replicas": replicas,
                             "seed": int(seed), "patience": int(patience), "refit": bool(refit),
                             "recipe": dataclasses.asdict(recipe)},
                **run_metadata(prepared),
                **(extra_config or {}),
            }
            metrics = {**scores, "validation_rows": len(prepared.validation), "epochs": len(history.history["loss"]),
                       "seconds": round(seconds, 2), "data": prepared.source, **refitted}
            name = model_entries.get("model") or task.name
            return write_run(out, saved, config=config, metrics=metrics, history=history, overwrite=overwrite,
                             title=f"{name} on {Path(prepared.source.split(' ')[0]).name}", staging=staging)
