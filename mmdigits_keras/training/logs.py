"""TensorBoard logs: per-epoch scalars of every training run, HParams sessions for tuning trials.

``tensorboard --logdir RUN/logs`` shows a run's training and validation curves (loss, accuracy,
cross-entropy, learning rate); ``tensorboard --logdir SEARCH/logs`` lists a search's trials in
the HParams dashboard, one session per trial with its hyperparameters and scores.

Keras's `TensorBoard` callback and the HParams summaries write through TensorFlow's summary
ops: on the TensorFlow backend only. On JAX or PyTorch, runs keep no ``logs/`` (``history.csv``
and ``curves.png`` hold the same curves), which is said once: importing TensorFlow beside them
would start a second runtime that takes the GPU's memory.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import keras

from mmdigits_keras.utils.backends import backend

logger = logging.getLogger("mmdigits_keras")

LOGS_DIR = "logs"
AVAILABLE = backend() == "tensorflow"
tf = importlib.import_module("tensorflow") if AVAILABLE else None
hparams_api = importlib.import_module("tensorboard.plugins.hparams.api") if AVAILABLE else None
_said = []


def _say_once():
    if not _said:
        _said.append(True)
        logger.info("no TensorBoard logs on the %s backend: TensorBoard reads TensorFlow's summaries "
                    "(history.csv and curves.png hold the curves)", backend())


def tensorboard_callbacks(log_dir):
    """``[keras.callbacks.TensorBoard]`` writing ``train/`` and ``validation/`` event files under
    `log_dir` once per epoch (``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate``, ...);
    ``[]`` on another backend.

    The graph is not written: it costs start-up time on every run and these models' structure
    is in ``model.keras`` (Netron) and ``mmdigits models``.
    """
    if not AVAILABLE:
        _say_once()
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, update_freq="epoch")]


def write_hparams(log_dir, values, *, trial_id):
    """Writes the HParams session summary of one trial into `log_dir` (the folder of its
    ``train/`` and ``validation/`` scalars), so the HParams dashboard lists it; nothing on
    another backend.

    Args:
        log_dir: The trial's log folder.
        values: Hyperparameter name -> value (bool, int, float or str), e.g. keras-tuner's
            ``trial.hyperparameters.values``.
        trial_id: The trial's id (the session's name in the dashboard).
    """
    if not AVAILABLE:
        _say_once()
        return
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hparams_api.hparams({name: value for name, value in values.items() if value is not None},
                            trial_id=str(trial_id))
    writer.close()
