"""Hyperparameter search over depth and width with keras-tuner (random, Hyperband, Bayesian).

`FusionHyperModel` declares the space; `run_search` runs a keras-tuner tuner in a folder it can
resume, in one process or in keras-tuner's own chief/worker mode, then writes a leaderboard, a
plot, the best hyperparameters and a normal run directory for the best configuration.
Hyperparameters that shape the model carry `build_model`'s argument names, so
``build_model(**model_hyperparameters(best_hp.values))`` rebuilds the winner; ``learning_rate``
and ``batch_size`` are training settings and are split off by `model_hyperparameters` /
`training_hyperparameters`.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner
import numpy as np
from keras_tuner.src.engine import tuner_utils  # convert_to_metrics_dict: keras-tuner's own reduction

from mmdigits_keras.data import load_dataset, train_val_split
from mmdigits_keras.io_utils import atomic_write, read_json, write_json
from mmdigits_keras.models import build_model
from mmdigits_keras.training import (
    compile_model, fit_callbacks, fit_audio_statistics, train,
)

TUNERS = ("random", "hyperband", "bayesian")
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min", "accuracy": "max", "loss": "min"}
MODEL_HYPERPARAMETERS = ("depth", "audio", "width", "dropout", "lstm_units")
TRAINING_HYPERPARAMETERS = ("learning_rate", "batch_size")
DEFAULT_SPACE = {
    "depth": [1, 2, 3, 4],
    "width": [0.5, 1.0, 2.0],
    "audio": ["conv1d", "lstm"],
    "lstm_units": [32, 64, 128],
    "dropout": [0.0, 0.125, 0.25, 0.375, 0.5],
    "learning_rate": [1e-4, 3e-3],  # log-uniform range
    "batch_size": [32, 64, 128, 256],
}
PROJECT_NAME = "keras_tuner"
PATIENCE = 10  # early stopping, as in `train`
SEARCH_FILE = "search.json"
TRIAL_FILE = "mmdigits_trial.json"


def model_hyperparameters(values):
    """The `build_model` arguments among hyperparameter values (inactive ones dropped)."""
    return {k: values[k] for k in MODEL_HYPERPARAMETERS if values.get(k) is not None}


def training_hyperparameters(values):
    """The training settings (``learning_rate``, ``batch_size``) among hyperparameter values."""
    return {k: values[k] for k in TRAINING_HYPERPARAMETERS if values.get(k) is not None}


def check_space(space):
    """Returns a complete search space: `DEFAULT_SPACE` updated with `space`.

    Raises:
        ValueError: unknown keys, empty choice lists, or values `build_model` would refuse.
    """
    space = {**DEFAULT_SPACE, **(space or {})}
    unknown = set(space) - set(DEFAULT_SPACE)
    if unknown:
        raise ValueError(f"unknown search-space keys {sorted(unknown)}; known: {sorted(DEFAULT_SPACE)}")
    for key, values in space.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"search space `{key}` must be a non-empty list. Received: {values!r}")
    if not set(space["depth"]) <= {1, 2, 3, 4}:
        raise ValueError(f"search space `depth` must hold values in 1..4. Received: {space['depth']!r}")
    if not set(space["audio"]) <= {"conv1d", "lstm"}:
        raise ValueError(f"search space `audio` must hold 'conv1d'/'lstm'. Received: {space['audio']!r}")
    low, high = space["learning_rate"][0], space["learning_rate"][-1]
    if not 0 < low <= high:
        raise ValueError(f"search space `learning_rate` must be a range 0 < low <= high. Received: {space['learning_rate']!r}")
    return {k: list(v) for k, v in space.items()}


class FusionHyperModel(keras_tuner.HyperModel):
    """Seed 000's late-fusion family as a keras-tuner search space.

    Hyperparameters (names are `build_model` arguments, plus two training settings):
    ``depth`` (seed 000's Model 1..4), ``width`` (multiplier on conv filters and dense units),
    ``audio`` (``conv1d`` / ``lstm``) with ``lstm_units`` inside a ``conditional_scope`` on
    ``audio == "lstm"``, ``dropout``, ``learning_rate`` (log-uniform) and ``batch_size``.

    Args:
        audio_mean: (507,) float32 per-column mean of the training audio.
        audio_variance: (507,) float32 per-column variance of the training audio.
        space: Optional overrides of `DEFAULT_SPACE` (lists of choices), e.g.
            ``{"depth": [1, 2], "width": [0.5]}`` for a small search.
        name: The HyperModel name.

    Raises:
        ValueError: a bad `space` (see `check_space`).

    Reference:
        Seed 000, Tables 1-4; seed 001, Table 3 and section 2.4 (its grid search).
    """

    def __init__(self, *, audio_mean, audio_variance, space=None, name="fusion", tunable=True):
        super().__init__(name=name, tunable=tunable)
        self.space = check_space(space)
        self.audio_mean = np.asarray(audio_mean, dtype=np.float32)
        self.audio_variance = np.asarray(audio_variance, dtype=np.float32)

    def build(self, hp):
        """Declares the hyperparameters in `hp` and returns the compiled `build_model` model."""
        s = self.space
        depth = hp.Choice("depth", s["depth"])
        width = hp.Choice("width", s["width"])
        audio = hp.Choice("audio", s["audio"])
        lstm_units = None
        if "lstm" in s["audio"]:
            with hp.conditional_scope("audio", ["lstm"]):
                lstm_units = hp.Choice("lstm_units", s["lstm_units"])
        dropout = hp.Choice("dropout", s["dropout"])
        low, high = s["learning_rate"][0], s["learning_rate"][-1]
        learning_rate = (hp.Float("learning_rate", low, high, sampling="log") if high > low
                         else hp.Fixed("learning_rate", low))
        hp.Choice("batch_size", s["batch_size"])
        kwargs = dict(depth=depth, audio=audio, width=width, dropout=dropout)
        if audio == "lstm" and lstm_units is not None:
            kwargs["lstm_units"] = lstm_units
        model = build_model(**kwargs, audio_features=int(self.audio_mean.shape[0]), audio_mean=self.audio_mean,
                            audio_variance=self.audio_variance)
        return compile_model(model, learning_rate=learning_rate)

    def fit(self, hp, model, *args, **kwargs):
        """`model.fit` with the trial's ``batch_size``; returns the History."""
        return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)


