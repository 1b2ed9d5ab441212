import subprocess
import sys

import numpy as np
import psutil

from mmdigits_keras.tuning.trial import kept_epoch_metrics


def test_a_workers_peak_memory_is_its_own_not_its_parents():
    """A trial worker retires on its own peak RSS; Linux's ru_maxrss would hand it the peak of
    the (large) search process that started it, and every worker would retire at once."""
    ballast = np.ones(125_000_000)  # 1 GB in this process, touched
    parent_mib = psutil.Process().memory_info().rss / 2**20
    assert parent_mib > 950
    # The child reads its peak as a trial worker does (`peak_rss_mib`), without a backend's start-up.
    done = subprocess.run([sys.executable, "-c", "from mmdigits_keras.utils.memory import peak_rss_mib; "
                           "print(peak_rss_mib())"], capture_output=True, text=True, check=True, timeout=300)
    child_mib = float(done.stdout.strip().splitlines()[-1])
    del ballast
    assert 0 < child_mib < parent_mib - 800, (child_mib, parent_mib)


def test_a_trial_is_scored_at_the_epoch_train_keeps_not_its_best_by_the_objective():
    # Early stopping restores the lowest validation cross-entropy (epoch 1 here); the highest
    # validation accuracy (epoch 2) is an epoch the saved model does not have.
    history = {"loss": [1.0, 0.6, 0.5], "val_accuracy": [0.5, 0.8, 0.9], "val_crossentropy": [0.9, 0.4, 0.7]}
    assert kept_epoch_metrics(history) == {"loss": 0.6, "val_accuracy": 0.8, "val_crossentropy": 0.4}
    tie = {"loss": [1.0, 0.6], "val_crossentropy": [0.4, 0.4]}  # EarlyStopping keeps the first
    assert kept_epoch_metrics(tie)["loss"] == 1.0
    assert kept_epoch_metrics({"loss": [1.0, 0.6]}) == {"loss": 0.6}  # nothing watched: the last epoch
