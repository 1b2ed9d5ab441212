import argparse
import dataclasses
import errno
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_arrays

import mmdigits_keras as mk
from mmdigits_keras.cli import build_parser, main
from mmdigits_keras.data import load_kaggle
from mmdigits_keras.submission import validate_submission
from mmdigits_keras.training import DEFAULT_MODEL, RECIPES, load_trained_model
from mmdigits_keras.utils import defaults
from mmdigits_keras.utils.defaults import DEFAULT_AUGMENT_ON


def test_models_lists_registry_with_parameter_counts(capsys):
    assert main(["models", "model*_lstm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "parameters", "modalities", "source"]
    assert [line.split()[0] for line in lines[1:]] == ["model1_lstm", "model2_lstm", "model3_lstm", "model4_lstm"]
    assert main(["models", "model2"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert "6,766,478" in row and "image+audio" in row and "Nippani Ravi, Table 2" in row
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
    # The library's argument names, in the CLI's words (its flags); a typo names the nearest model.
    code = main(["train", "--data", str(tiny_kaggle), "--out", str(tmp_path / "run"), "--model", "hybrid_cnnn"])
    _one_line_error(capsys, code, "`--model` must be one of", "Received: --model 'hybrid_cnnn'.",
                    "Did you mean 'hybrid_cnn'")
    code = main(["train", "--data", str(tiny_kaggle), "--out", str(tmp_path / "run"), "--epochs", "0"])
    _one_line_error(capsys, code, "`--epochs` must be a positive int. Received: --epochs 0")
    assert not (tmp_path / "run").exists()


def _commands(parser, name="mmdigits"):
    """(name, parser) of `parser` and every command under it (argparse keeps no public list)."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from _commands(sub, f"{name} {command}")


def test_help_is_written_for_users_and_the_cli_keeps_to_what_most_users_need():
    text = build_parser().format_help()
    assert text.split("\n\n")[1].startswith("Classify digits from two modalities") and "argparse" not in text
    commands = dict(_commands(build_parser()))
    options = [a for p in commands.values() for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    assert len(options) <= 70, len(options)
    # Each command that sends users to Python for more names keywords its function takes (its
    # parameters; `train` and `train_retrieval` also take the `TrainingSettings` fields).
    settings = {field.name for field in dataclasses.fields(mk.TrainingSettings)}
    for name, parser in commands.items():
        said = re.search(r"e\.g\. (.+?)\) are keywords of mmdigits_keras\.(\w+)", parser.epilog or "")
        if said:
            keywords = set(inspect.signature(getattr(mk, said[2])).parameters) | settings
            assert set(said[1].split(", ")) <= keywords, (name, said[1], keywords)


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


@pytest.mark.slow(26)
@pytest.mark.backends
def test_demo_runs_end_to_end_and_says_demo(tmp_path, capsys):
    # The one end-to-end run of the demo, on every backend (the backend matrix runs it too): data,
    # train, fine-tune, submit; evaluate and report have theirs (tests/evaluation, also marked so).
    # Its determinism is its parts' (tests/data/test_demo.py: same seed, same bytes;
    # tests/training/test_classification.py: same seed, same predictions).
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("DEMO DATA")
    assert "validation accuracy" in printed and "demo test accuracy" in printed
    config = json.loads((out / "run" / "config.json").read_text())
    backend = keras.backend.backend()
    assert config["versions"]["backend"] == backend and config["versions"][backend]
    assert config["training"]["augment_on"] == DEFAULT_AUGMENT_ON and config["training"]["protocol"] == "finetune"
    submission = validate_submission(out / "submission.csv", rows=1000)
    assert "DEMO DATA" in json.loads((out / "run" / "metrics.json").read_text())["data"]
    # The data: the Kaggle layout, labelled as demo data; the test part's voices are never heard in training.
    train, test = load_kaggle(out / "data", "train"), load_kaggle(out / "data", "test")
    assert len(train) == 4000 and len(test) == 1000 and test.labels is not None
    assert "DEMO DATA" in train.source and "DEMO DATA" in (out / "data" / "README.txt").read_text()
    assert set(train.speakers).isdisjoint(test.speakers) and len(set(train.speakers)) == 54
    assert len(set(train.recordings)) == len({row.tobytes() for row in train.audio})
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


def test_options_not_given_are_left_to_the_library(monkeypatch, capsys, tmp_path):
    seen = {}

    def record(name):
        def called(*args, **kwargs):
            seen[name] = kwargs
            raise _Called

        return called

    for name in ("train", "run_search", "run_demo", "train_retrieval"):
        monkeypatch.setattr(mk, name, record(name))
    d = str(tmp_path)  # a folder: the CLI checks --data before it calls the library
    for argv in (["train", "--data", d, "--out", "o"], ["tune", "--data", d, "--out", "o"], ["demo"],
                 ["retrieval", "train", "--data", d, "--out", "o"], ["train", "--data", d, "--out", "o",
                                                                     "--epochs", "3", "--seed", "0"]):
        with pytest.raises(_Called):
            main(argv)
        if argv[0] == "train" and "--epochs" not in argv:
            assert set(seen["train"]) == {"out", "overwrite"}
    assert seen["train"]["epochs"] == 3 and seen["train"]["seed"] == 0  # given: passed, even when falsy
    assert set(seen["run_search"]) == {"out", "space", "overwrite", "settings"}
    assert seen["run_search"]["settings"] == mk.TrainingSettings()  # nothing given: the defaults
    assert set(seen["run_demo"]) == set()
    assert set(seen["train_retrieval"]) == {"out", "overwrite"}
    # The library's defaults, which --help quotes, come from utils/defaults.py.
    train_defaults = {k: p.default for k, p in inspect.signature(mk.training.train).parameters.items()}
    assert (train_defaults["model"], train_defaults["recipe"], mk.TrainingSettings().epochs) == (
        DEFAULT_MODEL, defaults.DEFAULT_RECIPE, defaults.EPOCHS)
    search_defaults = {k: p.default for k, p in inspect.signature(mk.tuning.run_search).parameters.items()}
    assert (search_defaults["model"], search_defaults["settings"], search_defaults["max_trials"]) == (
        DEFAULT_MODEL, None, defaults.MAX_TRIALS)
    assert defaults.DEFAULT_RECIPE in RECIPES
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert f"(default {defaults.EPOCHS}; early stopping)" in " ".join(capsys.readouterr().out.split())


def _spoil(folder, name, value):
    if isinstance(value, str):
        (folder / name).write_text(value)
    else:
        np.save(folder / name, value)


# (command, how the data folder or run directory is spoiled, fragment of the one-line error):
# docs/data.md's table of a user's mistakes, one row each. The CSV / run directory / evaluation
# folder the command would write must not appear.
BROKEN = {
    "submit: test files whose row counts disagree": (
        "submit", lambda data, run: _spoil(data, "x_test_sp.npy", np.zeros((49, 507))), "row counts disagree"),
    "evaluate: test files whose row counts disagree": (
        "evaluate", lambda data, run: _spoil(data, "x_test_wr.npy", np.zeros((49, 784))), "row counts disagree"),
    "train: inf in the speech": (
        "train", lambda data, run: _spoil(data, "x_train_sp.npy", np.full((200, 507), np.inf)), "NaN/inf"),
    "train: inf in the images": (
        "train", lambda data, run: _spoil(data, "x_train_wr.npy", np.full((200, 784), np.inf)), "NaN/inf"),
    "train: a labels file with a header and no rows": (
        "train", lambda data, run: _spoil(data, "y_train.csv", "row_id,label\n"), "has 0 rows but the feature files"),
    "train: duplicate row ids": (
        "train", lambda data, run: _spoil(data, "y_train.csv", "row_id,label\n" + "0,1\n" * 200), "`row_id` must be"),
    "train: missing row ids": (
        "train", lambda data, run: _spoil(data, "y_train.csv", "row_id,label\n" + "".join(f"{i + 1},1\n" for i in
                                                                                           range(200))),
        "`row_id` must be the integers 0..199"),
    "submit: a run whose model.keras holds a Lambda layer": (
        "submit", lambda data, run: _lambda_model(run / "model.keras"), "cannot load the model"),
    "submit: a run whose model.keras holds a custom layer": (
        "submit", lambda data, run: _custom_layer_model(run / "model.keras"), "cannot load the model"),
    "submit: a run whose model takes other inputs": (
        "submit", lambda data, run: _spoil(data, "x_test_sp.npy", np.zeros((50, 1560))), "takes audio rows of shape"),
    "evaluate: a run whose model takes other inputs": (
        "evaluate", lambda data, run: _spoil(data, "x_test_sp.npy", np.zeros((50, 1560))), "takes audio rows of shape"),
    "submit: a file where the output's folder should be": (
        "submit", lambda data, run: None, "is a file, not a folder"),
    "train: a file where the output's folder should be": (
        "train", lambda data, run: None, "is a file, not a folder"),
    "submit: an output folder on a read-only file system": (
        "submit", lambda data, run: None, "cannot write in the folder /sys"),
}


def _lambda_model(path):
    inputs = keras.Input((784,), name="image")
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)


def _custom_layer_model(path):
    class Doubling(keras.layers.Layer):  # not registered: safe mode cannot rebuild it, and runs none of it
        def call(self, x):
            return x * 2

    inputs = keras.Input((784,), name="image")
    keras.Model(inputs, Doubling()(inputs)).save(path)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_users_mistake_is_one_line_exit_2_and_writes_nothing(case, tiny_fusion_run, tmp_path, capsys):
    command, spoil, fragment = BROKEN[case]
    shared_data, shared_run = tiny_fusion_run
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(shared_data, data)
    shutil.copytree(shared_run, run)
    pixels, audio, labels = synthetic_arrays(50, seed=1)
    np.save(data / "x_test_wr.npy", pixels)
    np.save(data / "x_test_sp.npy", audio)
    pd.DataFrame({"row_id": range(50), "label": labels}).to_csv(data / "y_test.csv", index=False)
    spoil(data, run)
    (tmp_path / "afile").write_text("in the way")
    out = {"a file": tmp_path / "afile" / "out", "read-only": Path("/sys/mmdigits-out")}.get(
        next((k for k in ("a file", "read-only") if k in case), None), tmp_path / "out")
    before = sorted(p.name for p in run.rglob("*"))
    argv = {"train": ["train", "--data", str(data), "--out", str(out), "--epochs", "1"],
            "submit": ["submit", "--model", str(run), "--data", str(data), "--out", str(out)],
            "evaluate": ["evaluate", "--model", str(run), "--data", str(data), "--split", "test"]}[command]
    _one_line_error(capsys, main(argv), fragment)
    assert not out.exists() and not (tmp_path / "afile").is_dir()
    assert sorted(p.name for p in run.rglob("*")) == before  # no eval/ folder, no partial file
    if out.parent == tmp_path:
        assert not list(tmp_path.glob(f".{out.name}*"))  # no lock or temporary file left beside it


def _disk_full(monkeypatch, failing):
    """Renames onto, and files opened for writing at, a path that `failing(path)` accepts fail as
    on a full disk (ENOSPC): the writes that publish a run directory or a file, and the write of
    a temporary file."""
    rename, opening = os.replace, open

    def replace(source, target, *args, **kwargs):
        if failing(Path(target)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        return rename(source, target, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and "w" in mode and failing(Path(file)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return opening(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr("builtins.open", open_)


def test_a_full_disk_is_one_line_exit_2_and_leaves_outputs_whole(tiny_kaggle, tiny_fusion_run, tmp_path, monkeypatch,
                                                                 capsys):
    data, (_, run) = tiny_kaggle, tiny_fusion_run
    out = tmp_path / "full"
    out.mkdir()
    # submit over an existing CSV, failing at the final rename and at the temporary file's write:
    # the CSV stays byte-identical and no temporary file is left (train on a real full disk: the
    # tmpfs test below).
    csv = out / "s.csv"
    csv.write_text("row_id,label\n0,7\n")
    for failing in (lambda path: path == csv, lambda path: path.parent == out and path.name.startswith(".s.tmp")):
        with monkeypatch.context() as patch:
            _disk_full(patch, failing)
            code = main(["submit", "--model", str(run), "--data", str(data), "--out", str(csv), "--overwrite"])
        _one_line_error(capsys, code, "No space left on device; free some space and run it again")
        assert csv.read_text() == "row_id,label\n0,7\n" and [p.name for p in out.iterdir()] == ["s.csv"]


def test_a_mistyped_data_path_is_refused_before_keras_starts(tmp_path):
    script = ("import sys; from mmdigits_keras.cli import main; code = main(sys.argv[1:]); "
              "print(code, sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, "train", "--data", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "2 []", done.stdout + done.stderr
    assert done.stderr.strip() == f"mmdigits: error: {tmp_path / 'nope'}: data folder not found"


def _commands_that_write(data, run, mnist, recordings, out):
    """(name, argv) of each writing command, its output under `out`."""
    return [("tune", ["tune", "--data", str(data), "--out", str(out / "search"), "--model", "model1", "--epochs", "1",
                      "--max-trials", "1", "--recipe", "plain"]),
            ("export", ["export", "--model", str(run), "--format", "tflite", "--out", str(out / "m.tflite")]),
            ("report", ["report", "--runs", str(run), "--data", str(data), "--out", str(out / "report")]),
            ("data build", ["data", "build", "--audio", str(recordings), "--audio-format", "fsdd", "--images", str(mnist),
                            "--test-speakers", "nicolas", "--out", str(out / "built")]),
            ("demo", ["demo", "--out", str(out / "demo"), "--epochs", "1"])]


@pytest.mark.slow(20)
def test_every_writing_command_answers_a_full_disk_in_one_line(tiny_fusion_run, shared_data, tmp_path, monkeypatch,
                                                               capsys):
    data, run = tiny_fusion_run
    recordings = tmp_path / "rec"  # two speakers' first takes of each digit
    recordings.mkdir()
    for digit in range(10):
        for speaker in ("george", "nicolas"):
            shutil.copy(shared_data / "fsdd" / "recordings" / f"{digit}_{speaker}_0.wav", recordings)
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("kept")
    for name, argv in _commands_that_write(data, run, shared_data / "mnist_t10k_first5000.npz", recordings, out):
        with monkeypatch.context() as patch:  # every write under `out` fails, as on a full disk
            _disk_full(patch, lambda path: out in path.parents)
            code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("mmdigits: error: ") and "\n" not in err, (name, err)
        assert "No space left on device" in err and str(out) in err, (name, err)
        # Nothing half-written is left, and what was there stays.
        left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if not p.name.endswith(".lock"))
        assert left == ["keep.txt"] and (out / "keep.txt").read_text() == "kept", (name, left)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs mounted at tmp_path/disk, unmounted afterwards; skipped where this machine
    does not let the tests mount one (not root, no mount namespace)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_real_full_disk_is_one_line_and_leaves_the_disk_as_it_was(tiny_kaggle, small_disk, capsys):
    (small_disk / "keep.txt").write_text("kept")
    # model1 saves 7 MB: the 1 MiB disk fills while the run directory is written.
    code = main(["train", "--data", str(tiny_kaggle), "--out", str(small_disk / "run"), "--model", "model1",
                 "--recipe", "plain", "--epochs", "1"])
    _one_line_error(capsys, code, str(small_disk), "No space left on device; free some space")
    assert [p.name for p in small_disk.iterdir()] == ["keep.txt"] and (small_disk / "keep.txt").read_text() == "kept"
