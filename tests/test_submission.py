from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmdigits_keras.submission import make_submission, submit, validate_submission, write_submission
from mmdigits_keras.training import load_trained_model


def test_make_and_validate():
    frame = make_submission(np.array([3, 1, 4]))
    assert list(frame.columns) == ["row_id", "label"]
    assert frame["row_id"].tolist() == [0, 1, 2] and frame["label"].tolist() == [3, 1, 4]
    assert validate_submission(frame, rows=3) is frame


@pytest.mark.parametrize("frame, rows, message", [
    (pd.DataFrame({"id": [0], "label": [1]}), None, "columns must be exactly"),
    (pd.DataFrame({"label": [1], "row_id": [0]}), None, "columns must be exactly"),
    (pd.DataFrame({"row_id": [0, 2], "label": [1, 1]}), None, "row_id must be 0..1 in order"),
    (pd.DataFrame({"row_id": [0, 1], "label": [1, 10]}), None, "label must hold integers 0..9"),
    (pd.DataFrame({"row_id": [0, 1], "label": [1.0, 2.5]}), None, "label must hold integers"),
    (pd.DataFrame({"row_id": [0, 1], "label": [1, 2]}), 3, "has 2 rows, the test data has 3"),
    (pd.DataFrame({"row_id": [], "label": []}), None, "has no rows"),
])
def test_validate_rejects(frame, rows, message):
    with pytest.raises(ValueError, match=message):
        validate_submission(frame, rows=rows)


def test_write_is_atomic_refuses_overwrite_and_validates_files(tmp_path):
    path = tmp_path / "sub" / "a.csv"
    write_submission(make_submission([1, 2]), path)
    assert path.read_text().splitlines() == ["row_id,label", "0,1", "1,2"]
    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        write_submission(make_submission([3, 3]), path)
    assert path.read_text().splitlines()[1] == "0,1"
    write_submission(make_submission([3, 3]), path, overwrite=True)
    assert validate_submission(path)["label"].tolist() == [3, 3]
    assert [p.name for p in path.parent.iterdir()] == ["a.csv"]
    with pytest.raises(ValueError, match="is a directory"):
        write_submission(make_submission([1]), tmp_path)
    with pytest.raises(ValueError, match="label must hold"):
        write_submission(make_submission([1]).assign(label=[12]), tmp_path / "b.csv")
    assert not (tmp_path / "b.csv").exists()


def test_train_then_submit_on_kaggle_sample(default_kaggle_run, kaggle_sample, kaggle_sample_test_labels, tmp_path):
    """The issue's end-to-end job on real data, shortened to one epoch of the default model."""
    run = default_kaggle_run
    path, frame = submit(run, kaggle_sample, tmp_path / "submissions" / "default.csv")
    written = validate_submission(path, rows=1000)
    assert written["row_id"].tolist() == list(range(1000))
    accuracy = np.mean(written["label"].to_numpy() == kaggle_sample_test_labels)
    assert accuracy > 0.5, accuracy  # 10 classes: chance is 0.1
    with pytest.raises(ValueError, match="already exists"):
        submit(run, kaggle_sample, path)


def _flat_run(directory):
    """A run directory as mmdigits_keras 0.1.0 wrote it: a flat functional model (no nested
    backbone) and a config.json without "format"."""
    import json

    import keras

    inputs = {"image": keras.Input((28, 28, 1), name="image"), "audio": keras.Input((507,), name="audio")}
    image = keras.layers.Flatten(name="image_flatten")(inputs["image"])
    x = keras.layers.Concatenate(name="fusion_concat")([inputs["audio"], image])
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    directory.mkdir(parents=True)
    keras.Model(inputs, outputs, name="model2_conv1d").save(directory / "model.keras")
    (directory / "config.json").write_text(json.dumps({"builder": "build_model", "model": "model2",
                                                       "training": {"val_fraction": 0.2, "seed": 0}}))
    return directory


def test_a_0_1_0_run_directory_still_submits_and_says_how_to_retrain_for_features(tiny_kaggle, tmp_path, capsys):
    from mmdigits_keras.cli import main

    run = _flat_run(tmp_path / "old")
    path, frame = submit(run, tiny_kaggle, tmp_path / "old.csv")
    validate_submission(path, rows=50)
    code = main(["retrieval", "train", "--data", str(tiny_kaggle), "--out", str(tmp_path / "towers"), "--init",
                 str(run), "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "retrain it with `mmdigits train`" in err[0]
    assert not (tmp_path / "towers").exists()


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_run_directory_saved_by_0_2_0_loads_and_submits_as_it_did(kaggle_sample, tmp_path):
    # tests/fixtures/run_0.2.0: hybrid_cnn (width 0.125) trained 1 epoch on kaggle_sample by
    # mmdigits_keras 0.2.0, whose task models carried Identity feature taps, and the CSV that
    # 0.2.0's `mmdigits submit` wrote from it. Safe mode, no custom objects.
    model = load_trained_model(FIXTURES / "run_0.2.0")
    assert {"image_features", "audio_features"} <= {layer.name for layer in model.layers}
    path, frame = submit(FIXTURES / "run_0.2.0", kaggle_sample, tmp_path / "sub.csv")
    validate_submission(path, rows=1000)
    expected = pd.read_csv(FIXTURES / "run_0.2.0" / "submission.csv")
    assert frame["label"].tolist() == expected["label"].tolist()
