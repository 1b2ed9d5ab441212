"""Hyperparameter search with keras-tuner (random, Hyperband, Bayesian) over any registry model.

`run_search` runs a keras-tuner search in a folder it can resume, in one process or in
keras-tuner's own chief/worker mode; every trial is trained by the engine with the same recipe
as `train` (`RegistryHyperModel`), by default in a worker process (`mmdigits_keras.tuning.trial`).
When the search ends it writes a leaderboard, a plot, the best hyperparameters and ``best/``:
the best configuration trained by `train` as `train` trains (a normal run directory).
Only keras-tuner's public API is used: a `keras_tuner.Tuner` with an oracle from
`keras_tuner.oracles`, `run_trial` overridden to return the trial's `History`; the oracles'
mixins override public `Oracle` methods and read its public state (``ongoing_trials``,
``tuner_ids``) under `keras_tuner.synchronized` (`mmdigits_keras.tuning.cluster`: lost workers,
chief restarts). The chief or single search claims its folder (`mmdigits_keras.utils.locks`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import shutil
import time
from pathlib import Path

import grpc
import keras
import keras_tuner
import numpy as np

from mmdigits_keras.models import model_info
from mmdigits_keras.training import DEFAULT_MODEL, get_recipe, load_trained_model, predict_labels, prepare_data, train
from mmdigits_keras.training.logs import LOGS_DIR
from mmdigits_keras.training.metrics import classification_metrics
from mmdigits_keras.tuning.cluster import (
    IDLE_POLL_SECONDS,
    MAX_RETRIES_PER_TRIAL,
    Heartbeat,
    LeaseKeeper,
    WorkerLeases,
)
from mmdigits_keras.tuning.results import OBJECTIVES, TRIAL_FILE, leaderboard, plot_scores
from mmdigits_keras.tuning.space import (
    DEFAULT_LEARNING_RATE,
    RegistryHyperModel,
    check_space,
    model_hyperparameters,
    trial_recipe,
)
from mmdigits_keras.tuning.trial import TrialWorker, hypermodel_for, train_trial
from mmdigits_keras.utils.checks import check_choice
from mmdigits_keras.utils.files import atomic_write, publish_directory, read_json, write_json
from mmdigits_keras.utils.locks import claim

logger = logging.getLogger("mmdigits_keras")

TUNERS = ("random", "hyperband", "bayesian")
# Above this many trials the default tuner is Hyperband: a large budget is spent better on many
# configurations trained briefly, the promising ones longer (Li et al., JMLR 2018), than on
# each trained for every epoch.
HYPERBAND_ABOVE_TRIALS = 10
PROJECT_NAME = "keras_tuner"
PATIENCE = 10  # early stopping, as in `train`
EXPORT_EPOCHS = 30  # `train`'s default: best/ is trained as `mmdigits train` trains
SEARCH_FILE = "search.json"
CHECKPOINT_FILE = "best_epoch.weights.h5"


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


def default_tuner(max_trials):
    """The tuner `run_search` uses when none is named: ``"random"`` for up to
    `HYPERBAND_ABOVE_TRIALS` trials, ``"hyperband"`` above."""
    return "hyperband" if max_trials > HYPERBAND_ABOVE_TRIALS else "random"


def make_oracle(kind, *, objective, max_trials, epochs, seed):
    """A keras-tuner oracle: random search or Bayesian optimization (both starting from the
    untuned configuration, `DefaultsFirst`), or Hyperband (``max_epochs`` = `epochs`, factor 3;
    its brackets decide every trial); at most 3 failed trials in a row; a trial whose worker was
    lost runs again up to `MAX_RETRIES_PER_TRIAL` times (`WorkerLeases`)."""
    common = dict(objective=objective, seed=seed, max_consecutive_failed_trials=3,
                  max_retries_per_trial=MAX_RETRIES_PER_TRIAL)
    if kind == "hyperband":
        return HyperbandOracle(max_epochs=epochs, factor=3, hyperband_iterations=1, **common)
    if kind == "bayesian":
        return BayesianOptimizationOracle(max_trials=max_trials, **common)
    return RandomSearchOracle(max_trials=max_trials, **common)


class SearchTuner(keras_tuner.Tuner):
    """A keras-tuner `Tuner` whose trials run through `train_trial` (the engine), in a
    `TrialWorker` process (replaced every few trials) when `isolation` is given, each with a
    fresh Keras session and its own seed (memory stays bounded, keras-tuner issue #395).

    Args:
        isolation: None (trials in this process) or the request entries a worker needs to
            rebuild the data and the hypermodel (data path, split, model, recipe, space, ...).
        role: ``"single"``, ``"chief"`` (releases lost workers: `LeaseKeeper`) or
            ``"worker"`` (sends heartbeats while a trial trains: `Heartbeat`).
        search_seed: The search's seed; trial t uses ``search_seed + t``.
        trial_end_hook: Optional callable(trial) run after each trial (benchmarks).
        **kwargs: `keras_tuner.Tuner` arguments (``oracle``, ``hypermodel``, ``directory``, ...).
    """

    def __init__(self, *, isolation=None, role="single", search_seed=0, trial_end_hook=None, folds=None, **kwargs):
        super().__init__(**kwargs)
        self.isolation = isolation
        self.folds = folds  # None, or the fold hypermodels of an in-process cross-validated search
        self.role = role
        self._asked_without_trial = False  # see `pre_create_trial`
        self.search_seed = int(search_seed)
        self.trial_end_hook = trial_end_hook
        self._finished = {}
        self._worker = TrialWorker()

    def checkpoint_path(self, trial_id):
        """Where trial `trial_id` keeps its best epoch's weights (Hyperband continues from it)."""
        return str(Path(self.get_trial_dir(trial_id)) / CHECKPOINT_FILE)

    def load_model(self, trial):
        """The model of `trial` with its best epoch's weights (keras-tuner's `get_best_models`
        calls this): rebuilt by the hypermodel from the trial's hyperparameters, speech
        standardization included, so it predicts on raw loader output.

        Raises:
            ValueError: the trial left no checkpoint (it failed, or its folder is elsewhere).
        """
        path = self.checkpoint_path(trial.trial_id)
        if not Path(path).is_file():
            raise ValueError(f"{path}: trial {trial.trial_id} left no weights (status {trial.status})")
        keras.backend.clear_session()
        model = self.hypermodel.build(trial.hyperparameters)
        model.load_weights(path)
        return model

    def run_trial(self, trial, *args, **kwargs):
        """Trains one trial and returns its Keras `History` (keras-tuner takes the best epoch)."""
        if self.isolation is None:  # a worker process clears its own session
            keras.backend.clear_session()
            gc.collect()
        values = dict(trial.hyperparameters.values)
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        request = {
            **(self.isolation or {}), "values": values, "trial_seed": self.search_seed + int(trial.trial_id),
            "epochs": int(values.get("tuner/epochs", kwargs.get("epochs", 1))),
            "initial_epoch": int(values.get("tuner/initial_epoch", 0)),
            "initial_weights": (self.checkpoint_path(values["tuner/trial_id"]) if "tuner/trial_id" in values
                                else None),
            "checkpoint": self.checkpoint_path(trial.trial_id),
            "objective": self.oracle.objective.name, "direction": self.oracle.objective.direction,
            "result": str(trial_dir / "child_result.json"), "verbose": kwargs.get("verbose", "auto"),
            "trial_id": trial.trial_id, "log_dir": str(Path(self.project_dir).parent / LOGS_DIR / trial.trial_id),
        }
        started = time.perf_counter()
        with Heartbeat(self.oracle, trial.trial_id) if self.role == "worker" else contextlib.nullcontext():
            if self.isolation is None:
                history, worker = self._run_here(request), {}
            else:
                history, worker = self._run_in_child(request, trial_dir)
        seconds = time.perf_counter() - started
        epochs = len(history.history.get("loss", []))
        # Who ran the trial, and when: the leaderboard's tuner_id column, and a way to see
        # that a resumed search did not run a finished trial again. Written in `on_trial_end`,
        # once keras-tuner has saved the trial as finished.
        # In a worker: its pid and the seconds of the trial itself; seconds - fit_seconds is what
        # the search loop adds per trial (request, result, keras-tuner's bookkeeping).
        self._finished[trial.trial_id] = {
            "tuner_id": self.tuner_id, "pid": os.getpid(), **worker, "seconds": seconds, "epochs": epochs,
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
        objective = self.oracle.objective.name
        best = max(history.history.get(objective, [float("nan")]), key=lambda v: v if self.oracle.objective.direction
                   == "max" else -v)
        logger.info("[%s] trial %s: %s %.4f in %.1f s", self.tuner_id, trial.trial_id, objective, best, seconds)
        return history

    def _run_here(self, request):
        """Trains the trial in this process; a failure fails the trial (as in a worker process),
        so keras-tuner's retries stay for trials whose worker was lost."""
        try:
            return train_trial(request, self.folds or self.hypermodel)
        except Exception as error:
            raise keras_tuner.errors.FailedTrialError(f"{type(error).__name__}: {error}") from error

    def pre_create_trial(self):
        """Asking again after a request that started no trial (the chief said ``IDLE``: stand
        by): wait `IDLE_POLL_SECONDS` first, so a waiting worker does not flood the chief."""
        if self._asked_without_trial:
            time.sleep(IDLE_POLL_SECONDS)
        self._asked_without_trial = True

    def on_trial_begin(self, trial):
        self._asked_without_trial = False
        super().on_trial_begin(trial)

    def search(self, *fit_args, **fit_kwargs):
        """keras-tuner's search; the chief releases the trials of lost workers while it serves."""
        if self.role != "chief":
            return super().search(*fit_args, **fit_kwargs)
        with LeaseKeeper(self.oracle):
            return super().search(*fit_args, **fit_kwargs)

    def _run_in_child(self, request, trial_dir):
        """Runs the trial in the `TrialWorker` process; returns (History, {worker_pid, fit_seconds})."""
        request_path = trial_dir / "child_request.json"
        write_json(request_path, request)
        Path(request["result"]).unlink(missing_ok=True)
        failure = self._worker.run(request_path)
        if failure is not None:
            raise keras_tuner.errors.FailedTrialError(failure)
        result = read_json(request["result"])
        history = keras.callbacks.History()
        history.history = result["history"]
        return history, {"worker_pid": result["worker_pid"], "fit_seconds": result["fit_seconds"]}

    def on_search_end(self):
        """The worker process exits with the search."""
        self._worker.close()
        super().on_search_end()

    def on_trial_end(self, trial):
        """keras-tuner saves the trial and its state; then the state is backed up (see
        `repair_search_state`) and the trial's ``mmdigits_trial.json`` written."""
        super().on_trial_end(trial)
        backup_search_state(self.project_dir)
        record = self._finished.pop(trial.trial_id, None)
        if record is not None:
            write_json(Path(self.get_trial_dir(trial.trial_id)) / TRIAL_FILE, {**record, "finished_at": time.time()})
        if self.trial_end_hook is not None:
            self.trial_end_hook(trial)


BACKUP_SUFFIX = ".last-good"


def backup_search_state(project_dir):
    """Copies keras-tuner's state files (``oracle.json``, ``<tuner_id>.json``) aside, atomically."""
    for path in Path(project_dir).glob("*.json"):
        atomic_write(path.with_name(path.name + BACKUP_SUFFIX), lambda tmp, src=path: shutil.copyfile(src, tmp))


def repair_search_state(project_dir):
    """Mends keras-tuner state files cut off by a kill: keras-tuner writes ``oracle.json`` in
    place, so a kill -9 during that write leaves a file that cannot be reloaded. Such a file is
    replaced by its copy from the end of the previous trial (`backup_search_state`); without a
    copy, the whole state is removed and the search starts over (its trial folders are reused).

    Returns:
        The names of the files mended (empty when all were whole).
    """
    project_dir = Path(project_dir)
    mended = []
    for path in sorted(project_dir.glob("*.json")):
        try:
            json.loads(path.read_text())
            continue
        except ValueError:
            mended.append(path.name)
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if backup.is_file():
            shutil.copyfile(backup, path)
            logger.warning("%s: cut off by an interrupted run; restored its state from the last finished trial", path)
        else:
            for state in project_dir.glob("*.json"):
                state.unlink()
            logger.warning("%s: cut off by an interrupted run and no earlier copy; starting the search over", path)
            break
    return mended


def parse_oracle_address(address):
    """``"HOST:PORT"`` -> (host, port); raises ValueError naming `--oracle` otherwise."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"`--oracle` must be HOST:PORT, e.g. 127.0.0.1:8000. Received: {address!r}")
    return host, int(port)


def wait_for_oracle(host, port, *, timeout):
    """Waits up to `timeout` seconds for the chief's oracle to answer; ValueError if it does not."""
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise ValueError(f"the oracle at {host}:{port} did not answer within {timeout:g} s; "
                         f"start the chief first (tune.py --distributed chief --oracle {host}:{port})") from None
    finally:
        channel.close()


def _search_record(*, data, model, recipe, kind, objective, epochs, seed, space, val_fraction, split, fingerprint,
                   folds=None):
    # `folds` only when set: searches written before it existed still resume.
    return {"model": model, "recipe": recipe, "tuner": kind, "objective": objective, "epochs": int(epochs),
            "seed": int(seed), "val_fraction": float(val_fraction), "split": split, "space": space,
            "data": str(Path(data).resolve()), "data_fingerprint": fingerprint,
            **({"folds": int(folds)} if folds else {})}


def _check_resume(out, record, *, overwrite):
    """Refuses to continue a search in `out` that used other data, space or settings."""
    path = out / SEARCH_FILE
    if overwrite or not path.exists():
        return False
    previous = read_json(path)
    # "data" (the folder's path) may move; its fingerprint decides.
    differences = [k for k in record if k != "data" and previous.get(k) != record[k]]
    if differences:
        what = ", ".join("data (fingerprint)" if k == "data_fingerprint" else k for k in differences)
        raise ValueError(f"{out}: holds a search with a different {what}; use another --out, "
                         f"or --overwrite to start over")
    return True


def _clear_search(out):
    for name in (PROJECT_NAME, "best", ".best.staging", LOGS_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (SEARCH_FILE, "leaderboard.csv", "scores.png", "best_hyperparameters.json", "best_ensemble.json"):
        (out / name).unlink(missing_ok=True)


def _train_trial_config(data, out, trial, *, model, recipe, epochs, seed, val_fraction, split, verbose, folds=None):
    """Trains one trial's configuration with `train` into `out`, as `mmdigits train` would
    (with `folds`, as ``train --folds`` would: a cross-validation run of K fold models)."""
    values = trial["values"]
    return train(data, out=out, model=model, epochs=epochs, seed=seed, recipe=trial_recipe(recipe, values),
                 learning_rate=values.get("learning_rate", DEFAULT_LEARNING_RATE), val_fraction=val_fraction,
                 split=split, model_kwargs=model_hyperparameters(values), overwrite=True, verbose=verbose, folds=folds,
                 extra_config={"tuning": {"trial_id": trial["trial_id"], "score": trial["score"],
                                          "objective": trial["objective"]}})


def export_best(data, out, best, *, model, recipe, epochs, seed, val_fraction, verbose, split=None, folds=None):
    """Trains the best configuration with `train` into ``out/best`` (a normal run directory), as
    `mmdigits train` would: same recipe (with the trial's recipe fields), split and seed,
    `epochs` epochs with early stopping.

    Skipped when ``out/best`` already holds this trial's configuration (a resumed search that
    had finished exporting). The run directory is written aside and renamed into place.

    Returns:
        (run directory, exported): exported is False when it was kept.
    """
    best_dir = out / "best"
    if (best_dir / "config.json").is_file():
        config = read_json(best_dir / "config.json")
        if config.get("tuning", {}).get("trial_id") == best["trial_id"]:
            return best_dir, False
    return _train_trial_config(data, best_dir, best, model=model, recipe=recipe, epochs=epochs, seed=seed,
                               val_fraction=val_fraction, split=split, verbose=verbose, folds=folds), True


def export_ensemble(data, out, trials, *, model, recipe, epochs, seed, val_fraction, split, verbose):
    """Trains the configurations of `trials` (the search's top N) with `train` and makes
    ``out/best`` their ensemble: ``best/trial_<id>/`` run directories, and a ``config.json``
    naming them as members, so ``best/`` loads, submits and exports as the mean of their
    probabilities (`load_trained_model`). ``metrics.json`` has each member's validation scores
    and the ensemble's, on the members' common validation rows.

    Members are trained in ``out/.best.staging`` and kept there until all are done (a killed
    export resumes member by member); then the folder is renamed to ``best``.

    Returns:
        (run directory, exported): exported is False when ``best/`` already held these trials.
    """
    best_dir = out / "best"
    ids = [trial["trial_id"] for trial in trials]
    if (best_dir / "config.json").is_file():
        if read_json(best_dir / "config.json").get("tuning", {}).get("trial_ids") == ids:
            return best_dir, False
    staging = out / ".best.staging"
    staging.mkdir(parents=True, exist_ok=True)
    members = [f"trial_{trial_id}" for trial_id in ids]
    for name, trial in zip(members, trials):
        if not (staging / name / "config.json").is_file():
            _train_trial_config(data, staging / name, trial, model=model, recipe=recipe, epochs=epochs, seed=seed,
                                val_fraction=val_fraction, split=split, verbose=verbose)
    validation = prepare_data(data, val_fraction=val_fraction, seed=seed, split=split).validation
    scores = {name: read_json(staging / name / "metrics.json") for name in members}
    first = read_json(staging / members[0] / "config.json")
    config = {key: first[key] for key in ("format", "task", "model", "training", "data", "versions") if key in first}
    config.update({"ensemble": {"members": members, "weights": None},
                   "tuning": {"trial_ids": ids, "scores": [trial["score"] for trial in trials],
                              "objective": trials[0]["objective"]}})
    write_json(staging / "config.json", config)
    ensemble = classification_metrics(validation.labels, predict_labels(load_trained_model(staging), validation))
    write_json(staging / "metrics.json", {
        "val_accuracy": ensemble["accuracy"], "val_macro_f1": ensemble["macro_f1"], "validation_rows": ensemble["rows"],
        "epochs": max(s["epochs"] for s in scores.values()),
        "seconds": round(sum(s["seconds"] for s in scores.values()), 2),
        "members": {name: {k: s[k] for k in ("val_accuracy", "val_macro_f1", "epochs")} for name, s in scores.items()},
        "data": validation.source})
    return publish_directory(staging, best_dir, overwrite=True), True


def run_search(
    data,
    *,
    out,
    model=DEFAULT_MODEL,
    recipe="default",
    tuner=None,
    max_trials=10,
    epochs=10,
    export_epochs=EXPORT_EPOCHS,
    objective="val_accuracy",
    seed=0,
    space=None,
    val_fraction=0.2,
    overwrite=False,
    distributed=None,
    oracle=None,
    tuner_id=None,
    oracle_timeout=60.0,
    verbose="auto",
    trial_end_hook=None,
    isolate_trials=True,
    split=None,
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
            (random search up to 10 trials, Hyperband above).
        max_trials: Maximum number of trials (int > 0; also caps Hyperband's brackets).
        epochs: Epochs per trial (Hyperband: its ``max_epochs``).
        export_epochs: Maximum epochs of ``best/`` (default 30, `train`'s; early stopping).
        objective: ``val_accuracy`` (default), ``val_loss``, ``accuracy`` or ``loss``.
        seed: Seed of the oracle, the split and each trial's initialization.
        space: Optional overrides of the model's space (see `RegistryHyperModel`).
        val_fraction: Stratified validation fraction of the training files.
        split: What validation holds out (``"speaker"``, ``"recording"``, ``"row"``; None: the
            strictest the data supports, as `train`): the objective is scored on rows whose
            recordings (or speakers) no trial trained on.
        ensemble: N >= 1: ``best/`` is the ensemble of the top N trials (`export_ensemble`);
            1 (default): the best trial alone.
        folds: None, or K >= 2: every trial trains K fold models (`train --folds`'s folds) and
            its objective is their mean, epoch by epoch; ``best/`` is the winner trained as
            ``train(..., folds=K)`` (a cross-validation run). Costs K times the trials'
            training; not with Hyperband (its trials continue from one checkpoint).
        overwrite: Delete a previous search in `out` first.
        distributed: None, ``"chief"`` or ``"worker"`` (keras-tuner's chief/worker mode).
        oracle: ``"HOST:PORT"`` of the chief's oracle (required when `distributed`).
        tuner_id: The worker's id (default ``worker-<pid>``; the chief is ``chief``).
        oracle_timeout: Seconds a worker waits for the oracle to answer before giving up.
        verbose: Keras `fit` verbosity.
        trial_end_hook: Optional callable(trial) run after each trial (benchmarks).
        isolate_trials: Run the trials in a worker process replaced every few trials
            (`mmdigits_keras.tuning.trial.TrialWorker`), so memory does not grow from trial to
            trial (TensorFlow keeps memory after each `fit`); a worker's start-up is paid once
            for many trials (it retires at 2 GiB peak RSS or 20 trials). False runs trials in
            this process.

    Returns:
        dict with ``leaderboard`` (DataFrame or None on a worker), ``best`` (run directory or
        None), ``failed`` (number of failed trials), ``resumed`` (bool), ``role`` and
        ``tuner`` (the keras-tuner `SearchTuner`: ``get_best_models()``,
        ``get_best_hyperparameters()``, ``results_summary()`` work on it; None on a worker).

    Raises:
        ValueError: an unknown model, recipe, tuner or objective, ``max_trials`` or ``epochs``
            < 1, bad data, a `out` holding another search or claimed by another live process
            (a second chief), a bad or silent oracle address, or no trial completed.
    """
    model_info(model)
    get_recipe(recipe)
    if tuner is None and isinstance(max_trials, (int, np.integer)):
        tuner = default_tuner(max_trials)
    check_choice("tuner", tuner, TUNERS)
    check_choice("objective", objective, OBJECTIVES)
    for name, value in (("max_trials", max_trials), ("epochs", epochs), ("export_epochs", export_epochs),
                        ("ensemble", ensemble)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
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
    space = check_space(space, model=model, recipe=recipe)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file; --out must be a folder")
    if distributed:
        if oracle is None:
            raise ValueError("`--oracle HOST:PORT` is required with --distributed")
        host, port = parse_oracle_address(oracle)

    is_worker = distributed == "worker"
    with contextlib.ExitStack() as claims:
        if not is_worker:  # one chief (or single search) per folder, claimed before any work
            claims.enter_context(claim(out, what="search folder"))
        prepared = prepare_data(data, val_fraction=val_fraction, seed=seed,
                                synthetic_share=get_recipe(recipe).synthetic_share, split=split)
        split = prepared.split  # the one the default chose, for every trial, worker and best/
        record = _search_record(data=data, model=model, recipe=recipe, kind=tuner, objective=objective, epochs=epochs,
                                seed=seed, space=space, val_fraction=val_fraction, split=split,
                                fingerprint=prepared.fingerprint, folds=folds)
        resumed = False
        if not is_worker:
            resumed = _check_resume(out, record, overwrite=overwrite)
            if overwrite:
                _clear_search(out)
            repair_search_state(out / PROJECT_NAME)
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / SEARCH_FILE, record)
        if distributed:
            if is_worker:
                wait_for_oracle(host, port, timeout=oracle_timeout)
            os.environ["KERASTUNER_TUNER_ID"] = ("chief" if distributed == "chief"
                                                 else tuner_id or f"worker-{os.getpid()}")
            os.environ["KERASTUNER_ORACLE_IP"] = host
            os.environ["KERASTUNER_ORACLE_PORT"] = str(port)

        hypermodel = RegistryHyperModel(model, prepared=prepared, recipe=recipe, space=space, seed=seed,
                                        patience=PATIENCE)
        objective_spec = keras_tuner.Objective(objective, direction=OBJECTIVES[objective])
        # What a trial process needs to rebuild the data and the hypermodel (`hypermodel_for`).
        trial_settings = {"data": str(Path(data).resolve()), "seed": seed, "val_fraction": val_fraction,
                          "model": model, "recipe": recipe, "space": space, "patience": PATIENCE, "split": split,
                          "folds": folds}
        isolation = trial_settings if isolate_trials else None
        fold_models = hypermodel_for(trial_settings) if folds and not isolate_trials else None
        search = SearchTuner(
            oracle=make_oracle(tuner, objective=objective_spec, max_trials=max_trials, epochs=epochs, seed=seed),
            hypermodel=hypermodel, directory=str(out), project_name=PROJECT_NAME, overwrite=False,
            isolation=isolation, role=distributed or "single", search_seed=seed, trial_end_hook=trial_end_hook,
            folds=fold_models)
        if not is_worker:
            # A resumed search may be extended or cut; Hyperband's oracle takes no max_trials argument.
            search.oracle.max_trials = max_trials
        search.search(epochs=epochs, verbose=verbose)

        if is_worker:
            return {"leaderboard": None, "best": None, "failed": 0, "resumed": resumed, "role": "worker",
                    "tuner": None}
        board = leaderboard(search, objective)
        atomic_write(out / "leaderboard.csv", lambda tmp: board.to_csv(tmp, index=False))
        plot_scores(board, out / "scores.png", objective=objective)
        failed = board[board["status"] != "COMPLETED"]
        completed = board[board["status"] == "COMPLETED"]
        if completed.empty:
            first = search.oracle.trials[failed["trial_id"].iloc[0]].message if len(failed) else ""
            last_line = (first or "").strip().splitlines()[-1:] or ["no trial ran"]
            raise ValueError(f"no trial completed ({len(failed)} failed); first failure: {last_line[0]}")
        top = [{"trial_id": trial.trial_id, "score": float(trial.score), "objective": objective, "model": model,
                "recipe": recipe, "values": {k: _plain(v) for k, v in trial.hyperparameters.values.items()}}
               for trial in search.oracle.get_best_trials(ensemble)]
        best = top[0]
        write_json(out / "best_hyperparameters.json", best)
        del prepared
        gc.collect()
        settings = dict(model=model, recipe=recipe, epochs=export_epochs, seed=seed, val_fraction=val_fraction,
                        split=split, verbose=verbose, **({"folds": folds} if folds else {}))
        if ensemble > 1:
            write_json(out / "best_ensemble.json", top)
            best_dir, exported = export_ensemble(data, out, top, **settings)
            what = f"the top {len(top)} configurations (trials {', '.join(t['trial_id'] for t in top)}) as an ensemble"
        else:
            best_dir, exported = export_best(data, out, best, **settings)
            what = f"the best configuration (trial {best['trial_id']}, {objective} {best['score']:.4f})"
        logger.info("%s %s as %s", "exported" if exported else "kept", what, best_dir)
        if len(failed):
            logger.warning("%d trial(s) did not complete; see the status column of %s", len(failed),
                           out / "leaderboard.csv")
        return {"leaderboard": board, "best": best_dir, "failed": len(failed), "resumed": resumed,
                "role": distributed or "single", "tuner": search}


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
                                    seed=record["seed"], patience=PATIENCE)
    objective = keras_tuner.Objective(record["objective"], direction=OBJECTIVES[record["objective"]])
    oracle = make_oracle(record["tuner"], objective=objective, max_trials=1, epochs=record["epochs"],
                         seed=record["seed"])
    tuner = SearchTuner(oracle=oracle, hypermodel=hypermodel, directory=str(out), project_name=PROJECT_NAME,
                        overwrite=False, search_seed=record["seed"])
    if not tuner.oracle.trials:  # a distributed search: the chief's state, not this process's tuner file
        tuner.oracle.reload()
    return tuner

