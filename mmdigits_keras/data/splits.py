"""Validation splits that predict the test: rows that share a recording (or, where known, a
speaker) never straddle training and validation.

Course data repeats each spoken recording over several images (the Written and Spoken Digits
database fills 60,000 rows with 34,801 utterances; ``kaggle_sample`` 4,000 rows with 1,401),
so a split by row puts most validation rows' speech into training too: 88.6% of them on
``kaggle_sample``, where every configuration then scores about 1.0 on validation and the
scores rank nothing. Three kinds of split, scikit-learn's splitters doing the work:

- ``"speaker"``: whole speakers held out (`StratifiedGroupKFold` over speaker ids), where the
  data set says who speaks (the ``groups_{split}.csv`` that `mmdigits data build` and the demo
  write); with fewer speakers than folds, one speaker is held out;
- ``"recording"``: whole recordings held out (`StratifiedGroupKFold` over recording ids, or,
  without a groups file, over an exact fingerprint of the speech vector: equal vectors are
  one recording);
- ``"row"``: rows at random, stratified by label (`StratifiedKFold` / `train_test_split`),
  as before 0.3.

By default (`split=None`) the strictest that the data supports: speakers when known (at least
as many as the folds, or, for one hold-out split, at least `MIN_DEFAULT_SPEAKERS`), else
recordings, else rows.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from mmdigits_keras.data.constants import NUM_CLASSES

SPLITS = ("speaker", "recording", "row")
# A default speaker split keeps at least two voices for training.
MIN_DEFAULT_SPEAKERS = 3
logger = logging.getLogger("mmdigits_keras")


def recording_groups(dataset):
    """Recording id of each row: the data set's own (``dataset.recordings``) where it has them,
    else equal speech vectors share an id.

    Returns:
        int64 (N,) group ids 0..G-1.
    """
    if dataset.recordings is not None:
        return np.unique(dataset.recordings, return_inverse=True)[1].astype(np.int64)
    audio = np.ascontiguousarray(dataset.audio)
    keys = audio.view(np.dtype((np.void, audio.dtype.itemsize * audio.shape[1]))).ravel()
    return np.unique(keys, return_inverse=True)[1].astype(np.int64)


def groups_of(dataset, split):
    """The group id of each row for `split` (``"speaker"``, ``"recording"`` or ``"row"``).

    Returns:
        int64 (N,) group ids.

    Raises:
        ValueError: ``"speaker"`` on a data set without speaker ids, or an unknown `split`.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}. Received: split={split!r}")
    if split == "speaker":
        if dataset.speakers is None:
            raise ValueError(f"{dataset.source}: has no speaker ids (a groups_train.csv as `mmdigits data build` "
                             f"writes); use split='recording'")
        return np.unique(dataset.speakers, return_inverse=True)[1].astype(np.int64)
    if split == "recording":
        return recording_groups(dataset)
    return np.arange(len(dataset), dtype=np.int64)


def folds_for(val_fraction):
    """Folds whose one held-out fold is about `val_fraction` of the rows: ``round(1 / val_fraction)``,
    at least 2 (0.2 -> 5 folds, a fifth held out).

    Raises:
        ValueError: `val_fraction` outside (0, 1).
    """
    if not (isinstance(val_fraction, (int, float, np.floating)) and 0.0 < val_fraction < 1.0):
        raise ValueError(f"`val_fraction` must be in (0, 1). Received: val_fraction={val_fraction!r}")
    return max(2, int(round(1.0 / val_fraction)))


def speaker_count(dataset):
    """Number of distinct speakers of `dataset` (0 when it does not say who speaks)."""
    return 0 if dataset.speakers is None else len(np.unique(dataset.speakers))


def holdout_folds(dataset, split, val_fraction):
    """Folds of a hold-out split (one of them is validation): ``folds_for(val_fraction)``; a
    speaker split with fewer speakers holds out one speaker (as many folds as speakers)."""
    folds = folds_for(val_fraction)
    return min(folds, speaker_count(dataset)) if split == "speaker" else folds


def resolve_split(dataset, split=None, *, folds, holdout=False):
    """The split to use: `split` when given (checked), else the strictest the data supports.

    Args:
        dataset: A labelled `MultimodalDataset`.
        split: ``"speaker"``, ``"recording"``, ``"row"`` or None.
        folds: Number of folds the groups are dealt into (each needs at least one group).
        holdout: True for one training / validation split (one fold held out): a speaker
            split then also works with fewer speakers than `folds`, holding out one of them
            (`holdout_folds`) -- asked for, from 2 speakers; by default, from
            `MIN_DEFAULT_SPEAKERS`. False for cross-validation, where every fold needs a group.

    Returns:
        The split's name.

    Raises:
        ValueError: an unknown `split`, speakers asked for but unknown, or fewer groups than
            the split asked for needs.
    """
    if split is not None:
        count = len(np.unique(groups_of(dataset, split)))
        need = min(folds, 2) if holdout and split == "speaker" else folds
        if count < need:
            raise ValueError(f"{dataset.source}: {count} {split}(s) cannot be dealt into {need} folds; "
                             f"use fewer folds (a larger val_fraction) or another split")
        return split
    speakers = speaker_count(dataset)
    if speakers >= folds or (holdout and speakers >= MIN_DEFAULT_SPEAKERS):
        if speakers < folds:
            logger.info("validating on 1 of the %d speakers (a 1/%d share of the rows)", speakers, speakers)
        return "speaker"
    if speakers:
        logger.info("%d speakers are too few for %d folds: validating on held-out recordings instead",
                    speakers, folds)
    if len(np.unique(recording_groups(dataset))) >= folds:
        return "recording"
    logger.warning("%s: too few distinct recordings for %d folds: validating on random rows, which share "
                   "speech with training rows (validation scores will be optimistic)", dataset.source, folds)
    return "row"


