"""Cross-validation runs: fold models, out-of-fold predictions, resume, and prediction as an ensemble."""

import dataclasses
import json
import logging
import shutil
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from conftest import built_once, synthetic_arrays, write_kaggle

from mmdigits_keras import cli
from mmdigits_keras.cli import main
from mmdigits_keras.data import load_kaggle
from mmdigits_keras.evaluation import evaluate
from mmdigits_keras.submission import submit
from mmdigits_keras.training import get_recipe, load_trained_model, train

# The default recipe without its synthetic voices: augmented, and quick to prepare.
SETTINGS = dict(model="model1", folds=2, epochs=1, verbose=0, model_kwargs={"width": 0.25},
                recipe=dataclasses.replace(get_recipe("default"), name="no_voices", synthetic_share=0.0))


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory, worker_id):
    def build(root):  # the tests read it; the resume test works on a copy
        pixels, audio, labels = synthetic_arrays(240)
        data = write_kaggle(root / "tiny", pixels=pixels[:200], audio=audio[:200], labels=labels[:200],
                            test_pixels=pixels[200:], test_audio=audio[200:])
        train(data, out=root / "run", **SETTINGS)

    root = built_once("cv_run", build, tmp_path_factory, worker_id)
    return root / "tiny", root / "run"


def fold_probabilities(run, rows):
    return [load_trained_model(run / f"fold_{k}").predict(rows.inputs(), verbose=0) for k in (1, 2)]


def test_the_run_holds_folds_out_of_fold_predictions_and_a_summary(cv_run):
    data, run = cv_run
    train_rows = load_kaggle(data, "train")
    oof = pd.read_csv(run / "oof_predictions.csv")
    assert oof["row_id"].tolist() == train_rows.ids.tolist() and set(oof["fold"]) == {1, 2}
    for k in (1, 2):  # each row is predicted by the fold model that did not train on it
        fold_config = json.loads((run / f"fold_{k}" / "config.json").read_text())
        assert fold_config["training"]["fold"] == [k - 1, 2]
        rows = train_rows.subset(np.flatnonzero(oof["fold"] == k))
        probabilities = load_trained_model(run / f"fold_{k}").predict(rows.inputs(), verbose=0)
        np.testing.assert_allclose(oof.loc[oof["fold"] == k, [f"prob_{c}" for c in range(10)]], probabilities,
                                   atol=1e-5)
    metrics = json.loads((run / "metrics.json").read_text())
    summary = pd.read_csv(run / "cv_summary.csv")
    assert metrics["val_accuracy"] == pytest.approx(float((oof["predicted"] == oof["label"]).mean()))
    assert metrics["fold_val_accuracy_mean"] == pytest.approx(summary["val_accuracy"].mean())
    assert metrics["fold_val_accuracy_sd"] == pytest.approx(summary["val_accuracy"].std(ddof=1))
    config = json.loads((run / "config.json").read_text())
    assert config["cross_validation"] == {"folds": 2, "split": "recording", "seed": 0}


def test_a_cv_run_submits_the_argmax_of_its_folds_mean_probabilities(cv_run, tmp_path):
    data, run = cv_run
    test_rows = load_kaggle(data, "test")
    path, frame = submit(run, data, tmp_path / "cv.csv")
    want = np.mean(fold_probabilities(run, test_rows), axis=0).argmax(axis=1)
    np.testing.assert_array_equal(pd.read_csv(path)["label"], want)


def test_submit_of_several_runs_is_the_weighted_mean_of_their_probabilities(cv_run, tmp_path, capsys):
    data, run = cv_run
    test_rows = load_kaggle(data, "test")
    first, second = fold_probabilities(run, test_rows)
    assert (first.argmax(1) != second.argmax(1)).any()  # the two runs disagree somewhere
    path, _ = submit([run / "fold_1", run / "fold_2"], data, tmp_path / "two.csv", weights=[3, 1])
    np.testing.assert_array_equal(pd.read_csv(path)["label"], (0.75 * first + 0.25 * second).argmax(1))
    code = main(["submit", "--model", str(run / "fold_1"), str(run / "fold_2"), "--data", str(data),
                 "--out", str(tmp_path / "plain.csv")])
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(pd.read_csv(tmp_path / "plain.csv")["label"], (first + second).argmax(1))
    with pytest.raises(ValueError, match=r"one weight per member \(2\)"):
        submit([run / "fold_1", run / "fold_2"], data, tmp_path / "bad.csv", weights=[1])
    assert not (tmp_path / "bad.csv").exists()


def test_a_killed_cv_run_resumes_fold_by_fold_and_refuses_other_settings(cv_run, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mmdigits_keras")
    data, run = cv_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    # What a kill during fold 2 leaves: fold 1 finished, the plan, nothing else (the engine
    # publishes a fold's directory only when it is complete).
    shutil.rmtree(copy / "fold_2")
    for name in ("config.json", "metrics.json", "oof_predictions.csv", "cv_summary.csv"):
        (copy / name).unlink()
    with pytest.raises(ValueError, match=r"unfinished cross-validation run \(1 of 2 folds"):
        load_trained_model(copy)
    with pytest.raises(ValueError, match="different epochs"):
        train(data, out=copy, **{**SETTINGS, "epochs": 2})
    kept = (copy / "fold_1" / "model.keras").stat().st_mtime_ns
    train(data, out=copy, **SETTINGS)
    assert (copy / "fold_1" / "model.keras").stat().st_mtime_ns == kept  # fold 1 was not trained again
    assert "fold 2 of 2 -> " in caplog.text and "2 of 2 folds done in " in caplog.text
    assert "fold 1 of 2" not in caplog.text
    assert (copy / "fold_2" / "model.keras").is_file() and (copy / "config.json").is_file()
    with pytest.raises(ValueError, match="already exists"):
        train(data, out=copy, **SETTINGS)


def test_evaluate_scores_a_cv_run_out_of_fold_and_runs_as_an_ensemble(cv_run, capsys):
    data, run = cv_run
    result = evaluate(run, data, split="validation")
    oof = pd.read_csv(run / "oof_predictions.csv")
    assert result["metrics"]["accuracy"] == pytest.approx(float((oof["predicted"] == oof["label"]).mean()))
    assert result["metrics"]["rows"] == 200  # every training row, each scored out of fold
    members = [run / "fold_1", run / "fold_2"]
    single = evaluate(run / "fold_1", data, split="validation")["metrics"]["accuracy"]
    weighted = evaluate(members, data, split="validation", weights=[1, 0])["metrics"]["accuracy"]
    assert weighted == single  # weight 0 on the second: the first alone
    assert main(["evaluate", "--ensemble", "--model", *map(str, members), "--data", str(data)]) == 0
    ensemble_line = capsys.readouterr().out
    mean = evaluate(members, data, split="validation")["metrics"]["accuracy"]
    assert ensemble_line.startswith("ensemble of 2: ") and f"validation accuracy {mean:.4f}" in ensemble_line


def test_the_cli_prints_out_of_fold_scores_and_the_fold_spread(cv_run, capsys):
    # What `mmdigits train --folds` prints at its end, from the run directory's files.
    _, run = cv_run
    metrics = json.loads((run / "metrics.json").read_text())
    with mock.patch.object(cli.mk, "train", return_value=run):
        assert main(["train", "--data", str(run.parent), "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"out-of-fold accuracy {metrics['val_accuracy']:.4f}" in out and "2 folds by recording" in out
    assert f"{metrics['fold_val_accuracy_mean']:.4f} +/- {metrics['fold_val_accuracy_sd']:.4f}" in out
