"""Speech that carries over to new voices: protocols and losses on held-out speakers.

Data: the four speaker-disjoint FSDD rotations of `bench_selection.py` (train: three speakers,
test: the fourth with 1,000 other images). Every run validates on a held-out training speaker
(the default split where speakers are known); the held-out test speaker only reports.
(The speaker adversary and mixup across speakers were measured here and left the library;
their rows are in docs/experiments.md.)

``--part audio``: the audio-only CNN (`audio_cnn`, default recipe), and with ``--folds K`` the
default trained as a K-fold speaker-fold ensemble (`train(folds=K)`; three training speakers:
each member hears two voices, the ensemble all three): its validation is out-of-fold, so
validation does not rank it; its test score is printed paired with the default's. ``--part fusion``: the default fusion model (`hybrid_cnn`),
the same options, and the image-only CNN (`image_cnn`) beside it (the fused model must never
fall below it). ``--part retrieval``: `train_retrieval` with Xia et al.'s max-margin loss vs
symmetric InfoNCE, vs towers initialized from the default fusion
run (with either loss); Xia et al.'s protocol
on the held-out speaker (annotation / retrieval accuracy). The loss is always named, so the
records stay comparable whichever loss is `train_retrieval`'s default.

Printed: per set-up the test accuracy per rotation (mean over seeds), its mean over rotations
as mean +/- sd over seeds, the validation mean, and what validation picks. Every run
directory stays under ``--work`` and is reused, so an interrupted benchmark resumes. The
set-ups train with `train`'s and `train_retrieval`'s defaults, which fine-tune on every row
since 74a470d: records from an older ``--work`` are validated runs (use a fresh one). The refit
on every row, and ``--part nested`` (refit or not, decided on training speakers only), were
measured here and left with the refit (docs/experiments.md).

    .venv/bin/python benchmarks/bench_speakers.py --work /tmp/speakers --part audio --seeds 0 1 2
    .venv/bin/python benchmarks/bench_speakers.py --work /tmp/speakers --part fusion --seeds 0 1 2
    .venv/bin/python benchmarks/bench_speakers.py --work /tmp/speakers --part retrieval --seeds 0 1 2

"""

import argparse
import json
import sys

import numpy as np
from bench_selection import rotation_arguments, rotations, scored

TARGETS = {"audio": ("audio-only rotations mean >= 0.80", lambda mean: mean >= 0.80),
           "fusion": ("fusion rotations mean >= 0.992", lambda mean: mean >= 0.992)}


TAGS = {"folds": "folds"}
DEFAULT = "default"


def classification(args, data):
    from mmdigits_keras.training import train

    model = "audio_cnn" if args.part == "audio" else "hybrid_cnn"
    setups = {f"{model}, {DEFAULT}": (model, {})}
    if args.folds:
        # Three training speakers, three speaker folds: each member hears two voices, the ensemble all three.
        setups[f"{model}, {args.folds}-fold ensemble"] = (model, {"folds": args.folds})
    if args.part == "fusion":
        setups["image_cnn (image only)"] = ("image_cnn", {})
    table = {}
    for seed in args.seeds:
        for speaker, folder in data.items():
            for name, (net, options) in setups.items():
                tag = "-".join(TAGS.get(k, "") + f"{v:g}" for k, v in options.items()) or "0"
                run = args.work / args.part / f"{speaker}-seed{seed}-{net}-{tag}"
                table[name, seed, speaker] = scored(run, folder, lambda: train(
                    folder, out=run, model=net, seed=seed, overwrite=True, verbose=0, **options))
                r = table[name, seed, speaker]
                print(f"seed {seed} {speaker} {name}: validation {r['val']:.4f} test {r['test']:.4f}", flush=True)
    summary = report(args, data, setups, table, ("val", "test"), base=f"{model}, {DEFAULT}")
    # A fold ensemble's validation is its members' out-of-fold mean, not the saved model's: not ranked.
    chosen = max((n for n in setups if setups[n][0] == model and "folds" not in setups[n][1]),
                 key=lambda n: summary[n]["val"])
    label, reached = TARGETS[args.part]
    mean, sd = summary[chosen]["test"]
    base = summary[f"{model}, {DEFAULT}"]["test"]
    print(f"\nValidation picks: {chosen} (test {mean:.4f} +/- {sd:.4f}; default: {base[0]:.4f} +/- {base[1]:.4f}; "
          f"difference {mean - base[0]:+.4f}). Target {label}: {'reached' if reached(mean) else 'not reached'}.")
    if args.folds:
        print(f"{args.folds}-fold ensemble: its validation score is the members' out-of-fold mean, not the "
              "ensemble's, so validation cannot rank it (its test difference, paired by seed, is in the table).")
    if args.part == "fusion":
        below = [(seed, s) for seed in args.seeds for s in data
                 if table[chosen, seed, s]["test"] < table["image_cnn (image only)", seed, s]["test"]]
        print(f"Fused ({chosen}) below image-only in {len(below)} of {len(args.seeds) * len(data)} rotation-seeds"
              + (f": {below}" if below else "") + ".")


