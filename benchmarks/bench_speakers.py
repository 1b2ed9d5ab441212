"""Speech that carries over to new voices: protocols and losses on held-out speakers.

Data: the four speaker-disjoint FSDD rotations of `bench_selection.py` (train: three speakers,
test: the fourth with 1,000 other images). Every run validates on a held-out training speaker
(the default split where speakers are known); the held-out test speaker only reports.
(The speaker adversary and mixup across speakers were measured here and left the library;
their rows are in docs/experiments.md.)

``--part audio``: the audio-only CNN (`audio_cnn`, default recipe), and with ``--refit``
the default refit on every training row (the validation speaker too) for the validated epochs:
its validation score is the validated run's, so validation cannot rank it; its test score is
printed paired with the default's; with ``--folds K`` the default trained as a K-fold speaker-fold
ensemble (`train(folds=K)`; three training speakers: each member hears two voices, the ensemble
all three), likewise not ranked on validation. ``--part fusion``: the default fusion model (`hybrid_cnn`),
the same options, and the image-only CNN (`image_cnn`) beside it (the fused model must never
fall below it). ``--part retrieval``: `train_retrieval` with seed 002's max-margin loss vs
symmetric InfoNCE, vs towers initialized from the default fusion
run (with either loss; and, with ``--refit``, max-margin refit on every row); seed 002's protocol
on the held-out speaker (annotation / retrieval accuracy). The loss is always named, so the
records stay comparable whichever loss is `train_retrieval`'s default.

Printed: per set-up the test accuracy per rotation (mean over seeds), its mean over rotations
as mean +/- sd over seeds, the validation mean, and what validation picks. Every run
directory stays under ``--work`` and is reused, so an interrupted benchmark resumes.

    .venv/bin/python benchmarks/bench_speakers.py --work /tmp/speakers --part audio --seeds 0 1 2
    .venv/bin/python benchmarks/bench_speakers.py --work /tmp/speakers --part fusion --seeds 0 1 2
    .venv/bin/python benchmarks/bench_speakers.py --work /tmp/speakers --part retrieval --seeds 0 1 2
    .venv/bin/python benchmarks/bench_speakers.py --work /tmp/speakers --part nested --seeds 0 1 2

``--part nested`` decides refit-or-not without the test speaker: within each rotation, each of
its three training speakers in turn is held out as an inner test speaker (its recordings with
1,000 other images), the other two train -- one of them validating (the default split) or,
refit, both -- and the inner test speaker scores; per rotation the mean over its three inner
test speakers. The rotation's own test speaker is not in these data sets. First probe (rotation
george, seed 0, inner test speaker jackson): trained on one voice, `audio_cnn` stayed at chance on
its own training rows until early stopping (13 epochs), so this design does not yet answer the
question for the audio-only model.
"""

import argparse
import json
import sys

import numpy as np
from bench_selection import rotation_arguments, rotations, scored

TARGETS = {"audio": ("audio-only rotations mean >= 0.80", lambda mean: mean >= 0.80),
           "fusion": ("fusion rotations mean >= 0.992", lambda mean: mean >= 0.992)}


TAGS = {"refit": "refit", "folds": "folds"}
DEFAULT = "default"


