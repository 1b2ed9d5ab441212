"""Multi-device training with `tf.distribute`: which strategy a run trains under.

Synchronous data parallelism, the way the Keras guide "Multi-GPU distributed training with
TensorFlow" does it: the model is built and compiled inside ``strategy.scope()``, and
`fit` splits every global batch across the replicas. The recipe's batch size is per
replica, so the global batch is ``batch_size * replicas`` (on Kaggle's two T4s, 2 x 128 for the
default recipe); learning rate and everything else stay the recipe's.
"""

from __future__ import annotations

import tensorflow as tf

from mmdigits_keras.utils.names import STRATEGIES


def make_strategy(strategy=None):
    """The `tf.distribute.Strategy` a run trains under.

    Args:
        strategy: None or ``"default"`` (one device: TensorFlow's default strategy),
            ``"mirrored"`` (`tf.distribute.MirroredStrategy` over every visible GPU; without
            a GPU over every logical CPU device, one replica unless the program split the
            CPU with `tf.config.set_logical_device_configuration`), or a
            `tf.distribute.Strategy` instance, used as it is.

    Returns:
        The strategy; ``strategy.num_replicas_in_sync`` is its number of replicas.

    Raises:
        ValueError: `strategy` is another string or object.
    """
    check_strategy(strategy)
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
    return tf.distribute.get_strategy()


def check_strategy(strategy):
    """Raises a `ValueError` unless `strategy` is None, one of `STRATEGIES` or a `tf.distribute.Strategy`."""
    if not (strategy is None or isinstance(strategy, tf.distribute.Strategy)
            or (isinstance(strategy, str) and strategy in STRATEGIES)):
        raise ValueError(f"`strategy` must be one of {STRATEGIES} or a tf.distribute.Strategy. "
                         f"Received: strategy={strategy!r}")


def strategy_name(strategy):
    """What ``config.json`` records: ``"default"``, ``"mirrored"``, or another strategy's class name."""
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    name = type(strategy).__name__
    return "default" if name.startswith("_Default") else name
