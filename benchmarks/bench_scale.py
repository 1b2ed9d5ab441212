"""Course scale: the default `train` on 5,000 / 20,000 / 60,000 training rows.

The course's data pair 60,000 MNIST images with spoken digits; ours have 4,000 training rows
per FSDD rotation (three speakers' 1,500 recordings, repeated over rows by the Khacef rule). The
larger sets here are **real rows tiled**: copy k of the rotation's training rows keeps its
images and re-pairs them with another recording of the same digit (the speech rows, and their
recording and speaker ids, permuted within each class, seed k), as the course's pairing
repeats each utterance over many images. The test rows (the held-out speaker) stay as they are.

Per size, seed and budget (`--budgets`: ``default`` is `train`'s own, up to 30 epochs with
early stopping at the patience scaled to the rows, `scaled_patience`: 2 at 20,000 and 60,000
rows; ``p10`` a patience of 10, the default before it scaled, ``e6`` at most 6 epochs, ``e6-p2``
both; ``single`` the validated run without `train`'s fine-tuning on every row, ``protocol="single"``,
combinable as ``single-p2``; the run's name records its budget), one `train` in a child process: seconds per epoch,
epochs run and the epoch kept (lowest validation cross-entropy), peak RSS of the process,
validation accuracy and test accuracy on the held-out speaker. Budgets run side by side per
rotation and seed, so an interrupted benchmark leaves pairs; each budget after the first is then
compared with the first, paired by rotation and seed (mean +/- sd of the difference, on how
many it is ahead, fit time of the validated run and time of the whole call relative to the
first's).

    .venv/bin/python benchmarks/bench_scale.py --work /tmp/scale [--speakers nicolas] [--sizes 5000 20000 60000]
    .venv/bin/python benchmarks/bench_scale.py --work /tmp/scale --sizes 60000 --budgets p10 p2 \
        --speakers george jackson lucas nicolas --seeds 0 1 2
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


def child(run, data, budget, seed):
    """Trains in this process with the `train` options `budget` and prints its record (JSON) on
    the last line."""
    from mmdigits_keras.training import train

    started = time.perf_counter()
    train(data, out=run, seed=seed, overwrite=True, verbose=0, **budget)
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    history = pd.read_csv(run / "history.csv")
    print(json.dumps({"val": metrics["val_accuracy"], "test": test_accuracy(run, data), "seconds": seconds,
                      "fit_seconds": metrics["seconds"], "epochs": len(history),
                      "kept_epoch": int(history["val_crossentropy"].idxmin()) + 1,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "finetune": metrics.get("finetune")}))


def budget_options(budget):
    """`train` options of a budget name (module docstring): ``default`` -> {}, ``e6-p2`` ->
    {"epochs": 6, "patience": 2}, ``single`` -> {"protocol": "single"}; ArgumentTypeError names
    a malformed one."""
    if budget == "default":
        return {}
    keys = {"e": "epochs", "p": "patience"}
    options = {}
    for part in budget.split("-"):
        if part == "single" and "protocol" not in options:
            options["protocol"] = "single"
            continue
        if part[:1] not in keys or not part[1:].isdigit() or int(part[1:]) < 1 or keys[part[0]] in options:
            raise argparse.ArgumentTypeError(f"budget {budget!r}: expected 'default' or e.g. 'p2', 'e6', 'e6-p2', "
                                             "'single'")
        options[keys[part[0]]] = int(part[1:])
    return options


def budget_name(options):
    """The name of a budget's `train` options (the inverse of `budget_options`)."""
    parts = [f"{key[0]}{options[key]}" for key in ("epochs", "patience") if key in options]
    return "-".join(["single"] * ("protocol" in options) + parts) or "default"


