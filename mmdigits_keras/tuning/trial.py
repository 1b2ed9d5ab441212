"""keras-tuner trials: in this process, or in a worker process so a long search does not grow in memory.

TensorFlow 2.21 keeps about a model's worth of memory after every `fit`, even after
`keras.backend.clear_session()` and garbage collection (measured here: +130 MiB per Model 2
fit, with no Python object left; the pattern of keras-tuner issue #395 and TensorFlow issue
#61791). A process that ends returns everything, so the tuner runs trials in a worker process
(`WORKER_COMMAND` ``--serve FD``), which imports TensorFlow and prepares the data once, then
trains trials until its peak memory passes `WORKER_MAX_RSS_MIB` (or `TRIALS_PER_WORKER`
trials) and is replaced by a fresh one: memory stays bounded and a trial no longer pays a
process start-up (`TrialWorker`).

A request (JSON file) names the data folder, validation split, model, recipe, space, hyperparameter
values, epochs, the checkpoint paths and the seed; the worker writes ``history`` and its
``fit_seconds`` to the result path and answers one line on its reply pipe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import keras
import keras_tuner
import numpy as np

from mmdigits_keras.training import get_recipe, prepare_data
from mmdigits_keras.training.fitting import seed_everything
from mmdigits_keras.training.logs import tensorboard_callbacks, write_hparams
from mmdigits_keras.training.schedule import EARLY_STOPPING_MONITOR
from mmdigits_keras.tuning.space import RegistryHyperModel
from mmdigits_keras.utils.files import read_json, write_json
from mmdigits_keras.utils.memory import peak_rss_mib

# A worker is replaced once its peak RSS passes WORKER_MAX_RSS_MIB (TensorFlow keeps ~130 MiB
# per Model 2 fit; smaller models keep less) or after TRIALS_PER_WORKER trials, so its memory
# stays bounded while its start-up (~5 s: TensorFlow, data) is paid once per many trials. Both
# can be set in the environment (MMDIGITS_WORKER_MAX_RSS_MIB, MMDIGITS_TRIALS_PER_WORKER).
WORKER_MAX_RSS_MIB = float(os.environ.get("MMDIGITS_WORKER_MAX_RSS_MIB", 2048))
TRIALS_PER_WORKER = int(os.environ.get("MMDIGITS_TRIALS_PER_WORKER", 20))
# The request entries that decide the prepared data and the hypermodel (same for a whole search).
_HYPERMODEL_KEYS = ("data", "val_fraction", "seed", "recipe", "model", "space", "patience", "split", "folds")
RETIRING = "retiring"
# What early stopping watches in `train`: its best epoch is the one `train` keeps.
KEPT_MONITOR = EARLY_STOPPING_MONITOR
# A worker process asks to die with its parent first, before its imports (TensorFlow: seconds),
# so a search killed while the worker starts takes it along too; then it checks that its parent
# (the last argument) did not die before the request: then no signal will come, and it exits.
WORKER_COMMAND = "\n".join([
    "import ctypes, os, signal, sys",
    "try:",
    "    ctypes.CDLL('libc.so.6').prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG",
    "except OSError:",
    "    pass",
    "if os.getppid() != int(sys.argv[-1]):",
    "    sys.exit(0)",
    "from mmdigits_keras.tuning.trial import main",
    "sys.exit(main(sys.argv[1:-1]))",
])


def hypermodel_for(request):
    """The `RegistryHyperModel` a request describes, with its data prepared (split, statistics);
    with ``request["folds"]`` = K, a list of K, one per cross-validation fold."""
    folds = request.get("folds")

    def prepared(fold):
        return prepare_data(request["data"], val_fraction=request["val_fraction"], seed=request["seed"],
                            synthetic_share=get_recipe(request["recipe"]).synthetic_share,
                            split=request.get("split"), fold=fold)

    def hypermodel(data):
        return RegistryHyperModel(request["model"], prepared=data, recipe=request["recipe"], space=request["space"],
                                  seed=request["seed"], patience=request["patience"])

    if folds:
        return [hypermodel(prepared((k, int(folds)))) for k in range(int(folds))]
    return hypermodel(prepared(None))


def kept_epoch_metrics(history):
    """The metrics of the epoch `train` keeps, from a Keras ``History.history`` dict: the first
    epoch with the lowest ``val_crossentropy`` (early stopping restores it; the last epoch
    without that metric). A trial is scored on the model `train` would save, not on its best
    epoch by the objective, which the saved model may not reach."""
    values = history.get(KEPT_MONITOR)
    epoch = int(np.argmin(values)) if values else len(history["loss"]) - 1
    return {name: float(series[epoch]) for name, series in history.items() if len(series) > epoch}


def train_trial(request, hypermodel):
    """Builds and trains one trial with `hypermodel` as `request` describes.

    The weights of the epoch `train` would keep (lowest validation cross-entropy: early
    stopping restores it) go to ``request["checkpoint"]``; a Hyperband
    trial promoted from an earlier one starts from that one's checkpoint
    (``request["initial_weights"]``). With a list of hypermodels (one per cross-validation fold,
    `hypermodel_for`), every fold trains the trial; the returned history is the mean over the
    folds, epoch by epoch, so the objective is the cross-validation mean; fold 1's best weights
    are the checkpoint (what keras-tuner's `get_best_models` loads), the others' lie beside it
    (``best_epoch.fold<k>.weights.h5``).

    Returns:
        The Keras `History`.
    """
    if isinstance(hypermodel, list):
        return _cross_validated(request, hypermodel)
    seed_everything(request["trial_seed"])
    hp = keras_tuner.HyperParameters()
    hp.values.update(request["values"])
    model = hypermodel.build(hp)
    if request.get("initial_weights"):
        model.load_weights(request["initial_weights"])
    # The epoch `train` keeps (early stopping restores the lowest validation cross-entropy): the
    # trial is scored there (`kept_epoch_metrics`), and its checkpoint is that epoch's model.
    checkpoint = keras.callbacks.ModelCheckpoint(request["checkpoint"], monitor=KEPT_MONITOR, mode="min",
                                                 save_best_only=True, save_weights_only=True)
    callbacks = [checkpoint]
    if request.get("log_dir"):
        shutil.rmtree(request["log_dir"], ignore_errors=True)  # a trial run again after a kill starts clean
        write_hparams(request["log_dir"], request["values"], trial_id=request["trial_id"])
        callbacks.extend(tensorboard_callbacks(request["log_dir"]))
    return hypermodel.fit(hp, model, epochs=request["epochs"], initial_epoch=request.get("initial_epoch", 0),
                          callbacks=callbacks, verbose=request["verbose"], seed=request["trial_seed"])


def _cross_validated(request, hypermodels):
    histories = []
    for k, hypermodel in enumerate(hypermodels):
        keras.backend.clear_session()
        checkpoint = request["checkpoint"]
        if k:  # Keras wants the suffix: best_epoch.weights.h5 -> best_epoch.fold2.weights.h5
            checkpoint = checkpoint.removesuffix(".weights.h5") + f".fold{k + 1}.weights.h5"
        fold = {**request, "checkpoint": checkpoint,
                # TensorBoard: fold 1's curves, under the trial's HParams session.
                "log_dir": request.get("log_dir") if k == 0 else None}
        histories.append(train_trial(fold, hypermodel).history)
    # Early stopping may end folds at different epochs: the mean runs over the epochs all reached.
    epochs = min(len(h["loss"]) for h in histories)
    history = keras.callbacks.History()
    history.history = {key: [float(sum(h[key][e] for h in histories) / len(histories)) for e in range(epochs)]
                       for key in histories[0] if all(key in h for h in histories)}
    return history


def run_request(request_path, cache):
    """Runs the trial a request file describes and writes its result file. `cache` (a dict)
    keeps the hypermodel between trials of one worker."""
    request = read_json(request_path)
    key = tuple(str(request[k]) for k in _HYPERMODEL_KEYS)
    if key not in cache:
        cache.clear()
        cache[key] = hypermodel_for(request)
    keras.backend.clear_session()
    started = time.perf_counter()
    history = train_trial(request, cache[key])
    write_json(request["result"], {"history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
                                   "fit_seconds": time.perf_counter() - started, "worker_pid": os.getpid()})


def _retiring(done):
    return done >= TRIALS_PER_WORKER or peak_rss_mib() > WORKER_MAX_RSS_MIB


def serve(reply_fd):
    """Worker loop: a request path per line on stdin; per trial one line on the `reply_fd` pipe,
    ``ok`` or ``failed: <reason>``, followed by `` retiring`` when the worker exits after it
    (`WORKER_MAX_RSS_MIB`, `TRIALS_PER_WORKER`). Also exits when stdin closes."""
    cache = {}
    with os.fdopen(reply_fd, "w", buffering=1) as reply:
        for done, line in enumerate(sys.stdin, start=1):
            try:
                run_request(line.strip(), cache)
                answer = "ok"
            except Exception as error:  # the trial fails, the worker reports it and goes on
                answer = f"failed: {type(error).__name__}: {error}".replace("\n", " ")
            retiring = _retiring(done)
            reply.write(answer + (f" {RETIRING}" if retiring else "") + "\n")
            if retiring:
                break
    return 0


class TrialWorker:
    """The search process's side of a trial worker: starts one when needed, hands it request
    files, and replaces it when it retires (memory, trial count) or dies."""

    def __init__(self):
        self._process = None
        self._reply = None

    def _start(self):
        read_end, write_end = os.pipe()
        # `-c` rather than `-m`: the package already imports this module, and runpy would run a
        # second copy of it as __main__.
        self._process = subprocess.Popen([sys.executable, "-c", WORKER_COMMAND, "--serve", str(write_end),
                                          str(os.getpid())], stdin=subprocess.PIPE, text=True, pass_fds=(write_end,))
        os.close(write_end)
        self._reply = os.fdopen(read_end, "r")

    def run(self, request_path):
        """Runs one trial in the worker (started first when there is none).

        Returns:
            None when the trial finished, else a one-line reason (the worker died or the
            trial raised); a dead worker is replaced at the next call.
        """
        if self._process is None or self._process.poll() is not None:
            self.close()
            self._start()
        try:
            self._process.stdin.write(f"{request_path}\n")
            self._process.stdin.flush()
            answer = self._reply.readline().strip()
        except BrokenPipeError:  # it died between the check above and the request
            answer = ""
        if not answer:  # EOF: the worker died mid-trial (killed, out of memory, crashed)
            code = self._process.wait()
            self.close()
            return f"trial process exited with code {code} (its output is above)"
        if answer.endswith(RETIRING):
            self.close()
            answer = answer.removesuffix(RETIRING).strip()
        return None if answer == "ok" else answer

    def close(self):
        """Lets the worker exit (closes its stdin) and waits for it."""
        if self._process is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._reply.close()
        self._process, self._reply = None, None


def main(argv=None):
    """Entry point of a worker process (`WORKER_COMMAND` ``--serve FD PARENT_PID``, which has
    already asked the kernel to kill it with its parent); returns 0."""
    argv = sys.argv[1:] if argv is None else argv
    return serve(int(argv[argv.index("--serve") + 1]))
