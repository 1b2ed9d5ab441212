"""Training protocols at equal compute: which model should `train` save?

Data: the four speaker-disjoint FSDD rotations of `bench_selection.py` (train: three speakers'
recordings with 4,000 MNIST images; test: the fourth speaker with 1,000 other images). Every
run validates on a held-out training speaker (the default split where speakers are known);
the held-out test speaker only reports: it is the benchmark, the development set on which the
tool's defaults are chosen (docs/results.md, "How defaults are chosen").

Protocols (`PROTOCOLS`), each `train` with its defaults except what is named:

- ``single``: one validated run (early stopping restores its best epoch), saved as it is:
  `train`'s default before fine-tuning (``protocol="single"``);
- ``finetune``: `train`'s default (``protocol="finetune"``): the validated run, then its model
  trained on further on every row (the validation speaker too) for 10 epochs (at most its best
  epoch) at its best epoch's learning rate, with a fresh optimizer;
- ``cv3_e10`` / ``cv3_e20``: a 3-fold speaker-fold ensemble (``folds=3``: each member hears two
  voices, the ensemble all three) with 10 / 20 epochs a fold: the 30-epoch budget of one run
  split across the folds (about 1x), or twice it.
- ``cv5_e6`` / ``cv5_e12``: a 5-fold ensemble at the same two budgets (6 / 12 epochs a fold).
  Three training voices cannot make five speaker folds, so its folds hold out recordings
  (``split=None`` resolves to ``"recording"``): each member hears all three voices.
- ``single_run``: the single run trained on its own, to time it and to check that the
  ``single`` row (below) reproduces it.
- ``e45``: one validated run with up to 45 epochs instead of 30 (the most a default may cost:
  1.5x; early stopping may end it sooner). Weight averaging (Keras's `use_ema`) was measured
  here at 0a7cb34 and left the library (docs/experiments.md).

``single`` is not trained on its own: a ``finetune`` run's first stage *is* the
single run (same seed, same data, same steps), and a callback scores that validated model on
the test speaker at the end of its fit, before the stage on every row starts; its wall time is
the run's up to that moment. (Its scores reproduced stand-alone single runs exactly:
docs/experiments.md.) Measured here and left out, their tables in docs/experiments.md: the
refit on every row (a fresh model trained on every row for the validated epochs, ``refit``, and
capped at 15 / 25 validated epochs, ``refit_e15`` / ``refit_e25``: at twice the single run's
time it scored no higher than fine-tuning on any of the three parts, and left the library when
fine-tuning became the default), and the
fine-tuning prototype that came before the library's (``finetune_e5`` / ``finetune_e10``,
06a5926).

``tune`` (``--protocols tune``): `mmdigits tune` with its defaults (`run_search`: its trials at
`train`'s schedule, the untuned configuration first, the run's seed for every trial), then
``best/`` on the test speaker; the record also holds each trial's validation score, the
winner, and trial 0's own test score (trial 0 is `train`'s run: it should equal ``single``).

``--part fusion`` trains the default model (`hybrid_cnn`), ``--part audio`` the speech-only
CNN (`audio_cnn`). ``--part retrieval`` trains `retrieval train`'s default towers (InfoNCE)
with the protocols ``single`` (as above, the validated stage of ``finetune``), ``finetune`` and
``single_run`` (`RETRIEVAL_PROTOCOLS`; fold ensembles average class probabilities, which towers do not give),
scored with Xia et al.'s annotation and retrieval
accuracy on the test speaker (as `evaluate_retrieval` scores it); it prints one table per
score. Printed (Markdown): per protocol the test accuracy per rotation (mean over
seeds), the mean over rotations as mean +/- sd over seeds, the difference from ``single``
paired by rotation and seed (mean +/- sd over the rotation-seeds, and on how many it is
ahead; and per seed, the mean over rotations, to set against the seed-to-seed spread), and the
wall time per run relative to ``single``'s. Run directories stay under
``--work`` with one JSON record each, so an interrupted benchmark resumes where it stopped.

    .venv/bin/python benchmarks/bench_protocol.py --work /tmp/protocol --part fusion --seeds 0 1 2
    .venv/bin/python benchmarks/bench_protocol.py --work /tmp/protocol --part audio --seeds 0 1 2
    .venv/bin/python benchmarks/bench_protocol.py --work /tmp/protocol --part fusion --protocols tune
    .venv/bin/python benchmarks/bench_protocol.py --work /tmp/protocol --part retrieval --protocols finetune
"""

import argparse
import json
import sys
import time

import numpy as np
from bench_selection import rotation_arguments, rotations, test_accuracy

MODELS = {"fusion": "hybrid_cnn", "audio": "audio_cnn", "retrieval": "hybrid_cnn towers"}
# name -> `train` options on top of the defaults (and the model). The first is trained first:
# its validated stage is ``single``.
PROTOCOLS = {
    "finetune": {"protocol": "finetune"},
    "cv3_e10": {"folds": 3, "epochs": 10},
    "cv3_e20": {"folds": 3, "epochs": 20},
    "cv5_e6": {"folds": 5, "epochs": 6},
    "cv5_e12": {"folds": 5, "epochs": 12},
    "e45": {"epochs": 45, "protocol": "single"},
    "single_run": {"protocol": "single"},
}

