"""Export for serving and phones: a trained model as an ONNX file (every backend), a TensorFlow
SavedModel or a TFLite file (the TensorFlow backend: TensorFlow's own graph formats).

The exported model is the saved ``model.keras`` as it predicts, preprocessing included (speech
standardization fitted on the training rows, per-utterance normalization): it takes the same
named inputs as the Keras model, ``image`` float32 (N, 28, 28, 1) in [0, 1] and ``audio``
float32 (N, 507) raw MFCC values, and returns float32 (N, 10) probabilities (named
``probabilities`` in the SavedModel and TFLite signatures). Above the training layer: it loads
run directories.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

import keras
import numpy as np

from mmdigits_keras.training import load_ensemble
from mmdigits_keras.utils.backends import backend
from mmdigits_keras.utils.checks import check_choice
from mmdigits_keras.utils.defaults import EXPORT_FORMATS
from mmdigits_keras.utils.extras import optional_module, require
from mmdigits_keras.utils.files import atomic_write, check_output_free, publish_directory, staged_directory

litert = optional_module("ai_edge_litert.interpreter")
onnxruntime = optional_module("onnxruntime")
# Keras's ONNX export converts with the backend's own converter. JAX's (jax2onnx 0.17) writes max
# pooling that ONNX Runtime 1.32 refuses ("Unsupported pooling size"), so on JAX the model is
# exported from another backend: a .keras file loads on each.
ONNX_CONVERTERS = {"tensorflow": "tf2onnx", "torch": "onnxscript"}
onnx_converter = optional_module(ONNX_CONVERTERS[backend()]) if backend() in ONNX_CONVERTERS else None
tf = importlib.import_module("tensorflow") if backend() == "tensorflow" else None

FORMATS = EXPORT_FORMATS
# TensorFlow's graph formats: written from TensorFlow's graph of the model.
TENSORFLOW_FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = (None, "dynamic")
ENDPOINT = "serve"


def _export_archive(model):
    """A `keras.export.ExportArchive` of `model` with one endpoint, ``serve`` (also the
    SavedModel's ``serving_default`` signature), whose outputs are named."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    # The Keras inputs by name (`image`, `audio`), any batch size.
    signature = {t.name: tf.TensorSpec((None, *t.shape[1:]), tf.float32, name=t.name) for t in model.inputs}

    def serve(inputs):
        outputs = model(inputs, training=False)
        return dict(outputs) if isinstance(outputs, dict) else {"probabilities": outputs}

    archive.add_endpoint(name=ENDPOINT, fn=serve, input_signature=[signature])
    return archive


def export_model(run, *, out, format="saved_model", quantize=None, overwrite=False, weights=None):
    """Exports a trained model as a SavedModel folder, a ``.tflite`` file or an ``.onnx`` file.

    Args:
        run: A run directory (or ``.keras`` file) written by `train` / `train_retrieval`, or a
            list of them: one graph that averages its members' probabilities (`load_ensemble`;
            a cross-validation run exports as the mean of its folds either way).
        out: The SavedModel folder, or the ``.tflite`` or ``.onnx`` file to write.
        format: ``"saved_model"`` (TensorFlow Serving, TF.js, ``tf.saved_model.load``),
            ``"tflite"`` (LiteRT / TensorFlow Lite on phones; built-in TFLite ops only): both on
            the TensorFlow backend; or ``"onnx"`` (ONNX Runtime and every runtime that reads
            ONNX), on the TensorFlow and PyTorch backends, with the ``[onnx]`` extra: Keras's
            ``model.export(format="onnx")``, converting with tf2onnx or PyTorch's exporter.
        quantize: None (float32 weights) or ``"dynamic"``: dynamic-range quantization, int8
            weights with float activations (about 4x smaller; TFLite only).
        overwrite: Replace an existing `out`.
        weights: With several runs, one weight per run (None: the plain mean).

    Returns:
        The path written (`Path`). It is written aside and renamed into place, so a failed
        export leaves nothing.

    Raises:
        ValueError: an unknown `format` or `quantize`, quantization without ``tflite``, a
            TensorFlow format on another backend, an existing `out` without `overwrite`, or a
            `run` that does not hold a loadable model.
        MissingExtraError: ``onnx`` without the ``[onnx]`` extra.
    """
    check_choice("format", format, FORMATS)
    check_choice("quantize", quantize, QUANTIZATIONS)
    if quantize and format != "tflite":
        raise ValueError(f"`quantize` needs format='tflite'. Received: format={format!r}, quantize={quantize!r}")
    if format in TENSORFLOW_FORMATS and tf is None:
        raise ValueError(f"format={format!r} is TensorFlow's and needs its backend (KERAS_BACKEND=tensorflow; this "
                         f"is {backend()}); format='onnx' exports on PyTorch too")
    if format == "onnx" and onnx_converter is None:
        raise ValueError(f"format='onnx' is not exported on the {backend()} backend (its converter's max pooling "
                         "does not run in ONNX Runtime): export with KERAS_BACKEND=tensorflow or torch, where the "
                         "same .keras file loads")
    out = Path(out)
    check_output_free(out, overwrite=overwrite)
    if format == "onnx":
        return _export_onnx(load_ensemble(run, weights=weights), out)
    archive = _export_archive(load_ensemble(run, weights=weights))
    if format == "saved_model":
        with staged_directory(out) as staging:
            archive.write_out(str(staging), verbose=False)
            return publish_directory(staging, out, overwrite=overwrite)
    with tempfile.TemporaryDirectory(prefix="mmdigits-export-") as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[ENDPOINT])
        if quantize == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        flatbuffer = converter.convert()

    def write(tmp):
        Path(tmp).write_bytes(flatbuffer)

    return atomic_write(out, write)