def _check_labels(dataset):
    if dataset.labels is None:
        raise ValueError(f"{dataset.source}: has no labels, so it cannot be split for validation")
    counts = np.bincount(dataset.labels, minlength=NUM_CLASSES)
    if counts[counts > 0].min() < 2:
        raise ValueError(f"{dataset.source}: class {int(np.argmin(np.where(counts > 0, counts, 1 << 62)))} "
                         f"has a single row; a stratified split needs at least 2 per class")


def fold_rows(dataset, *, folds, split=None, seed=0):
    """Deals the rows into `folds` stratified folds whose groups (see `SPLITS`) never straddle two folds.

    Args:
        dataset: A labelled `MultimodalDataset`.
        folds: Number of folds (int >= 2).
        split: ``"speaker"``, ``"recording"``, ``"row"`` or None (the strictest supported).
        seed: Seed of the shuffle (int).

    Returns:
        (split, folds): the split used and a list of `folds` (train_rows, validation_rows)
        pairs of sorted int64 row indices; every row is in exactly one validation part.

    Raises:
        ValueError: no labels, a class with a single row, `folds` < 2, too few groups.
    """
    if not (isinstance(folds, (int, np.integer)) and folds >= 2):
        raise ValueError(f"`folds` must be an integer >= 2. Received: folds={folds!r}")
    _check_labels(dataset)
    split = resolve_split(dataset, split, folds=folds)
    rows = np.arange(len(dataset))
    if split == "row":
        splitter = StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed)
        parts = splitter.split(rows, dataset.labels)
    else:
        splitter = StratifiedGroupKFold(n_splits=int(folds), shuffle=True, random_state=seed)
        parts = splitter.split(rows, dataset.labels, groups_of(dataset, split))
    try:
        return split, [(np.sort(a).astype(np.int64), np.sort(b).astype(np.int64)) for a, b in parts]
    except ValueError as error:
        raise ValueError(f"{dataset.source}: cannot split {len(dataset)} rows into {folds} folds ({error})") from None


def train_val_split(dataset, *, val_fraction=0.2, seed=0, split=None, fold=None):
    """Splits a labelled dataset into training and validation parts that share no recording
    (or speaker, or row: see `SPLITS`), stratified by label and seeded.

    Args:
        dataset: A `MultimodalDataset` with labels.
        val_fraction: Fraction of rows for validation, in (0, 1). Grouped splits hold out one
            of ``round(1 / val_fraction)`` folds (0.2: a fifth, to within a group); a speaker
            split with fewer speakers holds out one speaker (`holdout_folds`).
        seed: Seed of the shuffle (int).
        split: ``"speaker"``, ``"recording"``, ``"row"`` or None: the strictest the data
            supports (`resolve_split`).
        fold: None, or ``(k, folds)``: the k-th (0-based) of `folds` cross-validation folds
            is the validation part (`val_fraction` is then not used).

    Returns:
        (train, validation) `MultimodalDataset`s (`resolve_split` tells which split the
        default chose).

    Raises:
        ValueError: no labels, `val_fraction` outside (0, 1), too few rows of some class, too
            few groups for the split asked for, or a bad `fold`.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must be in (0, 1). Received: val_fraction={val_fraction!r}")
    if fold is not None:
        index, folds = fold
        if not 0 <= index < folds:
            raise ValueError(f"`fold` must be (k, folds) with 0 <= k < folds. Received: fold={fold!r}")
        train_rows, val_rows = fold_rows(dataset, folds=folds, split=split, seed=seed)[1][index]
        return dataset.subset(train_rows), dataset.subset(val_rows)
    _check_labels(dataset)
    split = resolve_split(dataset, split, folds=folds_for(val_fraction), holdout=True)
    if split != "row":
        folds = holdout_folds(dataset, split, val_fraction)
        train_rows, val_rows = fold_rows(dataset, folds=folds, split=split, seed=seed)[1][0]
        return dataset.subset(train_rows), dataset.subset(val_rows)
    try:
        train_rows, val_rows = train_test_split(np.arange(len(dataset)), test_size=val_fraction, random_state=seed,
                                                stratify=dataset.labels)
    except ValueError as error:
        raise ValueError(f"{dataset.source}: cannot split {len(dataset)} rows with "
                         f"val_fraction={val_fraction} ({error})") from None
    return dataset.subset(np.sort(train_rows)), dataset.subset(np.sort(val_rows))
