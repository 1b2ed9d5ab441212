import numpy as np
import pytest
import tensorflow as tf

from mmdigits_keras.cli import main
from mmdigits_keras.data import load_kaggle
from mmdigits_keras.export import export_model, predict_tflite
from mmdigits_keras.models import create_model
from mmdigits_keras.training import load_trained_model

ROWS = 200


@pytest.fixture(scope="module")
def rows_and_reference(default_kaggle_run, kaggle_sample):
    test = load_kaggle(kaggle_sample, "test")
    inputs = {name: values[:ROWS] for name, values in test.inputs().items()}
    return inputs, load_trained_model(default_kaggle_run).predict(inputs, verbose=0)


@pytest.mark.slow(17)  # the first to need `default_kaggle_run`: trains it
def test_tflite_export_agrees_with_the_keras_model(default_kaggle_run, rows_and_reference, tmp_path):
    inputs, reference = rows_and_reference
    float_file = export_model(default_kaggle_run, out=tmp_path / "model.tflite", format="tflite")
    probabilities = predict_tflite(float_file, inputs)
    assert probabilities.shape == (ROWS, 10)
    np.testing.assert_array_equal(probabilities.argmax(1), reference.argmax(1))  # every row
    np.testing.assert_allclose(probabilities, reference, atol=1e-4)
    one_at_a_time = predict_tflite(float_file, {k: v[:5] for k, v in inputs.items()}, batch_size=1)
    np.testing.assert_allclose(one_at_a_time, reference[:5], atol=1e-4)

    quantized = export_model(default_kaggle_run, out=tmp_path / "dynamic.tflite", format="tflite",
                             quantize="dynamic")
    agreement = np.mean(predict_tflite(quantized, inputs).argmax(1) == reference.argmax(1))
    assert agreement >= 0.99, agreement
    assert quantized.stat().st_size < float_file.stat().st_size / 3  # int8 weights


def test_saved_model_takes_the_named_inputs_and_gives_the_same_probabilities(default_kaggle_run,
                                                                             rows_and_reference, tmp_path):
    inputs, reference = rows_and_reference
    folder = export_model(default_kaggle_run, out=tmp_path / "saved", format="saved_model")
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"image", "audio"}
    probabilities = serve(**{k: tf.constant(v) for k, v in inputs.items()})["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, reference, atol=1e-5)
    with pytest.raises(ValueError, match="already exists"):
        export_model(default_kaggle_run, out=folder)


def test_cli_export_and_its_refusals(tiny_fusion_run, tmp_path, capsys):
    _, run = tiny_fusion_run
    out = tmp_path / "m.tflite"
    assert main(["export", "--model", str(run), "--format", "tflite", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and out.stat().st_size > 0
    for argv, message in ((["--format", "saved_model", "--quantize", "dynamic", "--out", str(tmp_path / "s")],
                           "needs --format 'tflite'"),
                          (["--format", "tflite", "--out", str(out)], "already exists"),
                          (["--model", str(tmp_path / "missing"), "--out", str(tmp_path / "x")], "model file not found")):
        argv = argv if "--model" in argv else ["--model", str(run), *argv]
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("mmdigits: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="not a TFLite model"):
        predict_tflite(run / "config.json", {"image": np.zeros((1, 28, 28, 1)), "audio": np.zeros((1, 507))})


def test_an_ensemble_exports_as_one_graph_that_averages_its_members(tmp_path):
    members = [create_model("model1", width=0.25, name=f"m{k}") for k in range(2)]
    files = []
    for k, member in enumerate(members):
        member.save(tmp_path / f"m{k}.keras")
        files.append(tmp_path / f"m{k}.keras")
    rng = np.random.default_rng(0)
    inputs = {"image": rng.uniform(size=(8, 28, 28, 1)).astype(np.float32),
              "audio": rng.normal(size=(8, 507)).astype(np.float32)}
    want = 0.25 * members[0].predict(inputs, verbose=0) + 0.75 * members[1].predict(inputs, verbose=0)
    export_model(files, out=tmp_path / "saved", weights=[1, 3])  # weights: Python only; the CLI averages equally
    serve = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    probabilities = serve(**{k: tf.constant(v) for k, v in inputs.items()})["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, want, atol=1e-5)