def _tuner_class(kind):
    base = {"random": keras_tuner.RandomSearch, "hyperband": keras_tuner.Hyperband,
            "bayesian": keras_tuner.BayesianOptimization}[kind]

    class Tuner(base):
        """Adds what long searches need: a fresh Keras session and a seed per trial (memory
        stays flat trial after trial, keras-tuner issue #395), and wall-clock seconds."""

        trial_end_hook = None
        isolation = None  # dict(data=..., seed=..., ...) to run each trial in a child process

        def run_trial(self, trial, *args, **kwargs):
            """Runs one trial (in a child process when `isolation` is set); returns its metrics
            at the best epoch plus ``seconds`` and ``epochs``."""
            keras.backend.clear_session()
            gc.collect()
            trial_seed = self._mm_seed + int(trial.trial_id)
            keras.utils.set_random_seed(trial_seed)
            started = time.perf_counter()
            if self.isolation is not None:
                histories = [self._run_in_child(trial, trial_seed, kwargs)]
            else:
                histories = super().run_trial(trial, *args, **kwargs)
            metrics = tuner_utils.convert_to_metrics_dict(histories, self.oracle.objective)
            metrics = {k: float(v) for k, v in metrics.items()}
            metrics["seconds"] = time.perf_counter() - started
            metrics["epochs"] = float(max(len(h.history.get("loss", [])) for h in histories))
            objective = self.oracle.objective.name
            # Who ran the trial, and when: the leaderboard's tuner_id column, and a way to see
            # that a resumed search did not run a finished trial again.
            write_json(Path(self.get_trial_dir(trial.trial_id)) / TRIAL_FILE, {
                "tuner_id": self.tuner_id, "pid": os.getpid(), "finished_at": time.time(),
                "seconds": metrics["seconds"], "history": [{k: [float(v) for v in vs] for k, vs in h.history.items()} for h in histories]})
            print(f"[{self.tuner_id}] trial {trial.trial_id}: {objective} {metrics.get(objective, float('nan')):.4f} "
                  f"in {metrics['seconds']:.1f} s", flush=True)
            return metrics

        def _run_in_child(self, trial, trial_seed, fit_kwargs):
            """Runs the trial through `mmdigits_keras.trial_process`; returns a History."""
            values = dict(trial.hyperparameters.values)
            trial_dir = Path(self.get_trial_dir(trial.trial_id))
            request = {
                **self.isolation, "values": values, "trial_seed": trial_seed,
                "epochs": int(values.get("tuner/epochs", fit_kwargs.get("epochs", 1))),
                "initial_epoch": int(values.get("tuner/initial_epoch", 0)),
                "initial_weights": (self._get_checkpoint_fname(values["tuner/trial_id"])
                                    if "tuner/trial_id" in values else None),
                "checkpoint": self._get_checkpoint_fname(trial.trial_id),
                "objective": self.oracle.objective.name, "direction": self.oracle.objective.direction,
                "result": str(trial_dir / "child_result.json"),
                "verbose": fit_kwargs.get("verbose", "auto"),
            }
            request_path = trial_dir / "child_request.json"
            write_json(request_path, request)
            Path(request["result"]).unlink(missing_ok=True)
            done = subprocess.run([sys.executable, "-m", "mmdigits_keras.trial_process", str(request_path)])
            if done.returncode != 0:
                raise keras_tuner.errors.FailedTrialError(
                    f"trial process exited with code {done.returncode} (its output is above)")
            history = keras.callbacks.History()
            history.history = read_json(request["result"])["history"]
            return history

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            if self.trial_end_hook is not None:
                self.trial_end_hook(trial)

    return Tuner


