"""Kaggle submissions: predict the test split and write ``row_id,label`` CSVs safely (above the
training layer: it loads run directories)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mmdigits_keras.data.constants import NUM_CLASSES
from mmdigits_keras.data.layouts import load_dataset
from mmdigits_keras.training import load_ensemble, predict_labels
from mmdigits_keras.training.rundir import test_inputs_used
from mmdigits_keras.utils.files import atomic_write, check_output_free
from mmdigits_keras.utils.locks import claim

logger = logging.getLogger("mmdigits_keras")
SUBMISSION_COLUMNS = ["row_id", "label"]


def make_submission(labels):
    """Returns the submission frame: ``row_id`` 0..M-1 in test order and integer ``label``."""
    labels = np.asarray(labels)
    return pd.DataFrame({"row_id": np.arange(len(labels), dtype=np.int64), "label": labels.astype(np.int64)})


def validate_submission(submission, *, rows=None):
    """Checks a submission frame (or CSV file) against the Kaggle format.

    Args:
        submission: A `pandas.DataFrame` or the path of a CSV file.
        rows: The number of test rows it must have, when known.

    Returns:
        The frame (read from the file when a path was given).

    Raises:
        ValueError: unreadable file, columns other than exactly ``row_id,label``, a row count
            other than `rows` or zero, ids that are not 0..M-1 in order, or labels that are not
            integers 0..9.
    """
    where = "submission"
    if not isinstance(submission, pd.DataFrame):
        where = str(submission)
        path = Path(submission)
        if not path.is_file():
            raise ValueError(f"{path}: submission file not found")
        try:
            submission = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not a readable CSV file ({error})") from None
    columns = [str(c) for c in submission.columns]
    if columns != SUBMISSION_COLUMNS:
        raise ValueError(f"{where}: columns must be exactly {SUBMISSION_COLUMNS}, found {columns}")
    if len(submission) == 0:
        raise ValueError(f"{where}: has no rows")
    if rows is not None and len(submission) != rows:
        raise ValueError(f"{where}: has {len(submission)} rows, the test data has {rows}")
    ids, labels = submission["row_id"].to_numpy(), submission["label"].to_numpy()
    if ids.dtype.kind not in "iu" or not np.array_equal(ids, np.arange(len(submission))):
        raise ValueError(f"{where}: row_id must be 0..{len(submission) - 1} in order")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(f"{where}: label must hold integers 0..{NUM_CLASSES - 1}")
    return submission


def write_submission(submission, path, *, rows=None, overwrite=False):
    """Validates and writes a submission CSV atomically (temporary file, then rename).

    Args:
        submission: The frame from `make_submission`.
        path: Destination ``.csv``; its folder is created.
        rows: Expected number of rows (the test split size).
        overwrite: Replace an existing file.

    Returns:
        The written path.

    Raises:
        ValueError: the frame is invalid (see `validate_submission`), or `path` exists and
            `overwrite` is False, or `path` is a directory.
    """
    path = Path(path)
    validate_submission(submission, rows=rows)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; give a .csv file name")
    check_output_free(path, overwrite=overwrite)
    return atomic_write(path, lambda tmp: submission.to_csv(tmp, index=False))


def submit(model, data, out, *, overwrite=False, weights=None):
    """Predicts the test split of a data folder with a trained run (or an ensemble) and writes the CSV.

    Args:
        model: A run directory (or ``.keras`` file) from `train` (a cross-validation run
            predicts as the mean of its folds), or a list of them: the ensemble of their mean
            probabilities (`load_ensemble`).
        data: A data folder in the Kaggle or Khacef layout with a test split.
        out: Destination CSV path.
        overwrite: Replace an existing `out`.
        weights: With several runs, one non-negative weight per run (None: the plain mean).

    Returns:
        A tuple ``(path, frame)``: the CSV's `pathlib.Path`, and the `pandas.DataFrame` written
        to it: one row per test row, columns ``row_id`` (int, the data set's test ids in order)
        and ``label`` (int, 0-9, the argmax of the predicted probabilities).

    Raises:
        ValueError: bad model or data files, an existing `out` without `overwrite`, or `out`
            claimed by another live process (`mmdigits_keras.utils.locks.claim`).
        OSError: the CSV could not be written (a full disk, a read-only folder); an existing
            `out` is left as it was.
    """
    out = Path(out)
    with claim(out, what="submission"):  # before the slow part, like the check below
        check_output_free(out, overwrite=overwrite)
        test = load_dataset(data, "test")
        net = load_ensemble(model, weights=weights)
        for run in [model] if isinstance(model, (str, Path)) else model:
            if test_inputs_used(run):  # config.json says so too; the user chose it knowingly
                logger.info("%s learned from its data folder's unlabeled test rows (semi_supervised; never their "
                            "labels): check the competition's rules allow it", run)
        frame = make_submission(predict_labels(net, test))
        return write_submission(frame, out, rows=len(test), overwrite=overwrite), frame
