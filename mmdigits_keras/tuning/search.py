"""Hyperparameter search with keras-tuner (random, Hyperband, Bayesian) over any registry model.

`run_search` runs a keras-tuner search in a folder it can resume, in one process or in
keras-tuner's own chief/worker mode; every trial is trained by the engine with the same recipe
as `train` (`RegistryHyperModel`), by default in a worker process (`mmdigits_keras.tuning.trial`).
When the search ends it writes a leaderboard, a plot, the best hyperparameters and ``best/``:
the best configuration trained by `train` as `train` trains (a normal run directory).
The parts: the oracles (`mmdigits_keras.tuning.oracles`), the tuner (`.tuner`), the folder's
state and resumption (`.state`), the distributed set-up and its fault tolerance (`.cluster`),
``best/`` (`.export`); the keras-tuner behaviour they rely on beyond its documented API is in
`.internals`. The chief or single search claims its folder (`mmdigits_keras.utils.locks`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
from pathlib import Path

import keras_tuner
import numpy as np

from mmdigits_keras.models import model_info
from mmdigits_keras.training import DEFAULT_MODEL, get_recipe, prepare_data
from mmdigits_keras.training.settings import resolve_protocol, resolve_settings
from mmdigits_keras.tuning.best import announce_export, check_replayed, export_best, export_ensemble
from mmdigits_keras.tuning.cluster import parse_oracle_address, wait_for_oracle
from mmdigits_keras.tuning.internals import hyperband_first_round, hyperband_iteration_trials
from mmdigits_keras.tuning.oracles import HYPERBAND_FACTOR, TUNERS, default_tuner, make_oracle
from mmdigits_keras.tuning.results import OBJECTIVES, leaderboard, plot_scores
from mmdigits_keras.tuning.space import RegistryHyperModel, check_space
from mmdigits_keras.tuning.state import (
    PROJECT_NAME,
    SEARCH_FILE,
    check_resume,
    clear_search,
    repair_search_state,
    search_record,
)
from mmdigits_keras.tuning.trial import hypermodel_for
from mmdigits_keras.tuning.tuner import SearchTuner
from mmdigits_keras.utils.checks import check_choice
from mmdigits_keras.utils.defaults import (
    DEFAULT_OBJECTIVE,
    DEFAULT_RECIPE,
    MAX_TRIALS,
    ORACLE_TIMEOUT_S,
    PATIENCE,
    TRIAL_EPOCHS,
)
from mmdigits_keras.utils.files import atomic_write, read_json, write_json
from mmdigits_keras.utils.locks import claim

logger = logging.getLogger("mmdigits_keras")

def run_search(
    data,
    *,
    out,
    model=DEFAULT_MODEL,
    recipe=DEFAULT_RECIPE,
    tuner=None,
    max_trials=MAX_TRIALS,
    epochs=TRIAL_EPOCHS,
    objective=DEFAULT_OBJECTIVE,
    space=None,
    settings=None,
    overwrite=False,
    distributed=None,
    oracle=None,
    tuner_id=None,
    oracle_timeout=ORACLE_TIMEOUT_S,
    trial_end_hook=None,
    isolate_trials=True,
    ensemble=1,
    folds=None,
):
    """Runs (or resumes) a keras-tuner search over a registry model and exports its results.

    The keras-tuner project lives in ``out/keras_tuner``; rerunning the same command resumes
    it (finished trials are kept, a trial cut off mid-way runs again). A search folder that
    holds a search over other data (SHA-256 fingerprint), another model, recipe, space or
    settings is refused unless `overwrite`. When the search ends (single process, or the
    chief): ``out/leaderboard.csv``, ``out/scores.png``, ``out/best_hyperparameters.json`` and
    ``out/best`` (the best configuration trained by `train`: a normal run directory).

    Args:
        data: A data folder (Kaggle or Khacef layout).
        out: The search folder.
        model: Registry model whose space is searched; default `train`'s (``hybrid_cnn``).
            ``model1``..``model4`` and their LSTM variants: depth, width, audio encoder,
            dropout; others: width, dropout; all: learning rate and batch size; with an
            augmenting recipe also its modality dropout, augmentation strengths and label
            smoothing (`mmdigits_keras.tuning.space`).
        recipe: Training recipe of every trial and of ``best/`` (``"default"``, as `train`);
            the trial's recipe fields replace its own.
        tuner: ``"random"``, ``"hyperband"``, ``"bayesian"``, or None: `default_tuner`
            (random search, untuned configuration first; Hyperband when `max_trials` covers
            one full Hyperband iteration, `hyperband_iteration_trials`). Hyperband with fewer
            trials logs a warning: the search ends inside its first round of short trials.
        max_trials: Maximum number of trials (int > 0; also caps Hyperband's brackets);
            default 4.
        epochs: Maximum epochs per trial, with `train`'s early stopping (default 30, as
            `train`; Hyperband: its ``max_epochs``). Every trial trains with the search's seed
            and is scored at the epoch `train` keeps (lowest validation cross-entropy), so
            trial 0 (the untuned configuration) is `train`'s run and ``best/`` the winner's.
        objective: ``val_accuracy`` (default), ``val_loss``, ``accuracy`` or ``loss``.
        space: Optional overrides of the model's space (see `RegistryHyperModel`).
        settings: A `TrainingSettings` (None: `train`'s defaults with the trials' `epochs`):
            how ``best/`` trains (``epochs``, with early stopping; ``protocol``: as `train`, the
            validated model fine-tuned on every row; ``strategy``; ``semi_supervised``: ``best/``
            alone also learns from the test rows, the trials never do), and what
            every trial shares with it: ``seed`` (also the oracle's), ``val_fraction``,
            ``split`` (the objective is scored on rows whose recordings, or speakers, no
            trial trained on), ``patience`` and ``verbose``.
        ensemble: N >= 1: ``best/`` is the ensemble of the top N trials (`export_ensemble`);
            1 (default): the best trial alone.
        folds: None, or K >= 2: every trial trains K fold models (`train(folds=K)`'s folds) and
            its objective is their mean, epoch by epoch; ``best/`` is the winner trained as
            ``train(..., folds=K)`` (a cross-validation run). Costs K times the trials'
            training; not with Hyperband (its trials continue from one checkpoint).
        overwrite: Delete a previous search in `out` first.
        distributed: None, ``"chief"`` or ``"worker"`` (keras-tuner's chief/worker mode).
        oracle: ``"HOST:PORT"`` of the chief's oracle (required when `distributed`).
        tuner_id: The worker's id (default ``worker-<pid>``; the chief is ``chief``).
        oracle_timeout: Seconds a worker waits for the oracle to answer before giving up.
        trial_end_hook: Optional callable(trial) run after each trial (benchmarks).
        isolate_trials: Run the trials in a worker process replaced every few trials
            (`mmdigits_keras.tuning.trial.TrialWorker`), so memory does not grow from trial to
            trial (TensorFlow keeps memory after each `fit`); a worker's start-up is paid once
            for many trials (it retires at 2 GiB peak RSS or 20 trials). False runs trials in
            this process.

    Returns:
        dict with ``leaderboard`` (DataFrame or None on a worker), ``best`` (run directory or
        None), ``best_metrics`` (``best/``'s ``metrics.json``: its own validation scores, not
        its trial's; None on a worker), ``failed`` (number of failed trials), ``resumed`` (bool), ``role`` and
        ``tuner`` (the keras-tuner `SearchTuner`: ``get_best_models()``,
        ``get_best_hyperparameters()``, ``results_summary()`` work on it; None on a worker).

    Raises:
        ValueError: an unknown model, recipe, tuner or objective, ``max_trials`` or ``epochs``
            < 1, bad data, a `out` holding another search or claimed by another live process
            (a second chief), a bad or silent oracle address, ``settings.semi_supervised`` with
            `folds` or an `ensemble` > 1, or no trial completed.
    """
    settings, tuner = _checked_arguments(model=model, recipe=recipe, tuner=tuner, objective=objective,
                                         max_trials=max_trials, epochs=epochs, ensemble=ensemble, folds=folds,
                                         distributed=distributed, settings=settings)
    space = check_space(space, model=model, recipe=recipe)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file; `out` must be a folder")
    address = _oracle_address(distributed, oracle)
    is_worker = distributed == "worker"
    with contextlib.ExitStack() as claims:
        if not is_worker:  # one chief (or single search) per folder, claimed before any work
            claims.enter_context(claim(out, what="search folder"))
        prepared = prepare_data(data, val_fraction=settings.val_fraction, seed=settings.seed,
                                synthetic_share=get_recipe(recipe).synthetic_share, split=settings.split)
        # The split the default chose, for every trial, worker and best/.
        settings = dataclasses.replace(settings, split=prepared.split)
        record = search_record(data=data, model=model, recipe=recipe, kind=tuner, objective=objective, epochs=epochs,
                               seed=settings.seed, space=space, val_fraction=settings.val_fraction,
                               split=settings.split, fingerprint=prepared.fingerprint, folds=folds,
                               patience=settings.patience)
        resumed = False if is_worker else _open_folder(out, record, overwrite=overwrite)
        if distributed:
            _join_cluster(distributed, address, tuner_id=tuner_id, timeout=oracle_timeout)
        search = _search_tuner(data, out, prepared, model=model, recipe=recipe, tuner=tuner, objective=objective,
                               max_trials=max_trials, epochs=epochs, space=space, settings=settings, folds=folds,
                               role=distributed or "single", isolate_trials=isolate_trials,
                               trial_end_hook=trial_end_hook)
        if not is_worker:
            # A resumed search may be extended or cut; Hyperband's oracle takes no max_trials argument.
            search.oracle.max_trials = max_trials
        search.search(epochs=epochs, verbose=settings.verbose)
        if is_worker:
            return {"leaderboard": None, "best": None, "best_metrics": None, "failed": 0, "resumed": resumed,
                    "role": "worker", "tuner": None}
        gc.collect()
        result = _export_results(search, data, out, model=model, recipe=recipe, tuner=tuner, objective=objective,
                                 epochs=epochs, settings=settings, ensemble=ensemble, folds=folds)
        return {**result, "resumed": resumed, "role": distributed or "single", "tuner": search}


def _checked_arguments(*, model, recipe, tuner, objective, max_trials, epochs, ensemble, folds, distributed,
                       settings):
    """Refuses bad arguments before any work; returns the settings and the tuner kind."""
    model_info(model)
    get_recipe(recipe)
    if tuner is not None:
        check_choice("tuner", tuner, TUNERS)
    check_choice("objective", objective, OBJECTIVES)
    for name, value in (("max_trials", max_trials), ("epochs", epochs), ("ensemble", ensemble)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    settings = resolve_settings(settings, epochs=int(epochs))  # None: best/ trains the trials' epochs
    if tuner is None:
        tuner = default_tuner(max_trials, epochs)
    if distributed not in (None, "chief", "worker"):
        raise ValueError(f"`distributed` must be 'chief' or 'worker'. Received: distributed={distributed!r}")
    if folds is not None:
        if not (isinstance(folds, (int, np.integer)) and folds >= 2):
            raise ValueError(f"`folds` must be an integer >= 2. Received: folds={folds!r}")
        if ensemble > 1:
            raise ValueError("`folds` and `ensemble` > 1 together are not supported: best/ of a cross-validated "
                             "search is already the ensemble of its winner's fold models")
        if tuner == "hyperband":
            raise ValueError("`folds` needs the random or bayesian tuner: Hyperband continues trials from one "
                             "checkpoint, a cross-validated trial has one per fold")
        # best/ is trained as `train(folds=K)`.
        resolve_protocol(settings.protocol, folds=True, semi_supervised=settings.semi_supervised)
    if ensemble > 1 and settings.semi_supervised is not False:
        raise ValueError("`semi_supervised` and `ensemble` > 1 together are not supported: the ensemble's members "
                         "are validated models, not fine-tuned ones")
    iteration = hyperband_iteration_trials(epochs, HYPERBAND_FACTOR)
    if tuner == "hyperband" and max_trials < iteration:
        logger.warning("Hyperband with max_trials=%d and epochs=%d ends inside its first bracket: one full iteration "
                       "is %d trials, and its first %d train %d epoch(s) each; use --max-trials %d or the random tuner",
                       max_trials, epochs, iteration, *hyperband_first_round(epochs, HYPERBAND_FACTOR), iteration)
    return settings, tuner


def _oracle_address(distributed, oracle):
    """(host, port) of the chief's oracle for a distributed search; None otherwise."""
    if not distributed:
        return None
    if oracle is None:
        raise ValueError("`oracle` (HOST:PORT) is required with `distributed`")
    return parse_oracle_address(oracle)


def _open_folder(out, record, *, overwrite):
    """The chief's or single search's folder, ready: checked against `record`, cleared when
    `overwrite`, keras-tuner's state repaired, ``search.json`` written. Returns whether it resumes."""
    resumed = check_resume(out, record, overwrite=overwrite)
    if overwrite:
        clear_search(out)
    repair_search_state(out / PROJECT_NAME)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SEARCH_FILE, record)
    return resumed


def _join_cluster(distributed, address, *, tuner_id, timeout):
    """keras-tuner's chief/worker mode reads its role and the oracle's address from the
    environment (``KERASTUNER_*``); a worker first waits for the chief's oracle to answer."""
    host, port = address
    if distributed == "worker":
        wait_for_oracle(host, port, timeout=timeout)
    os.environ["KERASTUNER_TUNER_ID"] = "chief" if distributed == "chief" else tuner_id or f"worker-{os.getpid()}"
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)


def _search_tuner(data, out, prepared, *, model, recipe, tuner, objective, max_trials, epochs, space, settings, folds,
                  role, isolate_trials, trial_end_hook):
    """The `SearchTuner` of the search: its hypermodel, oracle and where its trials run."""
    seed = settings.seed
    hypermodel = RegistryHyperModel(model, prepared=prepared, recipe=recipe, space=space, seed=seed,
                                    patience=settings.patience)
    objective_spec = keras_tuner.Objective(objective, direction=OBJECTIVES[objective])
    # What a trial process needs to rebuild the data and the hypermodel (`hypermodel_for`).
    trial_settings = {"data": str(Path(data).resolve()), "seed": seed, "val_fraction": settings.val_fraction,
                      "model": model, "recipe": recipe, "space": space, "patience": settings.patience,
                      "split": settings.split, "folds": folds}
    return SearchTuner(
        oracle=make_oracle(tuner, objective=objective_spec, max_trials=max_trials, epochs=epochs, seed=seed),
        hypermodel=hypermodel, directory=str(out), project_name=PROJECT_NAME, overwrite=False,
        isolation=trial_settings if isolate_trials else None, role=role, search_seed=seed,
        trial_end_hook=trial_end_hook,
        folds=hypermodel_for(trial_settings) if folds and not isolate_trials else None)


def _export_results(search, data, out, *, model, recipe, tuner, objective, epochs, settings, ensemble, folds):
    """The finished search's leaderboard, plot and best hyperparameters, and ``best/`` trained
    (`export_best` / `export_ensemble`); returns the result's leaderboard, best and failed."""
    board = leaderboard(search, objective)
    atomic_write(out / "leaderboard.csv", lambda tmp: board.to_csv(tmp, index=False))
    plot_scores(board, out / "scores.png", objective=objective)
    failed = board[board["status"] != "COMPLETED"]
    if (board["status"] == "COMPLETED").sum() == 0:
        first = search.oracle.trials[failed["trial_id"].iloc[0]].message if len(failed) else ""
        last_line = (first or "").strip().splitlines()[-1:] or ["no trial ran"]
        raise ValueError(f"no trial completed ({len(failed)} failed); first failure: {last_line[0]}")
    top = [{"trial_id": trial.trial_id, "score": float(trial.score), "objective": objective, "model": model,
            "recipe": recipe, "values": {k: _plain(v) for k, v in trial.hyperparameters.values.items()}}
           for trial in search.oracle.get_best_trials(ensemble)]
    best = top[0]
    write_json(out / "best_hyperparameters.json", best)
    # best/ trains on the split the trials were scored on.
    export = dict(model=model, recipe=recipe, settings=settings)
    announce_export(top, settings, trial_epochs=epochs, folds=folds)
    if ensemble > 1:
        write_json(out / "best_ensemble.json", top)
        best_dir, exported = export_ensemble(data, out, top, **export)
        what = f"the top {len(top)} configurations (trials {', '.join(t['trial_id'] for t in top)}) as an ensemble"
    else:
        best_dir, exported = export_best(data, out, best, folds=folds, **export)
        what = f"the best configuration (trial {best['trial_id']}, {objective} {best['score']:.4f})"
        if tuner != "hyperband" and settings.epochs == epochs:  # else best/ trains otherwise than its trial
            check_replayed(best_dir, best)
    logger.info("%s %s as %s", "exported" if exported else "kept", what, best_dir)
    if len(failed):
        logger.warning("%d trial(s) did not complete; see the status column of %s", len(failed),
                       out / "leaderboard.csv")
    return {"leaderboard": board, "best": best_dir, "best_metrics": read_json(best_dir / "metrics.json"),
            "failed": len(failed)}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def load_search(out, *, data=None):
    """Opens a search folder as the keras-tuner tuner that ran it, to use keras-tuner's own
    calls on it (``get_best_models()``, ``get_best_hyperparameters()``, ``results_summary()``,
    ``search_space_summary()``, ``load_model(trial)``): in a notebook after the search, or
    after a distributed search whose chief ran elsewhere.

    Args:
        out: The search folder (`run_search`'s `out`).
        data: The data folder the search used, when it has moved (default: the recorded path).

    Returns:
        A `SearchTuner` with every trial of the search; its models are rebuilt on the search's
        own training split (speech standardization included).

    Raises:
        ValueError: `out` holds no search, or `data` is not the data the search used.
    """
    out = Path(out)
    record = read_json(out / SEARCH_FILE)
    data = data or record.get("data")
    if data is None:
        raise ValueError(f"{out}: the search does not record its data folder; pass data=")
    prepared = prepare_data(data, val_fraction=record["val_fraction"], seed=record["seed"], split=record.get("split"),
                            synthetic_share=get_recipe(record["recipe"]).synthetic_share)
    if prepared.fingerprint != record["data_fingerprint"]:
        raise ValueError(f"{data}: not the data the search in {out} used (fingerprints differ)")
    hypermodel = RegistryHyperModel(record["model"], prepared=prepared, recipe=record["recipe"], space=record["space"],
                                    seed=record["seed"], patience=record.get("patience", PATIENCE))
    objective = keras_tuner.Objective(record["objective"], direction=OBJECTIVES[record["objective"]])
    oracle = make_oracle(record["tuner"], objective=objective, max_trials=1, epochs=record["epochs"],
                         seed=record["seed"])
    tuner = SearchTuner(oracle=oracle, hypermodel=hypermodel, directory=str(out), project_name=PROJECT_NAME,
                        overwrite=False, search_seed=record["seed"])
    if not tuner.oracle.trials:  # a distributed search: the chief's state, not this process's tuner file
        tuner.oracle.reload()
    return tuner
