"""Judging and using a retrieval run: Xia et al.'s annotation / retrieval protocol with its
confusion matrices and trials, recall@k in both directions, and queries by image or wav.

The protocol's arithmetic (`protocol_accuracy`, `recall_at_k`, ...) lives in
`mmdigits_keras.training.retrieval_protocol`, because the engine scores every retrieval run with it; this
module turns it into files and figures. Xia et al. had 11 spoken classes ("oh" and "zero");
here 10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

from mmdigits_keras.data.constants import NUM_CLASSES
from mmdigits_keras.data.dataset import MultimodalDataset
from mmdigits_keras.data.features import mfcc_507
from mmdigits_keras.data.layouts import load_dataset
from mmdigits_keras.data.readers import read_label_csv
from mmdigits_keras.data.sources import read_wav
from mmdigits_keras.evaluation.classification import evaluation_rows
from mmdigits_keras.training import load_trained_model
from mmdigits_keras.training.retrieval_protocol import embed, protocol_accuracy, recall_at_k, similarities
from mmdigits_keras.training.rundir import read_run_config
from mmdigits_keras.utils.files import atomic_write, read_json, write_json
from mmdigits_keras.utils.plotting import save_figure, subplots


def _check_retrieval_run(run):
    if read_run_config(run).get("task") != "retrieval":
        raise ValueError(f"{run}: not a retrieval run (train one with `mmdigits retrieval train`)")


def _with_labels(dataset, labels_csv):
    """`dataset` with the labels of a ``row_id,label`` CSV (checked against its row count)."""
    labels, _ = read_label_csv(labels_csv, rows=len(dataset))
    return MultimodalDataset(images=dataset.images, audio=dataset.audio, labels=labels, ids=dataset.ids,
                             source=f"{dataset.source}, labels {labels_csv}")


def _confusion_png(true, predicted, path, *, title, xlabel, ylabel):
    matrix = confusion_matrix(true, predicted, labels=list(range(NUM_CLASSES)))
    fig, ax = subplots(figsize=(5.5, 5))
    ConfusionMatrixDisplay(matrix, display_labels=list(range(NUM_CLASSES))).plot(ax=ax, colorbar=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    save_figure(fig, path)
    return matrix


def retrieval_rows(run, data, split, *, test_labels=None):
    """The labelled rows a retrieval run is judged on: its own validation rows (rebuilt from
    ``config.json``) or the folder's test rows, labelled by ``y_test.csv`` / Khacef labels or
    by `test_labels`, a ``row_id,label`` CSV (e.g. kaggle_sample's truth).

    Raises:
        ValueError: a run that is not a retrieval run, or test rows without labels.
    """
    _check_retrieval_run(run)
    if split == "test" and test_labels is not None:
        return _with_labels(load_dataset(data, "test"), test_labels)
    return evaluation_rows(run, data, split)


def evaluate_retrieval(run, data, *, split="validation", test_labels=None, trials_per_class=100, seed=0):
    """Evaluates a retrieval run and writes ``RUN/eval/retrieval_<split>/``.

    Files: ``metrics.json`` (annotation / retrieval accuracy of Xia et al.'s protocol, recall@1/5/10
    in both directions, rows), ``annotation_confusion.png``, ``retrieval_confusion.png`` and
    ``trials.csv`` (direction, true class, answered class per trial).

    Args:
        run: A run directory of `train_retrieval`.
        data: The data folder it was trained on.
        split: ``"validation"`` (the run's own validation rows: speakers heard in training) or
            ``"test"`` (the folder's test rows, labelled; kaggle_sample's are an unseen speaker).
        test_labels: Optional ``row_id,label`` CSV for test rows without labels in the folder.
        trials_per_class: Trials per class in each direction (Xia et al.: 100).
        seed: Seed of the protocol's draws.

    Returns:
        dict with ``metrics`` and ``dir``.

    Raises:
        ValueError: not a retrieval run, missing labels, a class with no rows, bad files.
    """
    dataset = retrieval_rows(run, data, split, test_labels=test_labels)
    scores = similarities(load_trained_model(run), dataset)
    result = protocol_accuracy(scores, dataset.labels, trials_per_class=trials_per_class, seed=seed)
    metrics = {"split": split, "rows": len(dataset), "trials_per_class": int(trials_per_class),
               "annotation_accuracy": result["annotation_accuracy"], "retrieval_accuracy": result["retrieval_accuracy"]}
    for direction, matrix in (("annotation", scores), ("retrieval", scores.T)):
        for key, value in recall_at_k(matrix, dataset.labels, dataset.labels).items():
            metrics[f"{direction}_{key}"] = value
    metrics["data"] = dataset.source
    out = Path(run) / "eval" / f"retrieval_{split}"
    write_json(out / "metrics.json", metrics)
    trials = []
    for direction, query_kind, chosen in (("annotation", "image", "utterance"), ("retrieval", "utterance", "image")):
        true, predicted = result[direction]
        trials.append(pd.DataFrame({"direction": direction, "true": true, "predicted": predicted}))
        _confusion_png(true, predicted, out / f"{direction}_confusion.png", xlabel=f"class of the chosen {chosen}",
                       ylabel=f"class of the query {query_kind}",
                       title=f"image {direction} ({split}): accuracy {result[f'{direction}_accuracy']:.3f}")
    atomic_write(out / "trials.csv", lambda tmp: pd.concat(trials).to_csv(tmp, index=False))
    return {"metrics": metrics, "dir": out}


def wav_features(path, *, mean=None, std=None):
    """A wav file -> the (1, 507) MFCC row of the data layouts (`mfcc_507`), standardized per
    column with `mean` / `std` (507,) when given (the data folder's training statistics)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        wave, rate = read_wav(path)
        row = mfcc_507(wave, rate).reshape(1, -1)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if mean is not None:
        row = (row - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return row.astype(np.float32)


def feature_statistics(source):
    """The per-column (mean, std) of a data folder's speech features, from the ``manifest.json``
    that `mmdigits data build` writes (`source`: that folder or the manifest itself).

    Raises:
        ValueError: no manifest, or one without MFCC statistics.
    """
    path = Path(source)
    path = path / "manifest.json" if path.is_dir() else path
    if not path.is_file():
        raise ValueError(f"{path}: not found; a wav query needs the statistics the data's speech features "
                         f"were standardized with (manifest.json of `mmdigits data build`, or `audio_stats`)")
    features = read_json(path).get("features", {})
    if features.get("kind") != "mfcc" or "mean" not in features or "std" not in features:
        raise ValueError(f"{path}: no MFCC standardization statistics (features.mean / features.std)")
    return np.asarray(features["mean"], np.float32), np.asarray(features["std"], np.float32)


def query(run, data, *, out=None, image_index=None, wav=None, k=5, split="test", audio_stats=None, labels=None):
    """Finds the k best matches of one query in the other modality and draws them.

    An image query (row `image_index` of the split) ranks the split's utterances; a wav query
    (its `mfcc_507` features, standardized like the data) ranks the split's images.

    Args:
        run: A retrieval run directory.
        data: A data folder; its `split` rows are the candidates.
        out: PNG to write (default ``RUN/queries/<split>_image_<index>.png``, or
            ``<split>_<wav name>.png``): the query, then its k matches with row, cosine similarity and (when
            the split is labelled) digit.
        image_index: Row (0-based) of the query image in the split.
        wav: Path of a wav file to query with instead.
        k: Number of matches (1..rows).
        split: ``"test"`` or ``"train"`` rows of the folder.
        audio_stats: For a wav query, a built data folder or manifest.json whose training
            statistics standardize the features; default `data`'s own manifest.
        labels: Optional ``row_id,label`` CSV naming the digits of the split's rows when the
            folder has none (captions only; the ranking never uses labels).

    Returns:
        dict with ``rows`` (int64 (k,) matched row indices), ``scores`` (float32 (k,)),
        ``labels`` (matched digits or None) and ``path``.

    Raises:
        ValueError: neither or both queries, an index out of range, a bad k, a bad wav, no
            statistics for a wav query, or a run that is not a retrieval run.
    """
    if (image_index is None) == (wav is None):
        raise ValueError("give exactly one query: --image-index or --wav")
    _check_retrieval_run(run)
    dataset = load_dataset(data, split)
    if labels is not None:
        dataset = _with_labels(dataset, labels)
    if not (isinstance(k, (int, np.integer)) and 1 <= k <= len(dataset)):
        raise ValueError(f"`k` must be an integer in 1..{len(dataset)}. Received: k={k!r}")
    towers = load_trained_model(run)
    images, audio = embed(towers, dataset)
    if image_index is not None:
        if not (isinstance(image_index, (int, np.integer)) and 0 <= image_index < len(dataset)):
            raise ValueError(f"`image_index` must be in 0..{len(dataset) - 1}. Received: {image_index!r}")
        scores, title = images[image_index] @ audio.T, f"query: image row {image_index}"
        if dataset.labels is not None:
            title += f" (digit {dataset.labels[image_index]})"
        query_panel = ("image", dataset.images[image_index, :, :, 0])
    else:
        stats = feature_statistics(audio_stats if audio_stats is not None else data)
        row = wav_features(wav, mean=stats[0], std=stats[1])
        if row.shape[1] != dataset.audio.shape[1]:
            raise ValueError(f"{data}: speech features have {dataset.audio.shape[1]} values, a wav gives 507 MFCC")
        placeholder = np.zeros((1, *dataset.images.shape[1:]), np.float32)
        query_audio = towers.predict({"image": placeholder, "audio": row}, verbose=0)["audio_embedding"][0]
        scores, title = images @ query_audio, f"query: {Path(wav).name}"
        query_panel = ("audio", row[0])
    top = np.argsort(-scores, kind="stable")[:k]
    fig, axes = subplots(1, k + 1, figsize=(2.1 * (k + 1), 2.6))
    match_kind = "audio" if query_panel[0] == "image" else "image"
    for ax, (kind, values, caption) in zip(axes, [(*query_panel, title)] + [
            (match_kind, dataset.audio[r] if match_kind == "audio" else dataset.images[r, :, :, 0],
             f"row {r}: cos {scores[r]:.2f}" + ("" if dataset.labels is None else f"\ndigit {dataset.labels[r]}"))
            for r in top]):
        if kind == "image":
            ax.imshow(values, cmap="gray_r")
        else:  # the 39 x 13 MFCC map: time across, coefficients up
            ax.imshow(np.asarray(values).reshape(39, -1).T, aspect="auto", origin="lower", cmap="magma")
        ax.set_title(caption, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_title(title, fontsize=8, color="tab:blue")
    fig.suptitle(f"top {k} {'utterances' if match_kind == 'audio' else 'images'} ({split} rows)", fontsize=9, y=1.1)
    if out is None:
        name = f"image_{image_index}" if wav is None else Path(wav).stem
        out = Path(run) / "queries" / f"{split}_{name}.png"
    path = save_figure(fig, out)
    return {"rows": top.astype(np.int64), "scores": scores[top].astype(np.float32),
            "labels": None if dataset.labels is None else dataset.labels[top], "path": path}
