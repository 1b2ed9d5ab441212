"""Who speaks in each row, and which recording: ``groups_{split}.csv`` beside a data set's
arrays (``row_id,recording,speaker``), written by `mmdigits data build` and the demo, read by
the loaders when present. Grouped validation splits (`mmdigits_keras.data.splits`) use them;
data sets without the file (the Kaggle course files, the Khacef database) are grouped by an
exact fingerprint of the speech vector instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GROUP_COLUMNS = ["row_id", "recording", "speaker"]


def groups_path(directory, split):
    """The groups file of `split` (``"train"`` or ``"test"``) in `directory`."""
    return Path(directory) / f"groups_{split}.csv"


def write_groups(directory, split, *, recordings, speakers):
    """Writes ``groups_{split}.csv``: one row per data row, in row order.

    Args:
        directory: The data folder (a staging folder: the caller publishes it whole).
        split: ``"train"`` or ``"test"``.
        recordings: (N,) recording ids (str; e.g. the wav file's path in its corpus).
        speakers: (N,) speaker ids (str).

    Returns:
        The written path.
    """
    path = groups_path(directory, split)
    frame = pd.DataFrame({"row_id": np.arange(len(recordings), dtype=np.int64),
                          "recording": np.asarray(recordings, dtype=str), "speaker": np.asarray(speakers, dtype=str)})
    frame.to_csv(path, index=False)
    return path


def read_groups(directory, split, *, rows):
    """Reads ``groups_{split}.csv`` when present.

    Args:
        directory: The data folder.
        split: ``"train"`` or ``"test"``.
        rows: Number of rows of the split's arrays.

    Returns:
        (recordings, speakers): two object arrays of str (N,) in row order, or (None, None)
        without a groups file.

    Raises:
        ValueError: an unreadable file, missing columns, a row count other than `rows`,
            row ids other than 0..rows-1, or empty ids; the message names the file.
    """
    path = groups_path(directory, split)
    if not path.is_file():
        return None, None
    try:
        frame = pd.read_csv(path, dtype={"recording": str, "speaker": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable CSV file ({error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in GROUP_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (found {list(frame.columns)})")
    if len(frame) != rows:
        raise ValueError(f"{path}: has {len(frame)} rows but the feature files have {rows}")
    row_ids = frame["row_id"].to_numpy()
    if row_ids.dtype.kind not in "iu" or not np.array_equal(np.sort(row_ids), np.arange(rows)):
        raise ValueError(f"{path}: `row_id` must be the integers 0..{rows - 1}, each once")
    frame = frame.iloc[np.argsort(row_ids, kind="stable")]
    for column in ("recording", "speaker"):
        if (frame[column].str.strip() == "").any():
            raise ValueError(f"{path}: empty `{column}` value(s)")
    return frame["recording"].to_numpy(dtype=object), frame["speaker"].to_numpy(dtype=object)
