"""The Keras backend a process runs on (one of `mmdigits_keras.utils.defaults.BACKENDS`, chosen by
``KERAS_BACKEND`` or ``~/.keras/keras.json``, as Keras chooses it), its version, and the
accelerators it sees.

The library is written in `keras.ops` and runs on each; what only TensorFlow has (the `tf.data`
input pipeline, the fused batch-normalization kernel, SavedModel and TFLite export, TensorBoard
logs) is used where TensorFlow is the backend, or installed, and said in one line elsewhere.
"""

from __future__ import annotations

import sys

import keras


def backend():
    """The running Keras backend's name: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def backend_version():
    """The running backend's version string (e.g. ``"2.21.0"``), or None if it has none."""
    return getattr(sys.modules.get(backend()), "__version__", None)



def accelerators():
    """The accelerator devices the backend computes on, e.g. ``["gpu:0"]``; ``[]`` on a CPU.

    Keras lists them (`keras.distribution.list_devices`) on TensorFlow and JAX; PyTorch's
    backend has no such list, so its CUDA devices are counted by PyTorch itself, which that
    backend has imported already.
    """
    if backend() == "torch":
        return [f"gpu:{index}" for index in range(sys.modules["torch"].cuda.device_count())]
    return [device.lower() for device in keras.distribution.list_devices()
            if not device.lower().startswith("cpu")]


def enable_determinism():
    """Makes the backend's ops deterministic where it has one switch for that: TensorFlow's op
    determinism (`tf.config.experimental.enable_op_determinism`). JAX's ops are deterministic
    on a CPU; PyTorch's switch refuses ops without a deterministic kernel, so it stays off."""
    if backend() == "tensorflow":
        sys.modules["tensorflow"].config.experimental.enable_op_determinism()


def describe():
    """What ``config.json`` records: ``{"backend", "version", "device"}``, where device is
    ``"cpu"`` or the first accelerator's name."""
    found = accelerators()
    return {"backend": backend(), "version": backend_version(), "device": found[0] if found else "cpu"}
