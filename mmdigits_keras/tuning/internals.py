"""keras-tuner's undocumented behaviour this package relies on, in one place.

The distributed search's fault tolerance (`mmdigits_keras.tuning.cluster`) reads and changes
state of keras-tuner's `Oracle` that its documentation does not describe. Each use is one
function here, naming the keras-tuner 1.4.8 source it depends on; `tests/tuning/test_internals.py`
checks each assumption against the installed keras-tuner, and setup.cfg bounds keras-tuner to
the minor release those tests pass on (``>=1.4.8,<1.5``).

Everything else the package does with keras-tuner is its documented API: `keras_tuner.Tuner`
and `keras_tuner.HyperModel` subclasses, the oracles of `keras_tuner.oracles` with
`populate_space` overridden, `keras_tuner.synchronized` around overridden `Oracle` methods,
`keras_tuner.errors.FailedTrialError`, and the ``KERASTUNER_*`` environment of distributed tuning.
"""

from __future__ import annotations

# keras_tuner/engine/trial.py re-exports keras_tuner/src/engine/trial.py: `Trial` and
# `TrialStatus` (RUNNING, IDLE, INVALID, STOPPED, COMPLETED, FAILED) are the statuses that
# `Oracle.populate_space` documents returning, but the classes are not exported at the top level.
import keras_tuner
from keras_tuner.engine.trial import Trial, TrialStatus

# The statuses of a trial that has finished running, well or not: it is not run again.
ENDED = (TrialStatus.COMPLETED, TrialStatus.FAILED)

__all__ = ["ENDED", "Trial", "TrialStatus", "every_trial_finished", "forget_finished_retries", "hyperband_first_round",
           "hyperband_iteration_trials", "ongoing_trials", "stand_by", "waited_for"]


def hyperband_iteration_trials(max_epochs, factor=3):
    """Trials one full Hyperband iteration runs (every round of every bracket) with
    `max_epochs` and `factor`; a smaller ``max_trials`` cuts it short.

    keras_tuner/src/tuners/hyperband.py: ``HyperbandOracle._get_num_brackets()`` brackets, each
    of ``_get_num_rounds(bracket)`` rounds of ``_get_size(bracket, round)`` trials, a promoted
    configuration running as a new trial. The first bracket starts with its largest round, the
    shortest trials (``_get_epochs(bracket, 0)`` epochs): for ``max_epochs=10``, 12 trials of 2
    epochs before any configuration trains longer.
    """
    oracle = _hyperband(max_epochs, factor)
    return sum(oracle._get_size(bracket, round_num) for bracket in range(oracle._get_num_brackets())
               for round_num in range(oracle._get_num_rounds(bracket)))


def hyperband_first_round(max_epochs, factor=3):
    """(trials, epochs) of the round a Hyperband search starts with: its first bracket's round 0
    (keras_tuner/src/tuners/hyperband.py: ``_get_size`` and ``_get_epochs`` of bracket
    ``_get_num_brackets() - 1``, round 0)."""
    oracle = _hyperband(max_epochs, factor)
    first = oracle._get_num_brackets() - 1
    return oracle._get_size(first, 0), oracle._get_epochs(first, 0)


def _hyperband(max_epochs, factor):
    return keras_tuner.oracles.HyperbandOracle(objective="val_accuracy", max_epochs=int(max_epochs), factor=int(factor))


def ongoing_trials(oracle):
    """The running trials, ``{tuner_id: Trial}``.

    keras_tuner/src/engine/oracle.py: ``Oracle.__init__`` sets ``self.ongoing_trials = {}``;
    ``create_trial`` adds the trial it hands out under the asking tuner's id (and hands the same
    trial again to a tuner that asks while it has one), ``end_trial`` removes it. The chief ends
    a search only when it is empty (keras_tuner/src/distribute/oracle_chief.py, ``exit_chief``).
    """
    return oracle.ongoing_trials


def waited_for(oracle):
    """The set of tuner ids the chief still waits for before it ends the search.

    keras_tuner/src/engine/oracle.py: ``Oracle.__init__`` sets ``self.tuner_ids = set()``;
    ``create_trial`` adds the asking tuner's id, and removes it when it answers ``STOPPED``.
    The chief ends the search when this set and `ongoing_trials` are both empty
    (oracle_chief.py, ``exit_chief``).
    """
    return oracle.tuner_ids


def forget_finished_retries(oracle):
    """Takes the trials that had finished out of the queue of trials to run again; returns
    their ids.

    keras_tuner/src/engine/oracle.py: ``end_trial`` saves the oracle state before it removes the
    trial from ``ongoing_trials``, so the saved state still lists the trial that ended last as
    running; ``reload`` queues every running trial to run again (the undocumented
    ``_retry_queue``), even one whose own ``trial.json`` says ``COMPLETED``, and
    ``create_trial`` would hand it out again.
    """
    finished = [t for t in oracle._retry_queue if t in oracle.trials and oracle.trials[t].status in ENDED]
    oracle._retry_queue = [t for t in oracle._retry_queue if t not in finished]
    return finished


def every_trial_finished(oracle):
    """True when the oracle has no trial left to hand out: ``max_trials`` trials created, none
    running and none queued to run again (False without ``max_trials``, e.g. Hyperband's).

    keras_tuner/src/engine/oracle.py: ``create_trial`` hands out the trials of the undocumented
    ``_retry_queue`` first (filled by ``reload`` with the trials that were running, and by
    ``end_trial`` with ``INVALID`` ones), and answers ``STOPPED`` once
    ``len(self.trials) >= self.max_trials``.
    """
    return (bool(oracle.max_trials) and len(oracle.trials) >= oracle.max_trials and not oracle._retry_queue
            and not ongoing_trials(oracle))


def stand_by(oracle, tuner_id):
    """Keeps worker `tuner_id` in the search after `Oracle.create_trial` told it ``STOPPED``
    (which removed it from `waited_for`), and returns the ``IDLE`` trial that tells it to ask
    again later (keras_tuner/src/engine/base_tuner.py, ``search``: a tuner told ``IDLE`` asks again)."""
    waited_for(oracle).add(tuner_id)
    return Trial(oracle.hyperparameters.copy(), status=TrialStatus.IDLE)
