"""K-fold cross-validation: K fold models trained by the engine with one recipe, their
out-of-fold predictions and a summary, in one run directory that predicts as the mean of its
fold models' probabilities (`load_trained_model` returns that ensemble).

A CV run directory::

    RUN/fold_1 .. fold_K/   normal run directories (fold k's rows are its validation part)
    RUN/plan.json           what is being trained (checked when a killed run is resumed)
    RUN/oof_predictions.csv row_id, fold, label, predicted, prob_0..prob_9 (every training row once)
    RUN/cv_summary.csv      one row per fold (val_accuracy, val_macro_f1, epochs, seconds)
    RUN/metrics.json        out-of-fold accuracy / macro-F1, per-fold mean and sd
    RUN/config.json         written last: the run is complete

The folds share no recording (or speaker: `mmdigits_keras.data.splits`). A killed run resumes
fold by fold: each fold directory is written atomically by the engine, so a rerun of the same
command keeps the finished folds and trains the rest.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from mmdigits_keras.data.dataset import MultimodalDataset
from mmdigits_keras.data.layouts import load_dataset
from mmdigits_keras.data.splits import fold_rows
from mmdigits_keras.training.metrics import classification_metrics
from mmdigits_keras.training.rundir import RUN_FORMAT, read_run_config
from mmdigits_keras.utils.files import atomic_write, check_output_free, read_json, write_json
from mmdigits_keras.utils.locks import claim
from mmdigits_keras.utils.progress import Eta

PLAN_FILE = "plan.json"
OOF_FILE = "oof_predictions.csv"
SUMMARY_FILE = "cv_summary.csv"
logger = logging.getLogger("mmdigits_keras")


def fold_name(index):
    """The folder of fold `index` (0-based): ``fold_1`` for the first."""
    return f"fold_{index + 1}"


def _check_plan(out, plan, *, overwrite):
    """Starts `out` afresh or finds the same plan there to resume; refuses anything else."""
    path = out / PLAN_FILE
    if path.is_file() and not overwrite:
        previous = read_json(path)
        if previous == plan:
            if (out / "config.json").is_file():  # finished: occupied like any run directory
                check_output_free(out, overwrite=False)
            done = [name for name in plan["members"] if (out / name / "config.json").is_file()]
            logger.info("%s: resuming a cross-validation run (%d of %d folds done)", out, len(done), plan["folds"])
            return
        differences = sorted(k for k in plan if previous.get(k) != plan[k])
        raise ValueError(f"{out}: holds a cross-validation run with a different {', '.join(differences)}; "
                         f"use another --out, or --overwrite to start over")
    check_output_free(out, overwrite=overwrite)
    if overwrite and out.is_dir():
        shutil.rmtree(out)
    elif overwrite and out.exists():
        out.unlink()
    write_json(path, plan)


def cross_validate(data, *, out, folds, train_fold, settings, split=None, seed=0, overwrite=False, predict):
    """Trains `folds` fold models and writes a CV run directory (module docstring).

    Args:
        data: A data folder (its ``train`` split) or a labelled `MultimodalDataset`.
        out: The run directory.
        folds: Number of folds (int >= 2).
        train_fold: Callable(out, fold=(k, folds), split) -> run directory: trains fold k with
            the engine (`train` passes itself, with every other setting fixed).
        settings: JSON-able settings of the run (model, recipe, epochs, ...): recorded in the
            plan, so a resume with other settings is refused.
        split: ``"speaker"``, ``"recording"``, ``"row"`` or None (the strictest supported).
        seed: Seed of the folds (and, through `train_fold`, of the training).
        overwrite: Replace an existing `out` (a finished or unfinished run).
        predict: Callable(run directory, `MultimodalDataset`) -> float (N, classes)
            probabilities (loading a fold model is the training layer's `load_trained_model`).

    Returns:
        The run directory as a `Path`.

    Raises:
        ValueError: bad data, too few groups for `folds`, an existing `out` without
            `overwrite`, or `out` holding another plan.
    """
    out = Path(out)
    dataset = data if isinstance(data, MultimodalDataset) else load_dataset(data, "train")
    split, parts = fold_rows(dataset, folds=folds, split=split, seed=seed)
    members = [fold_name(k) for k in range(folds)]
    # Through JSON, as it is read back on a resume (tuples become lists).
    plan = json.loads(json.dumps({"folds": int(folds), "split": split, "seed": int(seed), "members": members,
                                  "data_fingerprint": dataset.fingerprint(), **settings}))
    with claim(out, what="run directory"):
        _check_plan(out, plan, overwrite=overwrite)
        finished = [(out / name / "config.json").is_file() for name in members]
        eta = Eta(folds, unit="fold", initial=sum(finished))
        for index, name in enumerate(members):
            if finished[index]:
                continue
            logger.info("fold %d of %d -> %s", index + 1, folds, out / name)
            train_fold(out / name, fold=(index, int(folds)), split=split)
            finished[index] = True
            logger.info("%s", eta.describe(sum(finished)))
        probabilities = None  # (rows, classes) once the first fold says how many classes
        oof_fold = np.full(len(dataset), -1, dtype=np.int64)
        summary = []
        for index, (name, (_, val_rows)) in enumerate(zip(members, parts)):
            fold_probabilities = np.asarray(predict(out / name, dataset.subset(val_rows)), dtype=np.float64)
            if probabilities is None:
                probabilities = np.zeros((len(dataset), fold_probabilities.shape[1]))
            probabilities[val_rows] = fold_probabilities
            oof_fold[val_rows] = index + 1
            scores = read_json(out / name / "metrics.json")
            summary.append({"fold": index + 1, "val_accuracy": scores["val_accuracy"],
                            "val_macro_f1": scores["val_macro_f1"], "validation_rows": scores["validation_rows"],
                            "epochs": scores["epochs"], "seconds": scores["seconds"]})
        predicted = probabilities.argmax(axis=1)
        frame = pd.DataFrame({"row_id": dataset.ids, "fold": oof_fold, "label": dataset.labels, "predicted": predicted,
                              **{f"prob_{c}": probabilities[:, c] for c in range(probabilities.shape[1])}})
        atomic_write(out / OOF_FILE, lambda tmp: frame.to_csv(tmp, index=False))
        table = pd.DataFrame(summary)
        atomic_write(out / SUMMARY_FILE, lambda tmp: table.to_csv(tmp, index=False))
        oof = classification_metrics(dataset.labels, predicted)
        metrics = {
            "val_accuracy": oof["accuracy"], "val_macro_f1": oof["macro_f1"], "validation_rows": oof["rows"],
            "validation": "out-of-fold: each row scored by the fold model that did not train on it",
            "folds": summary,
            "fold_val_accuracy_mean": float(table["val_accuracy"].mean()),
            "fold_val_accuracy_sd": float(table["val_accuracy"].std(ddof=1)),
            "fold_val_macro_f1_mean": float(table["val_macro_f1"].mean()),
            "fold_val_macro_f1_sd": float(table["val_macro_f1"].std(ddof=1)),
            "seconds": round(float(table["seconds"].sum()), 2), "data": dataset.source,
        }
        write_json(out / "metrics.json", metrics)
        first = read_run_config(out / members[0])
        config = {key: first[key] for key in ("task", "model", "builder", "model_kwargs", "training", "data",
                                              "versions") if key in first}
        config["training"] = {**config.get("training", {}), "fold": None}
        config.update({"format": RUN_FORMAT, "ensemble": {"members": members, "weights": None},
                       "cross_validation": {"folds": int(folds), "split": split, "seed": int(seed)}})
        write_json(out / "config.json", config)
    return out
