"""Synthetic voices as extra training speakers: eSpeak NG utterances mixed into any data set's
training rows (a lever of the default recipe against speaker shift)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from mmdigits_keras.data.constants import NUM_CLASSES, NUM_FEATURES
from mmdigits_keras.data.dataset import MultimodalDataset
from mmdigits_keras.data.demo import synthesize_utterances
from mmdigits_keras.utils.files import atomic_write

# Bump when the synthesizer's settings change, so old cache files are not reused.
CACHE_VERSION = 1


def cache_dir():
    """Where synthesized features are kept between processes: ``$MMDIGITS_CACHE`` or
    ``~/.cache/mmdigits_keras`` (like Keras' ``~/.keras``)."""
    return Path(os.environ.get("MMDIGITS_CACHE", Path.home() / ".cache" / "mmdigits_keras"))


@functools.lru_cache(maxsize=2)
def _utterances(seed):
    """`synthesize_utterances(seed)` (about 10 s), kept on disk: tuning trials and tests run
    in fresh processes and would otherwise synthesize again each time."""
    path = cache_dir() / f"synthetic_speech_v{CACHE_VERSION}_seed{seed}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return {"features": data["features"], "digit": data["digit"]}
        except (OSError, ValueError, KeyError):  # a damaged cache file: synthesize again
            pass
    utterances = synthesize_utterances(seed=seed)
    try:
        atomic_write(path, lambda tmp: np.savez(tmp, features=utterances["features"], digit=utterances["digit"]))
    except OSError:  # a read-only home: keep it in memory only
        pass
    return utterances


def mix_synthetic_speech(dataset, *, share, seed=0):
    """Adds rows whose speech is synthetic, so that they make up `share` of the result.

    The demo synthesizer's 2,160 utterances (72 eSpeak NG voices x 10 digits x 3 takes, random
    rate, pitch, shift and 15-35 dB SNR noise; `synthesize_utterances`, cached in `cache_dir`)
    are brought to the
    data set's scale per column (standardized with their own mean and standard deviation,
    then given those of `dataset.audio`: the data sets hold standardized MFCC whose raw
    statistics are unknown). Each new row pairs a training image of a digit, drawn at random
    from the rows of that digit, with a synthetic utterance of the same digit (the Khacef rule).

    Args:
        dataset: Labelled training rows (`MultimodalDataset`) with 507-value MFCC speech.
        share: Fraction of the returned rows that are synthetic, in [0, 1); 0 returns
            `dataset` unchanged.
        seed: Seed of the synthesis variation and of the pairing.

    Returns:
        A new `MultimodalDataset`: the original rows first, then round(N * share / (1 - share))
        synthetic rows (ids continue after the largest id; their recording and speaker None
        where the data set names them).

    Raises:
        ValueError: `share` outside [0, 1), no labels, or speech other than 507 MFCC values.
    """
    if not 0 <= share < 1:
        raise ValueError(f"`share` of synthetic speech must be in [0, 1). Received: share={share!r}")
    if share == 0:
        return dataset
    if dataset.labels is None:
        raise ValueError("synthetic speech needs labelled training rows")
    if dataset.audio.shape[1] != NUM_FEATURES:
        raise ValueError(f"synthetic speech is MFCC ({NUM_FEATURES} values); these rows have "
                         f"{dataset.audio.shape[1]}")
    utterances = _utterances(seed)
    synthetic = utterances["features"].astype(np.float64)
    synthetic = (synthetic - synthetic.mean(axis=0)) / (synthetic.std(axis=0) + 1e-8)
    synthetic = synthetic * dataset.audio.std(axis=0) + dataset.audio.mean(axis=0)
    count = int(round(len(dataset) * share / (1 - share)))
    rng = np.random.default_rng([seed, 13])
    rows = rng.choice(len(dataset), size=count, replace=True)
    labels = dataset.labels[rows]
    chosen = np.empty(count, dtype=np.int64)
    for digit in range(NUM_CLASSES):
        where = np.flatnonzero(labels == digit)
        candidates = np.flatnonzero(utterances["digit"] == digit)
        chosen[where] = rng.choice(candidates, size=where.size, replace=True)
    return MultimodalDataset(
        images=np.concatenate([dataset.images, dataset.images[rows]]),
        audio=np.concatenate([dataset.audio, synthetic[chosen].astype(np.float32)]),
        labels=np.concatenate([dataset.labels, labels]),
        ids=np.concatenate([dataset.ids, dataset.ids.max() + 1 + np.arange(count)]),
        source=f"{dataset.source} + {count} rows of synthetic speech (eSpeak NG)",
        recordings=_unknown_after(dataset.recordings, count),
        speakers=_unknown_after(dataset.speakers, count),
    )


def _unknown_after(values, count):
    # Synthetic rows name no recording or speaker of the data set: None, so nothing groups them
    # with real rows and a speaker adversary skips them.
    return None if values is None else np.concatenate([values, np.full(count, None, dtype=object)])
