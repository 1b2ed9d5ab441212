"""The chief's side of the cluster rules, on an oracle in this process (the processes, kills and
restarts are in test_search.py)."""

import time

import keras_tuner
import pytest

from mmdigits_keras.tuning import cluster, make_oracle
from mmdigits_keras.tuning.internals import Trial


@pytest.fixture
def oracle(tmp_path):
    oracle = make_oracle("random", objective=keras_tuner.Objective("score", "max"), max_trials=2, epochs=1, seed=0)

    def build(hp):
        hp.Int("x", 0, 100)

    keras_tuner.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path), project_name="p")
    return oracle


def _two_hours_later(monkeypatch):
    later = time.monotonic() + 7200
    monkeypatch.setattr(cluster.time, "monotonic", lambda: later)


def test_a_lost_workers_trial_goes_to_a_worker_standing_by(oracle, caplog, monkeypatch):
    first, second = oracle.create_trial("a"), oracle.create_trial("b")
    assert {first.status, second.status} == {"RUNNING"}
    # Every trial handed out, one still running: a third worker stands by instead of stopping.
    assert oracle.create_trial("c").status == "IDLE" and "c" in oracle.tuner_ids
    assert oracle.release_lost_workers(3600) == []  # everyone was heard from just now
    _two_hours_later(monkeypatch)  # "b" sends its heartbeat, "c" asks again; "a" was silent
    oracle.get_trial(second.trial_id)
    assert oracle.create_trial("c").status == "IDLE"
    assert oracle.release_lost_workers(3600) == ["a"]
    assert "worker a lost (no heartbeat for 3600 s) during trial" in caplog.text
    assert "a" not in oracle.tuner_ids and "a" not in oracle.ongoing_trials
    rerun = oracle.create_trial("c")
    assert rerun.trial_id == first.trial_id and rerun.status == "RUNNING"


def test_a_late_result_is_dropped_and_never_counted(oracle, caplog, monkeypatch):
    first = oracle.create_trial("a")
    _two_hours_later(monkeypatch)
    assert oracle.release_lost_workers(3600) == ["a"]
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
