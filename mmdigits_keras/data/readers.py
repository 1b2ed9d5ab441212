"""Reading one data file safely: `.npy` arrays (``allow_pickle=False``) and label CSVs, their
shapes, values and pixel scale checked; every failure is a `ValueError` naming the file and the
problem, before anything deep inside numpy or Keras gets to raise."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mmdigits_keras.data.constants import AUDIO_WIDTHS, IMAGE_SHAPE, NUM_CLASSES, NUM_FRAMES

logger = logging.getLogger("mmdigits_keras")

# Row shapes a feature file may hold besides flat rows; they are flattened row by row.
IMAGE_ROW_SHAPES = (IMAGE_SHAPE[:2], IMAGE_SHAPE)  # (28, 28) and (28, 28, 1)
AUDIO_ROW_SHAPES = tuple((NUM_FRAMES, width // NUM_FRAMES) for width in AUDIO_WIDTHS)  # (39, 13), (39, 40)


def check_exists(path: Path):
    """Refuses a `path` that is missing or not a regular file, naming it (`ValueError`)."""
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if not path.is_file():
        raise ValueError(f"{path}: expected a file, found a directory or special file")


def read_npy(path):
    """Reads any `.npy` array with `allow_pickle=False`; every failure is a ValueError naming `path`."""
    path = Path(path)
    check_exists(path)
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file (it does not start with the NumPy header)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(f"{path}: holds a pickled/object array, which is refused for safety; "
                             f"save plain numeric arrays") from None
        raise ValueError(f"{path}: not a readable .npy file ({error})") from None
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npy file ({error})") from None


def load_npy(path, *, columns, name, row_shapes=()):
    """Loads a numeric `.npy` matrix safely and checks its shape and values.

    Args:
        path: Path of the `.npy` file.
        columns: The required number of columns (784 pixels), or a tuple of allowed counts
            (507 MFCC values or 1,560 log-mel values).
        name: What the file holds, for messages ("pixels", "MFCC features").
        row_shapes: Other shapes a row may have, flattened row by row (C order) into
            `columns`, e.g. ``(28, 28)`` images or ``(39, 13)`` frames x coefficients.

    Returns:
        The array (N, columns), numeric dtype as stored, all values finite.

    Raises:
        ValueError: the file is missing, unreadable, truncated, pickled or of object/string
            dtype (`allow_pickle=False`), of a shape other than (N, columns) or (N, *row_shape),
            empty, or holds NaN/inf.
    """
    path = Path(path)
    array = read_npy(path)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{path}: expected numeric {name}, found dtype {array.dtype}")
    allowed = columns if isinstance(columns, tuple) else (columns,)
    if array.ndim > 2 and array.shape[1:] in row_shapes:
        array = array.reshape(len(array), int(np.prod(array.shape[1:])))
    if array.ndim != 2 or array.shape[1] not in allowed:
        wanted = " or ".join([*(f"(rows, {c})" for c in allowed),
                              *(f"(rows, {', '.join(map(str, shape))})" for shape in row_shapes)])
        raise ValueError(f"{path}: expected shape {wanted} of {name}, found {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{path}: has 0 rows")
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(f"{path}: {int(bad.sum())} NaN/inf value(s), first at row {row}, column {col}")
    return array


def pixel_scale(pixels, path, *, stored):
    """The scale of `pixels`: `stored` (255 or 1, what the layout stores), or the other one
    when the values say so, in one warning line naming the file: every value in [0, 1] in a
    layout of 0..255 (already scaled; dividing by 255 again would train on black images), or
    values above 1 in a layout of [0, 1]. Each file is read on its own scale."""
    high = float(pixels.max())
    if stored == 255.0 and 0.0 < high <= 1.0:
        logger.warning("%s: pixel values lie in [0, 1], not 0..255: read as already scaled", path)
        return 1.0
    if stored == 1.0 and high > 1.0:
        logger.warning("%s: pixel values reach %g, not [0, 1]: read as 0..255", path, high)
        return 255.0
    return stored


def images_from_pixels(pixels, path, *, scale):
    """(N, 784) pixels in [0, scale] -> float32 (N, 28, 28, 1) in [0, 1]."""
    low, high = pixels.min(), pixels.max()
    if low < 0 or high > scale:
        raise ValueError(f"{path}: pixel values must lie in [0, {scale:g}], found [{low:g}, {high:g}]")
    images = pixels.astype(np.float32)
    images /= np.float32(scale)
    return images.reshape((-1, *IMAGE_SHAPE))


def check_labels(values, path):
    """Any 1-D array of labels -> int64 (N,) in 0..9, or a ValueError naming `path`."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{path}: expected one label per row, found shape {values.shape}")
    if values.dtype.kind in "iu":
        labels = values.astype(np.int64)
    elif values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{path}: labels contain NaN/inf (missing values?)")
        if not np.all(values == np.round(values)):
            raise ValueError(f"{path}: labels must be integers 0..9, found fractional values")
        labels = values.astype(np.int64)
    else:
        raise ValueError(f"{path}: labels must be integers 0..9, found {values.dtype} values "
                         f"such as {values[:1].tolist()}")
    outside = (labels < 0) | (labels >= NUM_CLASSES)
    if outside.any():
        raise ValueError(f"{path}: labels must be in 0..9, found {sorted(set(labels[outside].tolist()))[:5]}")
    return labels


def read_label_csv(path, *, rows):
    """Reads a Kaggle label file (`row_id,label`) and returns (labels, ids) for `rows` rows.

    Columns are found by name, so extra or reordered columns are fine. Rows are put in
    `row_id` order when `row_id` is a permutation of 0..rows-1.

    Raises:
        ValueError: missing/unreadable file, no `label` column, a row count other than `rows`,
            bad row ids, or labels that are not integers 0..9.
    """
    path = Path(path)
    check_exists(path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV file ({error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if "label" not in frame.columns:
        raise ValueError(f"{path}: no `label` column (found columns {list(frame.columns)})")
    if len(frame) != rows:
        raise ValueError(f"{path}: has {len(frame)} rows but the feature files have {rows}")
    labels = check_labels(frame["label"].to_numpy(), path)
    ids = np.arange(rows, dtype=np.int64)
    if "row_id" in frame.columns:
        row_ids = frame["row_id"].to_numpy()
        if row_ids.dtype.kind not in "iu" or not np.array_equal(np.sort(row_ids), ids):
            raise ValueError(f"{path}: `row_id` must be the integers 0..{rows - 1}, each once")
        order = np.argsort(row_ids, kind="stable")
        labels = labels[order]
    return labels, ids


def check_rows(counts):
    """counts: {path: rows}. All files of one split must describe the same rows."""
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{Path(p).name}: {n}" for p, n in counts.items())
        raise ValueError(f"row counts disagree between files ({listing}) in {Path(next(iter(counts))).parent}")
