"""Shared fixtures: the real data in ../shared/data, and small data sets written per test."""

import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One intra-op thread per TensorFlow process: two xdist workers (and the processes the
# process-level tests start) share two cores, and each process spreading its ops over both
# oversubscribed them (measured in docs/experiments.md, "The test suite's time, fourth pass").
# Set before any test imports TensorFlow; child processes inherit it.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
# The same for the other backends' test processes (the backend matrix): XLA's CPU thread pool
# (JAX) and OpenMP's (PyTorch).
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import importlib.util

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]

# What only TensorFlow has is not collected where it is not installed: the backend matrix's
# environment (`make backends`), where the tests marked `backends` run. There run, and only there,
# the library's calls on JAX and PyTorch that the main suite's own tests make on TensorFlow, and
# the GPU check's rehearsal (the GPU machine has no TensorFlow either).
TENSORFLOW_ONLY = ["test_export.py", "training/test_fused.py", "training/test_tfdata.py"]
WITHOUT_TENSORFLOW_ONLY = ["test_backends.py", "test_gpu_rehearsal.py"]
collect_ignore = WITHOUT_TENSORFLOW_ONLY if importlib.util.find_spec("tensorflow") else TENSORFLOW_ONLY


def shared_data_dir():
    return Path(os.environ.get("MMDIGITS_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    """The real-data folder; tests skip without it, except in CI where its absence fails."""
    path = shared_data_dir()
    if not (path / "kaggle_sample").is_dir():
        if os.environ.get("MMDIGITS_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"shared data folder not found at {path} (MMDIGITS_SHARED_DATA)")
        pytest.skip(f"shared data folder not found at {path}; set MMDIGITS_SHARED_DATA")
    return path


def write_kaggle(directory, *, pixels, audio, labels, test_pixels=None, test_audio=None, test_labels=None):
    """Writes arrays in the Kaggle course layout; returns the folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "x_train_wr.npy", pixels)
    np.save(directory / "x_train_sp.npy", audio)
    pd.DataFrame({"row_id": np.arange(len(labels)), "label": labels}).to_csv(directory / "y_train.csv", index=False)
    if test_pixels is not None:
        np.save(directory / "x_test_wr.npy", test_pixels)
        np.save(directory / "x_test_sp.npy", test_audio)
    if test_labels is not None:
        pd.DataFrame({"row_id": np.arange(len(test_labels)), "label": test_labels}).to_csv(
            directory / "y_test.csv", index=False)
    return directory


def synthetic_arrays(rows, *, seed=0):
    """Learnable toy data: each class has its own image brightness pattern and audio offset."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), rows // 10 + 1)[:rows]
    rng.shuffle(labels)
    pixels = rng.uniform(0, 60, size=(rows, 784))
    pixels[np.arange(rows), labels * 70 + 100] = 255.0  # one bright pixel per class
    audio = rng.normal(size=(rows, 507)) + labels[:, None] * 0.5
    return pixels, audio, labels


@pytest.fixture
def tiny_kaggle(tmp_path):
    """A 200-row training / 50-row test Kaggle-layout folder of synthetic data."""
    pixels, audio, labels = synthetic_arrays(250)
    return write_kaggle(tmp_path / "tiny", pixels=pixels[:200], audio=audio[:200], labels=labels[:200],
                        test_pixels=pixels[200:], test_audio=audio[200:])


def built_once(name, build, tmp_path_factory, worker_id):
    """The folder `build(folder)` fills, built once for all xdist workers: in their common
    temporary folder under a file lock (pytest-xdist's recipe for a session fixture run once),
    then reused by every worker. Only for fixtures whose tests do not change what was built
    (they may add files through the library's atomic writes, e.g. an evaluation's)."""
    if worker_id == "master":  # no xdist
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent
    folder = shared / name
    with FileLock(str(shared / f"{name}.lock")):
        if not (shared / f"{name}.done").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a half-built folder from a failed build
            folder.mkdir()
            build(folder)
            (shared / f"{name}.done").touch()
    return folder


@pytest.fixture(scope="session")
def tiny_fusion_run(tmp_path_factory, worker_id):
    """(data folder, run directory): the tiny data and a Model 1 fusion run trained 1 epoch on it,
    shared by the tests that only read such a run."""
    from mmdigits_keras.training import train

    def build(root):
        pixels, audio, labels = synthetic_arrays(200)
        data = write_kaggle(root / "tiny", pixels=pixels, audio=audio, labels=labels)
        train(data, out=root / "run", model="model1", epochs=1, verbose=0)

    root = built_once("tiny_fusion_run", build, tmp_path_factory, worker_id)
    return root / "tiny", root / "run"


@pytest.fixture(scope="session")
def kaggle_sample(shared_data):
    return shared_data / "kaggle_sample"


@pytest.fixture(scope="session")
def default_kaggle_run(kaggle_sample, tmp_path_factory, worker_id):
    """The default model and recipe trained 1 epoch on kaggle_sample, then fine-tuned 1 on every
    row (a real model, well above chance: 0.90 on the test rows, 0.93 after two epochs), shared by
    the tests that only read it."""
    from mmdigits_keras.training import train

    def build(root):
        train(kaggle_sample, out=root / "run", epochs=1, finetune_epochs=1, verbose=0)

    return built_once("default_kaggle_run", build, tmp_path_factory, worker_id) / "run"


@pytest.fixture(scope="session")
def kaggle_sample_test_labels(shared_data):
    """True labels of kaggle_sample's test rows: MNIST test images 4000..4999 (data README)."""
    with np.load(shared_data / "mnist_t10k_first5000.npz", allow_pickle=False) as data:
        return data["y"][4000:5000].astype(np.int64)


def find_layer(model, name):
    """A layer of a task model by name, looking inside its nested backbone too."""
    from mmdigits_keras.models import get_backbone

    if name in {layer.name for layer in model.layers}:
        return model.get_layer(name)
    return get_backbone(model).get_layer(name)


def layer_names(model):
    """The names of a model's layers and of its backbone's."""
    import keras

    names = []
    for layer in model.layers:
        names += layer_names(layer) if isinstance(layer, keras.Model) else [layer.name]
    return names


def tensorboard_events(folder):
    """Scalars and HParams of one TensorBoard log folder, read with tensorboard's own event
    reader: ({tag: [value per step]}, {hyperparameter: value} or None)."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    tags = events.Tags()["tensors"]
    scalars = {tag: [tf.make_ndarray(e.tensor_proto).item() for e in events.Tensors(tag)] for tag in tags
               if not tag.startswith("_hparams_")}
    hparams = None
    if "_hparams_/session_start_info" in tags:
        content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
        start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
        hparams = {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
                   for name, value in start.hparams.items()}
    return scalars, hparams


def _seconds(item):
    marker = item.get_closest_marker("slow")
    return marker.args[0] if marker and marker.args else 0


def pytest_collection_modifyitems(items):
    """Slow tests first, longest first (`@pytest.mark.slow(seconds)`, measured on this machine;
    stable otherwise). With ``--maxschedchunk=1`` (setup.cfg) xdist hands each worker two tests
    to start with and one more whenever it finishes one, so the long ones are shared out first
    and none is left to start near the end. (By default xdist 3.8 gives each worker a quarter
    of its share as one consecutive chunk at the start: every slow test went to one worker.)"""
    items.sort(key=lambda item: -_seconds(item))