def _export_onnx(model, out):
    """Writes `model` as ONNX at `out` (atomically): Keras's export, after one call of the model
    (the converters read the traced shapes)."""
    require(onnx_converter)
    model({t.name: np.zeros((1, *t.shape[1:]), dtype=np.float32) for t in model.inputs})
    if tf is not None:
        _constants_as_arrays(model)
    return atomic_write(out, lambda tmp: model.export(tmp, format="onnx", verbose=False))


def _constants_as_arrays(model):
    """Keras's `Normalization` keeps the speech statistics as tensors, which a traced function
    captures and tf2onnx turns into graph inputs (``.../audio_normalization/Sub/y:0``); as numpy
    arrays they are traced as constants. Only on this in-memory model, which is not saved."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _constants_as_arrays(layer)
        elif isinstance(layer, keras.layers.Normalization) and layer.input_mean is not None:
            layer.mean, layer.variance = (keras.ops.convert_to_numpy(t) for t in (layer.mean, layer.variance))


def predict_onnx(path, inputs, *, batch_size=256):
    """Probabilities float32 (N, 10) of an exported ``.onnx`` model on `inputs` with ONNX Runtime.

    Args:
        path: A file written by `export_model` with ``format="onnx"``.
        inputs: ``{"image": float32 (N, 28, 28, 1), "audio": float32 (N, 507)}``.
        batch_size: Rows per ONNX Runtime call.

    Raises:
        ValueError: `path` is not an ONNX model with ``image`` and ``audio`` inputs.
        MissingExtraError: without the ``[onnx]`` extra (onnxruntime).
    """
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 -- onnxruntime raises its own (Fail, InvalidProtobuf, ...)
        raise ValueError(f"{path}: not an ONNX model exported by mmdigits export ({error})") from None
    names = {i.name for i in session.get_inputs()}
    if names != set(inputs):
        raise ValueError(f"{path}: its inputs are {sorted(names)}, not {sorted(inputs)}")
    rows = len(next(iter(inputs.values())))
    return np.concatenate([
        session.run(None, {name: np.ascontiguousarray(values[start:start + batch_size], dtype=np.float32)
                           for name, values in inputs.items()})[0] for start in range(0, rows, batch_size)])


def load_tflite(path):
    """Loads an exported ``.tflite`` model into the LiteRT interpreter (what runs on phones).

    Args:
        path: A file written by `export_model` with ``format="tflite"``.

    Returns:
        A function ``predict(inputs, batch_size=256)`` -> float32 probabilities (N, 10), where
        `inputs` is ``{"image": float32 (N, 28, 28, 1), "audio": float32 (N, 507)}`` (a
        `MultimodalDataset`'s ``inputs()``) and `batch_size` the rows per interpreter call (1
        for per-row latency). It keeps one interpreter, as an app would.

    Raises:
        ValueError: `path` is not a readable TFLite model with the ``serve`` signature.
    """
    try:
        runner = litert.Interpreter(model_path=str(path)).get_signature_runner(ENDPOINT)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"{path}: not a TFLite model exported by mmdigits export ({error})") from None

    def predict(inputs, batch_size=256):
        rows = len(next(iter(inputs.values())))
        batches = []
        for start in range(0, rows, batch_size):
            feed = {name: np.ascontiguousarray(values[start:start + batch_size], dtype=np.float32)
                    for name, values in inputs.items()}
            batches.append(runner(**feed)["probabilities"])
        return np.concatenate(batches)

    return predict


def predict_tflite(path, inputs, *, batch_size=256):
    """Probabilities float32 (N, 10) of an exported ``.tflite`` model on `inputs` (see
    `load_tflite`; ValueError for a file that is not such a model)."""
    return load_tflite(path)(inputs, batch_size=batch_size)
