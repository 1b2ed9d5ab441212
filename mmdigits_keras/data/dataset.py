"""The container every loader returns and every function takes: `MultimodalDataset`, paired
image and speech rows with their labels, ids and (when known) recordings and speakers."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class MultimodalDataset:
    """Paired handwritten images and spoken-digit features.

    Attributes:
        images: float32 array (N, 28, 28, 1), pixel values in [0, 1].
        audio: float32 array (N, 507), the MFCC features as the source gives them (39 frames x
            13 coefficients, flattened frame by frame); models standardize them internally.
            Data built with ``features="logmel"`` has (N, 1560): 39 frames x 40 log-mel bands.
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


def concatenate(first, second):
    """`first`'s rows followed by `second`'s, both labelled: one `MultimodalDataset` (source
    `first`'s; recordings and speakers kept only when both data sets have them).

    Raises:
        ValueError: either has no labels, or their speech widths differ.
    """
    if first.labels is None or second.labels is None:
        raise ValueError("concatenate needs two labelled data sets")
    if first.audio.shape[1:] != second.audio.shape[1:]:
        raise ValueError(f"speech widths differ: {first.audio.shape[1]} and {second.audio.shape[1]}")
    both = lambda name: None if getattr(first, name) is None or getattr(second, name) is None \
        else np.concatenate([getattr(first, name), getattr(second, name)])
    return MultimodalDataset(images=np.concatenate([first.images, second.images]),
                             audio=np.concatenate([first.audio, second.audio]),
                             labels=np.concatenate([first.labels, second.labels]),
                             ids=np.concatenate([first.ids, second.ids]), source=first.source,
                             recordings=both("recordings"), speakers=both("speakers"))
