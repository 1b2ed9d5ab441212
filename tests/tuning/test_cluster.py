"""The chief's side of the cluster rules, on an oracle in this process (the processes, kills and
restarts are in test_search.py)."""

import keras_tuner
import pytest
from keras_tuner.engine.trial import Trial

from mmdigits_keras.tuning import make_oracle


@pytest.fixture
def oracle(tmp_path):
    oracle = make_oracle("random", objective=keras_tuner.Objective("score", "max"), max_trials=2, epochs=1, seed=0)

    def build(hp):
        hp.Int("x", 0, 100)

    keras_tuner.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path), project_name="p")
    return oracle


def test_a_lost_workers_trial_goes_to_a_worker_standing_by(oracle, caplog):
    first, second = oracle.create_trial("a"), oracle.create_trial("b")
    assert {first.status, second.status} == {"RUNNING"}
    # Every trial handed out, one still running: a third worker stands by instead of stopping.
    assert oracle.create_trial("c").status == "IDLE" and "c" in oracle.tuner_ids
    assert oracle.release_lost_workers(3600) == []  # everyone was heard from just now
    oracle._last_heard["a"] -= 7200  # "a" silent for two hours
    assert oracle.release_lost_workers(3600) == ["a"]
    assert "worker a lost (no heartbeat for 3600 s) during trial" in caplog.text
    assert "a" not in oracle.tuner_ids and "a" not in oracle.ongoing_trials
    rerun = oracle.create_trial("c")
    assert rerun.trial_id == first.trial_id and rerun.status == "RUNNING"


def test_a_late_result_is_dropped_and_never_counted(oracle, caplog):
    first = oracle.create_trial("a")
    oracle._last_heard["a"] -= 7200
    oracle.release_lost_workers(3600)
    late = Trial(first.hyperparameters, trial_id=first.trial_id, status="COMPLETED")
    oracle.update_trial(first.trial_id, {"score": 1.0})
    oracle.end_trial(late)  # "a" was alive after all and reports
    assert "dropped a late result of trial" in caplog.text
    assert oracle.trials[first.trial_id].status == "INVALID"  # still queued to run again
    assert not oracle.trials[first.trial_id].metrics.exists("score")


def test_with_nothing_running_a_worker_is_told_to_stop(oracle):
    for tuner_id in ("a", "b"):
        trial = oracle.create_trial(tuner_id)
        trial.status = "COMPLETED"
        oracle.update_trial(trial.trial_id, {"score": 0.5})
        oracle.end_trial(trial)
    assert oracle.create_trial("c").status == "STOPPED"
