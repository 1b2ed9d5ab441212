"""The search's keras-tuner oracles: random search and Bayesian optimization starting from the
untuned configuration (`DefaultsFirst`), and Hyperband, each with the worker leases of a
distributed search (`mmdigits_keras.tuning.cluster.WorkerLeases`)."""

from __future__ import annotations

import keras_tuner

from mmdigits_keras.tuning.cluster import MAX_RETRIES_PER_TRIAL, WorkerLeases
from mmdigits_keras.tuning.internals import hyperband_iteration_trials

TUNERS = ("random", "hyperband", "bayesian")
HYPERBAND_FACTOR = 3


class DefaultsFirst:
    """Oracle mixin: the first trial is the untuned configuration (every hyperparameter at its
    default: the registered model, `train`'s learning rate, the recipe's batch size), so the
    best trial is never below the untuned model on the search's objective. Later trials are
    the oracle's own. Overrides `Oracle.populate_space`, keras-tuner's hook for custom oracles."""

    def populate_space(self, trial_id):
        if self.trials:
            return super().populate_space(trial_id)
        space = self.hyperparameters
        values = {hp.name: hp.default for hp in space.space if space.is_active(hp)}
        return {"status": "RUNNING", "values": values}


class RandomSearchOracle(WorkerLeases, DefaultsFirst, keras_tuner.oracles.RandomSearchOracle):
    """keras-tuner's random search, starting from the untuned configuration (worker leases:
    `mmdigits_keras.tuning.cluster`)."""


class BayesianOptimizationOracle(WorkerLeases, DefaultsFirst, keras_tuner.oracles.BayesianOptimizationOracle):
    """keras-tuner's Bayesian optimization, starting from the untuned configuration (worker
    leases)."""


class HyperbandOracle(WorkerLeases, keras_tuner.oracles.HyperbandOracle):
    """keras-tuner's Hyperband (worker leases)."""


def default_tuner(max_trials, epochs):
    """The tuner `run_search` uses when none is named: ``"hyperband"`` when `max_trials` covers
    one full Hyperband iteration at `epochs` (`hyperband_iteration_trials`: 30 for 10 epochs)
    and `epochs` >= 3 (two brackets or more), else ``"random"`` (untuned configuration first).

    A large budget is spent better on many configurations trained briefly, the promising ones
    longer (Li et al., JMLR 2018). A smaller one is not: Hyperband opens with its shortest
    trials, so a search cut off inside that round picks its best after a couple of epochs
    (measured: 12 trials of 10 epochs were 12 trials of 2 epochs; docs/tuning.md).
    """
    if epochs < HYPERBAND_FACTOR:  # one bracket: Hyperband would be a random search that stops early
        return "random"
    return "hyperband" if max_trials >= hyperband_iteration_trials(epochs, HYPERBAND_FACTOR) else "random"


def make_oracle(kind, *, objective, max_trials, epochs, seed):
    """A keras-tuner oracle: random search or Bayesian optimization (both starting from the
    untuned configuration, `DefaultsFirst`), or Hyperband (``max_epochs`` = `epochs`, factor 3;
    its brackets decide every trial); at most 3 failed trials in a row; a trial whose worker was
    lost runs again up to `MAX_RETRIES_PER_TRIAL` times (`WorkerLeases`)."""
    common = dict(objective=objective, seed=seed, max_consecutive_failed_trials=3,
                  max_retries_per_trial=MAX_RETRIES_PER_TRIAL)
    if kind == "hyperband":
        return HyperbandOracle(max_epochs=epochs, factor=HYPERBAND_FACTOR, hyperband_iterations=1, **common)
    if kind == "bayesian":
        return BayesianOptimizationOracle(max_trials=max_trials, **common)
    return RandomSearchOracle(max_trials=max_trials, **common)
