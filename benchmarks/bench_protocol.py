"""Training protocols at equal compute: which model should `train` save?

Data: the four speaker-disjoint FSDD rotations of `bench_selection.py` (train: three speakers'
recordings with 4,000 MNIST images; test: the fourth speaker with 1,000 other images). Every
run validates on a held-out training speaker (the default split where speakers are known);
the held-out test speaker only reports: it is the benchmark, the development set on which the
tool's defaults are chosen (docs/results.md, "How defaults are chosen").

Protocols (`PROTOCOLS`), each `train` with its defaults except what is named:

- ``single``: today's default, one validated run (early stopping restores its best epoch);
- ``refit``: the same validated run, then a fresh model trained on every row (the validation
  speaker too) for the validated epochs at the validated learning rates (``refit=True``);
- ``refit_e15``: as ``refit`` with the validated run capped at 15 epochs, so the two stages
  together cost about one default run;
- ``cv3_e10`` / ``cv3_e20``: a 3-fold speaker-fold ensemble (``folds=3``: each member hears two
  voices, the ensemble all three) with 10 / 20 epochs a fold: the default's 30-epoch budget
  split across the folds (about 1x), or twice it.
- ``cv5_e6`` / ``cv5_e12``: a 5-fold ensemble at the same two budgets (6 / 12 epochs a fold).
  Three training voices cannot make five speaker folds, so its folds hold out recordings
  (``split=None`` resolves to ``"recording"``): each member hears all three voices.
- ``finetune_e5`` / ``finetune_e10``: the default run's saved model, then trained on further
  on every row (the validation speaker too) for 5 / 10 epochs at the learning rate of its best
  epoch, with a fresh optimizer (about 1.2x / 1.45x). A prototype in this script only: it
  enters the library if it wins. Both continue the same default run (``single/``), trained
  once per rotation and seed; each one's time is that run's plus its own fine-tuning.
- ``e45``: the default with up to 45 epochs instead of 30 (the most a default may cost: 1.5x;
  early stopping may end it sooner). Weight averaging (Keras's `use_ema`) was measured here at
  0a7cb34 and left the library (docs/experiments.md).

``single`` is not trained on its own: a ``refit`` run's first stage *is* the default run
(same seed, same data, same steps), and a callback scores that validated model on the test
speaker at the end of its fit, before the refit starts; its wall time is the run's minus the
refit stage's fit. (Its scores reproduced the stand-alone default runs of `bench_selection.py`
exactly, per rotation: docs/experiments.md.)

``tune`` (``--protocols tune``): `mmdigits tune` with its defaults (`run_search`: its trials at
`train`'s schedule, the untuned configuration first, the run's seed for every trial), then
``best/`` on the test speaker; the record also holds each trial's validation score, the
winner, and trial 0's own test score (trial 0 is `train`'s run: it should equal ``single``).

``--part fusion`` trains the default model (`hybrid_cnn`), ``--part audio`` the speech-only
CNN (`audio_cnn`). ``--part retrieval`` trains `retrieval train`'s default towers (InfoNCE)
with the protocols ``single`` (its own run: retrieval's fit has no test-scoring hook),
``refit`` and ``refit_e25`` (`RETRIEVAL_PROTOCOLS`; fold ensembles average class probabilities, which towers do not
give), scored with seed 002's annotation and retrieval accuracy on the test speaker
(`evaluate_retrieval`); it prints one table per score. Printed (Markdown): per protocol the test accuracy per rotation (mean over
seeds), the mean over rotations as mean +/- sd over seeds, the difference from ``single``
paired by rotation and seed (mean +/- sd over the rotation-seeds, and on how many it is
ahead; and per seed, the mean over rotations, to set against the seed-to-seed spread), and the
wall time per run relative to ``single``'s. Run directories stay under
``--work`` with one JSON record each, so an interrupted benchmark resumes where it stopped.

    .venv/bin/python benchmarks/bench_protocol.py --work /tmp/protocol --part fusion --seeds 0 1 2
    .venv/bin/python benchmarks/bench_protocol.py --work /tmp/protocol --part audio --seeds 0 1 2
    .venv/bin/python benchmarks/bench_protocol.py --work /tmp/protocol --part fusion --protocols tune
    .venv/bin/python benchmarks/bench_protocol.py --work /tmp/protocol --part retrieval --protocols refit
"""