def retrieval(args, data):
    from mmdigits_keras.evaluation import evaluate_retrieval
    from mmdigits_keras.training import train, train_retrieval

    setups = {"max_margin (Xia et al.)": {"loss": "max_margin"}, "info_nce": {"loss": "info_nce"},
              "init from fusion run": {"loss": "max_margin", "init": True},
              "info_nce, init from fusion run": {"loss": "info_nce", "init": True}}
    setups = {name: options for name, options in setups.items() if args.only in name}
    table = {}
    for seed in args.seeds:
        for speaker, folder in data.items():
            fusion = args.work / "retrieval" / f"{speaker}-seed{seed}-fusion"
            for name, options in setups.items():
                run = args.work / "retrieval" / f"{speaker}-seed{seed}-{name.replace(' ', '_').replace(',', '')}"
                record = run.with_name(run.name + ".json")
                if not record.is_file():
                    if options.get("init") and not fusion.exists():
                        train(folder, out=fusion, seed=seed, overwrite=True, verbose=0)
                    kwargs = {**options, "init": fusion} if options.get("init") else options
                    train_retrieval(folder, out=run, seed=seed, overwrite=True, verbose=0, **kwargs)
                    # The validated run's scores (metrics.json: the same protocol on the validation rows),
                    # which the fine-tuned model, trained on those rows, could not give.
                    val = json.loads((run / "metrics.json").read_text())
                    test = evaluate_retrieval(run, folder, split="test")["metrics"]
                    record.write_text(json.dumps({
                        "val": val["val_annotation_accuracy"], "test": test["annotation_accuracy"],
                        "val_retrieval": val["val_retrieval_accuracy"], "test_retrieval": test["retrieval_accuracy"]}))
                table[name, seed, speaker] = json.loads(record.read_text())
                r = table[name, seed, speaker]
                print(f"seed {seed} {speaker} {name}: test annotation {r['test']:.4f} retrieval {r['test_retrieval']:.4f}",
                      flush=True)
    summary = report(args, data, setups, table, ("val", "test", "test_retrieval"),
                     base=next(iter(setups)))
    chosen = max(setups, key=lambda n: summary[n]["val"][0])
    print(f"\nValidation (annotation) picks: {chosen} (test {summary[chosen]['test'][0]:.4f} / "
          f"{summary[chosen]['test_retrieval'][0]:.4f}).")
    for name in setups:
        annotation, retrieval_ = summary[name]["test"][0], summary[name]["test_retrieval"][0]
        print(f"{name}: target annotation and retrieval >= 0.90: "
              f"{'reached' if min(annotation, retrieval_) >= 0.90 else 'not reached'}")


def report(args, data, setups, table, keys, base):
    """Prints the Markdown table (with each key's difference from set-up `base`, paired by seed,
    for the test keys); returns {set-up: {key: (mean over rotations, sd over seeds)}}."""
    paired_keys = [k for k in keys if k.startswith("test")]
    print(f"\n### {args.part}: held-out speaker, seeds {args.seeds}\n")
    print("| set-up | " + " | ".join(f"test {s}" for s in data) + " | " + " | ".join(
        f"{k} (mean +/- sd over seeds)" for k in keys) + " | " + " | ".join(
        f"{k} - {base}, paired by seed" for k in paired_keys) + " |")
    print("|---|" + "---|" * (len(data) + len(keys) + len(paired_keys)))
    summary = {}
    for name in setups:
        per_rotation = [np.mean([table[name, seed, s]["test"] for seed in args.seeds]) for s in data]
        summary[name] = {}
        for key in keys:
            per_seed = [np.mean([table[name, seed, s][key] for s in data]) for seed in args.seeds]
            summary[name][key] = (float(np.mean(per_seed)), float(np.std(per_seed, ddof=1)) if len(per_seed) > 1
                                  else float("nan"))
        differences = []
        for key in paired_keys:
            paired = [np.mean([table[name, seed, s][key] - table[base, seed, s][key] for s in data])
                      for seed in args.seeds]
            sd = np.std(paired, ddof=1) if len(paired) > 1 else float("nan")
            differences.append("" if name == base else f"{np.mean(paired):+.4f} +/- {sd:.4f}")
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in per_rotation) + " | " + " | ".join(
            f"{summary[name][k][0]:.4f} +/- {summary[name][k][1]:.4f}" for k in keys) + " | "
            + " | ".join(differences) + " |")
    return summary


def main():
    parser = rotation_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--part", choices=["audio", "fusion", "retrieval"], required=True)
    parser.add_argument("--folds", type=int, default=0,
                        help="audio and fusion parts: also the default trained as a K-fold speaker-fold "
                             "ensemble (train(folds=K); 0: skip)")
    parser.add_argument("--only", default="",
                        help="retrieval part: only the set-ups whose name contains this text (e.g. init), so "
                             "another process can train them at the same time")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = rotations(args.work, args.shared, args.speakers)
    {"retrieval": retrieval}.get(args.part, classification)(args, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
