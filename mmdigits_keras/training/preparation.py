"""What training starts from: a data folder (or data set) loaded, split into training and
validation rows that share no recording or speaker (`mmdigits_keras.data.splits`), with the
speech statistics of the training rows and, when the recipe asks, synthetic voices mixed into
the training rows only."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from mmdigits_keras.data.constants import NUM_CLASSES
from mmdigits_keras.data.dataset import MultimodalDataset
from mmdigits_keras.data.features import fit_audio_statistics
from mmdigits_keras.data.layouts import load_dataset
from mmdigits_keras.data.mixing import mix_synthetic_speech
from mmdigits_keras.data.splits import folds_for, resolve_split, train_val_split

logger = logging.getLogger("mmdigits_keras")


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedData:
    """A data set split for training, with the speech statistics of its training rows.

    Attributes:
        train: The training `MultimodalDataset`.
        validation: The validation `MultimodalDataset` (stratified, seeded, sharing no
            recording or speaker with `train`: see `split`).
        source: Where the rows came from (text).
        rows: Rows before the split.
        fingerprint: SHA-256 of the whole labelled data (`MultimodalDataset.fingerprint`).
        path: The data folder (absolute) or None for an in-memory data set.
        audio_mean: float32 (columns,) mean of the training speech features.
        audio_variance: float32 (columns,) variance of the training speech features.
        synthetic_rows: Rows of synthetic speech added to `train` (`mix_synthetic_speech`).
        split: What validation holds out: ``"speaker"``, ``"recording"`` or ``"row"``
            (`mmdigits_keras.data.splits`), or ``"none"`` (no validation rows: fine-tuning).
        fold: None, or ``(k, folds)`` for fold k of a cross-validation run.
    """

    train: MultimodalDataset
    validation: MultimodalDataset
    source: str
    rows: int
    fingerprint: str
    path: str | None
    audio_mean: np.ndarray
    audio_variance: np.ndarray
    synthetic_rows: int = 0
    split: str = "row"
    fold: tuple | None = None

    @property
    def real_rows(self):
        """Training rows from the data folder: `train` without the synthetic speech rows."""
        return len(self.train) - self.synthetic_rows

    @property
    def audio_features(self):
        """Speech values per row: 507 (MFCC) or 1560 (log-mel)."""
        return int(self.train.audio.shape[1])


def prepare_data(data, *, val_fraction=0.2, seed=0, synthetic_share=0.0, split=None, fold=None, validation=True):
    """Loads `data` (a folder's ``train`` split, or a labelled `MultimodalDataset`), splits it
    (`train_val_split`: no recording, or speaker, on both sides), fits the speech statistics on
    the training part and, when `synthetic_share` > 0, adds synthetic-speech rows to the
    training part only (`mix_synthetic_speech`; validation stays real).

    Args:
        split: ``"speaker"``, ``"recording"``, ``"row"`` or None (the strictest the data supports).
        fold: None, or ``(k, folds)``: fold k of a `folds`-fold cross-validation is validation.
        validation: False: no split, every row trains and the validation part is empty (the
            fine-tuning of `run`; ``split`` is then ``"none"``).

    Returns:
        A `PreparedData`.

    Raises:
        ValueError: bad files (see `load_kaggle`), no labels, a bad `val_fraction`, or too few
            groups for the split asked for.
    """
    dataset = data if isinstance(data, MultimodalDataset) else load_dataset(data, "train")
    source, rows, fingerprint = dataset.source, len(dataset), dataset.fingerprint()
    if validation:
        split = resolve_split(dataset, split, folds=fold[1] if fold else folds_for(val_fraction), holdout=fold is None)
        train_part, val_part = train_val_split(dataset, val_fraction=val_fraction, seed=seed, split=split, fold=fold)
    else:
        split, train_part, val_part = "none", dataset, dataset.subset(np.zeros(0, dtype=np.int64))
    del dataset  # the split parts are copies: keep one copy of the data in memory, not two
    missing = sorted(set(range(NUM_CLASSES)) - set(np.unique(train_part.labels).tolist()))
    if missing:
        logger.warning("no training rows of class(es) %s in %s; the model cannot learn to predict them",
                       missing, source)
    mean, variance = fit_audio_statistics(train_part.audio)
    real_rows = len(train_part)
    train_part = mix_synthetic_speech(train_part, share=synthetic_share, seed=seed)
    path = None if isinstance(data, MultimodalDataset) else str(Path(data).resolve())
    return PreparedData(train=train_part, validation=val_part, source=source, rows=rows, fingerprint=fingerprint,
                        path=path, audio_mean=mean, audio_variance=variance,
                        synthetic_rows=len(train_part) - real_rows, split=split,
                        fold=None if fold is None else (int(fold[0]), int(fold[1])))