def parse_oracle_address(address):
    """``"HOST:PORT"`` -> (host, port); raises ValueError naming `--oracle` otherwise."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"`--oracle` must be HOST:PORT, e.g. 127.0.0.1:8000. Received: {address!r}")
    return host, int(port)


def wait_for_oracle(host, port, *, timeout):
    """Waits up to `timeout` seconds for the chief's oracle to answer; ValueError if it does not."""
    import grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise ValueError(f"the oracle at {host}:{port} did not answer within {timeout:g} s; "
                         f"start the chief first (tune.py --distributed chief --oracle {host}:{port})") from None
    finally:
        channel.close()


def _search_record(*, kind, objective, epochs, seed, space, val_fraction, fingerprint):
    return {"tuner": kind, "objective": objective, "epochs": int(epochs), "seed": int(seed),
            "val_fraction": float(val_fraction), "space": space, "data_fingerprint": fingerprint}


def _check_resume(out, record, *, overwrite):
    """Refuses to continue a search in `out` that used other data, space or settings."""
    path = out / SEARCH_FILE
    if overwrite or not path.exists():
        return False
    previous = read_json(path)
    differences = [k for k in record if previous.get(k) != record[k]]
    if differences:
        what = ", ".join("data (fingerprint)" if k == "data_fingerprint" else k for k in differences)
        raise ValueError(f"{out}: holds a search with a different {what}; use another --out, "
                         f"or --overwrite to start over")
    return True


