import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_arrays, write_kaggle

from mmdigits_keras.data import (
    MultimodalDataset,
    detect_layout,
    load_dataset,
    load_kaggle,
    load_khacef,
    train_val_split,
)


def test_load_kaggle_sample_matches_contract(kaggle_sample):
    train = load_kaggle(kaggle_sample, "train")
    assert train.images.shape == (4000, 28, 28, 1) and train.images.dtype == np.float32
    assert train.audio.shape == (4000, 507) and train.audio.dtype == np.float32
    assert train.labels.dtype == np.int64 and set(np.unique(train.labels)) == set(range(10))
    assert 0.0 <= train.images.min() and train.images.max() == 1.0
    raw = np.load(kaggle_sample / "x_train_wr.npy")
    np.testing.assert_allclose(train.images.reshape(4000, -1), raw / 255.0, rtol=1e-6)
    test = load_kaggle(kaggle_sample, "test")
    assert len(test) == 1000 and test.labels is None
    np.testing.assert_array_equal(test.ids, np.arange(1000))


def test_khacef_sample_holds_the_same_rows_as_kaggle_sample(shared_data):
    kaggle = load_kaggle(shared_data / "kaggle_sample", "train")
    khacef = load_khacef(shared_data / "khacef_sample", "train")
    np.testing.assert_allclose(khacef.images, kaggle.images, atol=1e-6)
    np.testing.assert_allclose(khacef.audio, kaggle.audio, atol=1e-5)
    np.testing.assert_array_equal(khacef.labels, kaggle.labels)
    assert load_khacef(shared_data / "khacef_sample", "test").labels is not None


def test_detect_layout(shared_data, tmp_path):
    assert detect_layout(shared_data / "kaggle_sample") == "kaggle"
    assert detect_layout(shared_data / "khacef_sample") == "khacef"
    assert len(load_dataset(shared_data / "khacef_sample", "test")) == 1000
    with pytest.raises(ValueError, match="neither the Kaggle layout"):
        detect_layout(tmp_path)


def _good(tmp_path, rows=40):
    pixels, audio, labels = synthetic_arrays(rows)
    return write_kaggle(tmp_path / "d", pixels=pixels, audio=audio, labels=labels,
                        test_pixels=pixels[:10], test_audio=audio[:10])


def _set(directory, name, value):
    path = directory / name
    if isinstance(value, pd.DataFrame):
        value.to_csv(path, index=False)
    elif isinstance(value, str):
        path.write_text(value)
    else:
        np.save(path, value)
    return directory


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path.parent


def _pickled(directory, name):
    with open(directory / name, "wb") as f:  # a .npy holding a pickled Python object
        np.save(f, np.array([{"evil": 1}] * 40, dtype=object), allow_pickle=True)
    return directory


