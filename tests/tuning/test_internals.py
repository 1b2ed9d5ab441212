"""Each keras-tuner behaviour `mmdigits_keras.tuning.internals` relies on, checked on keras-tuner's
own oracle (no mixin of ours): when one of these fails, keras-tuner changed under us."""

import keras_tuner
import pytest

from mmdigits_keras.tuning.internals import (
    Trial,
    TrialStatus,
    every_trial_finished,
    forget_finished_retries,
    hyperband_first_round,
    hyperband_iteration_trials,
    ongoing_trials,
    stand_by,
    waited_for,
)


@pytest.fixture
def oracle(tmp_path):
    oracle = keras_tuner.oracles.RandomSearchOracle(objective=keras_tuner.Objective("score", "max"), max_trials=2,
                                                    seed=0, max_retries_per_trial=1)

    def build(hp):
        hp.Int("x", 0, 100)

    keras_tuner.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path), project_name="p")
    return oracle


def _end(oracle, trial, status):
    trial.status = status
    oracle.end_trial(trial)


def test_a_handed_out_trial_is_ongoing_under_its_tuner_until_it_ends(oracle):
    trial = oracle.create_trial("a")
    assert ongoing_trials(oracle) == {"a": trial} and "a" in waited_for(oracle)
    assert oracle.create_trial("a") is trial  # asking again while running: the same trial
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    _end(oracle, trial, TrialStatus.COMPLETED)
    assert ongoing_trials(oracle) == {}


def test_stopped_removes_the_tuner_from_those_waited_for_and_stand_by_keeps_it(oracle):
    for name in ("a", "b"):
        trial = oracle.create_trial(name)
        oracle.update_trial(trial.trial_id, {"score": 1.0})
        _end(oracle, trial, TrialStatus.COMPLETED)
    stopped = oracle.create_trial("a")
    assert stopped.status == TrialStatus.STOPPED and "a" not in waited_for(oracle)
    idle = stand_by(oracle, "a")
    assert isinstance(idle, Trial) and idle.status == TrialStatus.IDLE and "a" in waited_for(oracle)


def test_an_invalid_trial_runs_again_until_its_retries_are_spent(oracle):
    first = oracle.create_trial("a")
    _end(oracle, first, TrialStatus.INVALID)
    again = oracle.create_trial("b")
    assert again.trial_id == first.trial_id and ongoing_trials(oracle) == {"b": again}
    _end(oracle, again, TrialStatus.INVALID)  # max_retries_per_trial=1: two runs, then failed
    assert oracle.trials[first.trial_id].status == TrialStatus.FAILED
    assert oracle.create_trial("b").trial_id != first.trial_id


def test_the_saved_state_lists_the_trial_that_ended_last_as_running(oracle):
    trial = oracle.create_trial("a")
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    _end(oracle, trial, TrialStatus.COMPLETED)
    oracle.reload()  # a restarted chief reads the state end_trial saved
    assert oracle.trials[trial.trial_id].status == TrialStatus.COMPLETED
    assert forget_finished_retries(oracle) == [trial.trial_id]  # keras-tuner had queued it to run again
    assert oracle.create_trial("a").trial_id != trial.trial_id


def test_a_reloaded_oracle_queues_its_running_trial_and_then_has_none_left(oracle):
    first = oracle.create_trial("a")
    oracle.update_trial(first.trial_id, {"score": 1.0})
    _end(oracle, first, TrialStatus.COMPLETED)
    running = oracle.create_trial("a")
    assert not every_trial_finished(oracle)  # max_trials=2 created, one still running
    oracle.reload()  # a restarted chief: the running trial is queued to run again
    assert ongoing_trials(oracle) == {} and not every_trial_finished(oracle)
    again = oracle.create_trial("b")
    assert again.trial_id == running.trial_id
    oracle.update_trial(again.trial_id, {"score": 2.0})
    _end(oracle, again, TrialStatus.COMPLETED)
    assert every_trial_finished(oracle) and oracle.create_trial("b").status == TrialStatus.STOPPED


def test_the_chief_ends_only_when_nothing_runs_and_no_tuner_is_waited_for(oracle):
    from keras_tuner.src.distribute.oracle_chief import exit_chief

    trial = oracle.create_trial("a")
    assert not exit_chief(oracle)
    _end(oracle, trial, TrialStatus.FAILED)
    assert ongoing_trials(oracle) == {} and not exit_chief(oracle)  # "a" is still waited for
    waited_for(oracle).discard("a")
    assert exit_chief(oracle)


@pytest.mark.parametrize("max_epochs", [3, 10])
def test_one_hyperband_iteration_runs_the_trials_we_count_shortest_first(tmp_path, max_epochs):
    oracle = keras_tuner.oracles.HyperbandOracle(objective=keras_tuner.Objective("score", "max"),
                                                 max_epochs=max_epochs, factor=3, hyperband_iterations=1, seed=0)

    def build(hp):
        hp.Int("x", 0, 10**6)

    keras_tuner.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path), project_name="p")
    epochs = []
    while (trial := oracle.create_trial("a")).status != TrialStatus.STOPPED:
        epochs.append(trial.hyperparameters.values["tuner/epochs"])
        oracle.update_trial(trial.trial_id, {"score": float(trial.hyperparameters.values["x"])})
        _end(oracle, trial, TrialStatus.COMPLETED)
    assert len(epochs) == hyperband_iteration_trials(max_epochs, 3)
    first, short = hyperband_first_round(max_epochs, 3)
    assert epochs[:first] == [short] * first and epochs[first] > short
