"""The two folder layouts and their loaders: the Kaggle course layout and the Written and Spoken
Digits (Khacef) layout, each split's files read through `mmdigits_keras.data.readers` (which
refuses bad input with a `ValueError` naming the file and the problem) into a
`MultimodalDataset` (`mmdigits_keras.data.dataset`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from mmdigits_keras.data.constants import AUDIO_WIDTHS, NUM_PIXELS
from mmdigits_keras.data.dataset import MultimodalDataset
from mmdigits_keras.data.groups import read_groups
from mmdigits_keras.data.readers import (
    AUDIO_ROW_SHAPES,
    IMAGE_ROW_SHAPES,
    check_labels,
    check_rows,
    images_from_pixels,
    load_npy,
    pixel_scale,
    read_label_csv,
    read_npy,
)

logger = logging.getLogger("mmdigits_keras")


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


def load_kaggle(directory, split="train", *, labels=True):
    """Loads one split of the Kaggle course layout (Nippani Ravi's data).

    Files: ``x_{split}_wr.npy`` (N, 784) pixels 0..255 (values all in [0, 1] are read as
    already scaled, with a warning naming the file; (N, 28, 28) and (N, 28, 28, 1) arrays are
    flattened), ``x_{split}_sp.npy`` (N, 507) MFCC (or (N, 39, 13)),
    and for ``train`` ``y_train.csv`` with columns ``row_id,label``. A ``y_test.csv`` beside
    the test files (as `mmdigits data build` and the demo write) gives test labels, a
    ``groups_{split}.csv`` each row's recording and speaker (`mmdigits_keras.data.groups`).

    Args:
        directory: The data folder.
        split: ``"train"`` or ``"test"``.
        labels: False: the inputs alone; the label file is not opened (semi-supervised
            training's unlabeled test rows, `mmdigits_keras.training.pseudo_labels`).

    Returns:
        A `MultimodalDataset`; its labels are None for a test split without ``y_test.csv``
        (or without `labels`).

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
    check_rows({directory / image_name: len(pixels), directory / audio_name: len(audio)})
    label_path = directory / label_name
    targets, ids = None, np.arange(len(pixels), dtype=np.int64)
    if labels and (split == "train" or label_path.exists()):
        targets, ids = read_label_csv(label_path, rows=len(pixels))
    recordings, speakers = read_groups(directory, split, rows=len(pixels))
    return MultimodalDataset(
        images=images_from_pixels(pixels, directory / image_name,
                                   scale=pixel_scale(pixels, directory / image_name, stored=255.0)),
        audio=audio.astype(np.float32),
        labels=targets,
        ids=ids,
        source=_describe(directory, "kaggle", split),
        recordings=recordings,
        speakers=speakers,
    )


def load_khacef(directory, split="train", *, labels=True):
    """Loads one split of the Written and Spoken Digits database layout (Khacef et al. 2019).

    Files: ``data_wr_{split}.npy`` (N, 784) pixels in [0, 1] (0..255 is accepted and scaled,
    with a warning naming the file; image-shaped arrays are flattened as in `load_kaggle`),
    ``data_sp_{split}.npy`` (N, 507) MFCC (or (N, 39, 13)), ``labels_{split}.npy`` (N,)
    integers 0..9.

    Args:
        directory: The data folder.
        split: ``"train"`` or ``"test"``.
        labels: False: the inputs alone, labels None; ``labels_{split}.npy`` is not opened.

    Returns:
        A `MultimodalDataset` with labels (unless `labels` is False); ids are row numbers.

    Raises:
        ValueError: as `load_kaggle`, for the Khacef file names (a ``groups_{split}.csv`` is
            read the same way).

    Reference:
        Khacef, Rodriguez, Miramond, zenodo 3515935 (2019); used by Tseng.
    """
    _check_split(split)
    directory = check_data_folder(directory)
    image_name, audio_name, label_name = KHACEF_FILES[split]
    pixels = load_npy(directory / image_name, columns=NUM_PIXELS, name="pixels", row_shapes=IMAGE_ROW_SHAPES)
    audio = load_npy(directory / audio_name, columns=AUDIO_WIDTHS, name="speech features",
                     row_shapes=AUDIO_ROW_SHAPES)
    rows = {directory / image_name: len(pixels), directory / audio_name: len(audio)}
    targets = None
    if labels:
        label_path = directory / label_name
        raw_labels = read_npy(label_path)
        if raw_labels.ndim == 2 and raw_labels.shape[1] == 1:
            raw_labels = raw_labels[:, 0]
        targets = check_labels(raw_labels, label_path)
        rows[label_path] = len(targets)
    check_rows(rows)
    scale = pixel_scale(pixels, directory / image_name, stored=1.0)
    recordings, speakers = read_groups(directory, split, rows=len(pixels))
    return MultimodalDataset(
        images=images_from_pixels(pixels, directory / image_name, scale=scale),
        audio=audio.astype(np.float32),
        labels=targets,
        ids=np.arange(len(pixels), dtype=np.int64),
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


def load_dataset(directory, split="train", *, labels=True):
    """Loads `split` from `directory` in whichever layout it holds (see `detect_layout`);
    `labels` False: its inputs alone, the label file not opened."""
    loader = {"kaggle": load_kaggle, "khacef": load_khacef}[detect_layout(directory)]
    return loader(directory, split, labels=labels)
