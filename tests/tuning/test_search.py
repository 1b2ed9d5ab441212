import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner
import numpy as np
import pandas as pd
import psutil
import pytest
from conftest import find_layer, layer_names, tensorboard_events

import mmdigits_keras as mk
from mmdigits_keras.cli import build_parser, main
from mmdigits_keras.data import load_kaggle
from mmdigits_keras.models import create_model
from mmdigits_keras.submission import submit, validate_submission
from mmdigits_keras.training import (
    RUN_FILES,
    TrainingSettings,
    get_recipe,
    load_trained_model,
    prepare_data,
    train,
)
from mmdigits_keras.tuning import (
    RegistryHyperModel,
    SearchTuner,
    default_space,
    default_tuner,
    load_search,
    make_oracle,
    model_hyperparameters,
    run_search,
    training_hyperparameters,
)
from mmdigits_keras.tuning.best import check_replayed
from mmdigits_keras.tuning.results import TRIAL_FILE
from mmdigits_keras.utils import defaults

ROOT = Path(__file__).resolve().parents[2]
TUNE = [sys.executable, str(ROOT / "tuning" / "tune.py")]
# One batch size: trials at batch 32 took twice as long, and the tests need no batch-size search.
SMALL = {"depth": [1], "width": [0.5], "audio": ["conv1d"], "batch_size": [128]}
MODEL2 = {"model": "model2", "space": SMALL}  # a small space of Nippani Ravi's family
# best/ trains for 1 epoch in tests (default: 30, as `mmdigits train`).
QUIET = TrainingSettings(verbose=0)
QUIET_ONE_EPOCH = TrainingSettings(epochs=1, verbose=0)  # best/ trains 1 epoch (default 30)
SMALL_ARGS = ["--model", "model2", "--depth", "1", "--width", "0.5"]  # the CLI restricts depth and width only
# The process-level tests check fault tolerance, not the recipe: the plain recipe (numpy arrays,
# no synthetic voices to prepare) makes each search and trial process start sooner.
PROCESS_ARGS = [*SMALL_ARGS, "--recipe", "plain"]


def _hypermodel(data, model="model2", space=None):
    return RegistryHyperModel(model, prepared=prepare_data(data), space=space)


def test_hyperparameter_names_rebuild_the_winner(tiny_kaggle):
    hp = keras_tuner.HyperParameters()
    hp.values.update({"depth": 3, "width": 0.5, "audio": "lstm", "lstm_units": 32, "dropout": 0.125})
    hypermodel = _hypermodel(tiny_kaggle)
    tuned = hypermodel.build(hp)
    assert set(hp.values) == {"depth", "width", "audio", "lstm_units", "dropout", "learning_rate", "batch_size",
                              "audio_dropout", "image_dropout", "noise", "time_mask", "label_smoothing"}
    rebuilt = create_model("model2", **model_hyperparameters(hp.values), audio_mean=np.zeros(507),
                           audio_variance=np.ones(507))
    assert rebuilt.count_params() == tuned.count_params()
    assert find_layer(tuned, "audio_lstm1").units == 32 and find_layer(tuned, "image_conv1").filters == 16
    assert set(training_hyperparameters(hp.values)) == {"learning_rate", "batch_size"}
    assert tuned.optimizer.learning_rate.numpy() == pytest.approx(hp.values["learning_rate"])


