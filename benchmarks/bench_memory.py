"""Memory at course scale: Model 2, one epoch on 60,000 training rows (+10,000 test rows).

Writes a Kaggle-layout folder of the course's size (float64 files, like the course's: 60,000 x 784
pixels and 60,000 x 507 MFCC values, ~620 MB; random values with the right shapes and ranges)
to a temporary folder, then in this process: loads it (peak RSS after loading), trains Model 2
for one epoch with the default recipe, predicts the 10,000 test rows, and prints peak RSS and
seconds. Target (issue): under 4 GB peak RSS; loading holds at most two copies of the data.

    .venv/bin/python benchmarks/bench_memory.py [--train-rows 60000] [--test-rows 10000]
"""

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_course_size(folder, train_rows, test_rows):
    rng = np.random.default_rng(0)
    for split, rows in (("train", train_rows), ("test", test_rows)):
        np.save(folder / f"x_{split}_wr.npy", rng.integers(0, 256, size=(rows, 784)).astype(np.float64))
        np.save(folder / f"x_{split}_sp.npy", rng.standard_normal((rows, 507)))
    labels = np.arange(train_rows) % 10
    pd.DataFrame({"row_id": np.arange(train_rows), "label": labels}).to_csv(folder / "y_train.csv", index=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=60000)
    parser.add_argument("--test-rows", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        write_course_size(folder, args.train_rows, args.test_rows)
        on_disk = sum(p.stat().st_size for p in folder.glob("x_train_*.npy")) / 2**20
        import psutil

        from mmdigits_keras.data import load_kaggle
        from mmdigits_keras.submission import submit
        from mmdigits_keras.training import train

        base = psutil.Process().memory_info().rss / 2**20
        started = time.perf_counter()
        data = load_kaggle(folder, "train")
        loaded = psutil.Process().memory_info().rss / 2**20
        in_memory = (data.images.nbytes + data.audio.nbytes) / 2**20
        load_peak = peak_mib()
        del data
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        run = train(folder, out=Path(tmp) / "run", model="model2", epochs=1, verbose=0)
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        submit(run, folder, Path(tmp) / "submission.csv")
        predict_seconds = time.perf_counter() - started
    print("\n| what | value |\n|---|---|")
    print(f"| training files on disk (float64) | {on_disk:.0f} MiB |")
    print(f"| loaded training data (float32 images + audio) | {in_memory:.0f} MiB |")
    print(f"| RSS before loading / after loading | {base:.0f} / {loaded:.0f} MiB |")
    print(f"| peak RSS while loading | {load_peak:.0f} MiB (baseline + {(load_peak - base) / in_memory:.1f}x the loaded data) |")
    print(f"| load seconds | {load_seconds:.1f} |")
    print(f"| train: Model 2, 1 epoch, {args.train_rows:,} rows (80% train / 20% validation), default recipe | {train_seconds:.0f} s |")
    print(f"| submit: load model + predict {args.test_rows:,} rows + write CSV | {predict_seconds:.0f} s |")
    print(f"| **peak RSS of the whole run** | **{peak_mib():.0f} MiB** (target < 4,096) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
