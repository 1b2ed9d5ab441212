"""The chief's side of the cluster rules, on an oracle in this process (the processes, kills and
restarts are in test_search.py)."""

import time

import grpc
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


class _CutOff(grpc.RpcError):
    """What a gRPC call raises when the server dies while answering it."""

    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code


class _Client:
    """A stand-in for keras-tuner's oracle client whose first `calls_failing` requests fail."""

    def __init__(self, calls_failing, code):
        self.calls, self.calls_failing, self.code, self.tuner_id = 0, calls_failing, code, "w1"

    def create_trial(self, tuner_id):
        self.calls += 1
        if self.calls <= self.calls_failing:
            raise _CutOff(self.code)
        return f"trial for {tuner_id}"


def test_a_request_cut_off_by_a_dying_chief_is_sent_again(monkeypatch, caplog):
    monkeypatch.setattr(cluster, "HEARTBEAT_SECONDS", 0.0)
    client = _Client(2, grpc.StatusCode.UNAVAILABLE)
    reconnecting = cluster.Reconnecting(client)
    assert reconnecting.create_trial("w1") == "trial for w1" and client.calls == 3
    assert "the chief went away during a create_trial request" in caplog.text
    reconnecting.should_report = False  # keras-tuner sets attributes on its client
    assert client.should_report is False and reconnecting.tuner_id == "w1"


def test_other_grpc_errors_are_not_sent_again():
    client = _Client(1, grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(grpc.RpcError):
        cluster.Reconnecting(client).create_trial("w1")
    assert client.calls == 1
