"""Evaluation and analysis of trained runs: the papers' pictures for your own models.

Tseng judges models by accuracy and macro-F1 and by which samples each model gets wrong
(its Venn diagram of error indices and a gallery of ambiguous digits). Metrics are
scikit-learn's; plots are matplotlib's (Venn diagrams: matplotlib-venn, the ``[report]`` extra).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix, precision_recall_fscore_support

from mmdigits_keras.data.constants import NUM_CLASSES
from mmdigits_keras.data.layouts import load_dataset
from mmdigits_keras.data.splits import train_val_split
from mmdigits_keras.training import classification_metrics, load_ensemble, predict_labels
from mmdigits_keras.training.crossval import OOF_FILE
from mmdigits_keras.training.rundir import read_run_config, test_inputs_used
from mmdigits_keras.utils.checks import check_choice
from mmdigits_keras.utils.extras import MissingExtraError, optional_module
from mmdigits_keras.utils.files import atomic_write, write_json
from mmdigits_keras.utils.plotting import save_figure, subplots

SPLITS = ("validation", "test")
venn = optional_module("matplotlib_venn")


def evaluation_rows(run, data, split):
    """The labelled rows a run is judged on.

    ``validation``: the run's own validation rows (its split is rebuilt from ``config.json``:
    `val_fraction`, `seed`, `split` and `fold` on the folder's training files; a
    cross-validation run's are all its training rows, each scored out of fold). ``test``: the
    folder's test files, which need labels (``y_test.csv`` as `mmdigits data build` writes, or
    Khacef's).

    A run that fine-tuned on every row (``protocol="finetune"``, the default; or an older run
    refit on every row) trained its saved model on its validation rows too: they are still
    returned, with a warning that their scores are not held out.

    Raises:
        ValueError: an unknown split, or a test split without labels.
    """
    check_choice("split", split, SPLITS)
    if split == "test":
        dataset = load_dataset(data, "test")
        if dataset.labels is None:
            raise ValueError(f"{data}: the test files have no labels (no y_test.csv); use --split validation")
        return dataset
    config = read_run_config(run)  # a ValueError names a folder that is not a run
    training = config["training"]
    # Older runs recorded `refit` (a bool) instead of the protocol.
    protocol = training.get("protocol", "refit" if training.get("refit") else "single")
    if protocol != "single":
        done = "fine-tuned" if protocol == "finetune" else "refit"
        warnings.warn(f"{run} was {done} on every training row: its model has seen these validation rows, so their "
                      "scores are not held out (metrics.json keeps the validated run's); judge it on the test split",
                      stacklevel=3)
    if config.get("cross_validation"):
        return load_dataset(data, "train")
    # Runs before 0.3 recorded no split: theirs was by row.
    fold = training.get("fold")
    return train_val_split(load_dataset(data, "train"), val_fraction=training["val_fraction"], seed=training["seed"],
                           split=training.get("split", "row"), fold=None if fold is None else tuple(fold))[1]


def _out_of_fold(run, dataset):
    """A cross-validation run's out-of-fold predictions of `dataset`'s rows (its training rows)."""
    frame = pd.read_csv(Path(run) / OOF_FILE)
    if len(frame) != len(dataset) or not np.array_equal(frame["label"].to_numpy(), dataset.labels):
        raise ValueError(f"{run}: its out-of-fold predictions are of other rows than {dataset.source}; "
                         f"evaluate it on the data it was trained on")
    return frame["predicted"].to_numpy(np.int64)


def classification_summary(labels, predicted):
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        labels: int (N,) true classes 0..9.
        predicted: int (N,) predicted classes.

    Returns:
        (metrics dict, per-class DataFrame indexed by class, confusion matrix (10, 10) int array
        with true classes as rows).
    """
    classes = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                                     zero_division=0)
    per_class = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                             index=pd.Index(classes, name="class"))
    return classification_metrics(labels, predicted), per_class, confusion_matrix(labels, predicted, labels=classes)


