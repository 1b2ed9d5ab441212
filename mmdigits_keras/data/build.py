"""Build a multimodal data set from wav recordings and MNIST images (`mmdigits data build`).

Recordings (FSDD, AudioMNIST or Speech Commands folders) become `mfcc_507` (or log-mel)
features; each image is paired with a random utterance of the same digit (the Khacef rule);
the result is written in the Kaggle or Khacef layout with a ``manifest.json`` that lists the
source files, speakers, counts and feature settings. Optionally speaker-disjoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mmdigits_keras.data.channels import apply_channel, check_channel, speed_perturb
from mmdigits_keras.data.constants import FEATURE_KINDS, NUM_CLASSES, NUM_FRAMES
from mmdigits_keras.data.features import HOP_SECONDS, SAMPLE_RATE, WINDOW_SECONDS, speech_features
from mmdigits_keras.data.groups import write_groups
from mmdigits_keras.data.sources import find_recordings, load_image_pools, read_wav
from mmdigits_keras.utils.files import check_output_free, publish_directory, staged_directory, write_json
from mmdigits_keras.utils.progress import progress_bar

logger = logging.getLogger("mmdigits_keras")

LAYOUTS = ("kaggle", "khacef")


def _stratified_split(labels, test_fraction, seed):
    rows = np.arange(len(labels))
    train_rows, test_rows = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=labels)
    return np.sort(train_rows), np.sort(test_rows)


def pair_by_digit(image_labels, audio_digits, rng, split):
    """Khacef rule: each image gets a random utterance of the same digit (with replacement).

    Args:
        image_labels: int (N,) digits of the images.
        audio_digits: int (U,) digits of the candidate utterances.
        rng: A `numpy.random.Generator`.
        split: Name of the part, for the error message.

    Returns:
        int64 (N,) indices into the utterances.

    Raises:
        ValueError: a digit of the images has no utterance.
    """
    chosen = np.empty(len(image_labels), dtype=np.int64)
    for digit in range(NUM_CLASSES):
        rows = np.flatnonzero(image_labels == digit)
        if rows.size == 0:
            continue
        candidates = np.flatnonzero(audio_digits == digit)
        if candidates.size == 0:
            raise ValueError(f"digit {digit} has no recordings in the {split} part; "
                             f"a data set without it would be silently smaller")
        chosen[rows] = rng.choice(candidates, size=rows.size, replace=True)
    return chosen


def build_dataset(
    *,
    audio,
    audio_format,
    images,
    out,
    layout="kaggle",
    test_speakers=None,
    test_fraction=0.2,
    seed=0,
    features="mfcc",
    channel=None,
    speed_perturbation=(),
    overwrite=False,
    verbose=1,
):
    """Builds a paired image + speech data set from recordings and images.

    Args:
        audio: Recordings folder.
        audio_format: ``"fsdd"``, ``"audiomnist"`` or ``"speechcommands"`` (file naming).
        images: Image source (see `load_image_pools`).
        out: Output folder (written aside, then renamed into place).
        layout: ``"kaggle"`` (plus ``y_test.csv``) or ``"khacef"``; either with
            ``groups_{train,test}.csv`` (each row's recording and speaker, for grouped validation).
        test_speakers: Speakers whose recordings form the test part (speaker-disjoint); by
            default recordings are split at random, stratified by digit.
        test_fraction: Test share of recordings (without `test_speakers`) and of images (when
            the image source is a single pool), in (0, 1).
        seed: Seed of the splits and the pairing.
        features: ``"mfcc"`` (39 x 13 = 507, the default, docs/data.md) or ``"logmel"``
            (39 x 40 = 1560).
        channel: None, or a simulated recording condition applied to the *test* recordings
            only (`mmdigits_keras.data.channels.CHANNELS`: ``telephone``, ``gain+12``,
            ``gain-12``, ``noise20``, ``noise10``, ``room``). The training part and the
            pairing are the same as without it (same seed), so one model is scored on each.
        speed_perturbation: Speed factors in [0.5, 2] other than 1 (e.g. ``(0.9, 1.1)``, Ko et
            al. 2015): each training recording is added again at each speed, as more
            utterances to pair images with (the number of rows does not change).
        overwrite: Replace an existing `out`.
        verbose: 1 shows a progress bar (on a terminal or in a notebook) and prints skipped files.

    Returns:
        The output folder as a `Path`.

    Raises:
        ValueError: bad arguments, a missing folder or image source, an unknown test
            speaker, a digit without recordings in a part, an existing `out` without
            `overwrite`. Corrupt, empty or unparseable recordings are skipped, printed and
            listed in the manifest.
    """
    speed_perturbation = _checked_arguments(layout, features, channel, speed_perturbation, test_fraction)
    out = Path(out)
    check_output_free(out, overwrite=overwrite)
    audio = Path(audio)
    recordings, skipped = find_recordings(audio, audio_format)
    pools, image_description = load_image_pools(images)
    feats, kept = _read_features(recordings, audio, features, skipped, verbose=verbose)
    recordings_read = len(kept)
    digits = np.array([r["digit"] for r in kept])
    speakers = np.array([r["speaker"] for r in kept])
    audio_rows, test_speakers = _split_recordings(digits, speakers, test_speakers, test_fraction, seed)
    if channel is not None:
        _apply_test_channel(feats, kept, audio_rows["test"], channel, features, seed)
    if speed_perturbation:
        feats, digits, speakers, kept = _add_speed_copies(feats, digits, speakers, kept, audio_rows, speed_perturbation,
                                                          features)
    parts, mean, std = _pair_parts(_image_parts(pools, images, test_fraction, seed), audio_rows, feats, digits, seed)
    manifest = {
        "layout": layout,
        "seed": seed,
        "audio": {"source": str(audio.resolve()), "format": audio_format, "recordings": recordings_read,
                  "skipped": skipped},
        "images": {"source": image_description},
        "features": {"kind": features, "frames": NUM_FRAMES, "values_per_frame": FEATURE_KINDS[features],
                     "window_seconds": WINDOW_SECONDS, "hop_seconds": HOP_SECONDS, "sample_rate": SAMPLE_RATE,
                     "standardized": "per column with the training rows' mean and std (below)",
                     "mean": mean.tolist(), "std": std.tolist()},
        "pairing": "each image gets a random utterance of the same digit from its part (Khacef rule)",
        "channel": {"test": channel, "speed_perturbation": list(speed_perturbation)},
        "split": {"test_speakers": test_speakers or None, "test_fraction": None if test_speakers else test_fraction},
    }
    with staged_directory(out) as staging:  # removed again if a write fails (a full disk)
        _write_layout(staging, layout, parts)
        # A speed-perturbed copy is the same recording: one group with its original.
        originals = [str(r["path"].relative_to(audio)) for r in kept]
        for split, part in parts.items():
            write_groups(staging, split, recordings=[originals[i] for i in part["recordings"]],
                         speakers=speakers[part["recordings"]])
        relative = [name + (f" (speed x{r['speed']})" if "speed" in r else "") for name, r in zip(originals, kept)]
        parts_record = _part_records(parts, audio_rows, digits, speakers, relative)
        write_json(staging / "manifest.json", {**manifest, **parts_record})
        return publish_directory(staging, out, overwrite=overwrite)


def _part_records(parts, audio_rows, digits, speakers, relative):
    """The manifest's record of each part: rows, speakers, counts per digit, source files."""
    return {split: {
        "rows": int(len(part["labels"])),
        "rows_per_digit": np.bincount(part["labels"], minlength=NUM_CLASSES).tolist(),
        "speakers": sorted(set(speakers[audio_rows[split]].tolist())),
        "recordings_per_digit": np.bincount(digits[audio_rows[split]], minlength=NUM_CLASSES).tolist(),
        "source_files": [relative[i] for i in audio_rows[split]],
        "row_recordings": [relative[i] for i in part["recordings"]],
    } for split, part in parts.items()}


def _checked_arguments(layout, features, channel, speed_perturbation, test_fraction):
    """Refuses bad arguments before any work; returns the speed factors as a tuple of floats."""
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {list(LAYOUTS)}. Received: layout={layout!r}")
    if features not in FEATURE_KINDS:
        raise ValueError(f"`features` must be one of {list(FEATURE_KINDS)}. Received: features={features!r}")
    check_channel(channel)
    speed_perturbation = tuple(float(f) for f in speed_perturbation)
    if any(not 0.5 <= f <= 2.0 or f == 1.0 for f in speed_perturbation):
        raise ValueError(f"`speed_perturbation` factors must be in [0.5, 2] and not 1. "
                         f"Received: speed_perturbation={speed_perturbation!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be in (0, 1). Received: test_fraction={test_fraction!r}")
    return speed_perturbation


def _read_features(recordings, audio, features, skipped, *, verbose):
    """float64 (R, F) features of the readable `recordings` and those records; an unreadable
    one is appended to `skipped` (and logged when `verbose`)."""
    progress = progress_bar(len(recordings), unit="recording", enabled=bool(verbose))
    rows, kept = [], []
    for record in recordings:
        try:
            wave, rate = read_wav(record["path"])
            rows.append(speech_features(wave, rate, features).reshape(-1))
            kept.append(record)
        except ValueError as error:
            skipped.append({"file": str(record["path"].relative_to(audio)), "reason": str(error)})
        progress.update(1)
    progress.close()
    if verbose:
        for item in skipped:
            logger.warning("skipped %s: %s", item["file"], item["reason"])
    if not kept:
        raise ValueError(f"{audio}: none of the recordings could be read")
    return np.stack(rows).astype(np.float64), kept


def _split_recordings(digits, speakers, test_speakers, test_fraction, seed):
    """``{"train": rows, "test": rows}`` of the recordings (by speaker, or at random stratified
    by digit) and the sorted test speakers (None without)."""
    if not test_speakers:
        train_rows, test_rows = _stratified_split(digits, test_fraction, seed)
        return {"train": train_rows, "test": test_rows}, test_speakers
    test_speakers = sorted(set(test_speakers))
    unknown = [s for s in test_speakers if s not in set(speakers)]
    if unknown:
        raise ValueError(f"`test_speakers` {unknown} not among the speakers {sorted(set(speakers))}")
    is_test = np.isin(speakers, test_speakers)
    if is_test.all():
        raise ValueError("`test_speakers` leaves no speaker for training")
    return {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}, test_speakers


def _apply_test_channel(feats, kept, test_rows, channel, features, seed):
    """Replaces the test recordings' features (in place) by those of the recordings through `channel`."""
    for row in test_rows:
        wave, rate = read_wav(kept[row]["path"])
        feats[row] = speech_features(apply_channel(wave, rate, channel, seed=seed, key=kept[row]["path"].name),
                                     rate, features).reshape(-1)


def _add_speed_copies(feats, digits, speakers, kept, audio_rows, factors, features):
    """Each training recording again at each speed factor, as more utterances of its part
    (`audio_rows["train"]` grows in place); returns the extended features, digits, speakers, records."""
    originals = audio_rows["train"]
    extra = []
    for row in originals:
        wave, rate = read_wav(kept[row]["path"])
        extra += [speech_features(speed_perturb(apply_channel(wave, rate, None), f), rate, features).reshape(-1)
                  for f in factors]
    copies = np.repeat(originals, len(factors))
    audio_rows["train"] = np.concatenate([originals, len(feats) + np.arange(len(copies))])
    return (np.concatenate([feats, np.stack(extra)]), np.concatenate([digits, digits[copies]]),
            np.concatenate([speakers, speakers[copies]]),
            kept + [{**kept[row], "speed": f} for row in originals for f in factors])


def _image_parts(pools, images, test_fraction, seed):
    """``{"train": (pixels, labels), "test": ...}``: a single pool split stratified by digit."""
    if "all" in pools:
        pixels, labels = pools["all"]
        train_rows, test_rows = _stratified_split(labels, test_fraction, seed)
        pools = {"train": (pixels[train_rows], labels[train_rows]), "test": (pixels[test_rows], labels[test_rows])}
    if set(pools) != {"train", "test"}:
        raise ValueError(f"{images}: needs both training and test images (found {sorted(pools)})")
    return pools


def _pair_parts(pools, audio_rows, feats, digits, seed):
    """Each part's images paired with its utterances (`pair_by_digit`), the speech standardized
    with the training rows' mean and std; returns the parts, the mean and the std."""
    rng = np.random.default_rng(seed)
    parts = {}
    for split in ("train", "test"):
        pixels, labels = pools[split]
        chosen = audio_rows[split][pair_by_digit(labels, digits[audio_rows[split]], rng, split)]
        parts[split] = {"pixels": pixels, "labels": labels, "audio": feats[chosen], "recordings": chosen}
    mean = parts["train"]["audio"].mean(axis=0)
    std = parts["train"]["audio"].std(axis=0) + 1e-8
    for part in parts.values():
        part["audio"] = ((part["audio"] - mean) / std).astype(np.float32)
    return parts, mean, std


def _write_layout(directory, layout, parts):
    for split, part in parts.items():
        if layout == "kaggle":
            np.save(directory / f"x_{split}_wr.npy", part["pixels"].astype(np.float32))
            np.save(directory / f"x_{split}_sp.npy", part["audio"])
            pd.DataFrame({"row_id": np.arange(len(part["labels"])), "label": part["labels"]}).to_csv(
                directory / f"y_{split}.csv", index=False)
        else:
            np.save(directory / f"data_wr_{split}.npy", (part["pixels"] / 255.0).astype(np.float32))
            np.save(directory / f"data_sp_{split}.npy", part["audio"])
            np.save(directory / f"labels_{split}.npy", part["labels"].astype(np.int64))
