"""The GPU check: what a session lent a GPU machine runs once (`gpu_check.sh`, under 5 minutes)
and pastes into docs/results.md: one table, per Keras backend (``--backends``; each in its own
process with ``KERAS_BACKEND`` set), of

- device: the accelerator the backend computes on (or none: the checks ran on the CPU), the
  backend's and Keras's versions;
- train, sample / train, N rows: the default `train` (every default: model, recipe, early
  stopping, fine-tuning on every row) on the sample (``--data``, 4,000 training rows) and on
  ``--rows`` rows tiled from it (the course's 60,000: each copy re-pairs the images with other
  speech rows of the same digit): wall seconds to the saved model, seconds per epoch of the
  validated run, epochs, validation accuracy, peak device memory;
- throughput: training samples per second with the augmentation on the device, from the host
  pipeline, and with none, in float32 and in ``mixed_bfloat16``
  (bfloat16 compute, float32 variables), on the sample (`harness.throughput`).

    bash benchmarks/gpu_check.sh [--data DIR] [--rows 60000] [--epochs N] [--repeats 3]
        [--backends jax torch] [--precisions float32 mixed_bfloat16] [--work DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def device_memory():
    """(reset, peak MiB) of the backend's first accelerator; peak is None on a CPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch" and sys.modules["torch"].cuda.is_available():
        torch = sys.modules["torch"]
        return torch.cuda.reset_peak_memory_stats, lambda: torch.cuda.max_memory_allocated() / 2**20
    if backend == "jax":
        device = sys.modules["jax"].local_devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "peak_bytes_in_use" in stats:
            return lambda: None, lambda: device.memory_stats()["peak_bytes_in_use"] / 2**20  # peak since start
    if backend == "tensorflow" and sys.modules["tensorflow"].config.list_physical_devices("GPU"):
        experimental = sys.modules["tensorflow"].config.experimental
        return (lambda: experimental.reset_memory_stats("GPU:0"),
                lambda: experimental.get_memory_info("GPU:0")["peak"] / 2**20)
    return lambda: None, lambda: None


def check_train(data, out, *, epochs):
    """The default `train` on `data`; the row's fields."""
    from mmdigits_keras.training import train

    reset, peak = device_memory()
    reset()
    started = time.perf_counter()
    run = train(data, out=out, overwrite=True, verbose=0, **({"epochs": epochs} if epochs else {}))
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    memory = peak()
    return {"result": f"val accuracy {metrics['val_accuracy']:.4f}, {metrics['epochs']} epoch(s) + "
                      f"{metrics.get('finetune', {}).get('epochs', 0)} fine-tuning, "
                      f"{metrics['seconds'] / metrics['epochs']:.2f} s an epoch",
            "seconds": seconds, "memory": memory}


def child(args):
    """One backend's rows, in this process (``KERAS_BACKEND`` set by the parent)."""
    import keras

    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.training import get_recipe, prepare_data
    from mmdigits_keras.utils.backends import accelerators, describe

    where = describe()
    backend = where["backend"]
    rows = [{"check": "device", "result": (", ".join(accelerators()) or "no GPU: the checks ran on the CPU")
             + f" ({backend} {where['version']}, Keras {keras.__version__})"}]

    def row(name, check):
        try:
            rows.append({"check": name, **check()})
        except Exception as error:  # noqa: BLE001 -- a failed check is a row of the table, the others still run
            rows.append({"check": name, "result": f"FAILED: {type(error).__name__}: {error}".splitlines()[0][:160]})
        print(f"[{backend}] {name}: {rows[-1]['result']}", flush=True)

    work = args.work / backend
    row("train, sample", lambda: check_train(args.data, work / "sample", epochs=args.epochs))
    tiled = lambda: harness.tiled(args.data, work / f"tiled{args.rows}", args.rows)  # one folder per row count
    row(f"train, {args.rows:,} rows", lambda: check_train(tiled(), work / "scale", epochs=args.epochs))
    recipe = get_recipe("default")
    prepared = prepare_data(load_kaggle(args.data), synthetic_share=recipe.synthetic_share)
    for precision in args.precisions:
        def rates(precision=precision):
            found = harness.throughput(prepared, recipe, repeats=args.repeats, precision=precision)
            return {"result": ", ".join(f"{stage.removeprefix('fit, ')} {rate:,.0f}/s" for stage, rate in found.items())}

        row(f"throughput, {precision} (samples/s)", rates)
    (args.work / f"{backend}.json").write_text(json.dumps(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=harness.SHARED / "kaggle_sample", help="a Kaggle-layout folder")
    parser.add_argument("--rows", type=int, default=60_000, help="rows of the tiled data set")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs per run (default: train's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per throughput (1: a smoke run)")
    parser.add_argument("--backends", nargs="+", default=["jax", "torch"], choices=["jax", "torch", "tensorflow"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                        choices=["float32", "mixed_bfloat16"], help="Keras dtype policies of the throughput rows")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    args.work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    table = []
    for backend in args.backends:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--child", "--data", str(args.data), "--rows", str(args.rows),
                               "--repeats", str(args.repeats), "--work", str(args.work),
                               "--precisions", *args.precisions,
                               *(["--epochs", str(args.epochs)] if args.epochs else [])],
                              env={**os.environ, "KERAS_BACKEND": backend})
        found = args.work / f"{backend}.json"
        if done.returncode or not found.is_file():
            table.append({"backend": backend, "check": "the backend's process",
                          "result": f"FAILED: exit {done.returncode}"})
            continue
        table += [{"backend": backend, **row} for row in json.loads(found.read_text())]
        print(f"[{backend}] {time.perf_counter() - started:.0f} s", flush=True)
    print(f"\nGPU check on {args.data} and {args.rows:,} tiled rows (runs in {args.work}):\n")
    print("| backend | check | result | wall s | peak device MiB |")
    print("|---|---|---|---|---|")
    for row in table:
        seconds = f"{row['seconds']:.1f}" if "seconds" in row else "-"
        memory = f"{row['memory']:,.0f}" if row.get("memory") is not None else "-"
        print(f"| {row['backend']} | {row['check']} | {row['result']} | {seconds} | {memory} |")
    return 1 if any(str(row["result"]).startswith("FAILED") for row in table) else 0


if __name__ == "__main__":
    sys.exit(main())
