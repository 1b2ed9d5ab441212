"""Scores the engine writes into every run's ``metrics.json`` (and evaluation builds on):
classification accuracy / macro-F1 (scikit-learn), and seed 002's retrieval protocol.

Seed 002's protocol (section 4): *image annotation* takes an image, draws one utterance of
every class as candidates and answers with the best-scoring one; *image retrieval* takes an
utterance and picks among one image per class. Each is repeated 100 times per class of the
query, giving an accuracy per direction. Recall@k ranks the whole pool instead: a query is a
hit when one of its k best matches shows the same digit.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from mmdigits_keras.data.constants import NUM_CLASSES

RECALL_KS = (1, 5, 10)


def check_model_inputs(model, dataset):
    """Checks that `dataset`'s arrays fit `model`'s named inputs (``image``, ``audio``).

    Raises:
        ValueError: an input's row shape differs from the data's (e.g. a model trained on
            log-mel features given MFCC rows); the message names the data and both shapes.
    """
    given = dataset.inputs()
    for tensor in getattr(model, "inputs", None) or ():
        name = getattr(tensor, "name", None)
        if name not in given:
            continue
        expected, found = tuple(tensor.shape[1:]), tuple(given[name].shape[1:])
        if len(expected) != len(found) or any(e is not None and e != f for e, f in zip(expected, found)):
            raise ValueError(f"{dataset.source or 'the data'}: the model {model.name!r} takes {name} rows of shape "
                             f"{expected}, the data has {found}; was the model trained on other data or features?")


def predict_labels(model, dataset, *, batch_size=512):
    """Predicted classes of a classifier for every row of a `MultimodalDataset`.

    Returns:
        int64 array (N,) of classes 0..9, in the dataset's row order.

    Raises:
        ValueError: the data does not fit the model's inputs (`check_model_inputs`).
    """
    check_model_inputs(model, dataset)
    probabilities = model.predict(dataset.inputs(), batch_size=batch_size, verbose=0)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def classification_metrics(labels, predicted):
    """Accuracy and macro-F1 (scikit-learn; macro over the classes present) of predicted classes.

    Args:
        labels: int (N,) true classes 0..9.
        predicted: int (N,) predicted classes.

    Returns:
        dict with ``accuracy`` and ``macro_f1`` (floats in [0, 1]) and ``rows`` (N).
    """
    return {"accuracy": float(accuracy_score(labels, predicted)),
            "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
            "rows": int(len(labels))}


def embed(towers, dataset, *, batch_size=512):
    """Embeds every row of a `MultimodalDataset` with retrieval towers.

    Returns:
        (image_embeddings, audio_embeddings): two float32 arrays (N, d) with unit-norm rows.
    """
    out = towers.predict(dataset.inputs(), batch_size=batch_size, verbose=0)
    return np.asarray(out["image_embedding"], np.float32), np.asarray(out["audio_embedding"], np.float32)


def similarities(towers, dataset):
    """Cosine similarity of every image to every utterance of a `MultimodalDataset`.

    Returns:
        float32 (N, N): row k = image k, column l = utterance l, values in [-1, 1].
    """
    images, audio = embed(towers, dataset)
    return images @ audio.T


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
