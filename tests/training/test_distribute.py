"""Multi-device training (training/distribute.py) on two CPU devices: tf.distribute's logical
CPUs on TensorFlow, XLA's host devices on JAX."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest
from conftest import synthetic_arrays, write_kaggle

from mmdigits_keras.training.distribute import check_strategy, make_strategy

# Logical devices must be set before TensorFlow initializes its devices: in a fresh process.
SCRIPT = textwrap.dedent("""
    import json, os, sys
    import keras
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.training import predict_labels, train, load_trained_model

    data, out = sys.argv[1], sys.argv[2]
    test = load_kaggle(data, "test")
    result = {}
    # The same global batch (32): one device, or two replicas of 16 each.
    for name, strategy, batch_size in (("one", None, 32), ("mirrored", "mirrored", 16)):
        run = train(data, out=f"{out}/{name}", model="hybrid_cnn", recipe="plain", batch_size=batch_size, epochs=6,
                    protocol="single", model_kwargs={"width": 0.5}, split="row", strategy=strategy, verbose=0)
        config = json.load(open(f"{run}/config.json"))
        result[name] = {"global_batch": config["training"]["batch_size"] * config["training"]["replicas"],
                        "accuracy": float(np.mean(predict_labels(load_trained_model(run), test) == test.labels)),
                        "replicas": config["training"]["replicas"], "strategy": config["training"]["strategy"]}
    json.dump(result, open(f"{out}/result.json", "w"))
""")


@pytest.mark.slow(30)
@pytest.mark.backends
def test_mirrored_trains_on_two_cpu_devices_as_well_as_one_device_and_loads_without_it(tmp_path):
    if keras.backend.backend() == "torch":
        with pytest.raises(ValueError, match="TensorFlow or JAX backend"):
            check_strategy("mirrored")
        return
    pixels, audio, labels = synthetic_arrays(500)
    data = write_kaggle(tmp_path / "data", pixels=pixels[:400], audio=audio[:400], labels=labels[:400],
                        test_pixels=pixels[400:], test_audio=audio[400:], test_labels=labels[400:])
    # JAX splits the host into devices by an XLA flag read when JAX starts; put first, since XLA
    # ignores the flags that follow one it does not know.
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {os.environ.get('XLA_FLAGS', '')}"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(data), str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["mirrored"]["replicas"] == 2 and result["mirrored"]["strategy"] == "mirrored"
    assert result["mirrored"]["global_batch"] == result["one"]["global_batch"] == 32
    assert result["one"]["replicas"] == 1 and result["one"]["strategy"] == "default"
    # Loaded in a process without the strategy, the mirrored model predicts as well as one device's.
    assert result["one"]["accuracy"] > 0.9
    assert abs(result["mirrored"]["accuracy"] - result["one"]["accuracy"]) <= 0.05


@pytest.mark.backends
def test_default_strategy_is_one_device_and_unknown_names_are_refused():
    strategy = make_strategy(None)
    assert strategy.replicas == 1 and strategy.name == "default"
    with strategy.scope():
        pass
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        given = tf.distribute.MirroredStrategy(devices=["/cpu:0"])
    elif keras.backend.backend() == "jax":
        given = keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:1])
    else:
        given = None
    if given is not None:
        made = make_strategy(given)
        assert made.name == "mirrored" and made.replicas == 1
    with pytest.raises(ValueError, match="strategy"):
        check_strategy("horovod")