# `retrieval train` protocols: name -> `train_retrieval` options on top of its defaults.
RETRIEVAL_PROTOCOLS = {"finetune": {"protocol": "finetune"}, "single_run": {"protocol": "single"}}


def validated_test_score(test, *, retrieval=False):
    """A Keras callback that scores the model on `test` at the end of its first `fit` only
    (EarlyStopping, earlier in the list, has restored the best epoch by then): inside a
    fine-tuning run, the validated model that a single run would have saved. It also
    notes the time then. Retrieval: Xia et al.'s annotation and retrieval accuracy of the towers
    (the fitted model's output is both embeddings side by side), as `evaluate_retrieval` plays
    it."""
    import keras

    from mmdigits_keras.training import predict_labels
    from mmdigits_keras.training.retrieval_protocol import protocol_accuracy

    class ValidatedTestScore(keras.callbacks.Callback):
        scores, ended = None, None

        def on_train_end(self, logs=None):
            if self.scores is not None:
                return
            self.ended = time.perf_counter()
            if retrieval:
                pairs = self.model.predict(test.inputs(), batch_size=512, verbose=0)
                images, audio = np.split(np.asarray(pairs, np.float32), 2, axis=1)
                scores = protocol_accuracy(images @ audio.T, test.labels)
                self.scores = {"test": scores["annotation_accuracy"], "test_retrieval": scores["retrieval_accuracy"]}
            else:
                self.scores = {"test": float(np.mean(predict_labels(self.model, test) == test.labels))}

    return ValidatedTestScore()


def run_protocol(args, folder, speaker, seed, name):
    """The JSON record of protocol `name` on one rotation and seed, trained unless it exists."""
    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.evaluation import evaluate_retrieval
    from mmdigits_keras.training import train, train_retrieval

    run = args.work / "protocol" / args.part / f"{speaker}-seed{seed}-{name}"
    record = run.with_name(run.name + ".json")
    if record.is_file():
        return json.loads(record.read_text())
    retrieval = args.part == "retrieval"
    options = (RETRIEVAL_PROTOCOLS if retrieval else PROTOCOLS)[name]
    finetuned = options.get("protocol") == "finetune"
    score = validated_test_score(load_kaggle(folder, "test"), retrieval=retrieval) if finetuned else None
    started = time.perf_counter()
    if retrieval:
        train_retrieval(folder, out=run, seed=seed, overwrite=True, verbose=0, callbacks=[score] if score else (),
                        **options)
    else:
        train(folder, out=run, model=MODELS[args.part], seed=seed, overwrite=True, verbose=0,
              callbacks=[score] if score else (), **options)
    seconds = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    if retrieval:
        test = evaluate_retrieval(run, folder, split="test")["metrics"]
        result = {"test": test["annotation_accuracy"], "test_retrieval": test["retrieval_accuracy"],
                  "val": metrics["val_annotation_accuracy"], "seconds": seconds}
    else:
        result = {"test": test_accuracy(run, folder), "val": metrics["val_accuracy"], "seconds": seconds}
    if finetuned:
        result["validated"] = {**score.scores, "seconds": score.ended - started, "epochs": metrics["epochs"]}
        result["finetune_epochs"] = metrics["finetune"]["epochs"]
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
    parser.add_argument("--protocols", nargs="+", choices=list(dict.fromkeys([*PROTOCOLS, *RETRIEVAL_PROTOCOLS, "tune"])),
                        default=None,
                        help=f"default: {' '.join(PROTOCOLS)} ({' '.join(RETRIEVAL_PROTOCOLS)} for --part retrieval)")
    args = parser.parse_args()
    retrieval = args.part == "retrieval"
    protocols = args.protocols or list(RETRIEVAL_PROTOCOLS if retrieval else PROTOCOLS)
    known = {*RETRIEVAL_PROTOCOLS, "single"} if retrieval else {*PROTOCOLS, "single", "tune"}
    if set(protocols) - known:
        parser.error(f"--part {args.part} runs the protocols {sorted(known)} only. Received: {protocols}")
    args.work.mkdir(parents=True, exist_ok=True)
    data = rotations(args.work, args.shared, args.speakers)
    # `finetune` comes first: its validated stage is `single`.
    names = list(dict.fromkeys(["finetune", *(p for p in protocols if p != "single")]))
    table = {}
    for seed in args.seeds:
        for speaker, folder in data.items():
            row = {}
            for name in names:
                row[name] = (run_tune(args, folder, speaker, seed) if name == "tune"
                             else run_protocol(args, folder, speaker, seed, name))
                print(f"seed {seed} {speaker} {name}: test {row[name]['test']:.4f} ({row[name]['seconds']:.0f} s)",
                      flush=True)
            row["single"] = row["finetune"]["validated"]
            table[seed, speaker] = row
    speakers, seeds = list(data), args.seeds
    shown = ["single", *names]
    title = f"{args.part}: protocols on the held-out speaker ({MODELS[args.part]}, seeds {' '.join(map(str, seeds))})"
    if retrieval:
        print_table(table, shown, speakers, seeds, key="test", title=title + ", annotation accuracy")
        print_table(table, shown, speakers, seeds, key="test_retrieval", title=title + ", retrieval accuracy")
    else:
        print_table(table, shown, speakers, seeds, key="test", title=title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