def classification(args, data):
    from mmdigits_keras.training import train

    model = "audio_cnn" if args.part == "audio" else "hybrid_cnn"
    setups = {f"{model}, {DEFAULT}": (model, {})}
    if args.refit:
        setups[f"{model}, refit on every row"] = (model, {"refit": True})
    if args.folds:
        # Three training speakers, three speaker folds: each member hears two voices, the ensemble all three.
        setups[f"{model}, {args.folds}-fold ensemble"] = (model, {"folds": args.folds})
    if args.part == "fusion":
        setups["image_cnn (image only)"] = ("image_cnn", {})
    table = {}
    for seed in args.seeds:
        for speaker, folder in data.items():
            for name, (net, options) in setups.items():
                tag = "-".join(TAGS.get(k, "") + ("" if k == "refit" else f"{v:g}")
                               for k, v in options.items()) or "0"
                run = args.work / args.part / f"{speaker}-seed{seed}-{net}-{tag}"
                table[name, seed, speaker] = scored(run, folder, lambda: train(
                    folder, out=run, model=net, seed=seed, overwrite=True, verbose=0, **options))
                r = table[name, seed, speaker]
                print(f"seed {seed} {speaker} {name}: validation {r['val']:.4f} test {r['test']:.4f}", flush=True)
    summary = report(args, data, setups, table, ("val", "test"), base=f"{model}, {DEFAULT}")
    # A refit's validation is its validated run's, a fold ensemble's its members' out-of-fold mean: neither
    # scores the saved model, so neither is ranked against single runs.
    chosen = max((n for n in setups if setups[n][0] == model and not {"refit", "folds"} & set(setups[n][1])),
                 key=lambda n: summary[n]["val"])
    label, reached = TARGETS[args.part]
    mean, sd = summary[chosen]["test"]
    base = summary[f"{model}, {DEFAULT}"]["test"]
    print(f"\nValidation picks: {chosen} (test {mean:.4f} +/- {sd:.4f}; default: {base[0]:.4f} +/- {base[1]:.4f}; "
          f"difference {mean - base[0]:+.4f}). Target {label}: {'reached' if reached(mean) else 'not reached'}.")
    if args.refit:
        print("Refit on every row: its validation score is the validated run's, so validation cannot rank it "
              "(its test difference, paired by seed, is in the table).")
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

    setups = {"max_margin (seed 002)": {"loss": "max_margin"}, "info_nce": {"loss": "info_nce"},
              "init from fusion run": {"loss": "max_margin", "init": True},
              "info_nce, init from fusion run": {"loss": "info_nce", "init": True}}
    if args.refit:
        setups["max_margin, refit on every row"] = {"loss": "max_margin", "refit": True}
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
                    # which a refit model, trained on those rows, could not give.
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
    ranked = [n for n in setups if "refit" not in setups[n]]  # a refit's validation is its validated run's
    if ranked:
        chosen = max(ranked, key=lambda n: summary[n]["val"][0])
        print(f"\nValidation (annotation) picks: {chosen} (test {summary[chosen]['test'][0]:.4f} / "
              f"{summary[chosen]['test_retrieval'][0]:.4f}).")
    for name in setups:
        annotation, retrieval_ = summary[name]["test"][0], summary[name]["test_retrieval"][0]
        print(f"{name}: target annotation and retrieval >= 0.90: "
              f"{'reached' if min(annotation, retrieval_) >= 0.90 else 'not reached'}")


def nested(args, data):
    """Refit or not, chosen on training speakers only: within each rotation, each of its three
    training speakers in turn is an inner test speaker; the other two train -- one of them
    validating (the default) or, refit, both -- and the inner test speaker scores."""
    from bench_robust import build, linked_recordings

    from mmdigits_keras.training import train

    recordings = args.shared / "fsdd" / "recordings"
    setups = {f"{args.model}, default": {}, f"{args.model}, refit on every row": {"refit": True}}
    table = {}
    for seed in args.seeds:
        for speaker in data:
            # The rotation's own test speaker is never heard here.
            folder = linked_recordings(args.work / "data" / f"fsdd-without-{speaker}",
                                       [w for w in recordings.glob("*.wav") if w.stem.split("_")[1] != speaker])
            inner = sorted({wav.stem.split("_")[1] for wav in folder.glob("*.wav")})
            for name, options in setups.items():
                scores = []
                for held in inner:
                    inner_data = build(f"rot-{speaker}-inner-{held}", args.work, args.shared, audio=folder,
                                       test_speakers=[held])
                    run = args.work / "nested" / f"{speaker}-{held}-seed{seed}-{args.model}-{'refit' if options else '0'}"
                    scores.append(scored(run, inner_data, lambda: train(
                        inner_data, out=run, model=args.model, seed=seed, split="speaker", overwrite=True, verbose=0,
                        **options)))
                table[name, seed, speaker] = {key: float(np.mean([s[key] for s in scores])) for key in ("val", "test")}
                print(f"seed {seed} rotation {speaker} {name}: inner test speakers {inner}: "
                      f"{table[name, seed, speaker]['test']:.4f}", flush=True)
    print("\n(Columns per rotation: accuracy on the inner test speakers, training speakers only; "
          "test = the inner test speakers' mean.)")
    summary = report(args, data, setups, table, ("val", "test"), base=f"{args.model}, default")
    refit, default = summary[f"{args.model}, refit on every row"]["test"], summary[f"{args.model}, default"]["test"]
    print(f"\nOn training speakers only, refit {refit[0]:.4f} +/- {refit[1]:.4f} vs default "
          f"{default[0]:.4f} +/- {default[1]:.4f}: {'refit' if refit[0] > default[0] else 'default'} wins.")


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
    parser.add_argument("--part", choices=["audio", "fusion", "retrieval", "nested"], required=True)
    parser.add_argument("--model", default="audio_cnn",
                        help="--part nested: the registry model refit or not (default audio_cnn)")
    parser.add_argument("--folds", type=int, default=0,
                        help="audio and fusion parts: also the default trained as a K-fold speaker-fold "
                             "ensemble (train(folds=K); 0: skip)")
    parser.add_argument("--only", default="",
                        help="retrieval part: only the set-ups whose name contains this text (e.g. refit), so "
                             "another process can train them at the same time")
    parser.add_argument("--refit", action="store_true",
                        help="also the default set-up refit on every training row after validation (--refit)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = rotations(args.work, args.shared, args.speakers)
    {"retrieval": retrieval, "nested": nested}.get(args.part, classification)(args, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
