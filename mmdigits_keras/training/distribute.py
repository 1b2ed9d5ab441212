"""Multi-device training: which strategy a run trains under, the backend's way.

Synchronous data parallelism, as Keras's guides do it: the model is built and compiled inside
the strategy's scope, and `fit` splits every global batch across the replicas. The recipe's
batch size is per replica, so the global batch is ``batch_size * replicas`` (on Kaggle's two
T4s, 2 x 128 for the default recipe); learning rate and everything else stay the recipe's.

- TensorFlow: `tf.distribute` ("Multi-GPU distributed training with TensorFlow"):
  ``"mirrored"`` is `tf.distribute.MirroredStrategy`.
- JAX: `keras.distribution` ("Multi-GPU distributed training with JAX"): ``"mirrored"`` is
  `keras.distribution.DataParallel` over every device.
- PyTorch: one device (Keras's PyTorch backend has no strategy to train under).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from typing import Callable

import keras

from mmdigits_keras.utils.backends import backend
from mmdigits_keras.utils.defaults import STRATEGIES

tf = importlib.import_module("tensorflow") if backend() == "tensorflow" else None


@dataclasses.dataclass(frozen=True)
class Strategy:
    """The strategy a run trains under.

    Attributes:
        name: What ``config.json`` records: ``"default"``, ``"mirrored"``, or a given
            strategy's class name.
        replicas: Replicas of the model (int >= 1); each trains on one share of a global batch.
        scope: () -> a context manager inside which the model is built, compiled and fitted.
    """

    name: str
    replicas: int
    scope: Callable


def _given(strategy):
    """Whether `strategy` is a strategy object of the backend's own (`tf.distribute.Strategy`
    on TensorFlow, `keras.distribution.Distribution` on JAX)."""
    if tf is not None and isinstance(strategy, tf.distribute.Strategy):
        return True
    return backend() == "jax" and isinstance(strategy, (keras.distribution.DataParallel,
                                                        keras.distribution.ModelParallel))


def make_strategy(strategy=None):
    """The `Strategy` a run trains under.

    Args:
        strategy: None or ``"default"`` (one device: on TensorFlow the strategy whose scope is
            open, its default strategy outside any), ``"mirrored"`` (every visible GPU; without
            a GPU every CPU device, one unless the program split the CPU:
            `tf.config.set_logical_device_configuration`, or JAX's
            ``--xla_force_host_platform_device_count``), or the backend's own strategy object
            (a `tf.distribute.Strategy`, a `keras.distribution.Distribution`), used as it is.

    Returns:
        The `Strategy`.

    Raises:
        ValueError: `strategy` is another string or object, or ``"mirrored"`` on PyTorch.
    """
    check_strategy(strategy)
    if tf is not None:
        if strategy == "mirrored":
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            strategy = tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
        chosen = strategy if isinstance(strategy, tf.distribute.Strategy) else tf.distribute.get_strategy()
        name = "mirrored" if isinstance(chosen, tf.distribute.MirroredStrategy) else type(chosen).__name__
        return Strategy("default" if name.startswith("_Default") else name, int(chosen.num_replicas_in_sync),
                        chosen.scope)
    if strategy == "mirrored":
        strategy = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    if strategy is None or strategy == "default":
        return Strategy("default", 1, contextlib.nullcontext)
    name = "mirrored" if isinstance(strategy, keras.distribution.DataParallel) else type(strategy).__name__
    return Strategy(name, int(strategy.device_mesh.devices.size), strategy.scope)


def check_strategy(strategy):
    """Raises a `ValueError` unless `strategy` is None, one of `STRATEGIES` (``"mirrored"`` not on
    PyTorch) or the backend's own strategy object."""
    if strategy == "mirrored" and backend() == "torch":
        raise ValueError("`strategy='mirrored'` needs the TensorFlow or JAX backend; Keras's PyTorch backend "
                         "trains on one device (KERAS_BACKEND picks the backend)")
    if not (strategy is None or _given(strategy) or (isinstance(strategy, str) and strategy in STRATEGIES)):
        raise ValueError(f"`strategy` must be one of {STRATEGIES} or the backend's own strategy object "
                         f"(tf.distribute.Strategy, keras.distribution.Distribution). Received: strategy={strategy!r}")
