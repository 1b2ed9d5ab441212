import json
import re

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import find_layer, synthetic_arrays, tensorboard_events, write_kaggle

from mmdigits_keras.cli import main
from mmdigits_keras.data import load_kaggle, train_val_split
from mmdigits_keras.evaluation.classification import evaluation_rows
from mmdigits_keras.training import RECIPES, RUN_FILES, fitting, load_trained_model, predict_labels, schedule, train
from mmdigits_keras.training.schedule import fit_callbacks as real_callbacks


def test_train_writes_a_complete_run_directory(tiny_kaggle, tmp_path):
    ended = []
    count = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ended.append(epoch))
    run = train(tiny_kaggle, out=tmp_path / "run", model="model1", epochs=2, batch_size=32, verbose=0,
                callbacks=[count], protocol="single")
    assert ended == [0, 1]  # the caller's callbacks see every epoch
    assert sorted(p.name for p in run.iterdir()) == sorted(RUN_FILES)
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "model1"
    assert config["model_kwargs"] == {"depth": 1, "audio": "conv1d", "utterance_normalization": True}  # default recipe
    # Every row has its own speech vector here: a grouped split by recording holds out a fifth.
    assert config["training"]["split"] == "recording" and config["training"]["fold"] is None
    train_rows, validation_rows = config["data"]["train_rows"], config["data"]["validation_rows"]
    assert train_rows + validation_rows == 200 and 36 <= validation_rows <= 44
    share = RECIPES["default"].synthetic_share  # eSpeak NG rows added to the training part only
    assert config["data"]["synthetic_rows"] == round(train_rows * share / (1 - share)) > 0
    assert config["training"]["epochs"] == 2 and len(config["data"]["fingerprint"]) == 64
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["val_accuracy"] <= 1 and 0 <= metrics["val_macro_f1"] <= 1
    assert metrics["epochs"] == 2 and metrics["validation_rows"] == validation_rows
    assert metrics["validation"] == "the saved model, on held-out rows it did not train on"
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    assert not list(tmp_path.glob(".run*")), "no staging folder is left behind"
    # TensorBoard: per-epoch training and validation scalars, the learning rate among them.
    train_scalars, _ = tensorboard_events(run / "logs" / "train")
    val_scalars, _ = tensorboard_events(run / "logs" / "validation")
    np.testing.assert_allclose(train_scalars["epoch_loss"], history["loss"], rtol=1e-5)
    np.testing.assert_allclose(val_scalars["epoch_accuracy"], history["val_accuracy"], rtol=1e-5)
    assert train_scalars["epoch_learning_rate"] == pytest.approx([1e-3, 1e-3])


def test_the_default_patience_is_scaled_to_the_training_rows_and_recorded(tiny_kaggle, tmp_path, monkeypatch, caplog):
    # As if the tiny set (about 210 rows an epoch with its synthetic rows) were course-size: a
    # patience spans 640 samples, so 3 epochs; the early-stopping callback is built with it.
    monkeypatch.setattr(schedule, "PATIENCE_SAMPLES", 640)
    built = []
    monkeypatch.setattr(fitting, "fit_callbacks",
                        lambda recipe, *, patience, monitor: built.append(patience) or real_callbacks(
                            recipe, patience=patience, monitor=monitor))
    with caplog.at_level("INFO", logger="mmdigits_keras"):
        run = train(tiny_kaggle, out=tmp_path / "scaled", model="model1", epochs=1, protocol="single", verbose=0)
    config = json.loads((run / "config.json").read_text())
    rows = config["data"]["train_rows"] + config["data"]["synthetic_rows"]
    assert built == [config["training"]["patience"]] == [round(640 / rows)] == [3]
    assert f"a patience of 3 epochs, scaled to {rows:,} training rows" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="mmdigits_keras"):
        run = train(tiny_kaggle, out=tmp_path / "given", model="model1", epochs=1, patience=5, protocol="single",
                    verbose=0)
    assert built[-1] == json.loads((run / "config.json").read_text())["training"]["patience"] == 5
    assert "scaled to" not in caplog.text


