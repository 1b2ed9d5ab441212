import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmdigits_keras.cli import build_parser, main
from mmdigits_keras.data import load_kaggle
from mmdigits_keras.training import DEFAULT_MODEL, RECIPES, load_trained_model


def test_models_lists_registry_with_parameter_counts(capsys):
    assert main(["models", "model*_lstm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "parameters", "modalities", "source"]
    assert [line.split()[0] for line in lines[1:]] == ["model1_lstm", "model2_lstm", "model3_lstm", "model4_lstm"]
    assert main(["models", "model2"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert "6,766,478" in row and "image+audio" in row and "seed 000, Table 2" in row
    assert main(["models", "--modality", "image"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert "image_cnn" in names and "audio_cnn" not in names and "model2" in names


def _one_line_error(capsys, code, *fragments):
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("mmdigits: error: ") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_bad_data_is_one_line_exit_2(tiny_kaggle, tmp_path, capsys):
    (tiny_kaggle / "y_train.csv").write_text("row_id,digit\n0,1\n")
    code = main(["train", "--data", str(tiny_kaggle), "--out", str(tmp_path / "run"), "--epochs", "1"])
    _one_line_error(capsys, code, "y_train.csv", "no `label` column")
    code = main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")])
    _one_line_error(capsys, code, "missing: data folder not found")
    code = main(["train", "--data", str(tiny_kaggle), "--out", str(tmp_path / "run"), "--model", "resnet"])
    _one_line_error(capsys, code, "model_name")
    code = main(["train", "--data", str(tiny_kaggle), "--out", str(tmp_path / "run"), "--epochs", "0"])
    _one_line_error(capsys, code, "epochs")
    assert not (tmp_path / "run").exists()


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "x"])  # --out missing
    assert exit_info.value.code == 2


def test_train_and_submit(tiny_kaggle, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_kaggle), "--model", "model3", "--out", str(run), "--recipe", "plain",
                 "--epochs", "1", "--batch-size", "32", "--learning-rate", "0.002", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "validation accuracy" in printed
    # Captured output is not a terminal: one line per epoch, no carriage-return bar updates.
    assert printed.count("val_loss") == 1 and "\r" not in printed
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["batch_size"] == 32 and config["training"]["learning_rate"] == 0.002
    csv = tmp_path / "submissions" / "m3.csv"
    assert main(["submit", "--model", str(run), "--data", str(tiny_kaggle), "--out", str(csv)]) == 0
    frame = pd.read_csv(csv)
    assert list(frame.columns) == ["row_id", "label"] and len(frame) == 50
    code = main(["submit", "--model", str(run), "--data", str(tiny_kaggle), "--out", str(csv)])
    _one_line_error(capsys, code, "already exists; pass --overwrite")
    assert main(["submit", "--model", str(run), "--data", str(tiny_kaggle), "--out", str(csv), "--overwrite"]) == 0


@pytest.mark.slow(22)
def test_demo_runs_end_to_end_and_says_demo(tmp_path, capsys):
    # Once: the demo's determinism is its parts' (tests/data/test_demo.py: same seed, same bytes;
    # tests/training/test_classification.py: same seed, same predictions).
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("DEMO DATA")
    assert "validation accuracy" in printed and "demo test accuracy" in printed
    submission = pd.read_csv(out / "submission.csv")
    assert len(submission) == 1000
    assert "DEMO DATA" in json.loads((out / "run" / "metrics.json").read_text())["data"]
    test = load_kaggle(out / "data", "test")
    predicted = load_trained_model(out / "run").predict(test.inputs(), verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(submission["label"], predicted)


@pytest.mark.parametrize("command", [[sys.executable, "-m", "mmdigits_keras"],
                                     [str(Path(sys.executable).parent / "mmdigits")]])
def test_entry_points(command):
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for name in ("train", "submit", "demo", "models"):
        assert name in done.stdout


class _Called(Exception):
    pass


def test_options_not_given_are_left_to_the_library(monkeypatch, capsys):
    import inspect

    import mmdigits_keras as mk
    from mmdigits_keras.utils import names

    seen = {}

    def record(name):
        def called(*args, **kwargs):
            seen[name] = kwargs
            raise _Called

        return called

    for name in ("train", "run_search", "run_demo", "train_retrieval"):
        monkeypatch.setattr(mk, name, record(name))
    for argv in (["train", "--data", "d", "--out", "o"], ["tune", "--data", "d", "--out", "o"], ["demo"],
                 ["retrieval", "train", "--data", "d", "--out", "o"], ["train", "--data", "d", "--out", "o",
                                                                      "--epochs", "3", "--seed", "0"]):
        with pytest.raises(_Called):
            main(argv)
        if argv[0] == "train" and "--epochs" not in argv:
            assert set(seen["train"]) == {"out", "overwrite", "model_kwargs"}
    assert seen["train"]["epochs"] == 3 and seen["train"]["seed"] == 0  # given: passed, even when falsy
    assert set(seen["run_search"]) == {"out", "space", "overwrite", "settings"}
    assert seen["run_search"]["settings"] == mk.TrainingSettings()  # nothing given: the defaults
    assert set(seen["run_demo"]) == set()
    assert set(seen["train_retrieval"]) == {"out", "overwrite"}
    # The library's defaults, which --help quotes, come from utils/names.py.
    train_defaults = {k: p.default for k, p in inspect.signature(mk.training.train).parameters.items()}
    assert (train_defaults["model"], train_defaults["recipe"], mk.TrainingSettings().epochs) == (
        DEFAULT_MODEL, names.DEFAULT_RECIPE, names.EPOCHS)
    search_defaults = {k: p.default for k, p in inspect.signature(mk.tuning.run_search).parameters.items()}
    assert (search_defaults["model"], search_defaults["settings"], search_defaults["max_trials"]) == (
        DEFAULT_MODEL, None, names.MAX_TRIALS)
    assert names.DEFAULT_RECIPE in RECIPES
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert f"(default {names.EPOCHS}; early stopping)" in " ".join(capsys.readouterr().out.split())
