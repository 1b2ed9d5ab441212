"""Training: a registry model on a data folder -> a run directory (DESIGN.md, "Run directory").

A run directory holds ``model.keras`` (audio standardization inside, so it predicts on raw
loader output), ``config.json``, ``history.csv``, ``metrics.json`` and ``curves.png``. It is written in a
temporary sibling folder and renamed into place, so a killed run never leaves a half-written
run directory behind.
"""

from __future__ import annotations

import dataclasses
import platform
import sys
import time
from pathlib import Path

import numpy as np

from mmdigits_keras.data import MultimodalDataset, load_dataset, train_val_split
from mmdigits_keras.io_utils import publish_directory, remove_interrupted, staging_directory, write_json
from mmdigits_keras.features import NUM_FEATURES
from mmdigits_keras.models import build_model
from mmdigits_keras.recipes import compile_with, evaluation_dataset, get_recipe, training_dataset
from mmdigits_keras.registry import BUILDERS, create_model, model_config
from mmdigits_keras.submission import predict_labels

RUN_FILES = ("model.keras", "config.json", "history.csv", "metrics.json", "curves.png")


def fit_audio_statistics(audio):
    """Per-column mean and variance of training audio, for the model's normalization layer.

    Args:
        audio: float array (N, 507) of training rows only.

    Returns:
        (mean, variance): two float32 arrays of shape (507,).
    """
    audio = np.asarray(audio, dtype=np.float64)
    return audio.mean(axis=0).astype(np.float32), audio.var(axis=0).astype(np.float32)


def classification_metrics(labels, predicted):
    """Accuracy and macro-F1 (scikit-learn) of predicted classes.

    Args:
        labels: int (N,) true classes 0..9.
        predicted: int (N,) predicted classes.

    Returns:
        dict with ``accuracy`` and ``macro_f1`` (floats in [0, 1]) and ``n`` (rows).
    """
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro")),
        "n": int(len(labels)),
    }


def check_positive(name, value, kind=int):
    """Raises ValueError unless `value` is a positive number equal to `kind(value)` (int or float)."""
    if not (isinstance(value, (int, float, np.integer, np.floating)) and kind(value) == value and value > 0):
        raise ValueError(f"`{name}` must be a positive {kind.__name__}. Received: {name}={value!r}")


def compile_model(model, *, learning_rate=1e-3):
    """Compiles a model as the ``plain`` recipe does (Adam, sparse categorical cross-entropy,
    accuracy), as tuning trials train. Returns the model."""
    return compile_with(model, get_recipe("plain"), learning_rate=learning_rate)


def fit_callbacks(*, patience=10):
    """EarlyStopping on ``val_loss`` (best weights restored) and ReduceLROnPlateau (factor 0.5
    after `patience` // 2 epochs), as in seed 001's training set-up."""
    import keras

    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, patience // 2),
                                          min_lr=1e-6),
    ]


def check_output_free(out, *, overwrite):
    """Raises ValueError when `out` already holds something and `overwrite` is False."""
    out = Path(out)
    if out.exists() and not overwrite and not (out.is_dir() and not any(out.iterdir())):
        raise ValueError(f"{out}: already exists; pass --overwrite (overwrite=True) to replace it")


def prepare_output(out, *, overwrite):
    """Refuses an occupied `out` (see `check_output_free`) and removes what a killed earlier
    run of `out` left behind, saying so."""
    check_output_free(out, overwrite=overwrite)
    interrupted = remove_interrupted(out)
    if interrupted:
        print(f"found an interrupted run of {out} ({', '.join(interrupted)}); removed it and starting cleanly",
              flush=True)


def run_metadata(data, dataset_source, *, rows, fingerprint, train_rows, validation_rows):
    """The ``data`` and ``versions`` entries of a run's ``config.json``."""
    import keras
    import tensorflow as tf

    return {
        "data": {
            "source": dataset_source,
            "path": None if isinstance(data, MultimodalDataset) else str(Path(data).resolve()),
            "fingerprint": fingerprint,
            "rows": rows, "train_rows": train_rows, "validation_rows": validation_rows,
        },
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__, "python": platform.python_version()},
    }


def write_run(out, model, *, config, metrics, history, title, overwrite):
    """Writes a run directory atomically: ``model.keras``, ``config.json``, ``metrics.json``,
    ``history.csv`` (one row per epoch of the Keras `History`) and ``curves.png``.

    Returns:
        The run directory as a `Path`.
    """
    import pandas as pd

    from mmdigits_keras.evaluation import training_curves

    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    staging = staging_directory(out)
    model.save(staging / "model.keras")
    write_json(staging / "config.json", config)
    write_json(staging / "metrics.json", metrics)
    frame.to_csv(staging / "history.csv", index=False)
    training_curves(frame, staging / "curves.png", title=title)
    return publish_directory(staging, out, overwrite=overwrite)


