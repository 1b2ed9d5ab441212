"""Data sets: the Kaggle course layout and the Written and Spoken Digits (Khacef) layout.

Every loader checks its files and refuses bad input with a `ValueError` that names the file and
the problem; nothing deep inside numpy or Keras gets to raise first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mmdigits_keras.data.constants import AUDIO_WIDTHS, IMAGE_SHAPE, NUM_CLASSES, NUM_FRAMES, NUM_PIXELS
from mmdigits_keras.data.groups import read_groups

logger = logging.getLogger("mmdigits_keras")

# Row shapes a feature file may hold besides flat rows; they are flattened row by row.
IMAGE_ROW_SHAPES = (IMAGE_SHAPE[:2], IMAGE_SHAPE)  # (28, 28) and (28, 28, 1)
AUDIO_ROW_SHAPES = tuple((NUM_FRAMES, width // NUM_FRAMES) for width in AUDIO_WIDTHS)  # (39, 13), (39, 40)

KAGGLE_FILES = {
    "train": ("x_train_wr.npy", "x_train_sp.npy", "y_train.csv"),
    # y_test.csv is optional: the course keeps test labels secret; our builders write them.
    "test": ("x_test_wr.npy", "x_test_sp.npy", "y_test.csv"),
}
KHACEF_FILES = {
    "train": ("data_wr_train.npy", "data_sp_train.npy", "labels_train.npy"),
    "test": ("data_wr_test.npy", "data_sp_test.npy", "labels_test.npy"),
}
SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class MultimodalDataset:
    """Paired handwritten images and spoken-digit features.

    Attributes:
        images: float32 array (N, 28, 28, 1), pixel values in [0, 1].
        audio: float32 array (N, 507), the MFCC features as the source gives them (39 frames x
            13 coefficients, flattened frame by frame); models standardize them internally.
            Data built with ``--features logmel`` has (N, 1560): 39 frames x 40 log-mel bands.
        labels: int64 array (N,) with values 0..9, or None when the split has no labels
            (the Kaggle test part).
        ids: int64 array (N,): the row ids (Kaggle ``row_id``; row numbers otherwise).
        source: a human-readable description of where the rows came from.
        recordings: object array of str (N,): which recording each row's speech is, or None
            when the data set does not say (``groups_{split}.csv``, `mmdigits_keras.data.groups`).
        speakers: object array of str (N,): who speaks in each row, or None when unknown.
    """

    images: np.ndarray
    audio: np.ndarray
    labels: np.ndarray | None
    ids: np.ndarray
    source: str = ""
    recordings: np.ndarray | None = None
    speakers: np.ndarray | None = None

    def __len__(self):
        return int(self.images.shape[0])

    def inputs(self):
        """Returns the model input dict ``{"image": (N,28,28,1), "audio": (N,507)}``."""
        return {"image": self.images, "audio": self.audio}

    def subset(self, index):
        """Returns the rows selected by `index` (integer array or boolean mask) as a new dataset."""
        return MultimodalDataset(
            images=self.images[index],
            audio=self.audio[index],
            labels=None if self.labels is None else self.labels[index],
            ids=self.ids[index],
            source=self.source,
            recordings=None if self.recordings is None else self.recordings[index],
            speakers=None if self.speakers is None else self.speakers[index],
        )

    def fingerprint(self):
        """A SHA-256 hex digest of images, audio and labels: equal data gives equal prints."""
        digest = hashlib.sha256()
        for array in (self.images, self.audio, self.labels):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def _check_exists(path: Path):
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if not path.is_file():
        raise ValueError(f"{path}: expected a file, found a directory or special file")


def read_npy(path):
    """Reads any `.npy` array with `allow_pickle=False`; every failure is a ValueError naming `path`."""
    path = Path(path)
    _check_exists(path)
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


def _pixel_scale(pixels, path, *, stored):
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


def _images_from_pixels(pixels, path, *, scale):
    """(N, 784) pixels in [0, scale] -> float32 (N, 28, 28, 1) in [0, 1]."""
    low, high = pixels.min(), pixels.max()
    if low < 0 or high > scale:
        raise ValueError(f"{path}: pixel values must lie in [0, {scale:g}], found [{low:g}, {high:g}]")
    images = pixels.astype(np.float32)
    images /= np.float32(scale)
    return images.reshape((-1, *IMAGE_SHAPE))


def _check_labels(values, path):
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
    _check_exists(path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV file ({error})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if "label" not in frame.columns:
        raise ValueError(f"{path}: no `label` column (found columns {list(frame.columns)})")
    if len(frame) != rows:
        raise ValueError(f"{path}: has {len(frame)} rows but the feature files have {rows}")
    labels = _check_labels(frame["label"].to_numpy(), path)
    ids = np.arange(rows, dtype=np.int64)
    if "row_id" in frame.columns:
        row_ids = frame["row_id"].to_numpy()
        if row_ids.dtype.kind not in "iu" or not np.array_equal(np.sort(row_ids), ids):
            raise ValueError(f"{path}: `row_id` must be the integers 0..{rows - 1}, each once")
        order = np.argsort(row_ids, kind="stable")
        labels = labels[order]
    return labels, ids


def _check_rows(counts):
    """counts: {path: rows}. All files of one split must describe the same rows."""
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{Path(p).name}: {n}" for p, n in counts.items())
        raise ValueError(f"row counts disagree between files ({listing}) in {Path(next(iter(counts))).parent}")


def _describe(directory, layout, split):
    """Source text for a dataset; carries a data set's own note (e.g. the demo's) along."""
    text = f"{directory} ({layout} layout, {split})"
    manifest = directory / "manifest.json"
    if manifest.is_file():
        try:
            note = json.loads(manifest.read_text()).get("note")
        except (ValueError, OSError, AttributeError):
            note = None
        if isinstance(note, str):
            text += f" [{note}]"
    return text


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}. Received: split={split!r}")


def check_data_folder(directory):
    """`directory` as a `Path` if it is a folder; ValueError naming it otherwise (not found, or a
    file). Cheap and backend-free: the CLI calls it before Keras starts."""
    directory = Path(directory)
    if not directory.exists():
        raise ValueError(f"{directory}: data folder not found")
    if not directory.is_dir():
        raise ValueError(f"{directory}: expected a data folder, found a file")
    return directory


def load_kaggle(directory, split="train"):
    """Loads one split of the Kaggle course layout (seed 000's data).

    Files: ``x_{split}_wr.npy`` (N, 784) pixels 0..255 (values all in [0, 1] are read as
    already scaled, with a warning naming the file; (N, 28, 28) and (N, 28, 28, 1) arrays are
    flattened), ``x_{split}_sp.npy`` (N, 507) MFCC (or (N, 39, 13)),
    and for ``train`` ``y_train.csv`` with columns ``row_id,label``. A ``y_test.csv`` beside
    the test files (as `mmdigits data build` and the demo write) gives test labels, a
    ``groups_{split}.csv`` each row's recording and speaker (`mmdigits_keras.data.groups`).

    Args:
        directory: The data folder.
        split: ``"train"`` or ``"test"``.

    Returns:
        A `MultimodalDataset`; its labels are None for a test split without ``y_test.csv``.

    Raises:
        ValueError: a missing or unreadable file, wrong column counts, row counts that disagree
            between files, NaN/inf, pixels outside 0..255, labels not integers in 0..9, a label
            CSV without a ``label`` column, or a pickled/object ``.npy``.
    """
    _check_split(split)
    directory = check_data_folder(directory)
    image_name, audio_name, label_name = KAGGLE_FILES[split]
    pixels = load_npy(directory / image_name, columns=NUM_PIXELS, name="pixels", row_shapes=IMAGE_ROW_SHAPES)
    audio = load_npy(directory / audio_name, columns=AUDIO_WIDTHS, name="speech features",
                     row_shapes=AUDIO_ROW_SHAPES)
    _check_rows({directory / image_name: len(pixels), directory / audio_name: len(audio)})
    label_path = directory / label_name
    labels, ids = None, np.arange(len(pixels), dtype=np.int64)
    if split == "train" or label_path.exists():
        labels, ids = read_label_csv(label_path, rows=len(pixels))
    recordings, speakers = read_groups(directory, split, rows=len(pixels))
    return MultimodalDataset(
        images=_images_from_pixels(pixels, directory / image_name,
                                   scale=_pixel_scale(pixels, directory / image_name, stored=255.0)),
        audio=audio.astype(np.float32),
        labels=labels,
        ids=ids,
        source=_describe(directory, "kaggle", split),
        recordings=recordings,
        speakers=speakers,
    )


def load_khacef(directory, split="train"):
    """Loads one split of the Written and Spoken Digits database layout (Khacef et al. 2019).

    Files: ``data_wr_{split}.npy`` (N, 784) pixels in [0, 1] (0..255 is accepted and scaled,
    with a warning naming the file; image-shaped arrays are flattened as in `load_kaggle`),
    ``data_sp_{split}.npy`` (N, 507) MFCC (or (N, 39, 13)), ``labels_{split}.npy`` (N,)
    integers 0..9.

    Args:
        directory: The data folder.
        split: ``"train"`` or ``"test"``.

    Returns:
        A `MultimodalDataset` with labels; ids are row numbers.

    Raises:
        ValueError: as `load_kaggle`, for the Khacef file names (a ``groups_{split}.csv`` is
            read the same way).

    Reference:
        Khacef, Rodriguez, Miramond, zenodo 3515935 (2019); used by seed 001.
    """
    _check_split(split)
    directory = check_data_folder(directory)
    image_name, audio_name, label_name = KHACEF_FILES[split]
    pixels = load_npy(directory / image_name, columns=NUM_PIXELS, name="pixels", row_shapes=IMAGE_ROW_SHAPES)
    audio = load_npy(directory / audio_name, columns=AUDIO_WIDTHS, name="speech features",
                     row_shapes=AUDIO_ROW_SHAPES)
    label_path = directory / label_name
    raw_labels = read_npy(label_path)
    if raw_labels.ndim == 2 and raw_labels.shape[1] == 1:
        raw_labels = raw_labels[:, 0]
    labels = _check_labels(raw_labels, label_path)
    _check_rows({directory / image_name: len(pixels), directory / audio_name: len(audio), label_path: len(labels)})
    scale = _pixel_scale(pixels, directory / image_name, stored=1.0)
    recordings, speakers = read_groups(directory, split, rows=len(labels))
    return MultimodalDataset(
        images=_images_from_pixels(pixels, directory / image_name, scale=scale),
        audio=audio.astype(np.float32),
        labels=labels,
        ids=np.arange(len(labels), dtype=np.int64),
        source=_describe(directory, "khacef", split),
        recordings=recordings,
        speakers=speakers,
    )


def detect_layout(directory):
    """Returns ``"kaggle"`` or ``"khacef"`` from the file names in `directory`.

    Raises:
        ValueError: if the folder is missing or holds neither layout's training images.
    """
    directory = check_data_folder(directory)
    if (directory / KAGGLE_FILES["train"][0]).exists() or (directory / KAGGLE_FILES["test"][0]).exists():
        return "kaggle"
    if (directory / KHACEF_FILES["train"][0]).exists() or (directory / KHACEF_FILES["test"][0]).exists():
        return "khacef"
    raise ValueError(
        f"{directory}: neither the Kaggle layout (x_train_wr.npy, x_train_sp.npy, y_train.csv, ...) "
        f"nor the Khacef layout (data_wr_train.npy, data_sp_train.npy, labels_train.npy, ...)"
    )


def load_dataset(directory, split="train"):
    """Loads `split` from `directory` in whichever layout it holds (see `detect_layout`)."""
    loader = {"kaggle": load_kaggle, "khacef": load_khacef}[detect_layout(directory)]
    return loader(directory, split)