def _clear_search(out):
    import shutil

    for name in (PROJECT_NAME, "best"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (SEARCH_FILE, "leaderboard.csv", "scores.png", "best_hyperparameters.json"):
        (out / name).unlink(missing_ok=True)


def leaderboard(oracle, objective):
    """All trials of a keras-tuner oracle as a `pandas.DataFrame`, one row per trial.

    Columns: ``trial_id``, every hyperparameter of the space (empty where inactive),
    ``score`` (the objective), ``seconds``, ``epochs``, ``status`` and ``tuner_id`` (which
    process ran it, when its trial folder is visible here); sorted by trial id.
    """
    import pandas as pd

    names = [hp.name for hp in oracle.get_space().space]
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        row = {"trial_id": trial_id}
        row.update({name: trial.hyperparameters.values.get(name) for name in names})

        def metric(name, trial=trial):
            return trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None

        record = Path(oracle._get_trial_dir(trial_id)) / TRIAL_FILE
        tuner_id = read_json(record).get("tuner_id") if record.is_file() else None
        row.update({"score": trial.score if trial.score is not None else metric(objective),
                    "seconds": metric("seconds"), "epochs": metric("epochs"), "status": trial.status,
                    "tuner_id": tuner_id})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_scores(board, path, *, objective):
    """Writes a PNG of the objective per trial (completed trials; best marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = board[board["status"] == "COMPLETED"].dropna(subset=["score"])
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(done):
        colours = done["depth"].astype(float) if "depth" in done else None
        points = ax.scatter(done["trial_id"].astype(int), done["score"], c=colours, cmap="viridis", s=40)
        if colours is not None:
            fig.colorbar(points, ax=ax, label="depth (seed 000 Model)")
        best = done["score"].idxmax() if OBJECTIVES.get(objective) == "max" else done["score"].idxmin()
        ax.scatter([int(done.loc[best, "trial_id"])], [done.loc[best, "score"]], marker="*", s=250,
                   facecolors="none", edgecolors="red", label=f"best: trial {done.loc[best, 'trial_id']}")
        ax.legend(loc="best")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} per trial ({len(done)} completed of {len(board)})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path


def _registry_name(values):
    return f"model{values['depth']}" + ("_lstm" if values.get("audio") == "lstm" else "")


def export_best(data, out, best, *, epochs, seed, val_fraction, verbose):
    """Retrains the best configuration with `train` into ``out/best`` (a normal run directory).

    Skipped when ``out/best`` already holds this trial's configuration (a resumed search that
    had finished exporting). The run directory is written aside and renamed into place.
    """
    best_dir = out / "best"
    values = best["values"]
    model_kwargs = {k: v for k, v in model_hyperparameters(values).items() if k not in ("depth", "audio")}
    training = training_hyperparameters(values)
    if (best_dir / "config.json").is_file():
        config = read_json(best_dir / "config.json")
        if config.get("tuning", {}).get("trial_id") == best["trial_id"]:
            return best_dir, False
    run = train(data, out=best_dir, model=_registry_name(values), epochs=epochs, seed=seed, recipe="plain",
                val_fraction=val_fraction, model_kwargs=model_kwargs, overwrite=True, verbose=verbose,
                extra_config={"tuning": {"trial_id": best["trial_id"], "score": best["score"],
                                         "objective": best["objective"]}},
                **training)
    return run, True


def run_search(
    data,
    *,
    out,
    tuner="random",
    max_trials=10,
    epochs=10,
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
):
    """Runs (or resumes) a keras-tuner search and exports its results.

    The keras-tuner project lives in ``out/keras_tuner``; rerunning the same command resumes
    it (finished trials are kept, a trial cut off mid-way runs again). A search folder that
    holds a search over other data (SHA-256 fingerprint), another space or other settings is
    refused unless `overwrite`. When the search ends (single process, or the chief):
    ``out/leaderboard.csv``, ``out/scores.png``, ``out/best_hyperparameters.json`` and
    ``out/best`` (the best configuration retrained by `train`: a normal run directory).

    Args:
        data: A data folder (Kaggle or Khacef layout).
        out: The search folder.
        tuner: ``"random"``, ``"hyperband"`` or ``"bayesian"``.
        max_trials: Maximum number of trials (int > 0; also caps Hyperband's brackets).
        epochs: Epochs per trial (Hyperband: its ``max_epochs``) and for the export.
        objective: ``val_accuracy`` (default), ``val_loss``, ``accuracy`` or ``loss``.
        seed: Seed of the oracle, the split and each trial's initialization.
        space: Optional overrides of `DEFAULT_SPACE` (see `FusionHyperModel`).
        val_fraction: Stratified validation fraction of the training files.
        overwrite: Delete a previous search in `out` first.
        distributed: None, ``"chief"`` or ``"worker"`` (keras-tuner's chief/worker mode).
        oracle: ``"HOST:PORT"`` of the chief's oracle (required when `distributed`).
        tuner_id: The worker's id (default ``worker-<pid>``; the chief is ``chief``).
        oracle_timeout: Seconds a worker waits for the oracle to answer before giving up.
        verbose: Keras `fit` verbosity.
        trial_end_hook: Optional callable(trial) run after each trial (benchmarks).
        isolate_trials: Run each trial in a child process (`trial_process`), so memory does
            not grow from trial to trial (TensorFlow keeps memory after each `fit`); costs a
            few seconds of start-up per trial. False runs trials in this process.

    Returns:
        dict with ``leaderboard`` (DataFrame or None on a worker), ``best`` (run directory or
        None), ``failed`` (number of failed trials), ``resumed`` (bool) and ``role``.

    Raises:
        ValueError: an unknown tuner/objective, ``max_trials`` or ``epochs`` < 1, bad data, a
            `out` holding another search, a bad or silent oracle address, or no trial
            completed.
    """
    if tuner not in TUNERS:
        raise ValueError(f"`tuner` must be one of {list(TUNERS)}. Received: tuner={tuner!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {list(OBJECTIVES)}. Received: objective={objective!r}")
    for name, value in (("max_trials", max_trials), ("epochs", epochs)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    if distributed not in (None, "chief", "worker"):
        raise ValueError(f"`distributed` must be 'chief' or 'worker'. Received: distributed={distributed!r}")
    space = check_space(space)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file; --out must be a folder")
    if distributed:
        if oracle is None:
            raise ValueError("`--oracle HOST:PORT` is required with --distributed")
        host, port = parse_oracle_address(oracle)

    dataset = load_dataset(data, "train")
    train_part, val_part = train_val_split(dataset, val_fraction=val_fraction, seed=seed)
    record = _search_record(kind=tuner, objective=objective, epochs=epochs, seed=seed, space=space,
                            val_fraction=val_fraction, fingerprint=dataset.fingerprint())
    is_worker = distributed == "worker"
    resumed = False
    if not is_worker:
        resumed = _check_resume(out, record, overwrite=overwrite)
        if overwrite:
            _clear_search(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / SEARCH_FILE, record)
    if distributed:
        if is_worker:
            wait_for_oracle(host, port, timeout=oracle_timeout)
        os.environ["KERASTUNER_TUNER_ID"] = "chief" if distributed == "chief" else (tuner_id or f"worker-{os.getpid()}")
        os.environ["KERASTUNER_ORACLE_IP"] = host
        os.environ["KERASTUNER_ORACLE_PORT"] = str(port)

    audio_mean, audio_variance = fit_audio_statistics(train_part.audio)
    hypermodel = FusionHyperModel(audio_mean=audio_mean, audio_variance=audio_variance, space=space)
    objective_spec = keras_tuner.Objective(objective, direction=OBJECTIVES[objective])
    common = dict(hypermodel=hypermodel, objective=objective_spec, seed=seed, directory=str(out),
                  project_name=PROJECT_NAME, overwrite=False, max_consecutive_failed_trials=3)
    if tuner == "hyperband":
        search = _tuner_class(tuner)(max_epochs=epochs, factor=3, hyperband_iterations=1, **common)
        if not is_worker:
            search.oracle.max_trials = max_trials
    else:
        search = _tuner_class(tuner)(max_trials=max_trials, **common)
        if not is_worker and search.oracle.max_trials != max_trials:
            search.oracle.max_trials = max_trials  # a resumed search may be extended or cut
    search._mm_seed = seed
    search.trial_end_hook = trial_end_hook
    if isolate_trials:
        search.isolation = {"data": str(Path(data).resolve()), "seed": seed, "val_fraction": val_fraction,
                            "space": space, "patience": PATIENCE}

    fit_args = dict(x=train_part.inputs(), y=train_part.labels,
                    validation_data=(val_part.inputs(), val_part.labels),
                    callbacks=fit_callbacks(patience=PATIENCE), verbose=verbose)
    if tuner != "hyperband":
        fit_args["epochs"] = epochs
    search.search(**fit_args)

    if is_worker:
        return {"leaderboard": None, "best": None, "failed": 0, "resumed": resumed, "role": "worker"}
    board = leaderboard(search.oracle, objective)
    atomic_write(out / "leaderboard.csv", lambda tmp: board.to_csv(tmp, index=False))
    plot_scores(board, out / "scores.png", objective=objective)
    failed = board[board["status"] != "COMPLETED"]
    completed = board[board["status"] == "COMPLETED"]
    if completed.empty:
        first = search.oracle.trials[failed["trial_id"].iloc[0]].message if len(failed) else ""
        last_line = (first or "").strip().splitlines()[-1:] or ["no trial ran"]
        raise ValueError(f"no trial completed ({len(failed)} failed); first failure: {last_line[0]}")
    best_trial = search.oracle.get_best_trials(1)[0]
    best = {"trial_id": best_trial.trial_id, "score": float(best_trial.score), "objective": objective,
            "values": {k: _plain(v) for k, v in best_trial.hyperparameters.values.items()}}
    write_json(out / "best_hyperparameters.json", best)
    best_dir, exported = export_best(data, out, best, epochs=epochs, seed=seed, val_fraction=val_fraction,
                                     verbose=verbose)
    print(("exported" if exported else "kept") + f" the best configuration (trial {best['trial_id']}, "
          f"{objective} {best['score']:.4f}) as {best_dir}", flush=True)
    if len(failed):
        print(f"warning: {len(failed)} trial(s) did not complete; see the status column of "
              f"{out / 'leaderboard.csv'}", file=sys.stderr)
    return {"leaderboard": board, "best": best_dir, "failed": len(failed), "resumed": resumed,
            "role": distributed or "single"}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