def test_trials_are_compiled_with_the_same_recipe_as_train(tiny_kaggle):
    hp = keras_tuner.HyperParameters()
    tuned = _hypermodel(tiny_kaggle).build(hp)
    # The default recipe: AdamW, label smoothing 0.1, per-utterance normalization for Models 1-4.
    assert type(tuned.optimizer).__name__ == "AdamW"
    assert tuned.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert "audio_utterance_norm" in layer_names(tuned)


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_a_search_starts_from_the_untuned_configuration(tiny_kaggle, tmp_path, kind):
    objective = keras_tuner.Objective("val_accuracy", "max")
    tuner = SearchTuner(oracle=make_oracle(kind, objective=objective, max_trials=3, epochs=1, seed=0),
                        hypermodel=_hypermodel(tiny_kaggle), directory=str(tmp_path), project_name="p")
    first = tuner.oracle.create_trial("t").hyperparameters.values
    # `mmdigits train --model model2`: Nippani Ravi's Model 2 as registered, lr 1e-3, and the default
    # recipe's own batch size, modality dropout, augmentation strengths and label smoothing.
    recipe = get_recipe("default")
    assert first == {"depth": 2, "width": 1.0, "audio": "conv1d", "dropout": 0.25, "learning_rate": 1e-3,
                     "batch_size": recipe.batch_size, "audio_dropout": recipe.audio_dropout,
                     "image_dropout": recipe.image_dropout, "noise": recipe.noise, "time_mask": recipe.time_mask,
                     "label_smoothing": recipe.label_smoothing}


def test_hyperband_is_the_default_only_with_the_trials_of_one_full_iteration():
    # 10 epochs: one iteration is 30 trials (checked on keras-tuner in test_internals.py).
    assert [default_tuner(n, 10) for n in (1, 12, 29, 30, 40)] == ["random"] * 3 + ["hyperband"] * 2
    assert default_tuner(1000, 2) == "random"  # one bracket: nothing to halve
    # tune's defaults: a few trials at train's own schedule, random search (untuned first).
    assert (defaults.TRIAL_EPOCHS, defaults.MAX_TRIALS) == (defaults.EPOCHS, 4)
    assert default_tuner(defaults.MAX_TRIALS, defaults.TRIAL_EPOCHS) == "random" and default_tuner(90, 30) == "hyperband"
    assert build_parser().parse_args(["tune", "--data", "d", "--out", "o"]).tuner is None  # run_search decides


def test_other_families_search_width_and_dropout(tiny_kaggle):
    hp = keras_tuner.HyperParameters()
    tuned = _hypermodel(tiny_kaggle, "hybrid_cnn").build(hp)
    assert set(hp.values) == {"width", "dropout", "learning_rate", "batch_size", "audio_dropout", "image_dropout",
                              "noise", "time_mask", "label_smoothing"}
    assert 0.5 in {p.name: p for p in hp.space}["dropout"].values  # Tseng's own rate is a choice
    assert "noise" not in default_space("hybrid_cnn", "plain")  # a recipe without augmentation has no knobs
    assert "image_conv1" in layer_names(tuned)
    with pytest.raises(ValueError, match="unknown search-space keys"):
        _hypermodel(tiny_kaggle, "hybrid_cnn", space={"depth": [1]})


def test_lstm_units_is_conditional_on_the_lstm_encoder(tiny_kaggle):
    hp = keras_tuner.HyperParameters()
    hp.values["audio"] = "conv1d"
    _hypermodel(tiny_kaggle).build(hp)
    assert not hp.is_active("lstm_units")
    hp.values["audio"] = "lstm"
    assert hp.is_active("lstm_units")
    space = {p.name: p for p in hp.space}
    assert space["learning_rate"].sampling == "log"
    assert (space["learning_rate"].min_value, space["learning_rate"].max_value) == (1e-4, 3e-3)
    assert space["depth"].values == [1, 2, 3, 4] and space["width"].values == [0.5, 1.0, 2.0]


