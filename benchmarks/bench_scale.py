"""Course scale: the default `train` on 5,000 / 20,000 / 60,000 training rows.

The course's data pair 60,000 MNIST images with spoken digits; ours have 4,000 training rows
per FSDD rotation (three speakers' 1,500 recordings, repeated over rows by the Khacef rule). The
larger sets here are **real rows tiled**: copy k of the rotation's training rows keeps its
images and re-pairs them with another recording of the same digit (the speech rows, and their
recording and speaker ids, permuted within each class, seed k), as the course's pairing
repeats each utterance over many images. The test rows (the held-out speaker) stay as they are.

Per size, one default `train` (its defaults: up to 30 epochs, early stopping with a patience of
10; or the budget `--epochs` / `--patience` name, which the run's name records) in a child
process: seconds per epoch, epochs run and the epoch kept (lowest validation cross-entropy),
peak RSS of the process, validation accuracy and test accuracy on the held-out speaker.

    .venv/bin/python benchmarks/bench_scale.py --work /tmp/scale [--speakers nicolas] [--sizes 5000 20000 60000]
    .venv/bin/python benchmarks/bench_scale.py --work /tmp/scale --sizes 60000 --epochs 6 --patience 2
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_selection import rotation_arguments, rotations, test_accuracy


def tiled(source, out, rows):
    """A Kaggle-layout folder with `rows` training rows tiled from `source`'s (module docstring)."""
    from mmdigits_keras.data.groups import read_groups, write_groups

    if (out / "y_train.csv").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    images = np.load(source / "x_train_wr.npy", allow_pickle=False)
    audio = np.load(source / "x_train_sp.npy", allow_pickle=False)
    labels = pd.read_csv(source / "y_train.csv")["label"].to_numpy()
    recordings, speakers = read_groups(source, "train", rows=len(labels))
    order = []
    for copy in range(-(-rows // len(labels))):
        rng = np.random.default_rng(copy)
        paired = np.arange(len(labels))
        if copy:  # copy 0 is the rotation itself
            for digit in np.unique(labels):
                members = np.flatnonzero(labels == digit)
                paired[members] = rng.permutation(members)
        order.append(paired)
    speech = np.concatenate(order)[:rows]
    image = np.tile(np.arange(len(labels)), len(order))[:rows]
    np.save(out / "x_train_wr.npy", images[image])
    np.save(out / "x_train_sp.npy", audio[speech])
    write_groups(out, "train", recordings=recordings[speech], speakers=speakers[speech])
    for name in ("x_test_wr.npy", "x_test_sp.npy", "y_test.csv", "groups_test.csv"):
        (out / name).unlink(missing_ok=True)  # a run killed while writing left it
        (out / name).symlink_to((source / name).resolve())
    # Last: the file whose presence says the folder is complete (a killed run writes it again).
    pd.DataFrame({"row_id": np.arange(rows), "label": labels[image]}).to_csv(out / "y_train.csv", index=False)
    return out


def child(run, data, epochs, patience, seed):
    """Trains in this process and prints its record (JSON) on the last line (`epochs` and
    `patience` 0: `train`'s defaults)."""
    from mmdigits_keras.training import train

    budget = {**({"epochs": epochs} if epochs else {}), **({"patience": patience} if patience else {})}
    started = time.perf_counter()
    train(data, out=run, seed=seed, overwrite=True, verbose=0, **budget)
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    history = pd.read_csv(run / "history.csv")
    print(json.dumps({"val": metrics["val_accuracy"], "test": test_accuracy(run, data), "seconds": seconds,
                      "fit_seconds": metrics["seconds"], "epochs": len(history),
                      "kept_epoch": int(history["val_crossentropy"].idxmin()) + 1,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    parser = rotation_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 60000])
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: train's)")
    parser.add_argument("--patience", type=int, default=None, help="early stopping's patience (default: train's)")
    parser.add_argument("--child", nargs=5, metavar=("RUN", "DATA", "EPOCHS", "PATIENCE", "SEED"),
                        help=argparse.SUPPRESS)
    parser.set_defaults(speakers=["nicolas"], seeds=[0])
    args = parser.parse_args()
    if args.child:
        run, data, epochs, patience, seed = args.child
        child(Path(run), Path(data), int(epochs), int(patience), int(seed))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for speaker, folder in rotations(args.work, args.shared, args.speakers).items():
        for rows in args.sizes:
            data = tiled(folder, args.work / f"scale-{speaker}-{rows}", rows)
            for seed in args.seeds:
                # A budget other than train's own is part of the run's name (records are reused by name).
                budget = "".join(f"-{key[0]}{value}" for key, value in (("epochs", args.epochs),
                                                                         ("patience", args.patience)) if value)
                run = args.work / "runs" / f"{speaker}-{rows}-seed{seed}{budget}"
                record = run.with_name(run.name + ".json")
                if not record.is_file():
                    done = subprocess.run([sys.executable, __file__, "--work", str(args.work), "--child", str(run),
                                           str(data), str(args.epochs or 0), str(args.patience or 0), str(seed)],
                                          check=True, capture_output=True, text=True)
                    record.write_text(done.stdout.strip().splitlines()[-1])
                result = {"speaker": speaker, "rows": rows, "seed": seed, **json.loads(record.read_text())}
                results.append(result)
                print(f"{speaker} {rows} rows seed {seed}: test {result['test']:.4f}, {result['epochs']} epochs "
                      f"(kept {result['kept_epoch']}), {result['fit_seconds'] / result['epochs']:.1f} s/epoch, "
                      f"peak RSS {result['peak_rss_mib']:,.0f} MiB", flush=True)
    table = pd.DataFrame(results)
    table["seconds_per_epoch"] = table["fit_seconds"] / table["epochs"]
    summary = table.groupby("rows").agg(runs=("test", "size"), seconds_per_epoch=("seconds_per_epoch", "mean"),
                                        epochs=("epochs", "mean"), kept_epoch=("kept_epoch", "mean"),
                                        fit_minutes=("fit_seconds", lambda s: s.mean() / 60),
                                        peak_rss_mib=("peak_rss_mib", "max"), val=("val", "mean"), test=("test", "mean"))
    print(f"\n### Default train at course scale (real rows tiled; speakers {args.speakers}, seeds {args.seeds}, "
          f"epochs {args.epochs or 'default'}, patience {args.patience or 'default'})\n")
    print("| training rows | runs | s/epoch | epochs run | epoch kept | fit minutes | peak RSS (MiB) | val | test |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rows, r in summary.iterrows():
        print(f"| {rows:,} | {int(r.runs)} | {r.seconds_per_epoch:.1f} | {r.epochs:.1f} | {r.kept_epoch:.1f} | "
              f"{r.fit_minutes:.1f} | {r.peak_rss_mib:,.0f} | {r.val:.4f} | {r.test:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
