"""Xia et al.'s retrieval protocol, which the engine scores every retrieval run with (and
evaluation builds on).

Xia et al.'s protocol (section 4): *image annotation* takes an image, draws one utterance of
every class as candidates and answers with the best-scoring one; *image retrieval* takes an
utterance and picks among one image per class. Each is repeated 100 times per class of the
query, giving an accuracy per direction. Recall@k ranks the whole pool instead: a query is a
hit when one of its k best matches shows the same digit.
"""

from __future__ import annotations

import numpy as np

from mmdigits_keras.data.constants import NUM_CLASSES

RECALL_KS = (1, 5, 10)


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
    """Draws Xia et al.'s trials: per class, `trials_per_class` queries of that class, each with
    one randomly drawn candidate of every class.

    Args:
        query_labels: int (Q,) classes of the query pool (e.g. test images for annotation).
        candidate_labels: int (N,) classes of the candidate pool (e.g. test utterances).
        trials_per_class: Trials per query class (Xia et al.: 100).
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
    """Plays Xia et al.'s protocol on a similarity matrix.

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
    """Annotation and retrieval accuracy of Xia et al.'s protocol on paired, labelled rows.

    Args:
        scores: float (N, N) cosine similarity of image row k and utterance row l
            (`similarities`).
        labels: int (N,) digit of each row (image and utterance of a row share it).
        trials_per_class: Trials per class in each direction (Xia et al.: 100).
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
