"""Accuracy on speakers never heard: train on three FSDD speakers, test on the fourth.

The benchmark on which the tool's defaults are chosen (docs/results.md, "How defaults are
chosen"). Each of the four speaker-disjoint rotations (`harness.rotation`: three speakers'
recordings with 4,000 MNIST images for training, the fourth speaker with the other 1,000 images
for test) is trained once per seed and variant, in a fresh process, and scored on the held-out
speaker; validation (the library's default split: a held-out training speaker) never sees it.

A variant is ``NAME[=KEY:VALUE,...]``: `train`'s keywords (``--task retrieval``:
`train_retrieval`'s) on top of the defaults, e.g. ``default``, ``single=protocol:single``,
``cv5=folds:5``, ``speech=model:audio_cnn``, ``e45=epochs:45,protocol:single``,
``max_margin=loss:max_margin``; a `Recipe` field (``vtlp:0.2``, ``audio_mismatch:0.6``) trains
a lever combination on top of ``recipe`` (default ``default``); ``init:fusion`` starts the towers from a default fusion run of
the same rotation and seed; ``search:1`` runs `mmdigits tune`'s search (`run_search`, its other
keys: ``max_trials``, ``epochs``, ``model``) and scores ``best/``. ``--set`` gives every variant
the same keys (e.g. ``epochs:8 split:row val_fraction:0.2``). A fine-tuned variant (`train`'s
default protocol) also reports its validated stage, ``NAME/validated``: the model a single run
saves, scored when its first fit ends (the same run, seed and steps). ``semi_supervised:1``
learns from the rotation's test rows (pseudo-labels); ``semi_supervised:OTHER`` takes them from
variant OTHER's run of the same rotation and seed (a teacher; list OTHER first).

Printed (Markdown): per row the test accuracy per rotation (mean over seeds), the mean as
mean +/- sd over seeds, the difference from ``--baseline`` (default: the first row) paired by
rotation and seed, per seed, validation and time. ``--channels``: each run is also scored with
the held-out speaker's recordings through a simulated channel (`mmdigits_keras.data.channels`).
``--rows N``: the training rows tiled to N (`harness.tiled`, course scale), with epochs, the epoch
kept and peak RSS. ``--spearman``: how validation ranks the variants against the held-out
speaker (Spearman per rotation, mean |validation - test|). Runs and records stay under
``--work``: an interrupted benchmark resumes.

    .venv/bin/python benchmarks/bench_rotations.py --work W --variants default single=protocol:single
    .venv/bin/python benchmarks/bench_rotations.py --work W --variants speech=model:audio_cnn
    .venv/bin/python benchmarks/bench_rotations.py --work W --variants default semi=semi_supervised:1 \
        speech=model:audio_cnn speech_teacher=model:audio_cnn,semi_supervised:semi
    .venv/bin/python benchmarks/bench_rotations.py --work W --task retrieval --variants info_nce init=init:fusion
    .venv/bin/python benchmarks/bench_rotations.py --work W --variants p10=patience:10 default --rows 60000 \
        --baseline p10
"""

import json
import sys
import time
from pathlib import Path

import harness
import numpy as np
import pandas as pd


def variant(spec):
    """``NAME=KEY:VALUE,...`` -> (NAME, {KEY: VALUE}); values as int, float or str."""
    name, _, given = spec.partition("=")
    options = {}
    for item in filter(None, given.split(",")):
        key, _, value = item.partition(":")
        for kind in (int, float, str):
            try:
                options[key] = kind(value)
                break
            except ValueError:
                pass
    return name, options