import argparse
import json
import sys
import time
import types

import numpy as np
from bench_selection import rotation_arguments, rotations, test_accuracy

MODELS = {"fusion": "hybrid_cnn", "audio": "audio_cnn", "retrieval": "hybrid_cnn towers"}
# name -> `train` options on top of the defaults (and the model).
PROTOCOLS = {
    "refit": {"refit": True},
    "refit_e15": {"refit": True, "epochs": 15},
    "cv3_e10": {"folds": 3, "epochs": 10},
    "cv3_e20": {"folds": 3, "epochs": 20},
    "cv5_e6": {"folds": 5, "epochs": 6},
    "cv5_e12": {"folds": 5, "epochs": 12},
    "e45": {"epochs": 45},
}

# name -> epochs of training on every row after the default run (`run_finetune`).
FINETUNE = {"finetune_e5": 5, "finetune_e10": 10}

# `retrieval train` protocols: name -> `train_retrieval` options on top of its defaults.
# ``refit_e25``: the validated run capped at 25 of its 50 epochs (its runs stop after 25–43), so
# that both stages together cost about one default run.
RETRIEVAL_PROTOCOLS = {"single": {}, "refit": {"refit": True}, "refit_e25": {"refit": True, "epochs": 25}}


def validated_test_score(test):
    """A Keras callback that scores the model on `test` at the end of its first `fit` only
    (EarlyStopping, earlier in the list, has restored the best epoch by then): inside a refit
    run, the validated model that a default run would have saved."""
    import keras

    from mmdigits_keras.training import predict_labels

    class ValidatedTestScore(keras.callbacks.Callback):
        accuracy = None

        def on_train_end(self, logs=None):
            if self.accuracy is None:
                self.accuracy = float(np.mean(predict_labels(self.model, test) == test.labels))

    return ValidatedTestScore()


def run_protocol(args, folder, speaker, seed, name):
    """The JSON record of protocol `name` on one rotation and seed, trained unless it exists."""
    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.training import train

    run = args.work / "protocol" / args.part / f"{speaker}-seed{seed}-{name}"
    record = run.with_name(run.name + ".json")
    if record.is_file():
        return json.loads(record.read_text())
    options = PROTOCOLS[name]
    score = validated_test_score(load_kaggle(folder, "test")) if options.get("refit") else None
    started = time.perf_counter()
    train(folder, out=run, model=MODELS[args.part], seed=seed, overwrite=True, verbose=0,
          callbacks=[score] if score else (), **options)
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    result = {"test": test_accuracy(run, folder), "val": metrics["val_accuracy"], "seconds": seconds}
    if score:
        result["validated"] = {"test": score.accuracy, "seconds": seconds - metrics["refit"]["seconds"],
                               "epochs": metrics["epochs"]}
        result["refit_epochs"] = metrics["refit"]["epochs"]
    record.write_text(json.dumps(result))
    return result


