"""`SearchTuner`: the keras-tuner `Tuner` of a search. Its trials are trained by the engine
(`mmdigits_keras.tuning.trial.train_trial`), in this process or in a worker process; it keeps
keras-tuner's own calls working (`get_best_models`, `load_model`, `results_summary`, ...), and
backs the state up after every trial (`mmdigits_keras.tuning.state`)."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from pathlib import Path

import keras
import keras_tuner

from mmdigits_keras.training.logs import LOGS_DIR
from mmdigits_keras.tuning.cluster import IDLE_POLL_SECONDS, Heartbeat, LeaseKeeper, Reconnecting
from mmdigits_keras.tuning.internals import ENDED, every_trial_finished
from mmdigits_keras.tuning.results import TRIAL_FILE
from mmdigits_keras.tuning.state import backup_search_state
from mmdigits_keras.tuning.trial import TrialWorker, kept_epoch_metrics, train_trial
from mmdigits_keras.utils.files import read_json, write_json
from mmdigits_keras.utils.progress import Eta

logger = logging.getLogger("mmdigits_keras")

CHECKPOINT_FILE = "best_epoch.weights.h5"


class SearchTuner(keras_tuner.Tuner):
    """A keras-tuner `Tuner` whose trials run through `train_trial` (the engine), in a
    `TrialWorker` process (replaced every few trials) when `isolation` is given, each with a
    fresh Keras session and its own seed (memory stays bounded, keras-tuner issue #395).

    Args:
        isolation: None (trials in this process) or the request entries a worker needs to
            rebuild the data and the hypermodel (data path, split, model, recipe, space, ...).
        role: ``"single"``, ``"chief"`` (releases lost workers: `LeaseKeeper`) or
            ``"worker"`` (sends heartbeats while a trial trains: `Heartbeat`).
        search_seed: The search's seed, every trial's: the configurations are compared on the
            same initialization, shuffling and augmentation draws (and the same split), trial
            0 (the untuned configuration) is `train`'s run, and ``best/``, trained by `train`
            with this seed, is the winning trial's model again.
        trial_end_hook: Optional callable(trial) run after each trial (benchmarks).
        **kwargs: `keras_tuner.Tuner` arguments (``oracle``, ``hypermodel``, ``directory``, ...).
    """

    def __init__(self, *, isolation=None, role="single", search_seed=0, trial_end_hook=None, folds=None, **kwargs):
        super().__init__(**kwargs)
        if role == "worker":  # keras-tuner made `oracle` its gRPC client of the chief's
            self.oracle = Reconnecting(self.oracle)
        self.isolation = isolation
        self.folds = folds  # None, or the fold hypermodels of an in-process cross-validated search
        self.role = role
        self._asked_without_trial = False  # see `pre_create_trial`
        self.search_seed = int(search_seed)
        self.trial_end_hook = trial_end_hook
        self._finished = {}
        self._worker = TrialWorker()
        self._eta = None  # the search's time left, where this process's oracle holds the trials

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
        """Trains one trial and returns the metrics of the epoch `train` would keep
        (`kept_epoch_metrics`), which keras-tuner records as the trial's score."""
        if self.isolation is None:  # a worker process clears its own session
            keras.backend.clear_session()
            gc.collect()
        values = dict(trial.hyperparameters.values)
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        request = {
            **(self.isolation or {}), "values": values, "trial_seed": self.search_seed,
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
        kept = kept_epoch_metrics(history.history)
        objective = self.oracle.objective.name
        logger.info("[%s] trial %s: %s %.4f in %.1f s%s", self.tuner_id, trial.trial_id, objective,
                    kept.get(objective, float("nan")), seconds,
                    "" if self._eta is None else f"; {self._eta.describe(self._ended_trials() + 1)}")
        return kept

    def _ended_trials(self):
        """Trials of the oracle that have ended (completed or failed)."""
        return sum(t.status in ENDED for t in self.oracle.trials.values())

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
        """keras-tuner's search; the chief releases the trials of lost workers while it serves.
        A search in one process logs the time left after each trial (`Eta`).
        A chief whose trials have all finished (restarted after the last one, e.g. killed
        while it exported ``best/``) does not serve: keras-tuner's chief ends only after a worker
        has been told to stop, and no worker may ever ask again."""
        if self.role == "single" and self.oracle.max_trials:  # a worker's oracle is the chief's, remote
            self._eta = Eta(self.oracle.max_trials, unit="trial", initial=self._ended_trials())
        if self.role != "chief":
            return super().search(*fit_args, **fit_kwargs)
        if every_trial_finished(self.oracle):
            logger.info("every trial of the search has finished: nothing to serve")
            return None
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
