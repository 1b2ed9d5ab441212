"""Run directories (docs/training.md, "Run directory"): written atomically, read back safely.

A run directory holds ``model.keras`` (preprocessing inside, so it predicts on raw loader
output), ``config.json``, ``history.csv``, ``metrics.json``, ``curves.png`` and ``logs/``
(TensorBoard). It is written
in a temporary sibling folder and renamed into place, so a killed run never leaves a
half-written run directory behind.
"""

from __future__ import annotations

import logging
import platform
import re
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from mmdigits_keras import __version__
from mmdigits_keras.models.ensemble import ensemble_model
from mmdigits_keras.utils.backends import describe
from mmdigits_keras.utils.files import (
    check_output_free,
    publish_directory,
    read_json,
    remove_interrupted,
    write_json,
)
from mmdigits_keras.utils.plotting import save_figure, subplots

logger = logging.getLogger("mmdigits_keras")

RUN_FILES = ("model.keras", "config.json", "history.csv", "metrics.json", "curves.png", "logs")
# 2: models are backbone + head (mmdigits_keras 0.2). Runs without the key were written by 0.1.0.
RUN_FORMAT = 2


def prepare_output(out, *, overwrite):
    """Refuses an occupied `out` (see `check_output_free`) and removes what a killed earlier
    run of `out` left behind, saying so."""
    check_output_free(out, overwrite=overwrite)
    interrupted = remove_interrupted(out)
    if interrupted:
        logger.warning("found an interrupted run of %s (%s); removed it and starting cleanly", out,
                       ", ".join(interrupted))


def run_metadata(prepared):
    """The ``format``, ``data`` and ``versions`` entries of a run's ``config.json``; ``versions``
    names the Keras backend the run trained on, its version and device (``"backend": "jax",
    "jax": "0.10.2", "device": "gpu:0"``)."""
    backend = describe()
    return {
        "format": RUN_FORMAT,
        "data": {
            "source": prepared.source, "path": prepared.path, "fingerprint": prepared.fingerprint,
            "rows": prepared.rows, "train_rows": prepared.real_rows,
            "synthetic_rows": prepared.synthetic_rows, "validation_rows": len(prepared.validation),
        },
        "versions": {"mmdigits_keras": __version__, "keras": keras.__version__, "backend": backend["backend"],
                     backend["backend"]: backend["version"], "device": backend["device"],
                     "python": platform.python_version()},
    }


def training_curves(history, path, *, title=""):
    """Loss and (when logged) accuracy per epoch, training and validation, from a history
    frame (columns ``epoch``, ``loss``, ``val_loss``, ...) -> PNG at `path`."""
    metrics = [m for m in ("loss", "accuracy") if m in history]  # retrieval runs log no accuracy
    fig, axes = subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for column, style in ((metric, "-"), (f"val_{metric}", "--")):
            if column in history:
                ax.plot(history["epoch"], history[column], style, marker="o", label=column)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)


def write_run(out, model, *, config, metrics, history, title, overwrite, staging):
    """Writes a run directory atomically: ``model.keras``, ``config.json``, ``metrics.json``,
    ``history.csv`` (one row per epoch of the Keras `History`) and ``curves.png`` into
    `staging` (the `staged_directory` training wrote its TensorBoard logs to), then renames it
    to `out`.

    Returns:
        The run directory as a `Path`.
    """
    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    staging = Path(staging)
    model.save(staging / "model.keras")
    write_json(staging / "config.json", config)
    write_json(staging / "metrics.json", metrics)
    frame.to_csv(staging / "history.csv", index=False)
    training_curves(frame, staging / "curves.png", title=title)
    return publish_directory(staging, out, overwrite=overwrite)


def read_run_config(run):
    """The ``config.json`` of a run directory; a ValueError names a folder that is not a run."""
    return read_json(Path(run) / "config.json")


def test_inputs_used(run):
    """Whether run directory `run` learned from its data folder's unlabeled test rows
    (``config.json``'s ``training.semi_supervised``); False for a ``.keras`` file or an older run."""
    config = Path(run) / "config.json"
    return config.is_file() and bool((read_json(config).get("training") or {}).get("semi_supervised"))


def load_trained_model(path):
    """Loads ``model.keras`` from a run directory (or a `.keras` file) in Keras's safe mode.

    Run directories of every version load (0.1.0's flat models too: they predict and submit;
    what needs a backbone says how to retrain). A cross-validation run directory (``train(...,
    folds=K)``) loads as the ensemble of its fold models (`ensemble_model`: the mean of their
    probabilities).

    Args:
        path: A run directory written by `train` / `train_retrieval`, or a `.keras` file.

    Returns:
        The `keras.Model`, including its audio standardization.

    Raises:
        ValueError: if the path or its ``model.keras`` is missing, a cross-validation run is
            unfinished, or the file is not a loadable Keras model (corrupt, or code such as a
            Lambda layer or a custom class, refused by safe mode); the message is one line.
    """
    path = Path(path)
    if path.is_dir() and not (path / "model.keras").exists():
        ensemble = _ensemble_members(path)
        if ensemble is not None:
            members, weights = ensemble
            return ensemble_model([load_trained_model(m) for m in members], weights=weights,
                                  name=f"ensemble_{path.name}")
    file = path / "model.keras" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{file}: model file not found (expected a run directory with model.keras)")
    try:
        return keras.models.load_model(file, safe_mode=True)
    except Exception as error:  # keras raises many types for a bad archive; one clear line
        raise ValueError(f"{file}: cannot load the model ({_load_failure(error)})") from None


def _load_failure(error):
    """One line on why Keras could not load a model file (its messages span many lines)."""
    text = str(error)
    custom = re.search(r"Could not locate class '([^']+)'", text)
    if custom:
        return (f"it holds a custom class {custom.group(1)!r} that neither Keras nor mmdigits_keras defines; "
                f"safe mode runs no code from the file")
    line = " ".join(text.split())
    return f"{type(error).__name__}: {line[:400]}{'...' if len(line) > 400 else ''}"


def _ensemble_members(path):
    """(member run directories, weights) of an ensemble run directory, or None for any other folder.

    Raises:
        ValueError: an unfinished cross-validation run (its plan is there, its config not yet).
    """
    if (path / "config.json").is_file():
        config = read_run_config(path)
        ensemble = config.get("ensemble")
        if not ensemble:
            return None
        return [path / name for name in ensemble["members"]], ensemble.get("weights")
    if (path / "plan.json").is_file():
        plan = read_json(path / "plan.json")
        done = sum((path / name / "config.json").is_file() for name in plan.get("members", []))
        raise ValueError(f"{path}: an unfinished cross-validation run ({done} of {plan.get('folds')} folds "
                         f"trained); run the same train command again to finish it")
    return None


def load_ensemble(runs, *, weights=None):
    """Loads several runs as one model averaging their probabilities (`ensemble_model`).

    Args:
        runs: Run directories (or ``.keras`` files; a cross-validation run counts as one
            member, itself the mean of its folds); one run loads as itself.
        weights: One non-negative weight per run, or None for the plain mean.

    Returns:
        A `keras.Model` with inputs ``image`` and ``audio`` and (N, 10) probabilities.

    Raises:
        ValueError: no runs, a run that does not load (see `load_trained_model`), or bad
            `weights`.
    """
    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not runs:
        raise ValueError("`model` names no run")
    if len(runs) == 1 and weights is None:
        return load_trained_model(runs[0])
    return ensemble_model([load_trained_model(run) for run in runs], weights=weights)