@pytest.mark.slow(28)
def test_search_writes_outputs_resumes_and_refuses_other_searches(tiny_kaggle, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="mmdigits_keras")
    out = tmp_path / "search"
    # In-process trials keep this test fast; the CLI tests below run trials in child processes.
    result = run_search(tiny_kaggle, out=out, **MODEL2, max_trials=2, epochs=1, settings=QUIET_ONE_EPOCH,
                        isolate_trials=False)
    board = pd.read_csv(out / "leaderboard.csv")
    assert board["trial_id"].tolist() == [0, 1] and set(board["status"]) == {"COMPLETED"}
    # After each trial, the time left at the search's pace.
    assert "; 1 of 2 trials done in " in caplog.text and "; 2 of 2 trials done in " in caplog.text
    assert " left" in caplog.text
    assert {"depth", "width", "audio", "dropout", "learning_rate", "batch_size", "score", "seconds"} <= set(board)
    assert (board["seconds"] > 0).all()
    assert (out / "scores.png").stat().st_size > 1000
    _assert_keras_tuners_calls_work(result, tiny_kaggle, out, board, capsys)
    _assert_best_is_the_winning_trial_trained_by_train(result, tiny_kaggle, out, tmp_path, caplog)
    _assert_a_cut_off_search_resumes_as_an_ensemble(tiny_kaggle, out, tmp_path, caplog)
    before = (out / "leaderboard.csv").read_text()
    with pytest.raises(ValueError, match="different space"):
        run_search(tiny_kaggle, out=out, model="model2", max_trials=3, epochs=1, space={**SMALL, "width": [1.0]},
                   settings=QUIET)
    with pytest.raises(ValueError, match="different patience"):  # the trials' early stopping is part of a search
        run_search(tiny_kaggle, out=out, **MODEL2, max_trials=3, epochs=1, settings=TrainingSettings(patience=3, verbose=0))
    audio = np.load(tiny_kaggle / "x_train_sp.npy")
    audio[0, 0] += 1.0
    np.save(tiny_kaggle / "x_train_sp.npy", audio)
    with pytest.raises(ValueError, match="different data"):
        run_search(tiny_kaggle, out=out, **MODEL2, max_trials=3, epochs=1, settings=QUIET)
    assert (out / "leaderboard.csv").read_text() == before
    assert result["role"] == "single"


def _assert_keras_tuners_calls_work(result, tiny_kaggle, out, board, capsys):
    # keras-tuner's own calls on the tuner: the best model is the best trial's best epoch.
    tuner = result["tuner"]
    (model,) = tuner.get_best_models(1)
    best_trial = tuner.oracle.get_best_trials(1)[0]
    validation = prepare_data(tiny_kaggle).validation
    accuracy = float(np.mean(model.predict(validation.inputs(), verbose=0).argmax(1) == validation.labels))
    assert accuracy == pytest.approx(best_trial.score, abs=1e-6)
    assert tuner.get_best_hyperparameters(1)[0].values == best_trial.hyperparameters.values
    tuner.results_summary(2)
    tuner.search_space_summary()
    printed = capsys.readouterr().out
    assert "Results summary" in printed and "Search space summary" in printed and "audio_dropout" in printed
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert best["score"] == pytest.approx(board["score"].max())
    assert sorted(p.name for p in (out / "best").iterdir()) == sorted(RUN_FILES)
    # TensorBoard's HParams dashboard: one session per trial, its hyperparameters and scores.
    for trial in board.itertuples():
        _, hparams = tensorboard_events(out / "logs" / str(trial.trial_id))
        assert hparams["depth"] == 1 and hparams["learning_rate"] == pytest.approx(trial.learning_rate)
        scalars, _ = tensorboard_events(out / "logs" / str(trial.trial_id) / "validation")
        assert max(scalars["epoch_accuracy"]) == pytest.approx(trial.score, abs=1e-6)
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["tuning"]["trial_id"] == best["trial_id"]


