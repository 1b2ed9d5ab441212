"""Judging and using a retrieval run: seed 002's annotation / retrieval protocol, recall@k, queries.

Seed 002's protocol (section 4): *image annotation* takes a test image, draws one test
utterance of every class as candidates and answers with the best-scoring one; *image
retrieval* takes an utterance and picks among one image per class. Each is repeated 100 times
per class of the query (seed 002 had 11 spoken classes, "oh" and "zero"; here 10), giving an
accuracy and a confusion matrix per direction. Recall@k ranks the whole test set instead: a
query is a hit when one of its k best matches shows the same digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmdigits_keras.data import NUM_CLASSES
from mmdigits_keras.io_utils import atomic_write, read_json, write_json

RECALL_KS = (1, 5, 10)


def protocol_trials(query_labels, candidate_labels, *, trials_per_class=100, num_classes=NUM_CLASSES, seed=0):
    """Draws seed 002's trials: per class, `trials_per_class` queries of that class, each with
    one randomly drawn candidate of every class.

    Args:
        query_labels: int (Q,) classes of the query pool (e.g. test images for annotation).
        candidate_labels: int (N,) classes of the candidate pool (e.g. test utterances).
        trials_per_class: Trials per query class (seed 002: 100).
        num_classes: Number of classes (10).
        seed: Seed of the draws.

    Returns:
        (queries, candidates): int64 (num_classes * trials_per_class,) row indices into the
        query pool, class-major (trials of class 0 first); int64 (same, num_classes) row indices
        into the candidate pool, column j holding a row of class j.

    Raises:
        ValueError: if a class has no query or no candidate row, or trials_per_class < 1.
    """
    query_labels, candidate_labels = np.asarray(query_labels), np.asarray(candidate_labels)
    if not (isinstance(trials_per_class, (int, np.integer)) and trials_per_class > 0):
        raise ValueError(f"`trials_per_class` must be a positive integer. Received: {trials_per_class!r}")
    for what, labels in (("query", query_labels), ("candidate", candidate_labels)):
        missing = sorted(set(range(num_classes)) - set(np.unique(labels).tolist()))
        if missing:
            raise ValueError(f"no {what} rows of class(es) {missing}: the protocol needs every class")
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(candidate_labels == c) for c in range(num_classes)]
    queries, candidates = [], []
    for c in range(num_classes):
        queries.append(rng.choice(np.flatnonzero(query_labels == c), size=trials_per_class))
        candidates.append(np.stack([rng.choice(rows, size=trials_per_class) for rows in by_class], axis=1))
    return np.concatenate(queries).astype(np.int64), np.concatenate(candidates).astype(np.int64)


def run_protocol(scores, query_labels, candidate_labels, *, trials_per_class=100, seed=0):
    """Plays seed 002's protocol on a similarity matrix.

    Args:
        scores: float (Q, N) similarity of every query row to every candidate row.
        query_labels: int (Q,) classes of the queries; candidate_labels: int (N,).
        trials_per_class: Trials per query class.
        seed: Seed of the draws.

    Returns:
        (true, predicted): int64 (10 * trials_per_class,) the query's class and the class of
        the best-scoring candidate in each trial.
    """
    queries, candidates = protocol_trials(query_labels, candidate_labels, trials_per_class=trials_per_class, seed=seed)
    chosen = np.argmax(np.asarray(scores)[queries[:, None], candidates], axis=1)
    return np.asarray(query_labels)[queries].astype(np.int64), np.asarray(candidate_labels)[candidates[
        np.arange(len(queries)), chosen]].astype(np.int64)


def recall_at_k(scores, query_labels, candidate_labels, *, ks=RECALL_KS):
    """Class recall@k over a whole pool: the share of queries with a same-class row among their
    k best-scoring candidates.

    Args:
        scores: float (Q, N) similarities; query_labels: int (Q,); candidate_labels: int (N,).
        ks: The k values (each 1..N).

    Returns:
        dict ``{"recall@k": float in [0, 1]}``.
    """
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=1, kind="stable")
    same = np.asarray(candidate_labels)[order] == np.asarray(query_labels)[:, None]
    return {f"recall@{k}": float(np.mean(same[:, :k].any(axis=1))) for k in ks}


def protocol_accuracy(scores, labels, *, trials_per_class=100, seed=0):
    """Annotation and retrieval accuracy of seed 002's protocol on paired, labelled rows.

    Args:
        scores: float (N, N) cosine similarity of image row k and utterance row l
            (`similarities`).
        labels: int (N,) digit of each row (image and utterance of a row share it).
        trials_per_class: Trials per class in each direction (seed 002: 100).
        seed: Seed of the draws.

    Returns:
        dict with ``annotation_accuracy``, ``retrieval_accuracy`` (floats) and the trials'
        ``annotation`` / ``retrieval`` (true, predicted) pairs.
    """
    result = {}
    for direction, matrix in (("annotation", scores), ("retrieval", scores.T)):
        true, predicted = run_protocol(matrix, labels, labels, trials_per_class=trials_per_class, seed=seed)
        result[direction] = (true, predicted)
        result[f"{direction}_accuracy"] = float(np.mean(true == predicted))
    return result


def similarities(towers, dataset):
    """Cosine similarity of every image to every utterance of a `MultimodalDataset`.

    Returns:
        float32 (N, N): row k = image k, column l = utterance l, values in [-1, 1].
    """
    from mmdigits_keras.retrieval import embed

    images, audio = embed(towers, dataset)
    return images @ audio.T


def _check_retrieval_run(run):
    if read_json(Path(run) / "config.json").get("task") != "retrieval":
        raise ValueError(f"{run}: not a retrieval run (train one with `mmdigits retrieval train`)")


def _with_labels(dataset, labels_csv):
    """`dataset` with the labels of a ``row_id,label`` CSV (checked against its row count)."""
    from mmdigits_keras.data import MultimodalDataset, read_label_csv

    labels, _ = read_label_csv(labels_csv, rows=len(dataset))
    return MultimodalDataset(images=dataset.images, audio=dataset.audio, labels=labels, ids=dataset.ids,
                             source=f"{dataset.source}, labels {labels_csv}")


def _confusion_png(true, predicted, path, *, title, xlabel, ylabel):
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    from mmdigits_keras.evaluation import _pyplot, save_figure

    matrix = confusion_matrix(true, predicted, labels=list(range(NUM_CLASSES)))
    fig, ax = _pyplot().subplots(figsize=(5.5, 5))
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
    from mmdigits_keras.data import load_dataset
    from mmdigits_keras.evaluation import evaluation_rows

    _check_retrieval_run(run)
    if split == "test" and test_labels is not None:
        return _with_labels(load_dataset(data, "test"), test_labels)
    return evaluation_rows(run, data, split)


def evaluate_retrieval(run, data, *, split="validation", test_labels=None, trials_per_class=100, seed=0):
    """Evaluates a retrieval run and writes ``RUN/eval/retrieval_<split>/``.

    Files: ``metrics.json`` (annotation / retrieval accuracy of seed 002's protocol, recall@1/5/10
    in both directions, rows), ``annotation_confusion.png``, ``retrieval_confusion.png`` and
    ``trials.csv`` (direction, true class, answered class per trial).

    Args:
        run: A run directory of `train_retrieval`.
        data: The data folder it was trained on.
        split: ``"validation"`` (the run's own validation rows: speakers heard in training) or
            ``"test"`` (the folder's test rows, labelled; kaggle_sample's are an unseen speaker).
        test_labels: Optional ``row_id,label`` CSV for test rows without labels in the folder.
        trials_per_class: Trials per class in each direction (seed 002: 100).
        seed: Seed of the protocol's draws.

    Returns:
        dict with ``metrics`` and ``dir``.

    Raises:
        ValueError: not a retrieval run, missing labels, a class with no rows, bad files.
    """
    from mmdigits_keras.training import load_trained_model

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
    from mmdigits_keras.builder import read_wav
    from mmdigits_keras.features import mfcc_507

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
                         f"were standardized with (manifest.json of `mmdigits data build`, or --audio-stats)")
    features = read_json(path).get("features", {})
    if features.get("kind") != "mfcc" or "mean" not in features or "std" not in features:
        raise ValueError(f"{path}: no MFCC standardization statistics (features.mean / features.std)")
    return np.asarray(features["mean"], np.float32), np.asarray(features["std"], np.float32)


def query(run, data, *, out, image_index=None, wav=None, k=5, split="test", audio_stats=None, labels=None):
    """Finds the k best matches of one query in the other modality and draws them.

    An image query (row `image_index` of the split) ranks the split's utterances; a wav query
    (its `mfcc_507` features, standardized like the data) ranks the split's images.

    Args:
        run: A retrieval run directory.
        data: A data folder; its `split` rows are the candidates.
        out: PNG to write: the query, then its k matches with row, cosine similarity and (when
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
    from mmdigits_keras.data import load_dataset
    from mmdigits_keras.evaluation import _pyplot, save_figure
    from mmdigits_keras.retrieval import embed
    from mmdigits_keras.training import load_trained_model

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
    plt = _pyplot()
    fig, axes = plt.subplots(1, k + 1, figsize=(2.1 * (k + 1), 2.6))
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
    path = save_figure(fig, out)
    return {"rows": top.astype(np.int64), "scores": scores[top].astype(np.float32),
            "labels": None if dataset.labels is None else dataset.labels[top], "path": path}
