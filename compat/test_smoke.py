"""The package's main jobs on the notebook's versions, from the installed wheel (issue 24):
build Models 1-4 and the default model, train 2 epochs, submit, a 2-trial search, export; and
train + submit on every Keras backend the image has (TensorFlow; JAX in 2026's)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import notebook_image

import mmdigits_keras as mk
from mmdigits_keras.data import load_kaggle
from mmdigits_keras.training import DEFAULT_MODEL, TrainingSettings, load_trained_model
from mmdigits_keras.tuning import run_search

PYTHON, NOTEBOOK = notebook_image()
BACKENDS = [name for name in ("tensorflow", "jax", "torch") if importlib.util.find_spec(name)]


def test_this_is_the_notebooks_environment():
    assert sys.version_info[:2] == PYTHON
    assert (tf.__version__, keras.__version__, np.__version__) == (
        NOTEBOOK["tensorflow-cpu"], NOTEBOOK["keras"], NOTEBOOK["numpy"])
    assert BACKENDS == ["tensorflow", *(["jax"] if "jax" in NOTEBOOK else [])]
    assert "site-packages" in mk.__file__  # the installed wheel, not the source tree


@pytest.mark.parametrize("name", ["model1", "model2", "model3", "model4", DEFAULT_MODEL])
def test_models_build_and_predict_probabilities(name):
    model = mk.create_model(name, audio_mean=np.zeros(507), audio_variance=np.ones(507))
    rng = np.random.default_rng(0)
    inputs = {t.name: rng.uniform(0, 1, (4, *t.shape[1:])).astype("float32") for t in model.inputs}
    assert set(inputs) == {"image", "audio"}
    probabilities = np.asarray(model.predict(inputs, verbose=0))
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def run(kaggle_sample, tmp_path_factory):
    return mk.train(kaggle_sample, out=tmp_path_factory.mktemp("train") / "run", epochs=2, verbose=0)


def test_train_then_submit(run, kaggle_sample, tmp_path):
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["val_accuracy"] > 0.5
    path, frame = mk.submit(run, kaggle_sample, tmp_path / "submission.csv")
    written = pd.read_csv(path)
    assert list(written.columns) == ["row_id", "label"] and len(written) == len(load_kaggle(kaggle_sample, "test"))


def test_export_saved_model_predicts_as_the_keras_model(run, kaggle_sample, tmp_path):
    out = mk.export_model(run, out=tmp_path / "saved")
    test = load_kaggle(kaggle_sample, "test")
    inputs = {k: v[:200] for k, v in test.inputs().items()}
    expected = load_trained_model(run).predict(inputs, verbose=0)
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    served = serve(**{k: tf.constant(v) for k, v in inputs.items()})["probabilities"].numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_a_two_trial_search_exports_its_best(kaggle_sample, tmp_path):
    space = {"width": [0.5], "batch_size": [128]}
    result = run_search(kaggle_sample, out=tmp_path / "search", max_trials=2, epochs=1, space=space,
                        settings=TrainingSettings(epochs=1, verbose=0), isolate_trials=False)
    assert len(result["leaderboard"]) == 2
    (model,) = result["tuner"].get_best_models(1)
    assert model.count_params() > 0 and (tmp_path / "search" / "best" / "model.keras").is_file()


def test_the_command_line_trains_quietly(kaggle_sample, tmp_path):
    done = subprocess.run([str(Path(sys.executable).parent / "mmdigits"), "train", "--data", str(kaggle_sample),
                           "--out", str(tmp_path / "cli"), "--epochs", "1"], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert done.returncode == 0, done.stderr
    assert "\nrun: " in done.stdout and "validation accuracy" in done.stdout, done.stdout
    assert "I0000" not in done.stdout + done.stderr and "absl" not in done.stderr, done.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_and_submit_on_each_backend_the_notebook_has(backend, kaggle_sample, tmp_path):
    """As a notebook user picks a backend: KERAS_BACKEND set before Keras starts (a fresh process)."""
    command = str(Path(sys.executable).parent / "mmdigits")
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([command, "train", "--data", str(kaggle_sample), "--out", str(tmp_path / "run"),
                           "--epochs", "1"], capture_output=True, text=True, timeout=900,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["versions"]["backend"] == backend and config["versions"]["keras"] == NOTEBOOK["keras"]
    done = subprocess.run([command, "submit", "--model", str(tmp_path / "run"), "--data", str(kaggle_sample), "--out",
                           str(tmp_path / "submission.csv")], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pd.read_csv(tmp_path / "submission.csv")) == len(load_kaggle(kaggle_sample, "test"))