def _assert_best_is_the_winning_trial_trained_by_train(result, tiny_kaggle, out, tmp_path, caplog):
    best = json.loads((out / "best_hyperparameters.json").read_text())
    config = json.loads((out / "best" / "config.json").read_text())
    board = pd.read_csv(out / "leaderboard.csv")
    # Every trial runs with the search's seed, so trial 0 (the untuned configuration) is `train`'s
    # own run, and best/ (trained by `train`) is the winning trial's model again: each scores on
    # validation what its trial scored, and best/ is never below trial 0. (protocol="single": the
    # validated run is what is compared; fine-tuning would not change its metrics.json score.)
    untuned = train(tiny_kaggle, out=tmp_path / "train", model="model2", batch_size=128, epochs=1, verbose=0,
                    protocol="single", model_kwargs={"depth": 1, "width": 0.5, "audio": "conv1d"})
    first = board.set_index("trial_id").loc[0]
    assert first["score"] == pytest.approx(json.loads((untuned / "metrics.json").read_text())["val_accuracy"], abs=1e-6)
    best_validation = json.loads((out / "best" / "metrics.json").read_text())["val_accuracy"]
    assert best_validation == pytest.approx(best["score"], abs=1e-6) and best_validation >= first["score"]
    assert result["best_metrics"]["val_accuracy"] == best_validation  # best/'s own score, returned
    assert (f"training best/ as `train` trains: trial {best['trial_id']}'s configuration, up to 1 epochs with early "
            "stopping (as the trials), then fine-tuned on every row for at most 10 epochs") in caplog.text
    assert "did not repeat exactly" not in caplog.text
    check_replayed(out / "best", {**best, "score": best_validation - 0.01})  # as if it had not repeated
    assert "did not repeat exactly" in caplog.text
    assert config["training"]["batch_size"] == best["values"]["batch_size"]
    assert config["training"]["recipe"]["name"] == "default"  # as `train`, not a plain set-up
    # ... and then fine-tuned on every row, as `train` fine-tunes (its validation stays the trial's).
    assert config["training"]["protocol"] == "finetune"
    assert json.loads((out / "best" / "metrics.json").read_text())["finetune"]["rows"] == 200
    path, _ = submit(out / "best", tiny_kaggle, tmp_path / "best.csv")
    validate_submission(path, rows=50)


def _assert_a_cut_off_search_resumes_as_an_ensemble(tiny_kaggle, out, tmp_path, caplog):
    finished = {t: json.loads((out / "keras_tuner" / f"trial_{t}" / TRIAL_FILE).read_text())["finished_at"]
                for t in ("0", "1")}

    # A kill -9 while keras-tuner rewrites its state leaves oracle.json cut off (it writes in place).
    # Resumed with one more trial and --ensemble 2: best/ becomes the top two trials, predicting as
    # their mean.
    (out / "keras_tuner" / "oracle.json").write_text('{"ongoing_tri')
    again = run_search(tiny_kaggle, out=out, **MODEL2, max_trials=3, epochs=1, settings=QUIET_ONE_EPOCH,
                       isolate_trials=False, ensemble=2)
    assert "restored its state from the last finished trial" in caplog.text
    assert again["resumed"] and len(again["leaderboard"]) == 3
    for trial_id, stamp in finished.items():  # finished trials were not run again
        record = json.loads((out / "keras_tuner" / f"trial_{trial_id}" / TRIAL_FILE).read_text())
        assert record["finished_at"] == stamp
    top = [t.trial_id for t in again["tuner"].oracle.get_best_trials(2)]
    assert f"training best/ as `train` trains: the top 2 trials' configurations ({', '.join(top)}), each" in caplog.text
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["ensemble"]["members"] == [f"trial_{t}" for t in top]
    # The members are validated models, so the ensemble's validation score is held out.
    assert config["training"]["protocol"] == "single"
    test_rows = load_kaggle(tiny_kaggle, "test")
    members = [load_trained_model(out / "best" / f"trial_{t}").predict(test_rows.inputs(), verbose=0) for t in top]
    path, _ = submit(out / "best", tiny_kaggle, tmp_path / "ensemble.csv")
    np.testing.assert_array_equal(pd.read_csv(path)["label"], np.mean(members, axis=0).argmax(1))