def classification(run, data, seed, options):
    import dataclasses

    from mmdigits_keras.training import Recipe, get_recipe, train

    fields = [f.name for f in dataclasses.fields(Recipe) if f.name not in ("name", "batch_size")]  # train's own
    levers = {k: options.pop(k) for k in fields if k in options}
    if levers:  # a lever combination: a Recipe on top of a registered one, the library's registry untouched
        base = get_recipe(options.get("recipe", "default"))
        options["recipe"] = dataclasses.replace(base, name="+".join([base.name, *map(str, levers)]), **levers)

    if isinstance(options.get("semi_supervised"), int):  # semi_supervised:1 on the command line
        options["semi_supervised"] = bool(options["semi_supervised"])
    fine_tuned = options.get("protocol", "finetune") == "finetune" and not options.get("folds")
    scores = harness.TestScores(harness.test_rows(data)) if fine_tuned else None
    started = time.perf_counter()
    train(data, out=run, seed=seed, overwrite=True, verbose=0, callbacks=[scores] if scores else (), **options)
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    result = {"val": metrics["val_accuracy"], "test": harness.test_accuracy(run, data), "seconds": seconds,
              "fit_seconds": metrics["seconds"], "epochs": metrics.get("epochs")}
    if (run / "history.csv").is_file():
        result["kept_epoch"] = int(pd.read_csv(run / "history.csv")["val_crossentropy"].idxmin()) + 1
    if scores:
        result["validated"] = {**scores.scores, "val": result["val"], "seconds": scores.ended - started}
    return result


def retrieval(run, data, seed, options):
    from mmdigits_keras.training import train, train_retrieval

    if options.get("init") and not Path(options["init"]).exists():  # the fusion run, trained off the clock
        train(data, out=options["init"], seed=seed, overwrite=True, verbose=0)
    fine_tuned = options.get("protocol", "finetune") == "finetune"
    scores = harness.TestScores(harness.test_rows(data), retrieval=True) if fine_tuned else None
    started = time.perf_counter()
    train_retrieval(data, out=run, seed=seed, overwrite=True, verbose=0, callbacks=[scores] if scores else (),
                    **options)
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    result = {**harness.retrieval_scores(run, data), "val": metrics["val_annotation_accuracy"], "seconds": seconds}
    if scores:
        result["validated"] = {**scores.scores, "val": result["val"], "seconds": scores.ended - started}
    return result


def search(run, data, seed, options):
    from mmdigits_keras.training import TrainingSettings, load_trained_model
    from mmdigits_keras.tuning import run_search

    options.pop("search")
    started = time.perf_counter()
    found = run_search(data, out=run, settings=TrainingSettings(seed=seed, verbose=0), overwrite=True, **options)
    tuner = found["tuner"]
    seconds = time.perf_counter() - started
    return {"test": harness.test_accuracy(load_trained_model(run / "best"), data), "seconds": seconds,
            "val": json.loads((run / "best" / "metrics.json").read_text())["val_accuracy"],
            "winner": json.loads((run / "best_hyperparameters.json").read_text())["trial_id"],
            "trial0_test": harness.test_accuracy(tuner.load_model(tuner.oracle.trials["0"]), data)}


def child(run, data, seed, task, options, channels):
    """One run in this process; prints its record (JSON) on the last line."""
    run, data, options = Path(run), Path(data), json.loads(options)
    scored = run / "best" if "search" in options else run
    kind = search if "search" in options else retrieval if task == "retrieval" else classification
    result = kind(run, data, int(seed), options)
    result["channels"] = {name: harness.test_accuracy(scored, folder) for name, folder in json.loads(channels).items()}
    print(json.dumps({**result, "peak_rss_mib": harness.peak_rss_mib()}))


def measure(args, speaker, seed, name, options, variants=()):
    """The record of variant `name` on one rotation and seed, trained in a child unless it exists."""
    data = harness.rotation(args.work, args.shared, speaker)
    if args.rows:
        data = harness.tiled(data, args.work / "data" / f"rot-{speaker}-rows{args.rows}", args.rows)
    channels = {c: str(harness.rotation(args.work, args.shared, speaker, channel=c)) for c in args.channels}
    suffix = f"-rows{args.rows}" if args.rows else ""
    run = args.work / "runs" / args.task / f"{speaker}-seed{seed}-{name}{suffix}"
    if options.get("semi_supervised") in variants:  # a teacher: that variant's run of this rotation and seed
        options = {**options, "semi_supervised": str(run.with_name(f"{speaker}-seed{seed}-"
                                                                     f"{options['semi_supervised']}{suffix}"))}
    if options.get("init") == "fusion":
        options = {**options, "init": str(args.work / "runs" / f"{speaker}-seed{seed}-fusion{suffix}")}
    made = harness.record(run.with_name(run.name + ".json"), lambda: {"options": options, **harness.in_child(
        __file__, [run, data, seed, args.task, json.dumps(options), json.dumps(channels)])})
    if made["options"] != options:
        raise SystemExit(f"{run}.json was made with {made['options']}, not {options}: use another name or --work")
    return made


