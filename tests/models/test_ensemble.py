"""Ensembles average their members' probabilities, with built-in layers only."""

import keras
import numpy as np
import pytest

from mmdigits_keras.models import create_model, ensemble_model


@pytest.fixture(scope="module")
def members():
    return [create_model("model1", width=0.25, name=f"m{seed}") for seed in range(3)]


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    return {"image": rng.uniform(size=(16, 28, 28, 1)).astype(np.float32),
            "audio": rng.normal(size=(16, 507)).astype(np.float32)}


def test_the_ensemble_is_the_weighted_mean_of_its_members(members, inputs):
    each = [m.predict(inputs, verbose=0) for m in members]
    assert not np.allclose(each[0], each[1])  # differently initialized: the mean is not trivial
    np.testing.assert_allclose(ensemble_model(members).predict(inputs, verbose=0), np.mean(each, axis=0), atol=1e-6)
    weighted = ensemble_model(members, weights=[2, 1, 1]).predict(inputs, verbose=0)
    np.testing.assert_allclose(weighted, 0.5 * each[0] + 0.25 * each[1] + 0.25 * each[2], atol=1e-6)
    np.testing.assert_allclose(weighted.sum(axis=1), 1.0, atol=1e-5)


def test_an_ensemble_of_models_with_one_name_saves_and_loads_in_safe_mode(members, inputs, tmp_path):
    same_name = [keras.Model(m.input, m.output, name="model1") for m in members]  # as fold models are
    ensemble = ensemble_model(same_name)
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), ensemble.predict(inputs, verbose=0), atol=1e-6)


def test_refusals(members):
    with pytest.raises(ValueError, match="at least one member"):
        ensemble_model([])
    with pytest.raises(ValueError, match="one weight per member"):
        ensemble_model(members, weights=[1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        ensemble_model(members, weights=[1, -1, 1])
    with pytest.raises(ValueError, match="number of classes"):
        ensemble_model([members[0], create_model("model1", width=0.25, num_classes=5)])
