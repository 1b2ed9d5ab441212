import dataclasses
import json

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import layer_names

from mmdigits_keras.data import load_kaggle
from mmdigits_keras.training import load_trained_model, train
from mmdigits_keras.training.recipes import RECIPES, Recipe, get_recipe
from mmdigits_keras.utils.names import RECIPE_NAMES


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_recipe_trains_and_the_saved_model_is_deterministic_at_inference(tiny_kaggle, tmp_path, recipe):
    run = train(tiny_kaggle, out=tmp_path / recipe, model="model1", epochs=1, recipe=recipe, verbose=0)
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["recipe"]["name"] == recipe
    assert config["training"]["batch_size"] == RECIPES[recipe].batch_size
    model = load_trained_model(run)
    assert not [n for n in layer_names(model) if "random" in n or "jitter" in n]
    test = load_kaggle(tiny_kaggle, "test")
    np.testing.assert_array_equal(model.predict(test.inputs(), verbose=0), model.predict(test.inputs(), verbose=0))


def test_unknown_recipe():
    with pytest.raises(ValueError, match="`recipe` must be one of"):
        get_recipe("fancy")


def test_a_variant_goes_wherever_a_name_does_and_the_registry_is_untouched(tiny_kaggle, tmp_path):
    # How a benchmark declares a lever combination (benchmarks/bench_robust.py): a Recipe, not a
    # new RECIPES entry.
    variant = dataclasses.replace(get_recipe("plain"), name="plain_b64", batch_size=64)
    assert get_recipe(variant) is variant and isinstance(variant, Recipe)
    run = train(tiny_kaggle, out=tmp_path / "variant", model="model1", epochs=1, recipe=variant, verbose=0)
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["recipe"]["name"] == "plain_b64" and config["training"]["batch_size"] == 64
    assert sorted(RECIPES) == sorted(RECIPE_NAMES)


class _WeightsAfterEachStep(keras.callbacks.Callback):
    """Records the trainable weights (by path) after every step, and at the end of the fit."""

    def on_train_begin(self, logs=None):
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append({v.path: v.numpy() for v in self.model.trainable_variables})

    def on_train_end(self, logs=None):
        self.final = {v.path: v.numpy() for v in self.model.trainable_variables}


def test_weight_averaging_validates_and_saves_the_moving_average_of_the_steps_weights(tiny_kaggle, tmp_path):
    plain = get_recipe("plain")
    raw, averaged = _WeightsAfterEachStep(), _WeightsAfterEachStep()
    train(tiny_kaggle, out=tmp_path / "raw", model="model1", epochs=2, recipe=plain, verbose=0, callbacks=[raw])
    run = train(tiny_kaggle, out=tmp_path / "ema", model="model1", epochs=2, verbose=0, callbacks=[averaged],
                recipe=dataclasses.replace(plain, name="plain_ema", ema_momentum=0.5))
    # Averaging only reads the weights: both runs take the same steps.
    for before, after in zip(raw.steps, averaged.steps):
        for path in before:
            np.testing.assert_allclose(after[path], before[path], rtol=1e-5, atol=1e-6)
    # Keras's average: the first step's weights, then momentum * average + (1 - momentum) * weights.
    expected = dict(raw.steps[0])
    per_epoch = []
    for step, weights in enumerate(raw.steps[1:], start=1):
        expected = {p: 0.5 * expected[p] + 0.5 * weights[p] for p in weights}
        if (step + 1) % (len(raw.steps) // 2) == 0:
            per_epoch.append(expected)
    history = pd.read_csv(run / "history.csv")
    best = int(np.argmin(history["val_crossentropy"]))
    saved = {v.path: v.numpy() for v in load_trained_model(run).trainable_variables}
    for path, value in per_epoch[best].items():
        np.testing.assert_allclose(saved[path], value, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(averaged.final[path], value, rtol=1e-4, atol=1e-5)
    assert any(not np.allclose(saved[p], raw.steps[(best + 1) * len(raw.steps) // 2 - 1][p]) for p in saved)
    # Validation scored the averaged weights: the saved model's score is the kept epoch's.
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_accuracy"] == pytest.approx(history["val_accuracy"][best], abs=1e-6)