@pytest.mark.slow(22)
def test_cross_validated_trials_score_the_mean_of_their_folds_and_best_is_a_cv_run(tiny_kaggle, tmp_path):
    out = tmp_path / "cv"
    result = run_search(tiny_kaggle, out=out, **MODEL2, max_trials=1, epochs=1, settings=QUIET_ONE_EPOCH,
                        isolate_trials=False, folds=2)
    (trial,) = result["tuner"].oracle.get_best_trials(1)
    # One epoch: each fold's checkpoint is that epoch; the score is the mean of the two folds'
    # validation accuracy, each on rows its fold model did not train on. Each fold model is
    # rebuilt as its trial built it: the fold's speech statistics (constants of the model, not
    # weights) over its training rows and the recipe's synthetic voices.
    accuracies = []
    for k, weights in enumerate(["best_epoch.weights.h5", "best_epoch.fold2.weights.h5"]):
        prepared = prepare_data(tiny_kaggle, fold=(k, 2), synthetic_share=get_recipe("default").synthetic_share)
        validation = prepared.validation
        model = RegistryHyperModel("model2", prepared=prepared, space=SMALL).build(trial.hyperparameters)
        model.load_weights(out / "keras_tuner" / f"trial_{trial.trial_id}" / weights)
        accuracies.append(float(np.mean(model.predict(validation.inputs(), verbose=0).argmax(1) == validation.labels)))
    assert trial.score == pytest.approx(np.mean(accuracies), abs=1e-6)
    assert json.loads((out / "best" / "config.json").read_text())["cross_validation"]["folds"] == 2
    path, _ = submit(out / "best", tiny_kaggle, tmp_path / "cv.csv")
    validate_submission(path, rows=50)
    for bad, match in (({"tuner": "hyperband"}, "random or bayesian"), ({"ensemble": 2}, "already the ensemble"),
                       ({"settings": TrainingSettings(protocol="finetune")}, "exclude each other")):
        with pytest.raises(ValueError, match=match):
            run_search(tiny_kaggle, out=tmp_path / "refused", **MODEL2, max_trials=2, epochs=1, folds=2, **bad)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow(28)
def test_trials_share_a_worker_process_that_is_replaced_when_it_retires(tiny_kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("MMDIGITS_TRIALS_PER_WORKER", "2")  # read by each worker process
    # One device per search process (docs/training.md): the trial processes inherit it.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    out = tmp_path / "search"
    killed = []
    devices = []
    alive_after = []  # the trial worker processes alive at the end of each trial

    def kill_the_first_worker(trial):  # an idle worker that died is replaced at the next trial
        children = _trial_workers(psutil.Process())
        devices.extend(child.environ().get("CUDA_VISIBLE_DEVICES") for child in children)
        alive_after.append([child.pid for child in children])
        if not killed:
            for child in children:
                child.kill()
                child.wait(timeout=60)
                killed.append(child.pid)

    # No settings: best/ trains as `train` trains, for the trials' epochs (1).
    run_search(tiny_kaggle, out=out, **MODEL2, recipe="plain", max_trials=3, epochs=1, trial_end_hook=kill_the_first_worker)
    assert json.loads((out / "best" / "config.json").read_text())["training"]["epochs"] == 1
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 3 and set(board["status"]) == {"COMPLETED"}
    pids = [json.loads((out / "keras_tuner" / f"trial_{t}" / TRIAL_FILE).read_text())["worker_pid"]
            for t in range(3)]
    assert pids[0] == killed[0] and os.getpid() not in pids
    assert pids[1] == pids[2] and pids[1] != pids[0]  # two trials in one worker ...
    assert alive_after[1] == [pids[1]] and alive_after[2] == []  # ... which then retires
    assert devices and set(devices) == {"1"}


def _trial_workers(process):
    """`process`'s child processes that are trial workers (another test in this pytest worker may
    have left a process of its own behind)."""
    workers = []
    for child in process.children():
        try:
            if "--serve" in child.cmdline():
                workers.append(child)
        except psutil.Error:  # it ended meanwhile
            pass
    return workers


def _cluster(data, out, *, trials):
    """(command, environment of a process given its keras-tuner id) of a loopback search: every
    process runs the same command, its role from keras-tuner's own environment variables."""
    command = [*TUNE, "--data", str(data), "--out", str(out), "--max-trials", str(trials), "--epochs", "1",
               *PROCESS_ARGS]
    # A short lease (default 30 s) so a lost worker is noticed within the test's time.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MMDIGITS_WORKER_LEASE_S": "6",
           "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
    return command, lambda tuner_id: {**env, "KERASTUNER_TUNER_ID": tuner_id}


@pytest.fixture
def started():
    """The processes a test starts; those still running when it ends (it failed) are killed."""
    processes = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def _start(command, env, started):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    started.append(process)
    return process


def _wait_for(condition, timeout, what, processes=()):
    """Waits for `condition`; on a timeout, fails with what `processes` printed (killed first)."""
    deadline = time.time() + timeout
    while not condition():
        if time.time() >= deadline:
            for process in processes:
                process.kill()
            printed = "\n-----\n".join(process.communicate()[0] or "" for process in processes)
            pytest.fail(f"timed out waiting for {what}; the processes printed:\n{printed}")
        time.sleep(0.2)


def _finished_trials(out):
    return {p.parent.name: json.loads(p.read_text())["finished_at"] for p in out.glob(f"keras_tuner/trial_*/{TRIAL_FILE}")}


def _assert_search_completed(out, trials, chief_output):
    board = pd.read_csv(out / "leaderboard.csv")
    assert sorted(board["trial_id"]) == list(range(trials)) and set(board["status"]) == {"COMPLETED"}, board
    assert chief_output.count("exported the best configuration") == 1, chief_output
    assert "training best/ as `train` trains" in chief_output and "best/: validation accuracy" in chief_output
    assert sorted(p.name for p in (out / "best").iterdir()) == sorted(RUN_FILES)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".lock")]  # claims released


