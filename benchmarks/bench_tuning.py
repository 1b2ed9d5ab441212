"""Memory and per-trial overhead across keras-tuner trials: 20 tiny trials, peak RSS after trials 1, 10 and 20.

keras-tuner issue #395: memory grows trial after trial. Clearing the Keras session is not
enough with TensorFlow 2.21 (each `fit` keeps about a model's worth of memory), so
`mmdigits_keras.tuning` runs each trial in a child process by default. This benchmark runs the
search both ways and prints the search process's RSS (and the children's peak for the default).

    .venv/bin/python benchmarks/bench_tuning.py [--data DIR] [--trials 20] [--mode both|isolated|in-process]

Uses 600 rows of ../shared/data/kaggle_sample (MMDIGITS_SHARED_DATA) by default, 1 epoch per
trial, Model 1-2 at width 0.5-1 with both audio encoders. Per-trial overhead: the search's wall
time up to the end of its last trial, less the seconds the trials spent in `fit` (reported by
each trial), divided by the number of trials: process start-ups, data preparation, model
builds, keras-tuner's bookkeeping.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil


def small_copy(source, rows, directory):
    """The first `rows` training rows of a Kaggle-layout folder, written to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("x_train_wr", "x_train_sp"):
        np.save(directory / f"{name}.npy", np.load(source / f"{name}.npy", allow_pickle=False)[:rows])
    pd.read_csv(source / "y_train.csv").iloc[:rows].to_csv(directory / "y_train.csv", index=False)
    return directory


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared / "kaggle_sample")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--mode", choices=["both", "isolated", "in-process"], default="both")
    args = parser.parse_args()
    modes = ["isolated", "in-process"] if args.mode == "both" else [args.mode]
    for mode in modes:
        bench(args, isolate=mode == "isolated")
    return 0


def bench(args, *, isolate):
    from mmdigits_keras.training import TrainingSettings
    from mmdigits_keras.tuning import run_search

    process = psutil.Process()
    samples, ended = {}, []

    def after_trial(trial):
        ended.append(time.perf_counter())
        number = len(samples) + 1
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        children_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        samples[number] = (process.memory_info().rss / 2**20, peak_mib, children_mib)

    with tempfile.TemporaryDirectory() as tmp:
        data = small_copy(args.data, args.rows, Path(tmp) / "data")
        started = time.perf_counter()
        run_search(data, out=Path(tmp) / "search", model="model2", tuner="random", max_trials=args.trials, epochs=1,
                   space={"depth": [1, 2], "width": [0.5, 1.0], "audio": ["conv1d", "lstm"]},
                   settings=TrainingSettings(epochs=1, verbose=0), trial_end_hook=after_trial, isolate_trials=isolate)
        seconds = time.perf_counter() - started
        records = [json.loads(p.read_text()) for p in (Path(tmp) / "search" / "keras_tuner").glob("trial_*/"
                                                                                                    "mmdigits_trial.json")]
    mode = "trials in worker processes (default)" if isolate else "trials in the search process"
    print(f"\n{mode}: {args.trials} trials of 1 epoch on {args.rows} rows in {seconds:.0f} s")
    if isolate:
        fit = sum(r["fit_seconds"] for r in records)
        workers = len({r["worker_pid"] for r in records})
        overhead = (ended[-1] - started - fit) / len(records)
        print(f"per-trial overhead: {overhead:.2f} s ({ended[-1] - started:.1f} s to the end of the last trial, "
              f"{fit:.1f} s in fit; {workers} worker processes)")
    print("| after trial | search process RSS (MiB) | its peak so far (MiB) | largest trial process peak (MiB) |")
    print("|---|---|---|---|")
    for number in sorted({1, args.trials // 2, args.trials} & set(samples)):
        rss, peak, children = samples[number]
        print(f"| {number} | {rss:.0f} | {peak:.0f} | {children:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
