"""Fused batch normalization while a model trains.

Keras 3's `BatchNormalization` computes a training batch's moments and the normalization with
separate element-wise ops (mean, squared difference, subtract, multiply, sum and their
gradients; keras-team/keras-core#225). Profiled on the default model here (`hybrid_cnn`,
batch 128, CPU; ``benchmarks/bench_step.py --profile``), those ops took about half of a
training step's compute. TensorFlow's fused kernel (``FusedBatchNormV3``: one op forward, one
backward, oneDNN on CPU and cuDNN on GPU) computes the same function in far fewer ops (the
measured speed-up: docs/experiments.md, training speed).

`fused_batch_normalization` swaps the training-mode ``call`` of a model's
`BatchNormalization` layers for the fused kernel while the model trains and restores it
after, so the saved model keeps built-in layers only (docs/getting-started.md: ``.keras`` files load
without custom objects) and inference is untouched.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os

import keras

# MMDIGITS_FUSED_BATCH_NORM=0 trains with Keras's own call: to compare the two, or where a
# platform's fused kernel misbehaves.
# The kernel is TensorFlow's: another Keras backend keeps Keras's own call.
ENABLED = os.environ.get("MMDIGITS_FUSED_BATCH_NORM", "1") != "0" and keras.backend.backend() == "tensorflow"
tf = importlib.import_module("tensorflow") if keras.backend.backend() == "tensorflow" else None


def _eligible(layer):
    """Plain `BatchNormalization` over the last axis, without the options the fused kernel
    lacks (batch renormalization, synchronized statistics); those keep Keras's own call, as
    do inference, masked inputs and a normalized axis other than the last. Keras before 3.11
    has no ``renorm`` attribute (Keras 3.10, as Colab and Kaggle ship it, has no batch
    renormalization at all), so a missing attribute means the option is off."""
    return (type(layer) is keras.layers.BatchNormalization and not getattr(layer, "renorm", False)
            and not getattr(layer, "synchronized", False))


def _fused_call(layer, inputs, training=None, mask=None):
    """`BatchNormalization.call` with the training branch on ``FusedBatchNormV3``: the same
    normalization by the batch's biased variance and the same moving-statistics update
    (``moving = moving * momentum + batch * (1 - momentum)``)."""
    rank = len(inputs.shape)
    if (not (training and layer.trainable) or mask is not None or rank < 2 or rank > 4
            or layer.axis not in (-1, rank - 1)):
        return type(layer).call(layer, inputs, training=training, mask=mask)
    # Float32 statistics for float16 inputs, as Keras's call does.
    x = tf.cast(inputs, tf.float32)
    channels = x.shape[-1]
    four_d = tf.reshape(x, [-1, 1, 1, channels]) if rank == 2 else tf.expand_dims(x, 1) if rank == 3 else x
    gamma = tf.cast(layer.gamma, tf.float32) if layer.scale else tf.ones([channels])
    beta = tf.cast(layer.beta, tf.float32) if layer.center else tf.zeros([channels])
    y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=four_d, scale=gamma, offset=beta, mean=tf.zeros([channels]), variance=tf.ones([channels]),
        epsilon=layer.epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
    count = tf.cast(tf.size(four_d) // channels, tf.float32)
    # The kernel returns the Bessel-corrected variance (undefined for one value); Keras keeps
    # the biased one.
    variance = tf.where(count > 1.0, variance * (count - 1.0) / count, tf.zeros_like(variance))
    momentum = layer.momentum
    layer.moving_mean.assign(tf.cast(layer.moving_mean, tf.float32) * momentum + mean * (1.0 - momentum))
    layer.moving_variance.assign(tf.cast(layer.moving_variance, tf.float32) * momentum + variance * (1.0 - momentum))
    y = tf.reshape(y, tf.shape(x))
    return tf.cast(y, layer.compute_dtype)


def _layers(model):
    """Every layer of `model`, those of nested models (the backbone) included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


@contextlib.contextmanager
def fused_batch_normalization(model):
    """Within the context, `model`'s eligible `BatchNormalization` layers train with
    TensorFlow's fused kernel (see the module docstring); on exit their own ``call`` is back,
    and so is a training step traced with the swap (``model.train_function``): the next `fit`
    traces Keras's own.

    Args:
        model: A built `keras.Model` (nested models included).

    Yields:
        The number of layers swapped (0 with ``MMDIGITS_FUSED_BATCH_NORM=0``).
    """
    swapped = [layer for layer in _layers(model) if _eligible(layer)] if ENABLED else []
    for layer in swapped:
        # An instance attribute shadows the class's method; Layer.__call__ looks ``call`` up
        # on the instance.
        layer.call = functools.partial(_fused_call, layer)
    try:
        yield len(swapped)
    finally:
        for layer in swapped:
            del layer.call
        if swapped:
            model.train_function = None  # Keras's trainer traces again when it is None