def main():
    if sys.argv[1:2] == ["--child"]:  # a run in its own process (`harness.in_child`)
        return child(*sys.argv[2:])
    parser = harness.arguments(__doc__)
    parser.add_argument("--task", choices=["classification", "retrieval"], default="classification")
    parser.add_argument("--variants", nargs="+", default=["default"], metavar="NAME[=KEY:VALUE,...]")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY:VALUE", help="options of every variant")
    parser.add_argument("--baseline", help="the row differences are paired against (default: the first)")
    parser.add_argument("--channels", nargs="*", default=[], help="simulated channels to score each run under too")
    parser.add_argument("--rows", type=int, help="tile the training rows to this many (course scale: 60000)")
    parser.add_argument("--spearman", action="store_true", help="how validation ranks the variants")
    args = parser.parse_args()
    if args.channels and args.task == "retrieval":
        parser.error("--channels scores classification runs only")
    common = variant("=" + ",".join(args.set))[1]
    variants = {name: {**common, **options} for name, options in map(variant, args.variants)}
    table = {}
    for seed in args.seeds:
        for speaker in args.speakers:
            for name, options in variants.items():
                made = measure(args, speaker, seed, name, options, variants)
                table[name, seed, speaker] = made
                if "validated" in made:
                    table[f"{name}/validated", seed, speaker] = made["validated"]
                print(f"seed {seed} {speaker} {name}: test {made['test']:.4f}, validation {made['val']:.4f} "
                      f"({made['seconds']:.0f} s)", flush=True)
    report(args, table, list(dict.fromkeys(row for row, _, _ in table)))
    return 0


def report(args, table, rows):
    """The Markdown tables of the module docstring."""
    keys = {"test": "annotation accuracy", "test_retrieval": "retrieval accuracy"} if args.task == "retrieval" \
        else {"test": "accuracy"}
    for key, what in keys.items():
        harness.paired_table(table, rows, args.speakers, args.seeds, key=key, baseline=args.baseline,
                     title=f"{args.task}, held-out speaker, test {what} (seeds {' '.join(map(str, args.seeds))})")
    runs = [row for row in rows if "/" not in row]
    mean = lambda row, get: float(np.mean([get(table[row, s, r]) for s in args.seeds for r in args.speakers]))
    if args.channels:
        print("\n| set-up | clean | " + " | ".join(args.channels) + " |\n|---|---|" + "---|" * len(args.channels))
        for row in runs:
            print(f"| {row} | {mean(row, lambda t: t['test']):.4f} | "
                  + " | ".join(f"{mean(row, lambda t, c=c: t['channels'][c]):.4f}" for c in args.channels) + " |")
    if args.rows:
        print(f"\n| set-up ({args.rows:,} rows) | epochs run | epoch kept | s per epoch | fit minutes | peak RSS MiB |")
        print("|---|---|---|---|---|---|")
        for row in runs:
            peak = max(table[row, s, r]["peak_rss_mib"] for s in args.seeds for r in args.speakers)
            print(f"| {row} | {mean(row, lambda t: t['epochs']):.1f} | {mean(row, lambda t: t['kept_epoch']):.1f} | "
                  f"{mean(row, lambda t: t['fit_seconds'] / t['epochs']):.1f} | "
                  f"{mean(row, lambda t: t['fit_seconds']) / 60:.1f} | {peak:,.0f} |")
    if args.spearman:
        from scipy.stats import spearmanr

        rhos = [spearmanr([np.mean([table[row, s, r]["val"] for s in args.seeds]) for row in runs],
                          [np.mean([table[row, s, r]["test"] for s in args.seeds]) for row in runs]).statistic
                for r in args.speakers]
        gap = np.mean([abs(table[row, s, r]["val"] - table[row, s, r]["test"])
                       for row in runs for s in args.seeds for r in args.speakers])
        print(f"\nValidation vs held-out speaker over {len(runs)} variants: Spearman per rotation "
              f"{' / '.join(f'{x:.2f}' for x in rhos)}, mean {np.mean(rhos):.2f}; mean |validation - test| {gap:.4f}")


if __name__ == "__main__":
    sys.exit(main())
