import dataclasses
import json

import numpy as np
import pytest
from conftest import layer_names

from mmdigits_keras.data import load_kaggle
from mmdigits_keras.training import load_trained_model, train
from mmdigits_keras.training.recipes import RECIPES, Recipe, get_recipe
from mmdigits_keras.utils.defaults import RECIPE_NAMES


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
    # How a benchmark declares a lever combination (benchmarks/bench_rotations.py): a Recipe, not a
    # new RECIPES entry.
    variant = dataclasses.replace(get_recipe("plain"), name="plain_b64", batch_size=64)
    assert get_recipe(variant) is variant and isinstance(variant, Recipe)
    run = train(tiny_kaggle, out=tmp_path / "variant", model="model1", epochs=1, recipe=variant, verbose=0)
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["recipe"]["name"] == "plain_b64" and config["training"]["batch_size"] == 64
    assert sorted(RECIPES) == sorted(RECIPE_NAMES)
