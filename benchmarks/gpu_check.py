"""The GPU check: what a session lent a GPU machine runs once, in under 5 minutes, and pastes
into docs/results.md. `gpu_check.sh` runs it; on a machine without a GPU it says so and runs
the same checks on the CPU (a test does that, with one epoch on tiny data).

One table, one row per check:

- device: the GPUs TensorFlow sees (or none), TensorFlow / Keras versions;
- ``train`` with its defaults on ``--data`` (``kaggle_sample``), float32: validation accuracy,
  epochs, seconds, samples/s of training;
- the same under Keras's ``mixed_float16`` policy (float16 compute, float32 variables; the
  speed-up needs a GPU with tensor cores);
- the same with ``strategy="mirrored"`` (every visible GPU; one replica on one GPU or a CPU);
- the input pipeline alone vs full training steps (`bench_pipeline.throughput`, default recipe,
  batch 128): whether the pipeline keeps the device fed (pipeline samples/s >= fit's, and fit
  within 10% of fit on cached batches, where the pipeline does no work);
- export of the float32 run as a SavedModel, reloaded and checked against the Keras model.

    bash benchmarks/gpu_check.sh [--data DIR] [--epochs N] [--work DIR]
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_pipeline import throughput


def check_train(data, out, *, epochs, **options):
    """Trains with the defaults (and `options`); returns the table row's fields."""
    from mmdigits_keras.training import train

    started = time.perf_counter()
    run = train(data, out=out, epochs=epochs, overwrite=True, verbose=0, **options)
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    data = json.loads((run / "config.json").read_text())["data"]
    rows = data["train_rows"] + data["synthetic_rows"]  # the rows an epoch trains on
    rate = f"{rows * metrics['epochs'] / metrics['seconds']:,.0f}"  # metrics' seconds: the fit's
    return run, f"val accuracy {metrics['val_accuracy']:.4f}, {metrics['epochs']} epoch(s)", seconds, rate


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared / "kaggle_sample", help="a data folder (Kaggle layout)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs per run (default: train's)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs of the pipeline check (median; 1: one epoch, no warm-up, a smoke run)")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.export import export_model
    from mmdigits_keras.training import get_recipe, load_trained_model
    from mmdigits_keras.utils.names import EPOCHS

    epochs = args.epochs or EPOCHS
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    table = [("device", ", ".join(names) if gpus else "no GPU: the checks ran on the CPU",
              f"TensorFlow {tf.__version__}, Keras {keras.__version__}", "-")]

    def row(name, check):
        try:
            started = time.perf_counter()
            result = check()
            table.append((name, *result) if len(result) == 3 else (name, result[0], time.perf_counter() - started, "-"))
        except Exception as error:  # noqa: BLE001 -- a failed check is a row of the table, the others still run
            table.append((name, f"FAILED: {type(error).__name__}: {error}".splitlines()[0][:160], "-", "-"))
        print(f"{name}: {table[-1][1]}", flush=True)

    runs = {}

    def float32():
        runs["float32"], *result = check_train(args.data, work / "float32", epochs=epochs)
        return result

    def mixed():
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            _, *result = check_train(args.data, work / "mixed_float16", epochs=epochs)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        return result

    def mirrored():
        _, *result = check_train(args.data, work / "mirrored", epochs=epochs, strategy="mirrored")
        return result

    def pipeline():
        recipe = dataclasses.replace(get_recipe("default"), batch_size=128)
        rates = throughput(load_kaggle(args.data), recipe, repeats=args.repeats)
        fit, bound = rates["fit (parallel pipeline)"], rates["fit (cached batches: no augmentation work)"]
        fed = rates["pipeline, parallel"] >= fit and fit >= 0.9 * bound
        return (f"pipeline {rates['pipeline, parallel']:,.0f}/s (serial {rates['pipeline, serial']:,.0f}/s); "
                f"fit {fit:,.0f}/s, on cached batches {bound:,.0f}/s: "
                + ("the pipeline keeps up" if fed else "the device waits on the pipeline"),)

    def export():
        folder = export_model(runs["float32"], out=work / "saved_model", overwrite=True)
        data = load_kaggle(args.data)
        inputs = {"image": data.images[:64], "audio": data.audio[:64]}
        served = tf.saved_model.load(str(folder)).signatures["serving_default"]
        probabilities = served(**{k: tf.constant(v) for k, v in inputs.items()})["probabilities"].numpy()
        expected = load_trained_model(runs["float32"]).predict(inputs, verbose=0)
        gap = float(np.abs(probabilities - expected).max())
        if gap > 1e-4:
            raise ValueError(f"the SavedModel's probabilities differ from the Keras model's by up to {gap:.1e}")
        return (f"SavedModel reloaded, probabilities within {gap:.1e} of the Keras model's",)

    row("train, float32", float32)
    row("train, mixed_float16", mixed)
    row("train, --strategy mirrored", mirrored)
    row("pipeline vs steps (default recipe, batch 128)", pipeline)
    row("export (SavedModel)", export if "float32" in runs else lambda: ("skipped: no float32 run",))
    print(f"\nGPU check on {args.data} ({epochs} epochs at most per run; runs in {work}):\n")
    print("| check | result | seconds | training samples/s |")
    print("|---|---|---|---|")
    for name, result, seconds, rate in table:
        print(f"| {name} | {result} | {seconds if isinstance(seconds, str) else f'{seconds:.1f}'} | {rate} |")
    return 1 if any(str(r[1]).startswith("FAILED") for r in table) else 0


if __name__ == "__main__":
    sys.exit(main())