def main():
    parser = rotation_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 60000])
    parser.add_argument("--budgets", nargs="+", default=["default"],
                        help="default (train's), or e.g. p2 (patience 2), e6 (6 epochs), e6-p2; the budgets "
                             "after the first are compared with it")
    parser.add_argument("--child", nargs=4, metavar=("RUN", "DATA", "BUDGET", "SEED"), help=argparse.SUPPRESS)
    parser.set_defaults(speakers=["nicolas"], seeds=[0])
    args = parser.parse_args()
    try:  # one name per budget: "p2-e6" is "e6-p2"
        args.budgets = [budget_name(budget_options(budget)) for budget in args.budgets]
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.child:
        run, data, budget, seed = args.child
        child(Path(run), Path(data), budget_options(budget), int(seed))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for speaker, folder in rotations(args.work, args.shared, args.speakers).items():
        for rows in args.sizes:
            data = tiled(folder, args.work / f"scale-{speaker}-{rows}", rows)
            for seed in args.seeds:
                for budget in args.budgets:
                    # Records are reused by name, so a budget other than train's own is part of it.
                    run = args.work / "runs" / f"{speaker}-{rows}-seed{seed}{'' if budget == 'default' else '-' + budget}"
                    record = run.with_name(run.name + ".json")
                    if not record.is_file():
                        done = subprocess.run([sys.executable, __file__, "--work", str(args.work), "--child", str(run),
                                               str(data), budget, str(seed)], check=True, capture_output=True, text=True)
                        record.write_text(done.stdout.strip().splitlines()[-1])
                    result = {"speaker": speaker, "rows": rows, "seed": seed, "budget": budget,
                              **json.loads(record.read_text())}
                    results.append(result)
                    print(f"{speaker} {rows} rows seed {seed} {budget}: test {result['test']:.4f}, "
                          f"{result['epochs']} epochs (kept {result['kept_epoch']}), "
                          f"{result['fit_seconds'] / result['epochs']:.1f} s/epoch, "
                          f"peak RSS {result['peak_rss_mib']:,.0f} MiB", flush=True)
    table = pd.DataFrame(results)
    table["seconds_per_epoch"] = table["fit_seconds"] / table["epochs"]
    summary = table.groupby(["rows", "budget"], sort=False).agg(
        runs=("test", "size"), seconds_per_epoch=("seconds_per_epoch", "mean"), epochs=("epochs", "mean"),
        kept_epoch=("kept_epoch", "mean"), fit_minutes=("fit_seconds", lambda s: s.mean() / 60),
        peak_rss_mib=("peak_rss_mib", "max"), val=("val", "mean"), test=("test", "mean"))
    print(f"\n### train at course scale (real rows tiled; speakers {args.speakers}, seeds {args.seeds})\n")
    print("| training rows | budget | runs | s/epoch | epochs run | epoch kept | fit minutes | peak RSS (MiB) | val | test |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (rows, budget), r in summary.iterrows():
        print(f"| {rows:,} | {budget} | {int(r.runs)} | {r.seconds_per_epoch:.1f} | {r.epochs:.1f} | "
              f"{r.kept_epoch:.1f} | {r.fit_minutes:.1f} | {r.peak_rss_mib:,.0f} | {r.val:.4f} | {r.test:.4f} |")
    runs = table.set_index(["rows", "speaker", "seed", "budget"])
    reference, *others = args.budgets
    if others:
        print(f"\n| training rows | budget | vs {reference}, paired | ahead / tied / behind | fit time / {reference}'s "
              f"| whole call / {reference}'s |")
        print("|---|---|---|---|---|---|")
        first = runs.xs(reference, level="budget")
        for budget in others:
            paired = runs.xs(budget, level="budget").merge(first, left_index=True, right_index=True,
                                                             suffixes=("", "_first"))
            for rows, pairs in paired.groupby(level="rows"):
                difference = pairs["test"] - pairs["test_first"]
                print(f"| {rows:,} | {budget} | {difference.mean():+.4f} ± {difference.std(ddof=1):.4f} "
                      f"(n={len(pairs)}) | {(difference > 0).sum()} / {(difference == 0).sum()} / "
                      f"{(difference < 0).sum()} | {(pairs['fit_seconds'] / pairs['fit_seconds_first']).mean():.2f} "
                      f"| {(pairs['seconds'] / pairs['seconds_first']).mean():.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
