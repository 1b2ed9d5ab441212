"""A model saved on one Keras backend loads (safe mode) and predicts the same on another, both
ways: in the main suite TensorFlow against JAX (the backends installed beside it), in the backend
matrix (`make backends`) JAX against PyTorch. So each backend's writer and reader of the one
`.keras` format meets another backend's: TensorFlow's through JAX, PyTorch's through JAX."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from mmdigits_keras.models import create_model, get_backbone
from mmdigits_keras.utils.defaults import BACKENDS

pytestmark = pytest.mark.backends
BACKEND = keras.backend.backend()
# One model of each family: 2-D CNNs, LSTMs, 1-D convolutions (Models 1-4's late fusion is built
# from fusion_1dcnn's layer types: model2 left out to keep the suite's time).
FAMILIES = ("hybrid_cnn", "model1_lstm", "fusion_1dcnn")

# Runs in a process on another backend: loads the models saved here, predicts, and saves its own.
OTHER_BACKEND = textwrap.dedent("""
    import sys
    from pathlib import Path
    import keras
    import numpy as np
    from mmdigits_keras.models import create_model
    folder, families = Path(sys.argv[1]), sys.argv[2:]
    inputs = dict(np.load(folder / "inputs.npz"))
    rng = np.random.default_rng(1)
    for name in families:
        loaded = keras.models.load_model(folder / f"{name}.keras", safe_mode=True)
        np.save(folder / f"{name}.loaded.npy", loaded.predict(inputs, verbose=0))
        own = create_model(name, audio_mean=rng.normal(size=507), audio_variance=rng.uniform(0.5, 2, size=507))
        own.save(folder / f"{name}.other.keras")
        np.save(folder / f"{name}.other.npy", own.predict(inputs, verbose=0))
""")


@pytest.mark.slow(16)
def test_a_model_saved_on_one_backend_predicts_the_same_on_the_others(tmp_path):
    others = [name for name in BACKENDS if name != BACKEND and importlib.util.find_spec(name)]
    assert others, "the suite's environments have at least two backends"
    rng = np.random.default_rng(0)
    inputs = {"image": rng.uniform(size=(16, 28, 28, 1)).astype("float32"),
              "audio": rng.normal(size=(16, 507)).astype("float32")}
    ours = {}
    for name in FAMILIES:
        model = create_model(name, audio_mean=rng.normal(size=507), audio_variance=rng.uniform(0.5, 2, size=507))
        # Moving statistics away from their initial values, so that loading them is checked too.
        for layer in get_backbone(model).layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape) * 0.1)
                layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=layer.moving_variance.shape))
        model.save(tmp_path / f"{name}.keras")
        ours[name] = model.predict(inputs, verbose=0)
    np.savez(tmp_path / "inputs.npz", **inputs)
    for other in others:
        done = subprocess.run([sys.executable, "-c", OTHER_BACKEND, str(tmp_path), *FAMILIES], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": other})
        assert done.returncode == 0, done.stderr[-3000:]
        for name in FAMILIES:
            np.testing.assert_allclose(np.load(tmp_path / f"{name}.loaded.npy"), ours[name], atol=2e-5,
                                       err_msg=f"{name} saved on {BACKEND}, loaded on {other}")
            theirs = keras.models.load_model(tmp_path / f"{name}.other.keras", safe_mode=True)
            np.testing.assert_allclose(theirs.predict(inputs, verbose=0), np.load(tmp_path / f"{name}.other.npy"),
                                       atol=2e-5, err_msg=f"{name} saved on {other}, loaded on {BACKEND}")

