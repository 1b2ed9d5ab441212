"""Property tests: any generated input gives a valid result or a ValueError, nothing else."""

import string
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mmdigits_keras.data import load_kaggle, load_khacef
from mmdigits_keras.data.sources import MAX_CHANNELS, MAX_SECONDS, SAMPLE_RATES, read_wav
from mmdigits_keras.submission import validate_submission

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

dtypes = st.sampled_from(["float64", "float32", "int64", "uint8", "int16", "bool", "U3"])


# Row shapes a user may store besides flat rows: images, frames x coefficients, and mistakes.
ROW_SHAPES = {784: [(28, 28), (28, 28, 1), (28, 27)], 507: [(39, 13), (13, 39), (39, 13, 1)]}


@st.composite
def matrices(draw, columns):
    rows = draw(st.integers(0, 6))
    cols = draw(st.sampled_from([columns, columns, columns - 1, 1]))
    dtype = draw(dtypes)
    elements = None
    if dtype.startswith("float"):
        elements = st.floats(allow_nan=True, allow_infinity=True, width=32 if dtype == "float32" else 64)
    shapes = [(rows, cols), (rows,), (rows, cols, 1), *((rows, *shape) for shape in ROW_SHAPES.get(columns, []))]
    array = draw(hnp.arrays(dtype, draw(st.sampled_from(shapes)), elements=elements))
    return array


labels_text = st.lists(st.one_of(st.integers(-3, 12), st.floats(allow_nan=True), st.text(string.ascii_letters, max_size=3)),
                       min_size=0, max_size=7)


def _valid(data):
    n = len(data)
    assert data.images.shape == (n, 28, 28, 1) and data.images.dtype == np.float32
    assert data.audio.shape in ((n, 507), (n, 1560)) and data.audio.dtype == np.float32
    assert np.all(np.isfinite(data.audio)) and 0 <= data.images.min() and data.images.max() <= 1
    assert data.labels is None or (data.labels.dtype == np.int64 and set(np.unique(data.labels)) <= set(range(10)))


@SETTINGS
@given(pixels=matrices(784), audio=matrices(507), test_pixels=matrices(784), test_audio=matrices(507),
       labels=labels_text,
       header=st.sampled_from(["row_id,label", "label", "label,row_id", "id,digit", "row_id,label,extra"]))
def test_load_kaggle_returns_valid_data_or_a_value_error_naming_a_file(pixels, audio, test_pixels, test_audio,
                                                                        labels, header):
    """The four arrays of a Kaggle folder in random shapes, dtypes and values: each split loads
    into a valid data set or raises a ValueError naming one of its files (or the folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, array in (("x_train_wr", pixels), ("x_train_sp", audio), ("x_test_wr", test_pixels),
                            ("x_test_sp", test_audio)):
            np.save(folder / f"{name}.npy", array)
        columns = header.split(",")
        rows = [",".join({"row_id": str(i), "label": str(v), "extra": "x", "id": str(i), "digit": str(v)}[c]
                         for c in columns) for i, v in enumerate(labels)]
        (folder / "y_train.csv").write_text("\n".join([header, *rows]) + "\n")
        for split in ("train", "test"):
            try:
                data = load_kaggle(folder, split)
            except ValueError as error:
                assert str(folder) in str(error), error  # a file of the folder, or the folder itself
                continue
            _valid(data)


@SETTINGS
@given(pixels=matrices(784), audio=matrices(507),
       labels=hnp.arrays(st.sampled_from(["int64", "float64", "U2"]), st.integers(0, 6)))
def test_load_khacef_returns_valid_data_or_value_error(pixels, audio, labels):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "data_wr_train.npy", pixels)
        np.save(folder / "data_sp_train.npy", audio)
        np.save(folder / "labels_train.npy", labels)
        try:
            data = load_khacef(folder)
        except ValueError as error:
            assert str(folder) in str(error), error
            return
        _valid(data)
        assert len(data.labels) == len(data.images)


cells = st.one_of(st.integers(-2, 12), st.floats(allow_nan=True), st.text(max_size=2), st.none())


@SETTINGS
@given(columns=st.lists(st.sampled_from(["row_id", "label", "id", "x"]), min_size=0, max_size=3, unique=True),
       values=st.lists(st.tuples(cells, cells, cells), max_size=6), rows=st.one_of(st.none(), st.integers(0, 6)))
def test_validate_submission_frames(columns, values, rows):
    frame = pd.DataFrame([v[: len(columns)] for v in values], columns=columns) if columns else pd.DataFrame()
    try:
        checked = validate_submission(frame, rows=rows)
    except ValueError as error:
        assert str(error)
        return
    assert list(checked.columns) == ["row_id", "label"]
    assert checked["row_id"].tolist() == list(range(len(checked)))
    assert checked["label"].between(0, 9).all()


@SETTINGS
@given(text=st.text(alphabet=string.printable, max_size=60))
def test_validate_submission_files(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.csv"
        path.write_text(text)
        try:
            validate_submission(path)
        except ValueError as error:
            assert str(error)


@st.composite
def wav_bytes(draw):
    """RIFF files with every header field drawn (format, channels, rate, block alignment, bits,
    a data size claim up to 4 GiB) and a payload that may be shorter or longer than claimed."""
    fmt = struct.pack("<HHIIHH", draw(st.sampled_from([1, 3, 0, 0xFFFE, 7])), draw(st.integers(0, 65535)),
                      draw(st.one_of(st.sampled_from([0, 1, 8000, 44100]), st.integers(0, 2**32 - 1))),
                      draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 65535)),
                      draw(st.sampled_from([0, 1, 8, 16, 24, 32, 64, 65535])))
    payload = draw(st.binary(max_size=600))
    claim = draw(st.one_of(st.just(len(payload)), st.integers(0, 2**32 - 1)))
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", claim) + payload
    riff_size = draw(st.one_of(st.just(len(body)), st.integers(0, 2**32 - 1)))
    return (b"RIFF" + struct.pack("<I", riff_size) + body)[:draw(st.integers(0, 2000))]


@SETTINGS
@given(content=st.one_of(st.binary(max_size=300), wav_bytes()))
def test_read_wav_returns_a_bounded_recording_or_value_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.wav"
        path.write_bytes(content)
        tracemalloc.start()
        try:
            wave, rate = read_wav(path)
        except ValueError as error:
            assert str(error)
            return
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            # A header may claim 4 GiB; what is allocated follows the file (< 2.1 kB here).
            assert peak < 2**20, peak
    assert wave.dtype == np.float64 and np.all(np.isfinite(wave)) and wave.size > 0
    assert SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]
    assert wave.ndim == 1 or 1 <= wave.shape[1] <= MAX_CHANNELS
    assert wave.shape[0] / rate <= MAX_SECONDS
