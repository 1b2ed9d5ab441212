"""Model-selection benchmark (issue 23): does the validation score predict the held-out speaker?

Data: the four speaker-disjoint FSDD rotations, built as `bench_robust.py` builds them (train:
three speakers' recordings with 4,000 MNIST images, repeated over rows by the Khacef rule;
test: the fourth speaker with 1,000 other images). `mmdigits data build` writes each row's
recording and speaker, so all three splits are possible.

``--part selection``: every configuration of `CONFIGURATIONS` is trained (`train`, `--epochs`)
on every rotation with each validation split -- ``row`` (val_fraction 0.2), ``recording`` (0.2)
and ``speaker`` (one of the three training speakers held out) -- and scored on its own
validation rows and on the held-out speaker. Per split: Spearman's rank correlation between
validation and test accuracy over the configurations, per rotation and its mean, and the mean
|validation - test|.

``--part ensembles``: on every rotation and seed, `mmdigits train` with its defaults vs a
5-fold cross-validation ensemble (``train(folds=5)``) vs `mmdigits tune` with its defaults
(``--trials`` trials of ``--tune-epochs`` epochs) and ``submit`` of its ``best/``; test
accuracy on the held-out speaker, mean +/- sd over seeds.

``--part cost``: seconds of one default `train` and of a 5-fold run on ``kaggle_sample``.

Every run directory is kept under ``--work`` and reused, so an interrupted benchmark resumes.

    .venv/bin/python benchmarks/bench_selection.py --work /tmp/selection --part selection --epochs 8
    .venv/bin/python benchmarks/bench_selection.py --work /tmp/selection --part ensembles --seeds 0 1 2
    .venv/bin/python benchmarks/bench_selection.py --work /tmp/selection --part cost
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from bench_robust import SPEAKERS, build, recipe_named

# (model, recipe): fused models of both families with each recipe, and the unimodal baselines.
CONFIGURATIONS = (
    ("hybrid_cnn", "default"), ("hybrid_cnn", "baseline"), ("hybrid_cnn", "plain"),
    ("model2", "default"), ("model2", "plain"), ("model1", "default"),
    ("image_cnn", "default"), ("audio_cnn", "default"),
)
# split -> val_fraction: a grouped split holds out one of round(1 / val_fraction) folds; three
# training speakers give three folds.
SPLITS = {"row": 0.2, "recording": 0.2, "speaker": 1 / 3}


def test_accuracy(run, data):
    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.training import load_trained_model, predict_labels

    test = load_kaggle(data, "test")
    return float(np.mean(predict_labels(load_trained_model(run), test) == test.labels))


def scored(run, data, make):
    """(validation accuracy, test accuracy, seconds) of `run`, trained by `make()` unless it exists."""
    record = run.with_name(run.name + ".json")
    if record.is_file():
        return json.loads(record.read_text())
    started = time.perf_counter()
    make()
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    result = {"val": metrics["val_accuracy"], "test": test_accuracy(run, data), "seconds": seconds}
    record.write_text(json.dumps(result))
    return result


def rotations(work, shared, speakers):
    recordings = shared / "fsdd" / "recordings"
    return {s: build(f"rot-{s}", work, shared, audio=recordings, test_speakers=[s]) for s in speakers}


def selection(args, data):
    from scipy.stats import spearmanr

    from mmdigits_keras.training import train

    results = {}
    for speaker, folder in data.items():
        for model, recipe in CONFIGURATIONS:
            for split, fraction in SPLITS.items():
                run = args.work / "selection" / f"{speaker}-{model}-{recipe}-{split}"
                results[speaker, model, recipe, split] = scored(run, folder, lambda: train(
                    folder, out=run, model=model, recipe=recipe_named(recipe), epochs=args.epochs, split=split,
                    val_fraction=fraction, overwrite=True, verbose=0))
                r = results[speaker, model, recipe, split]
                print(f"{speaker} {model}:{recipe} {split}: validation {r['val']:.4f} test {r['test']:.4f}",
                      flush=True)
    print(f"\n### Validation vs the held-out speaker ({len(CONFIGURATIONS)} configurations, {args.epochs} epochs)\n")
    print("| split | Spearman per rotation (" + " / ".join(data) + ") | mean Spearman | mean abs(validation - test) "
          "| test accuracy, all configurations | test accuracy, hybrid_cnn:default |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for split in SPLITS:
        rhos = []
        for speaker in data:
            val = [results[speaker, m, r, split]["val"] for m, r in CONFIGURATIONS]
            test = [results[speaker, m, r, split]["test"] for m, r in CONFIGURATIONS]
            rhos.append(float(spearmanr(val, test).statistic))
        gap = float(np.mean([abs(v["val"] - v["test"]) for k, v in results.items() if k[3] == split]))
        summary[split] = (float(np.mean(rhos)), gap)
        tests = np.mean([v["test"] for k, v in results.items() if k[3] == split])
        default = np.mean([results[s, "hybrid_cnn", "default", split]["test"] for s in data])
        print(f"| {split} | {' / '.join(f'{r:.2f}' for r in rhos)} | {np.mean(rhos):.2f} | {gap:.4f} | {tests:.4f} "
              f"| {default:.4f} |")
    print("\n| configuration | " + " | ".join(f"validation ({s})" for s in SPLITS) + " | test (held-out speaker) |")
    print("|---|" + "---|" * (len(SPLITS) + 1))
    for model, recipe in CONFIGURATIONS:
        vals = [np.mean([results[s, model, recipe, split]["val"] for s in data]) for split in SPLITS]
        test = np.mean([results[s, model, recipe, split]["test"] for s in data for split in SPLITS])
        print(f"| {model}:{recipe} | " + " | ".join(f"{v:.4f}" for v in vals) + f" | {test:.4f} |")
    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.data.splits import folds_for, resolve_split

    default = resolve_split(load_kaggle(next(iter(data.values())), "train"), None, folds=folds_for(0.2), holdout=True)
    rho, gap = summary[default]
    print(f"\nDefault split on these data: {default}. Targets: Spearman >= 0.6: "
          f"{'reached' if rho >= 0.6 else 'not reached'} ({rho:.2f}); mean abs(validation - test) <= 0.01: "
          f"{'reached' if gap <= 0.01 else 'not reached'} ({gap:.4f}). Row split: Spearman {summary['row'][0]:.2f}, "
          f"gap {summary['row'][1]:.4f}.")


def ensembles(args, data):
    from mmdigits_keras.training import TrainingSettings, train
    from mmdigits_keras.tuning import run_search

    table = {}
    for seed in args.seeds:
        for speaker, folder in data.items():
            base = args.work / "ensembles" / f"{speaker}-seed{seed}"
            single = scored(base / "single", folder, lambda: train(folder, out=base / "single", seed=seed,
                                                                  overwrite=True, verbose=0))
            cv = scored(base / "cv5", folder, lambda: train(folder, out=base / "cv5", folds=5, seed=seed,
                                                           overwrite=True, verbose=0)) if "cv5" in args.kinds else None

            def tune():
                run_search(folder, out=base / "tune", max_trials=args.trials, epochs=args.tune_epochs,
                           settings=TrainingSettings(seed=seed, verbose=0), overwrite=True)
                (base / "tuned").unlink(missing_ok=True)
                (base / "tuned").symlink_to((base / "tune" / "best").resolve(), target_is_directory=True)

            tuned = scored(base / "tuned", folder, tune) if "tuned" in args.kinds and seed in args.tune_seeds else None
            table[seed, speaker] = {"single": single, "cv5": cv, "tuned": tuned}
            line = f"seed {seed} {speaker}: single {single['test']:.4f}" + (f", 5-fold {cv['test']:.4f}" if cv else "")
            print(line + (f", tuned {tuned['test']:.4f}" if tuned else ""), flush=True)
    kinds = [k for k in ("single", "cv5") if k in args.kinds]
    tuned_seeds = [s for s in args.seeds if "tuned" in args.kinds and s in args.tune_seeds]
    print(f"\n### Default run vs 5-fold ensemble vs tuned best/ (held-out speaker; seeds {args.seeds})\n")
    print("| set-up | " + " | ".join(data) + " | mean of rotations: mean +/- sd over seeds | minutes per run |")
    print("|---|" + "---|" * (len(data) + 2))
    means = {}
    for kind in kinds + (["tuned"] if tuned_seeds else []):
        seeds = tuned_seeds if kind == "tuned" else args.seeds
        per_rotation = [np.mean([table[s, r][kind]["test"] for s in seeds]) for r in data]
        per_seed = [np.mean([table[s, r][kind]["test"] for r in data]) for s in seeds]
        means[kind] = (float(np.mean(per_seed)), float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0)
        minutes = np.mean([table[s, r][kind]["seconds"] for s in seeds for r in data]) / 60
        print(f"| {kind} (seeds {' '.join(map(str, seeds))}) | " + " | ".join(f"{v:.4f}" for v in per_rotation)
              + f" | {means[kind][0]:.4f} +/- {means[kind][1]:.4f} | {minutes:.1f} |")
    if "cv5" in means and "single" in means:  # a gain needs both kinds in this invocation
        gain = means["cv5"][0] - means["single"][0]
        verdict = ("not assessed: the sd needs >= 2 seeds" if len(args.seeds) < 2 else
                   "reached" if gain >= 0.003 and means["cv5"][1] <= means["single"][1] / 2 else "not reached")
        print(f"\n5-fold ensemble vs single: {gain:+.4f} (target >= +0.003 with sd <= half the single run's "
              f"{means['single'][1]:.4f}): {verdict}")
    if tuned_seeds:
        # Like against like: the tuned search against the single runs of the same seeds.
        wins = sum(np.mean([table[s, r]["tuned"]["test"] for s in tuned_seeds])
                   > np.mean([table[s, r]["single"]["test"] for s in tuned_seeds]) for r in data)
        single = np.mean([table[s, r]["single"]["test"] for s in tuned_seeds for r in data])
        gain = means["tuned"][0] - single
        print(f"tuned vs single: {gain:+.4f}, better on {wins} of {len(data)} rotations (target: >= 3 and >= +0.003): "
              f"{'reached' if wins >= 3 and gain >= 0.003 else 'not reached'}")


def cost(args):
    import pandas as pd

    from mmdigits_keras.training import train

    data = args.shared / "kaggle_sample"
    timings = {}
    for name, options in (("single", {}), ("cv5", {"folds": 5})):
        started = time.perf_counter()
        run = train(data, out=args.work / "cost" / name, overwrite=True, verbose=0, **options)
        timings[name] = time.perf_counter() - started
    print(f"\none default train on kaggle_sample: {timings['single']:.0f} s; 5-fold run: {timings['cv5']:.0f} s "
          f"= {timings['cv5'] / timings['single']:.2f}x (target <= 4x: "
          f"{'reached' if timings['cv5'] <= 4 * timings['single'] else 'not reached'})")
    folds = pd.read_csv(run / "cv_summary.csv")
    single = json.loads((args.work / "cost" / "single" / "metrics.json").read_text())
    print(f"single: {single['epochs']} epochs in {single['seconds']:.0f} s of fit; folds: "
          + ", ".join(f"{int(r.epochs)} epochs in {r.seconds:.0f} s" for r in folds.itertuples()))


def rotation_arguments(parser):
    """The options every benchmark on the four rotations takes: --work, --shared, --speakers, --seeds."""
    parser.add_argument("--work", type=Path, required=True, help="folder for data sets and run directories")
    parser.add_argument("--shared", type=Path,
                        default=Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2]
                                                    / "shared" / "data")))
    parser.add_argument("--speakers", nargs="+", default=list(SPEAKERS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    return parser


def main():
    parser = rotation_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--part", choices=["selection", "ensembles", "cost"], required=True)
    parser.add_argument("--epochs", type=int, default=8, help="epochs per selection run (default 8)")
    parser.add_argument("--kinds", nargs="+", choices=["single", "cv5", "tuned"], default=["single", "cv5", "tuned"],
                        help="set-ups of --part ensembles (single always runs: the others are compared with it)")
    parser.add_argument("--tune-seeds", type=int, nargs="+", default=None,
                        help="seeds that also run the search (default: all of --seeds)")
    parser.add_argument("--trials", type=int, default=12, help="tuning trials per search")
    parser.add_argument("--tune-epochs", type=int, default=10, help="epochs per tuning trial (default 10)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.tune_seeds = args.seeds if args.tune_seeds is None else args.tune_seeds
    if args.part == "cost":
        cost(args)
        return 0
    data = rotations(args.work, args.shared, args.speakers)
    (selection if args.part == "selection" else ensembles)(args, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
