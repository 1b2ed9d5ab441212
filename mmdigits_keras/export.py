"""Export for serving and phones: a trained model as a TensorFlow SavedModel or a TFLite file.

The exported model is the saved ``model.keras`` as it predicts, preprocessing included (speech
standardization fitted on the training rows, per-utterance normalization): it takes the same
named inputs as the Keras model, ``image`` float32 (N, 28, 28, 1) in [0, 1] and ``audio``
float32 (N, 507) raw MFCC values, and returns ``probabilities`` float32 (N, 10). Above the
training layer: it loads run directories.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mmdigits_keras.training import load_ensemble
from mmdigits_keras.utils.checks import check_choice
from mmdigits_keras.utils.extras import optional_module
from mmdigits_keras.utils.files import atomic_write, check_output_free, publish_directory, staged_directory

litert = optional_module("ai_edge_litert.interpreter")

FORMATS = ("saved_model", "tflite")
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
    """Exports a trained model as a SavedModel folder or a ``.tflite`` file.

    Args:
        run: A run directory (or ``.keras`` file) written by `train` / `train_retrieval`, or a
            list of them: one graph that averages its members' probabilities (`load_ensemble`;
            a cross-validation run exports as the mean of its folds either way).
        out: The SavedModel folder or the ``.tflite`` file to write.
        format: ``"saved_model"`` (TensorFlow Serving, TF.js, ``tf.saved_model.load``) or
            ``"tflite"`` (LiteRT / TensorFlow Lite on phones; built-in TFLite ops only).
        quantize: None (float32 weights) or ``"dynamic"``: dynamic-range quantization, int8
            weights with float activations (about 4x smaller; TFLite only).
        overwrite: Replace an existing `out`.
        weights: With several runs, one weight per run (None: the plain mean).

    Returns:
        The path written (`Path`). It is written aside and renamed into place, so a failed
        export leaves nothing.

    Raises:
        ValueError: an unknown `format` or `quantize`, quantization with ``saved_model``, an
            existing `out` without `overwrite`, or a `run` that does not hold a loadable model.
    """
    check_choice("format", format, FORMATS)
    check_choice("quantize", quantize, QUANTIZATIONS)
    if quantize and format != "tflite":
        raise ValueError(f"`quantize` needs format='tflite'. Received: format={format!r}, quantize={quantize!r}")
    out = Path(out)
    check_output_free(out, overwrite=overwrite)
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