def evaluate(run, data, *, split="validation", weights=None, out=None):
    """Evaluates one run (or an ensemble of runs) and writes ``RUN/eval/<split>/``.

    Files: ``metrics.json`` (accuracy, macro-F1, rows; ``test_inputs_used``: the runs that
    learned from their folder's unlabeled test rows, ``semi_supervised``), ``per_class.csv``,
    ``confusion.csv``, ``confusion.png``, ``predictions.csv`` (row id, label, prediction, correct).
    Scoring such a run on the test split warns: it trained on those rows' inputs (never their labels).

    Args:
        run: A run directory (a cross-validation run is scored on the validation split by its
            out-of-fold predictions), or a list of them: their ensemble (`load_ensemble`,
            the mean of their probabilities), scored on the first run's validation rows.
        data: The data folder the runs were trained on.
        split: ``"validation"`` or ``"test"``.
        weights: With several runs, one weight per run (None: the plain mean).
        out: Where ``eval/<split>/`` goes (default: the run, or the first run's folder's
            ``ensemble/``).

    Returns:
        dict with ``metrics``, ``predicted`` (N,), ``labels`` (N,), ``dataset`` and ``dir``.

    Raises:
        ValueError: bad runs, data or weights (see `load_ensemble`), or a test split without labels.
    """
    runs = [run] if isinstance(run, (str, Path)) else list(run)
    if not runs:
        raise ValueError("`run` names no run")
    dataset = evaluation_rows(runs[0], data, split)
    transductive = [str(r) for r in runs if test_inputs_used(r)]
    if transductive and split == "test":
        warnings.warn(f"{', '.join(transductive)} learned from these test rows' inputs (semi_supervised; never their "
                      "labels): its test scores are of rows it trained on", stacklevel=2)
    if len(runs) == 1 and split == "validation" and read_run_config(runs[0]).get("cross_validation"):
        predicted = _out_of_fold(runs[0], dataset)
    else:
        predicted = predict_labels(load_ensemble(runs, weights=weights), dataset)
    metrics, per_class, confusion = classification_summary(dataset.labels, predicted)
    if out is None:
        out = Path(runs[0]) if len(runs) == 1 else Path(runs[0]).parent / "ensemble"
    name = Path(runs[0]).name if len(runs) == 1 else f"ensemble of {len(runs)}"
    out = Path(out) / "eval" / split
    write_json(out / "metrics.json", {**metrics, "split": split, "data": dataset.source,
                                      "test_inputs_used": transductive})
    atomic_write(out / "per_class.csv", lambda tmp: per_class.to_csv(tmp))
    atomic_write(out / "confusion.csv", lambda tmp: pd.DataFrame(confusion).rename_axis("true").to_csv(tmp))
    atomic_write(out / "predictions.csv", lambda tmp: pd.DataFrame(
        {"row_id": dataset.ids, "label": dataset.labels, "predicted": predicted,
         "correct": predicted == dataset.labels}).to_csv(tmp, index=False))
    fig, ax = subplots(figsize=(5.5, 5))
    ConfusionMatrixDisplay(confusion, display_labels=list(range(NUM_CLASSES))).plot(ax=ax, colorbar=False)
    ax.set_title(f"{name}: {split} accuracy {metrics['accuracy']:.4f}")
    save_figure(fig, out / "confusion.png")
    return {"metrics": metrics, "predicted": predicted, "labels": dataset.labels, "dataset": dataset, "dir": out}


def error_overlap(wrong):
    """Counts of wrongly predicted rows shared between models (the data of a Venn diagram).

    Args:
        wrong: dict name -> set of row indices the model gets wrong.

    Returns:
        DataFrame with one row per non-empty combination of models: ``models`` (joined by
        " & "), ``rows`` (wrong for exactly those models, right for the others).
    """
    names = list(wrong)
    every = set().union(*wrong.values()) if wrong else set()
    counts = {}
    for row in every:
        key = tuple(name for name in names if row in wrong[name])
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (len(kv[0]), kv[0]))
    records = [{"models": " & ".join(key), "rows": n} for key, n in ordered]
    return pd.DataFrame(records, columns=["models", "rows"])