def run_finetune(args, folder, speaker, seed, name):
    """The JSON record of protocol `name` (`FINETUNE`) on one rotation and seed."""
    import pandas as pd

    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.training import RECIPES, load_trained_model, predict_labels, train
    from mmdigits_keras.training.fitting import compile_model, fit_model, seed_everything
    from mmdigits_keras.training.preparation import prepare_data
    from mmdigits_keras.training.refit import refit_schedule
    from mmdigits_keras.utils.names import DEFAULT_RECIPE

    run = args.work / "protocol" / args.part / f"{speaker}-seed{seed}-{name}"
    record = run.with_name(run.name + ".json")
    if record.is_file():
        return json.loads(record.read_text())
    single = run.with_name(f"{speaker}-seed{seed}-single")
    timing = single.with_name(single.name + ".json")
    if not timing.is_file():  # the whole `train` call, as the other protocols are timed
        started = time.perf_counter()
        train(folder, out=single, model=MODELS[args.part], seed=seed, overwrite=True, verbose=0)
        timing.write_text(json.dumps({"seconds": time.perf_counter() - started, "test": test_accuracy(single, folder)}))
    before = json.loads(timing.read_text())
    history = pd.read_csv(single / "history.csv")
    learning_rate = json.loads((single / "config.json").read_text())["training"]["learning_rate"]
    recipe, epochs = RECIPES[DEFAULT_RECIPE], FINETUNE[name]
    started = time.perf_counter()
    rate = refit_schedule(types.SimpleNamespace(history=history.to_dict("list")), monitor="val_crossentropy",
                          learning_rate=learning_rate)[-1]  # the best epoch's
    final = prepare_data(folder, seed=seed, synthetic_share=recipe.synthetic_share, validation=False)
    seed_everything(seed)
    model = compile_model(load_trained_model(single), recipe, learning_rate=rate)
    fit_model(model, final, recipe, epochs=epochs, seed=seed, schedule=[rate] * epochs, verbose=0)
    seconds = time.perf_counter() - started
    test = load_kaggle(folder, "test")
    result = {"test": float(np.mean(predict_labels(model, test) == test.labels)), "seconds": before["seconds"] + seconds,
              "finetune_seconds": seconds, "rate": rate, "single_test": before["test"]}
    record.write_text(json.dumps(result))
    return result


def run_tune(args, folder, speaker, seed):
    """The JSON record of `mmdigits tune` with its defaults on one rotation and seed."""
    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.training import TrainingSettings, load_trained_model, predict_labels
    from mmdigits_keras.tuning import run_search

    run = args.work / "protocol" / args.part / f"{speaker}-seed{seed}-tune"
    record = run.with_name(run.name + ".json")
    if record.is_file():
        return json.loads(record.read_text())
    started = time.perf_counter()
    search = run_search(folder, out=run, model=MODELS[args.part], settings=TrainingSettings(seed=seed, verbose=0),
                        overwrite=True)
    seconds = time.perf_counter() - started
    tuner, test = search["tuner"], load_kaggle(folder, "test")
    first = tuner.load_model(tuner.oracle.trials["0"])
    best = json.loads((run / "best_hyperparameters.json").read_text())
    result = {"test": float(np.mean(predict_labels(load_trained_model(run / "best"), test) == test.labels)),
              "val": json.loads((run / "best" / "metrics.json").read_text())["val_accuracy"], "seconds": seconds,
              "winner": best["trial_id"], "trial_scores": search["leaderboard"]["score"].round(4).tolist(),
              "trial0_test": float(np.mean(predict_labels(first, test) == test.labels))}
    record.write_text(json.dumps(result))
    return result


def run_retrieval(args, folder, speaker, seed, name):
    """The JSON record of retrieval protocol `name` on one rotation and seed, trained unless it
    exists: annotation (``test``) and retrieval (``test_retrieval``) accuracy on the test speaker."""
    from mmdigits_keras.evaluation import evaluate_retrieval
    from mmdigits_keras.training import train_retrieval

    run = args.work / "protocol" / args.part / f"{speaker}-seed{seed}-{name}"
    record = run.with_name(run.name + ".json")
    if record.is_file():
        return json.loads(record.read_text())
    started = time.perf_counter()
    train_retrieval(folder, out=run, seed=seed, overwrite=True, verbose=0, **RETRIEVAL_PROTOCOLS[name])
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    test = evaluate_retrieval(run, folder, split="test")["metrics"]
    result = {"test": test["annotation_accuracy"], "test_retrieval": test["retrieval_accuracy"],
              "val": metrics["val_annotation_accuracy"], "seconds": seconds}
    record.write_text(json.dumps(result))
    return result


def paired(table, name, speakers, seeds, key="test"):
    """(mean, sd, wins, n) of protocol `name` minus ``single`` in `key` over the rotation-seeds."""
    diffs = np.array([table[s, r][name][key] - table[s, r]["single"][key] for s in seeds for r in speakers])
    return float(diffs.mean()), float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0, int((diffs > 0).sum()), len(diffs)


