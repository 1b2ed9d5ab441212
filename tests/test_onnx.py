"""ONNX export (export.py, the ``[onnx]`` extra): Keras's ``model.export(format="onnx")`` on the
TensorFlow and PyTorch backends, run by ONNX Runtime; what a backend cannot export is refused in
one line (TensorFlow's own formats elsewhere; ONNX on JAX, whose converter's pooling ONNX Runtime
refuses)."""

import keras
import numpy as np
import pytest

from mmdigits_keras.cli import main
from mmdigits_keras.export import export_model, predict_onnx
from mmdigits_keras.models import create_model

pytestmark = pytest.mark.backends
# One model of each family: 2-D CNNs, LSTMs, 1-D convolutions (Models 1-4's late fusion is built
# from fusion_1dcnn's layer types: model2 left out to keep the suite's time).
FAMILIES = ("hybrid_cnn", "model1_lstm", "fusion_1dcnn")


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    return {"image": rng.uniform(size=(32, 28, 28, 1)).astype(np.float32),
            "audio": rng.normal(size=(32, 507)).astype(np.float32)}


EXPORTS_ONNX = keras.backend.backend() != "jax"


@pytest.mark.slow(10)
@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_runtime_agrees_with_keras(name, inputs, tmp_path):
    rng = np.random.default_rng(1)
    model = create_model(name, audio_mean=rng.normal(size=507), audio_variance=rng.uniform(0.5, 2, size=507))
    model.save(tmp_path / "model.keras")
    if not EXPORTS_ONNX:
        with pytest.raises(ValueError, match="export with KERAS_BACKEND=tensorflow or torch"):
            export_model(tmp_path / "model.keras", out=tmp_path / "model.onnx", format="onnx")
        assert not (tmp_path / "model.onnx").exists()
        return
    out = export_model(tmp_path / "model.keras", out=tmp_path / "model.onnx", format="onnx")
    probabilities = predict_onnx(out, inputs, batch_size=20)  # two calls, the second a smaller batch
    assert probabilities.shape == (32, 10)
    np.testing.assert_allclose(probabilities, model.predict(inputs, verbose=0), atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written left


def test_cli_exports_onnx_and_refuses_what_the_backend_lacks(tiny_fusion_run, inputs, tmp_path, capsys):
    _, run = tiny_fusion_run
    code = main(["export", "--model", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    if EXPORTS_ONNX:
        assert code == 0 and "wrote" in capsys.readouterr().out
        assert predict_onnx(tmp_path / "m.onnx", inputs).shape == (32, 10)
    else:
        assert code == 2 and "is not exported on the jax backend" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not an ONNX model"):
        predict_onnx(run / "config.json", inputs)
    if keras.backend.backend() != "tensorflow":
        code = main(["export", "--model", str(run), "--format", "saved_model", "--out", str(tmp_path / "s")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "needs its backend (KERAS_BACKEND=tensorflow" in err and "\n" not in err
        assert not (tmp_path / "s").exists()