BAD_INPUTS = {
    "missing file": (lambda d: (d / "x_train_sp.npy").unlink() or d, "x_train_sp.npy: file not found"),
    "wrong columns": (lambda d: _set(d, "x_train_wr.npy", np.zeros((40, 783))), r"x_train_wr.npy: expected shape \(rows, 784\)"),
    "row counts disagree": (lambda d: _set(d, "x_train_sp.npy", np.zeros((39, 507))), "row counts disagree"),
    "nan": (lambda d: _set(d, "x_train_sp.npy", np.where(np.eye(40, 507) == 1, np.nan, 0.0)), "x_train_sp.npy: 40 NaN/inf"),
    "inf": (lambda d: _set(d, "x_train_wr.npy", np.full((40, 784), np.inf)), "x_train_wr.npy: .*NaN/inf"),
    "pixels out of range": (lambda d: _set(d, "x_train_wr.npy", np.full((40, 784), 1e6)), r"pixel values must lie in \[0, 255\]"),
    "label outside 0..9": (lambda d: _set(d, "y_train.csv", pd.DataFrame({"row_id": range(40), "label": [10] * 40})), r"y_train.csv: labels must be in 0..9"),
    "negative label": (lambda d: _set(d, "y_train.csv", pd.DataFrame({"row_id": range(40), "label": [-1] * 40})), r"labels must be in 0..9"),
    "fractional label": (lambda d: _set(d, "y_train.csv", pd.DataFrame({"row_id": range(40), "label": [1.5] * 40})), "fractional"),
    "string label": (lambda d: _set(d, "y_train.csv", pd.DataFrame({"row_id": range(40), "label": ["seven"] * 40})), "labels must be integers"),
    "no label column": (lambda d: _set(d, "y_train.csv", pd.DataFrame({"row_id": range(40), "digit": [1] * 40})), "no `label` column"),
    "label rows disagree": (lambda d: _set(d, "y_train.csv", pd.DataFrame({"row_id": range(39), "label": [1] * 39})), "has 39 rows but"),
    "bad row ids": (lambda d: _set(d, "y_train.csv", pd.DataFrame({"row_id": [5] * 40, "label": [1] * 40})), "row_id` must be the integers"),
    "empty csv": (lambda d: _set(d, "y_train.csv", ""), "y_train.csv: not a readable CSV"),
    "object npy": (lambda d: _pickled(d, "x_train_wr.npy"), "pickled/object array"),
    "string npy": (lambda d: _set(d, "x_train_sp.npy", np.full((40, 507), "a")), "expected numeric speech features"),
    "truncated npy": (lambda d: _truncate(d / "x_train_sp.npy"), "x_train_sp.npy: not a readable .npy"),
    "not npy": (lambda d: _set(d, "x_train_sp.npy", "row,col\n1,2\n"), "x_train_sp.npy: not a .npy file"),
    "directory for file": (lambda d: (d / "x_train_wr.npy").unlink() or (d / "x_train_wr.npy").mkdir() or d, "expected a file"),
    "zero rows": (lambda d: _set(d, "x_train_wr.npy", np.zeros((0, 784))), "has 0 rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_value_error_naming_file(tmp_path, case):
    spoil, message = BAD_INPUTS[case]
    directory = spoil(_good(tmp_path))
    with pytest.raises(ValueError, match=message):
        load_kaggle(directory, "train")


def test_pickle_npy_is_not_executed(tmp_path):
    directory = _good(tmp_path)
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(directory / "x_train_sp.npy", "wb") as f:
        np.save(f, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled"):
        load_kaggle(directory)
    assert not marker.exists()
    assert pickle  # the payload above is what pickle would run


def test_missing_folder_and_bad_split(tmp_path):
    with pytest.raises(ValueError, match="data folder not found"):
        load_kaggle(tmp_path / "nope")
    with pytest.raises(ValueError, match="`split` must be one of"):
        load_kaggle(_good(tmp_path), "validation")


def test_rows_follow_row_id_order(tmp_path):
    directory = _good(tmp_path)
    frame = pd.read_csv(directory / "y_train.csv")
    expected = frame["label"].to_numpy()
    shuffled = frame.sample(frac=1.0, random_state=1)[["label", "row_id"]]  # reordered columns too
    shuffled["extra"] = "x"
    shuffled.to_csv(directory / "y_train.csv", index=False)
    np.testing.assert_array_equal(load_kaggle(directory).labels, expected)


def test_test_split_reads_optional_labels(tmp_path):
    pixels, audio, labels = synthetic_arrays(30)
    directory = write_kaggle(tmp_path / "d", pixels=pixels, audio=audio, labels=labels,
                             test_pixels=pixels[:10], test_audio=audio[:10], test_labels=labels[:10])
    np.testing.assert_array_equal(load_kaggle(directory, "test").labels, labels[:10])
    # labels=False (semi-supervised training's test rows) never opens the label file: a broken one is not read.
    (directory / "y_test.csv").write_text("not a label file")
    with pytest.raises(ValueError, match="y_test.csv"):
        load_kaggle(directory, "test")
    unlabeled = load_dataset(directory, "test", labels=False)
    assert unlabeled.labels is None and np.array_equal(unlabeled.ids, np.arange(10))
    np.save(directory / "data_wr_test.npy", pixels[:10] / 255.0)  # Khacef, without labels_test.npy at all
    np.save(directory / "data_sp_test.npy", audio[:10])
    khacef = load_khacef(directory, "test", labels=False)
    assert khacef.labels is None and np.allclose(khacef.images, unlabeled.images)


def test_khacef_accepts_0_255_pixels_and_column_labels(tmp_path):
    pixels, audio, labels = synthetic_arrays(20)
    np.save(tmp_path / "data_wr_train.npy", pixels.astype(np.float32))
    np.save(tmp_path / "data_sp_train.npy", audio.astype(np.float32))
    np.save(tmp_path / "labels_train.npy", labels.reshape(-1, 1))
    data = load_khacef(tmp_path)
    np.testing.assert_allclose(data.images.reshape(20, -1), pixels / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.labels, labels)
    np.save(tmp_path / "labels_train.npy", labels[:19])
    with pytest.raises(ValueError, match="row counts disagree"):
        load_khacef(tmp_path)


def _dataset(labels):
    n = len(labels)
    return MultimodalDataset(images=np.zeros((n, 28, 28, 1), np.float32), audio=np.zeros((n, 507), np.float32),
                             labels=np.asarray(labels, np.int64), ids=np.arange(n))


def test_a_row_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), [50, 50, 50, 50, 50, 50, 50, 50, 50, 150])
    data = _dataset(labels)
    train, val = train_val_split(data, val_fraction=0.2, seed=3, split="row")
    assert len(val) == 120 and len(train) == 480
    assert set(train.ids).isdisjoint(val.ids) and len(set(train.ids) | set(val.ids)) == 600
    np.testing.assert_array_equal(np.bincount(val.labels), [10] * 9 + [30])
    again = train_val_split(data, val_fraction=0.2, seed=3, split="row")[1]
    other = train_val_split(data, val_fraction=0.2, seed=4, split="row")[1]
    np.testing.assert_array_equal(again.ids, val.ids)
    assert not np.array_equal(other.ids, val.ids)


def test_train_val_split_refuses_bad_arguments():
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(_dataset(np.arange(20) % 10), val_fraction=1.0)
    with pytest.raises(ValueError, match="single row"):
        train_val_split(_dataset([0, 0, 1]), val_fraction=0.5)
    unlabelled = MultimodalDataset(images=np.zeros((4, 28, 28, 1)), audio=np.zeros((4, 507)), labels=None,
                                   ids=np.arange(4))
    with pytest.raises(ValueError, match="has no labels"):
        train_val_split(unlabelled)


def test_fingerprint_changes_with_content():
    a = _dataset(np.arange(20) % 10)
    b = _dataset((np.arange(20) + 1) % 10)
    assert a.fingerprint() == _dataset(np.arange(20) % 10).fingerprint()
    assert a.fingerprint() != b.fingerprint()


def test_test_files_whose_row_counts_disagree(tmp_path):
    directory = _good(tmp_path)
    np.save(directory / "x_test_sp.npy", np.zeros((9, 507)))
    with pytest.raises(ValueError, match=r"row counts disagree between files \(x_test_wr.npy: 10, x_test_sp.npy: 9\)"):
        load_kaggle(directory, "test")


def test_images_already_in_0_1_are_read_as_scaled_with_one_warning_per_file(tmp_path, caplog):
    directory = _good(tmp_path)
    reference = load_kaggle(directory, "train")
    pixels = np.load(directory / "x_train_wr.npy")
    np.save(directory / "x_train_wr.npy", (pixels / 255.0).astype(np.float32))  # train scaled, test not
    with caplog.at_level("WARNING", logger="mmdigits_keras"):
        train, test = load_kaggle(directory, "train"), load_kaggle(directory, "test")
    np.testing.assert_allclose(train.images, reference.images, atol=1e-6)  # not divided by 255 twice
    assert test.images.max() == pytest.approx(1.0)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [f"{directory / 'x_train_wr.npy'}: pixel values lie in [0, 1], not 0..255: read as already "
                      "scaled"]


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1)])
def test_image_shaped_pixels_and_frame_shaped_speech_are_flattened(tmp_path, shape):
    directory = _good(tmp_path)
    reference = load_kaggle(directory, "train")
    np.save(directory / "x_train_wr.npy", np.load(directory / "x_train_wr.npy").reshape(40, *shape))
    np.save(directory / "x_train_sp.npy", np.load(directory / "x_train_sp.npy").reshape(40, 39, 13))
    loaded = load_kaggle(directory, "train")
    np.testing.assert_array_equal(loaded.images, reference.images)
    np.testing.assert_array_equal(loaded.audio, reference.audio)
    assert loaded.fingerprint() == reference.fingerprint()
    np.save(directory / "x_train_sp.npy", np.zeros((40, 13, 39)))  # frames and coefficients swapped: refused
    with pytest.raises(ValueError, match=r"x_train_sp.npy: expected shape .*\(rows, 39, 13\).* found \(40, 13, 39\)"):
        load_kaggle(directory, "train")


def test_float_labels_of_whole_numbers_are_read_as_classes(tmp_path):
    directory = _good(tmp_path)
    frame = pd.read_csv(directory / "y_train.csv")
    (directory / "y_train.csv").write_text("row_id,label\n" + "".join(f"{i},{v}.0\n" for i, v in
                                                                     zip(frame["row_id"], frame["label"])))
    loaded = load_kaggle(directory, "train")
    assert loaded.labels.dtype == np.int64
    np.testing.assert_array_equal(loaded.labels, frame["label"].to_numpy())
