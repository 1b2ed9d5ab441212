"""TensorBoard logs: per-epoch scalars of every training run, HParams sessions for tuning trials.

``tensorboard --logdir RUN/logs`` shows a run's training and validation curves (loss, accuracy,
cross-entropy, learning rate); ``tensorboard --logdir SEARCH/logs`` lists a search's trials in
the HParams dashboard, one session per trial with its hyperparameters and scores.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

LOGS_DIR = "logs"


def tensorboard_callback(log_dir):
    """Keras's `TensorBoard` callback writing ``train/`` and ``validation/`` event files under
    `log_dir` once per epoch (``epoch_loss``, ``epoch_accuracy``, ``epoch_learning_rate``, ...).

    The graph is not written: it costs start-up time on every run and these models' structure
    is in ``model.keras`` (Netron) and ``mmdigits models``.
    """
    return keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, update_freq="epoch")


def write_hparams(log_dir, values, *, trial_id):
    """Writes the HParams session summary of one trial into `log_dir` (the folder of its
    ``train/`` and ``validation/`` scalars), so the HParams dashboard lists it.

    Args:
        log_dir: The trial's log folder.
        values: Hyperparameter name -> value (bool, int, float or str), e.g. keras-tuner's
            ``trial.hyperparameters.values``.
        trial_id: The trial's id (the session's name in the dashboard).
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hparams_api.hparams({name: value for name, value in values.items() if value is not None},
                            trial_id=str(trial_id))
    writer.close()
