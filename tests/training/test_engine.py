import dataclasses

import keras
import numpy as np
import pytest

from mmdigits_keras.training import RECIPES
from mmdigits_keras.training.engine import WarmupCosine, fit_callbacks


def test_warmup_cosine_rises_over_the_warmup_then_decays_to_zero_by_the_last_step():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    rates = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    x, y = np.zeros((16, 3), np.float32), np.zeros((16, 2), np.float32)
    model.fit(x, y, batch_size=4, epochs=5, callbacks=[WarmupCosine(warmup_epochs=1), Record()], verbose=0)
    assert len(rates) == 20  # 4 steps x 5 epochs
    warmup, decay = rates[:4], rates[4:]
    assert np.all(np.diff(warmup) > 0) and warmup[-1] == pytest.approx(0.01)
    assert decay[0] == pytest.approx(0.01) and np.all(np.diff(decay) < 0) and decay[-1] < 0.001


def test_one_cycle_recipes_train_every_epoch_and_keep_the_best():
    plateau = fit_callbacks(RECIPES["default"], patience=4)
    assert {type(c).__name__ for c in plateau} == {"EarlyStopping", "ReduceLROnPlateau"}
    assert plateau[0].patience == 4
    one_cycle = fit_callbacks(dataclasses.replace(RECIPES["default"], schedule="one_cycle"), patience=4)
    assert {type(c).__name__ for c in one_cycle} == {"WarmupCosine", "EarlyStopping"}
    stopping = next(c for c in one_cycle if type(c).__name__ == "EarlyStopping")
    assert stopping.restore_best_weights and stopping.patience > 1000  # never stops early