def _venn(wrong, path):
    sets, names = list(wrong.values()), list(wrong)
    draw = venn.venn2 if len(sets) == 2 else venn.venn3  # MissingExtraError before a figure opens
    fig, ax = subplots(figsize=(5, 4))
    draw(sets, set_labels=names, ax=ax)
    ax.set_title("rows each model gets wrong")
    return save_figure(fig, path)


def _gallery(dataset, predictions, image_only, fused, path, limit=12):
    """Rows the image-only model gets wrong and the fused one right: digit, MFCC heat map."""
    rows = np.flatnonzero((predictions[image_only] != dataset.labels) & (predictions[fused] == dataset.labels))[:limit]
    count = max(len(rows), 1)
    fig, axes = subplots(2, count, figsize=(1.8 * count, 4), squeeze=False)
    for column, row in enumerate(rows):
        axes[0, column].imshow(dataset.images[row, :, :, 0], cmap="gray")
        width = dataset.audio.shape[1] // 39
        axes[1, column].imshow(dataset.audio[row].reshape(39, width).T, aspect="auto", origin="lower", cmap="magma")
        text = "\n".join(f"{name}: {predictions[name][row]}" for name in predictions)
        axes[0, column].set_title(f"true {dataset.labels[row]}\n{text}", fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    if not len(rows):
        axes[0, 0].text(0.5, 0.5, "no such rows", ha="center")
    fig.suptitle(f"{image_only} wrong, {fused} right ({len(rows)} shown)", fontsize=9, y=1.08)
    return save_figure(fig, path)


def compare(results, out, *, image_only=None, fused=None):
    """Compares evaluated runs: table (Markdown + CSV), error overlap (CSV + Venn), gallery.

    Args:
        results: dict run name -> the dict `evaluate` returned (same rows for every run).
        out: Folder for ``comparison.md``, ``comparison.csv``, ``error_overlap.csv``,
            ``venn.png`` (2-3 runs; skipped with a warning without the ``[report]`` extra)
            and ``gallery.png`` (when `image_only` and `fused` given).
        image_only: Run name of the image-only model for the gallery.
        fused: Run name of the fused model for the gallery.

    Returns:
        dict of written paths by kind.
    """
    out = Path(out)
    table = pd.DataFrame([{"run": name, **r["metrics"]} for name, r in results.items()])
    written = {"table_csv": atomic_write(out / "comparison.csv", lambda tmp: table.to_csv(tmp, index=False))}
    lines = ["| run | accuracy | macro-F1 | rows |", "|---|---|---|---|"]
    lines += [f"| {r.run} | {r.accuracy:.4f} | {r.macro_f1:.4f} | {r.rows} |" for r in table.itertuples()]
    written["table_md"] = atomic_write(out / "comparison.md", lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    wrong = {name: set(np.flatnonzero(r["predicted"] != r["labels"]).tolist()) for name, r in results.items()}
    overlap = error_overlap(wrong)
    written["overlap_csv"] = atomic_write(out / "error_overlap.csv", lambda tmp: overlap.to_csv(tmp, index=False))
    if 2 <= len(wrong) <= 3:
        try:
            written["venn"] = _venn(wrong, out / "venn.png")
        except MissingExtraError as missing:  # the tables above hold the same counts
            warnings.warn(f"no venn.png: {missing}", stacklevel=2)
    if image_only in results and fused in results:
        dataset = results[fused]["dataset"]
        predictions = {name: r["predicted"] for name, r in results.items()}
        written["gallery"] = _gallery(dataset, predictions, image_only, fused, out / "gallery.png")
    return written