def train(
    data,
    *,
    out,
    model="model2",
    epochs=30,
    batch_size=None,
    learning_rate=1e-3,
    recipe="default",
    val_fraction=0.2,
    seed=0,
    patience=10,
    overwrite=False,
    model_kwargs=None,
    extra_config=None,
    verbose="auto",
):
    """Trains a registry model and writes a run directory.

    The recipe sets optimizer, loss, batch size and augmentation; on the validation split, EarlyStopping on
    ``val_loss`` (patience `patience`, best weights restored) and ReduceLROnPlateau (factor
    0.5 after `patience` // 2 epochs), as in seed 001's training set-up. The audio
    standardization is fitted on the training rows only and built into the saved model.

    Args:
        data: A data folder (Kaggle or Khacef layout; its ``train`` split is used) or a
            labelled `MultimodalDataset`.
        out: The run directory to write (must not exist unless `overwrite`).
        model: A registry name (`list_models()`), e.g. ``"model2"``.
        epochs: Maximum number of epochs (int > 0).
        batch_size: Samples per gradient step (int > 0); default the recipe's (128 for
            ``default``, 32 for ``plain``).
        learning_rate: The optimizer's learning rate (> 0).
        recipe: ``"default"`` (tf.data pipeline with speech augmentation, image jitter,
            modality dropout, label smoothing, AdamW) or ``"plain"`` (Adam on numpy arrays,
            no augmentation: seed 000's way). See `mmdigits_keras.recipes`.
        val_fraction: Fraction of rows held out, stratified, for validation, in (0, 1).
        seed: Seed of the split, the weight initialization and the shuffling (int).
        patience: EarlyStopping patience in epochs (int > 0).
        overwrite: Replace an existing `out`.
        model_kwargs: Extra builder arguments (e.g. ``{"width": 0.5}``).
        extra_config: Extra top-level entries for ``config.json`` (e.g. the tuning trial).
        verbose: Keras `fit` verbosity (``"auto"``, 0, 1 or 2); 1 shows the progress bar.

    Returns:
        The run directory as a `Path`.

    Raises:
        ValueError: bad data (see `load_kaggle`), an unknown model, a bad argument value, or
            an existing `out` without `overwrite`.
    """
    import keras
    import tensorflow as tf

    model_config(model)  # fail on an unknown name before loading anything
    plan = get_recipe(recipe)
    batch_size = plan.batch_size if batch_size is None else batch_size
    check_positive("epochs", epochs)
    check_positive("batch_size", batch_size)
    plan = dataclasses.replace(plan, batch_size=int(batch_size))
    check_positive("patience", patience)
    check_positive("learning_rate", learning_rate, float)
    prepare_output(out, overwrite=overwrite)

    dataset = data if isinstance(data, MultimodalDataset) else load_dataset(data, "train")
    source, rows, fingerprint = dataset.source, len(dataset), dataset.fingerprint()
    train_part, val_part = train_val_split(dataset, val_fraction=val_fraction, seed=seed)
    del dataset  # the split parts are copies: keep one copy of the data in memory, not two
    missing = sorted(set(range(10)) - set(np.unique(train_part.labels).tolist()))
    if missing:
        print(f"warning: no training rows of class(es) {missing} in {source}; the model cannot "
              f"learn to predict them", file=sys.stderr, flush=True)
    audio_mean, audio_variance = fit_audio_statistics(train_part.audio)

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    kwargs = dict(model_kwargs or {})
    if train_part.audio.shape[1] != NUM_FEATURES:  # log-mel data
        kwargs.setdefault("audio_features", int(train_part.audio.shape[1]))
    if plan.utterance_normalization and BUILDERS[model] is build_model:
        kwargs.setdefault("utterance_normalization", True)
    net = compile_with(create_model(model, audio_mean=audio_mean, audio_variance=audio_variance, **kwargs),
                       plan, learning_rate=learning_rate)
    callbacks = fit_callbacks(patience=patience)
    started = time.perf_counter()
    if plan.name == "plain":  # the baseline as the papers ran it: numpy arrays into fit
        history = net.fit(
            train_part.inputs(), train_part.labels,
            validation_data=(val_part.inputs(), val_part.labels),
            epochs=int(epochs), batch_size=int(batch_size), shuffle=True,
            callbacks=callbacks, verbose=verbose,
        )
    else:
        history = net.fit(
            training_dataset(train_part, plan, seed=seed), validation_data=evaluation_dataset(val_part, plan),
            epochs=int(epochs), shuffle=False, callbacks=callbacks, verbose=verbose,  # shuffled by tf.data
        )
    seconds = time.perf_counter() - started
    validation = classification_metrics(val_part.labels, predict_labels(net, val_part))

    config = {
        "builder": BUILDERS[model].__name__,
        "model": model,
        "model_kwargs": {**model_config(model), **kwargs},
        "training": {
            "epochs": int(epochs), "batch_size": int(batch_size), "learning_rate": float(learning_rate),
            "val_fraction": float(val_fraction), "seed": int(seed), "patience": int(patience),
            "recipe": dataclasses.asdict(plan),
        },
        **run_metadata(data, source, rows=rows, fingerprint=fingerprint, train_rows=len(train_part),
                       validation_rows=len(val_part)),
        **(extra_config or {}),
    }
    metrics = {
        "val_accuracy": validation["accuracy"],
        "val_macro_f1": validation["macro_f1"],
        "validation_rows": validation["n"],
        "epochs": len(history.history["loss"]),
        "seconds": round(seconds, 2),
        "data": source,
    }
    return write_run(out, net, config=config, metrics=metrics, history=history, overwrite=overwrite,
                     title=f"{model} on {Path(source.split(' ')[0]).name}")


def load_trained_model(path):
    """Loads ``model.keras`` from a run directory (or a `.keras` file) in Keras's safe mode.

    Args:
        path: A run directory written by `train`, or a `.keras` file.

    Returns:
        The `keras.Model`, including its audio standardization.

    Raises:
        ValueError: if the path or its ``model.keras`` is missing, or the file is not a
            loadable Keras model (corrupt, or code such as a Lambda layer refused by safe mode).
    """
    import keras

    path = Path(path)
    file = path / "model.keras" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{file}: model file not found (expected a run directory with model.keras)")
    try:
        return keras.models.load_model(file, safe_mode=True)
    except Exception as error:  # keras raises many types for a bad archive; one clear message
        raise ValueError(f"{file}: cannot load the model ({type(error).__name__}: {error})") from None