def test_saved_model_standardizes_with_training_rows_only(tiny_fusion_run):
    tiny_kaggle, run = tiny_fusion_run  # Model 1, default recipe, 1 epoch
    data = load_kaggle(tiny_kaggle)
    train_part, _ = train_val_split(data, val_fraction=0.2, seed=0)
    layer = find_layer(load_trained_model(run), "audio_normalization")
    np.testing.assert_allclose(np.ravel(layer.mean), train_part.audio.mean(axis=0), rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.ravel(layer.mean), data.audio.mean(axis=0), rtol=1e-4, atol=1e-5)


def test_fine_tuning_and_cross_validation_exclude_each_other(tiny_kaggle, tmp_path):
    with pytest.raises(ValueError, match="`protocol='finetune'` and `folds` exclude each other"):
        train(tiny_kaggle, out=tmp_path / "run", folds=3, protocol="finetune", verbose=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow(12)
def test_refuses_to_overwrite_a_run_unless_asked_and_the_same_seed_repeats_it(tiny_kaggle, tmp_path):
    test = load_kaggle(tiny_kaggle, "test")
    run = train(tiny_kaggle, out=tmp_path / "run", model="model1", epochs=1, seed=7, verbose=0)
    first = load_trained_model(run).predict(test.inputs(), verbose=0)
    before = (run / "metrics.json").read_text()
    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        train(tiny_kaggle, out=run, model="model1", epochs=1, verbose=0)
    assert (run / "metrics.json").read_text() == before
    (run / "left.txt").write_text("from the run before")
    train(tiny_kaggle, out=run, model="model1", epochs=1, seed=7, verbose=0, overwrite=True)
    assert not (run / "left.txt").exists()  # replaced, not written over
    # The same seed, the same predictions (the default recipe: augmentation and fine-tuning included).
    np.testing.assert_array_equal(load_trained_model(run).predict(test.inputs(), verbose=0), first)


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="model9"), "`model_name` must be one of"),
    (dict(epochs=0), "`epochs` must be a positive int"),
    (dict(batch_size=1.5), "`batch_size` must be a positive int"),
    (dict(learning_rate=-1.0), "`learning_rate` must be a positive float"),
    (dict(val_fraction=0.0), "val_fraction"),
])
def test_bad_arguments(tiny_kaggle, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train(tiny_kaggle, out=tmp_path / "run", verbose=0, **kwargs)
    assert not (tmp_path / "run").exists()


def test_load_trained_model_errors(tmp_path):
    with pytest.raises(ValueError, match="model file not found"):
        load_trained_model(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot load the model"):
        load_trained_model(tmp_path)


def _assert_counts_agree(printed, rows):
    """Every count agrees: the real rows split into training and validation, the synthetic speech
    rows named apart; fine-tuning on all real rows, in the log and in the closing lines."""
    trained, synthetic, validated = map(int, re.search(
        r"training on (\d+) rows \+ (\d+) synthetic speech rows, validating on (\d+) rows held out by", printed).groups())
    assert trained + validated == rows and synthetic > 0, printed
    assert re.search(rf"fine-tuning: \d+ epochs on all {rows} rows \(\+ \d+ synthetic speech rows\)", printed), printed
    assert re.search(rf"fine-tuning: the saved model trained on \d+ epochs on all {rows} rows", printed), printed
    assert printed.count("training accuracy is scored on the batches as trained (augmentation, modality dropout, "
                         "label smoothing)") == 1, printed


@pytest.mark.slow(16)
def test_kill_9_while_fine_tuning_leaves_nothing_and_the_rerun_fine_tunes_on_every_row(tiny_kaggle, tmp_path, capsys):
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [sys.executable, "-m", "mmdigits_keras", "train", "--data", str(tiny_kaggle), "--model", "model1",
               "--out", str(out), "--epochs", "3"]  # the default protocol: fine-tuning
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in process.stdout:  # the validated run is done; fine-tuning has begun
        seen.append(line)
        if line.startswith("fine-tuning: ") and "epochs on all" in line:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert any("Epoch 3/3" in line for line in seen), "".join(seen)
    assert not out.exists()
    # A kill while the run directory was being written leaves a staging folder of a dead process.
    leftover = tmp_path / ".run.tmp-999999"
    leftover.mkdir()
    (leftover / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    # The rerun in this process (the kill needed a process of its own; the rerun does not).
    assert main(command[3:]) == 0
    printed, err = capsys.readouterr()
    assert "warning: found an interrupted run" in err and ".run.tmp-999999" in err
    assert not leftover.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES)
    _assert_counts_agree(printed, rows=200)
    # The time left, at each epoch after the first (Keras's own bar times one epoch only).
    assert "2 of 3 epochs done in " in printed and "left at most (early stopping may end it sooner)" in printed
    config, metrics = (json.loads((out / name).read_text()) for name in ("config.json", "metrics.json"))
    history = pd.read_csv(out / "history.csv")  # the validated run's
    best = int(np.argmin(history["val_crossentropy"]))
    assert config["training"]["protocol"] == "finetune" and config["training"]["finetune_epochs"] == 10
    assert metrics["finetune"]["epochs"] == best + 1  # fewer than 10: capped at the best epoch
    assert metrics["finetune"]["rows"] == 200 and metrics["validation_rows"] == config["data"]["validation_rows"]
    assert metrics["validation"].startswith("the validated run's model, before fine-tuning")
    # The validated run is the single run (same seed, same steps); the saved model has trained on.
    single = train(tiny_kaggle, out=tmp_path / "single", model="model1", epochs=3, verbose=0, protocol="single")
    validated = json.loads((single / "metrics.json").read_text())
    assert metrics["val_accuracy"] == validated["val_accuracy"] and metrics["epochs"] == validated["epochs"]
    pd.testing.assert_frame_equal(history, pd.read_csv(single / "history.csv"))
    saved, before = load_trained_model(out), load_trained_model(single)
    assert any(not np.array_equal(a, b) for a, b in zip(saved.get_weights(), before.get_weights()))
    # ... keeping the validated run's speech statistics (its training rows'), at the best epoch's rate.
    np.testing.assert_array_equal(find_layer(saved, "audio_normalization").mean,
                                  find_layer(before, "audio_normalization").mean)
    rate = ([1e-3, *history["learning_rate"]])[best]
    scalars, _ = tensorboard_events(out / "logs" / "finetune" / "train")
    assert scalars["epoch_learning_rate"] == pytest.approx([rate] * (best + 1))
    assert metrics["finetune"]["learning_rate"] == pytest.approx(rate)
    with pytest.warns(UserWarning, match="fine-tuned on every training row: its model has seen these validation"):
        evaluation_rows(out, tiny_kaggle, "validation")
    csv = tmp_path / "finetuned.csv"
    assert main(["submit", "--model", str(out), "--data", str(tiny_kaggle), "--out", str(csv)]) == 0
    submitted, test = pd.read_csv(csv), load_kaggle(tiny_kaggle, "test")
    # The submission is the saved model's, the fine-tuned one (it has trained on the validation rows too).
    np.testing.assert_array_equal(submitted["row_id"], test.ids)
    np.testing.assert_array_equal(submitted["label"], predict_labels(saved, test))


def test_keras_file_with_a_lambda_layer_is_refused_and_not_run(tmp_path):
    import keras

    marker = tmp_path / "ran"
    inputs = keras.Input((3,))
    payload = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('x'), x)[1]")  # noqa: S307
    outputs = keras.layers.Lambda(payload)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "model.keras")
    marker.unlink()
    with pytest.raises(ValueError, match="cannot load the model.*(Lambda|lambda|safe)"):
        load_trained_model(tmp_path)
    assert not marker.exists()


def test_a_class_missing_from_training_is_warned_about(tmp_path, caplog):
    pixels, audio, labels = synthetic_arrays(120)
    keep = labels != 5
    data = write_kaggle(tmp_path / "d", pixels=pixels[keep], audio=audio[keep], labels=labels[keep])
    train(data, out=tmp_path / "run", model="model1", epochs=1, recipe="plain", protocol="single", verbose=0)
    assert any(r.levelname == "WARNING" and "no training rows of class(es) [5]" in r.getMessage()
               for r in caplog.records)