@pytest.mark.slow(52)
def test_lost_worker_killed_chief_and_kill_9_during_export_lose_no_trial(tiny_kaggle, tmp_path, started):
    # One cluster, three failures in turn (one scenario: each process start costs a TensorFlow
    # start-up, about 5 s here).
    out = tmp_path / "dist"
    command, env = _cluster(tiny_kaggle, out, trials=4)
    chief = _start(command, env("chief"), started)
    lost = _start(command, env("w1"), started)
    # 1. w1 alone until it has handed its first trial to its trial process, then killed: a
    # preempted machine says no goodbye to the chief. (Waiting for any child process instead
    # was racy: preparing the data may start one, e.g. the speech synthesizer when its cache is
    # cold, before w1 has asked the chief for a trial.) Its trial process dies with it.
    _wait_for(lambda: (out / "keras_tuner" / "trial_0" / "child_request.json").exists(), 120, "w1's first trial",
              [chief, lost])
    time.sleep(1.0)
    trial_processes = psutil.Process(lost.pid).children(recursive=True)
    assert trial_processes, "w1 runs its trial in a child process"
    lost.send_signal(signal.SIGKILL)
    lost.wait()
    _, alive = psutil.wait_procs(trial_processes, timeout=10)
    assert not alive, "a trial process outlived its killed worker"
    survivor = _start(command, env("w2"), started)
    # 2. Once w2 has run trial 0 again and one more, the chief is killed and started again with
    # the same command; w2 carries on with it.
    _wait_for(lambda: "trial_0" in _finished_trials(out) and len(_finished_trials(out)) >= 2, 240,
              "trial 0 run again and one more", [chief, survivor])
    chief.send_signal(signal.SIGKILL)
    first_output = chief.communicate()[0]
    assert "worker w1 lost (no heartbeat for 6 s) during trial 0; it runs again" in first_output, first_output
    finished = _finished_trials(out)
    restarted = _start(command, env("chief"), started)
    # 3. The restarted chief is killed while it exports best/ (the leaderboard is written just
    # before): best/ is whole or absent, and a third start exports it.
    _wait_for(lambda: (out / "leaderboard.csv").exists() or restarted.poll() is not None, 240, "the export",
              [restarted, survivor])
    restarted.send_signal(signal.SIGKILL)
    second_output = restarted.communicate()[0]
    assert "took over the search folder from pid" in second_output and "Reloading Tuner" in second_output, \
        second_output
    best = out / "best"
    assert not best.exists() or sorted(p.name for p in best.iterdir()) == sorted(RUN_FILES), "best/ half-written"
    for name, stamp in finished.items():  # finished before the first kill: kept, not run again
        assert _finished_trials(out)[name] == stamp
    finished = _finished_trials(out)
    assert len(finished) == 4, finished
    third = _start(command, env("chief"), started)
    outputs = [p.communicate(timeout=300)[0] for p in (survivor, third)]
    assert [survivor.returncode, third.returncode] == [0, 0], outputs
    assert "Reloading Tuner" in outputs[1], outputs[1]
    assert _finished_trials(out) == finished  # every trial had finished: none ran again
    _assert_search_completed(out, 4, outputs[1])
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["tuner_id"]) == {"w2"}  # trial 0 too: w1's run of it never counted
    # keras-tuner's calls after a distributed search, from a process that ran none of it.
    tuner = load_search(out)
    best_values = json.loads((out / "best_hyperparameters.json").read_text())
    top = tuner.oracle.get_best_trials(1)[0]
    assert top.score == pytest.approx(best_values["score"])
    tied = [t.hyperparameters.values for t in tuner.oracle.trials.values() if t.score == top.score]
    assert best_values["values"] in tied and tuner.get_best_hyperparameters(1)[0].values in tied  # equal scores: any
    (model,) = tuner.get_best_models(1)
    probabilities = model.predict(load_kaggle(tiny_kaggle, "test").inputs(), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def _one_line_error(capsys, code, fragment):
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("mmdigits: error: ") and "\n" not in err and fragment in err, err


def test_tune_trains_best_for_the_trials_epochs_joins_a_cluster_by_keras_tuners_environment_and_prints_its_score(
        monkeypatch, tmp_path, capsys):
    asked = []

    def search(data, *, out, settings, **options):  # what the CLI asks of the library, and its answer
        asked.append((settings.epochs, options.get("epochs"), options.get("distributed"), options.get("oracle"),
                      options.get("tuner_id")))
        return {"role": "single", "leaderboard": pd.DataFrame({"trial_id": ["0", "1"]}), "failed": 0, "resumed": False,
                "best": Path(out) / "best", "best_metrics": {"val_accuracy": 0.9975, "val_macro_f1": 0.9974,
                                                             "validation": "the validated run's model"}}

    monkeypatch.setattr(mk, "run_search", search)
    common = ["tune", "--data", str(tmp_path), "--out", str(tmp_path / "s")]
    assert main([*common, "--epochs", "2"]) == 0
    assert main(common) == 0
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "10.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    for tuner_id in ("chief", "w7"):
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
        assert main(common) == 0
    default = TrainingSettings().epochs
    assert asked == [(2, 2, None, None, None), (default, None, None, None, None),
                     (default, None, "chief", "10.0.0.1:8000", None), (default, None, "worker", "10.0.0.1:8000", "w7")]
    printed = capsys.readouterr().out
    assert f"best/: validation accuracy 0.9975, macro-F1 0.9974 (the validated run's model); {tmp_path / 's' / 'best'}" in printed


def test_bad_input_is_one_line_exit_2_and_overwrites_nothing(tiny_kaggle, tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    (out / "leaderboard.csv").write_text("keep me")
    base = ["tune", "--data", str(tiny_kaggle), "--out", str(out), "--epochs", "1", *SMALL_ARGS]
    _one_line_error(capsys, main([*base, "--tuner", "grid"]), "`--tuner` must be one of")
    _one_line_error(capsys, main([*base, "--max-trials", "0"]), "`--max-trials` must be an integer >= 1. Received: --max-trials 0")
    _one_line_error(capsys, main(["tune", "--data", str(tmp_path / "nope"), "--out", str(out)]), "data folder not found")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KERASTUNER_TUNER_ID", "w1")
        _one_line_error(capsys, main(base), "KERASTUNER_TUNER_ID=w1 asks for a distributed search: set "
                                            "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT")
    with pytest.raises(ValueError, match="`oracle` \\(HOST:PORT\\) is required with `distributed`"):
        run_search(tiny_kaggle, out=out, distributed="worker")
    started = time.time()
    with pytest.raises(ValueError, match="did not answer within 2 s; start the chief first"):
        run_search(tiny_kaggle, out=out, distributed="worker", oracle=f"127.0.0.1:{_free_port()}", oracle_timeout=2)
    assert time.time() - started < 30
    assert [p.name for p in out.iterdir()] == ["leaderboard.csv"]
    assert (out / "leaderboard.csv").read_text() == "keep me"