def print_table(table, names, speakers, seeds, *, key, title):
    """The Markdown table of `key` per protocol (see the module docstring)."""
    print(f"\n### {title}\n")
    print("| protocol | " + " | ".join(speakers) + " | mean +/- sd over seeds | vs single, paired | ahead "
          "| vs single, per seed | wall time per run | x single |")
    print("|---|" + "---|" * (len(speakers) + 6))
    single_seconds = np.mean([table[s, r]["single"]["seconds"] for s in seeds for r in speakers])
    for name in names:
        per_rotation = [np.mean([table[s, r][name][key] for s in seeds]) for r in speakers]
        per_seed = [np.mean([table[s, r][name][key] for r in speakers]) for s in seeds]
        sd = np.std(per_seed, ddof=1) if len(per_seed) > 1 else 0.0
        seconds = np.mean([table[s, r][name]["seconds"] for s in seeds for r in speakers])
        if name == "single":
            versus, ahead, by_seed = "", "", ""
        else:
            mean, spread, wins, n = paired(table, name, speakers, seeds, key)
            versus, ahead = f"{mean:+.4f} +/- {spread:.4f}", f"{wins} of {n}"
            by_seed = " / ".join(f"{paired(table, name, speakers, [s], key)[0]:+.4f}" for s in seeds)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in per_rotation)
              + f" | {np.mean(per_seed):.4f} +/- {sd:.4f} | {versus} | {ahead} | {by_seed} | {seconds:.0f} s "
              f"| {seconds / single_seconds:.2f} |")


def main():
    parser = rotation_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--part", choices=list(MODELS), required=True)
    parser.add_argument("--protocols", nargs="+", choices=[*PROTOCOLS, *FINETUNE, *RETRIEVAL_PROTOCOLS, "tune"], default=None,
                        help=f"default: {' '.join(PROTOCOLS)} ({' '.join(RETRIEVAL_PROTOCOLS)} for --part retrieval)")
    args = parser.parse_args()
    retrieval = args.part == "retrieval"
    protocols = args.protocols or list(RETRIEVAL_PROTOCOLS if retrieval else PROTOCOLS)
    known = set(RETRIEVAL_PROTOCOLS) if retrieval else {*PROTOCOLS, *FINETUNE, "single", "tune"}
    if set(protocols) - known:
        parser.error(f"--part {args.part} runs the protocols {sorted(known)} only. Received: {protocols}")
    args.work.mkdir(parents=True, exist_ok=True)
    data = rotations(args.work, args.shared, args.speakers)
    # Retrieval trains `single` on its own; elsewhere `refit` comes first: its validated stage is `single`.
    names = list(dict.fromkeys(["single", *protocols] if retrieval
                               else ["refit", *(p for p in protocols if p != "single")]))
    table = {}
    for seed in args.seeds:
        for speaker, folder in data.items():
            row = {}
            for name in names:
                row[name] = (run_retrieval(args, folder, speaker, seed, name) if retrieval
                             else run_tune(args, folder, speaker, seed) if name == "tune"
                             else run_finetune(args, folder, speaker, seed, name) if name in FINETUNE
                             else run_protocol(args, folder, speaker, seed, name))
                print(f"seed {seed} {speaker} {name}: test {row[name]['test']:.4f} ({row[name]['seconds']:.0f} s)",
                      flush=True)
            if not retrieval:
                row["single"] = row["refit"]["validated"]
            table[seed, speaker] = row
    speakers, seeds = list(data), args.seeds
    shown = names if retrieval else ["single", *names]
    title = f"{args.part}: protocols on the held-out speaker ({MODELS[args.part]}, seeds {' '.join(map(str, seeds))})"
    if retrieval:
        print_table(table, shown, speakers, seeds, key="test", title=title + ", annotation accuracy")
        print_table(table, shown, speakers, seeds, key="test_retrieval", title=title + ", retrieval accuracy")
    else:
        print_table(table, shown, speakers, seeds, key="test", title=title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
