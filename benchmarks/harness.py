"""The benchmarks' one harness: what every script shares, so no script imports another.

- where data and work live (`arguments`, `SHARED`) and the data sets: the four speaker-disjoint
  FSDD rotations (`rotation`: train on three speakers, test on the fourth), real rows tiled to
  course scale (`tiled`), a course-size folder of random values (`random_course_folder`);
- scoring a run on test rows (`test_rows`, `test_accuracy`, `retrieval_scores`) and during
  training (`TestScores`: after every epoch, or once when the validated fit ends);
- peak memory (`peak_rss_mib`, the library's) and timing (`median_seconds`; training
  throughput with the augmentation on the device, on the host and with none, `throughput`);
- records a run reuses (`record`: JSON beside the run, so an interrupted benchmark resumes) and
  child processes (`in_child`: a fresh process per run, its record the last line it prints);
- the summary every comparison prints (`paired_table`: per rotation, mean +/- sd over seeds, the
  difference from a baseline paired by rotation and seed).

Keras and the package are imported inside the functions that need them: each benchmark process
picks its backend (``KERAS_BACKEND``) before Keras starts.
"""

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mmdigits_keras.utils.memory import peak_rss_mib

SPEAKERS = ("george", "jackson", "lucas", "nicolas")
SHARED = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
__all__ = ["PLACEMENTS", "SHARED", "SPEAKERS", "TestScores", "arguments", "in_child", "median_seconds",
           "paired_table", "peak_rss_mib", "random_course_folder", "record", "retrieval_scores", "rotation",
           "test_accuracy", "test_rows", "throughput", "tiled"]


def arguments(description, *, seeds=(0, 1, 2), speakers=SPEAKERS):
    """The parser every benchmark starts from: --work, --shared, --speakers, --seeds."""
    parser = argparse.ArgumentParser(description=description.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for data sets, runs and records (reused)")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder (MMDIGITS_SHARED_DATA)")
    parser.add_argument("--speakers", nargs="+", default=list(speakers), help="held-out speakers (rotations)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    return parser


def rotation(work, shared, speaker, **options):
    """The rotation holding `speaker` out (`build_dataset` of FSDD's recordings with 4,000 MNIST
    images for training and the other 1,000 for test), built once under ``work/data``; `options`
    (e.g. ``channel="telephone"``, ``features="logmel"``) name another folder."""
    from mmdigits_keras.data import build_dataset

    out = work / "data" / "-".join(["rot", speaker, *(str(v) for v in options.values())])
    if not (out / "manifest.json").exists():
        build_dataset(audio=shared / "fsdd" / "recordings", audio_format="fsdd",
                      images=shared / "mnist_t10k_first5000.npz", out=out, test_speakers=[speaker], seed=0,
                      overwrite=True, verbose=0, **options)
    return out


def tiled(source, out, rows):
    """A Kaggle-layout folder of `rows` training rows tiled from `source`'s (its test rows
    linked as they are): copy 0 is the source; copy k pairs each image with the speech row (and
    recording and speaker) of another row of the same digit, a permutation within each digit
    (seed k), as the course's pairing repeats each utterance over many images."""
    from mmdigits_keras.data.groups import read_groups, write_groups

    if (out / "y_train.csv").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    labels = pd.read_csv(source / "y_train.csv")["label"].to_numpy()
    speech = []
    for copy in range(-(-rows // len(labels))):
        paired, rng = np.arange(len(labels)), np.random.default_rng(copy)
        for digit in np.unique(labels) if copy else []:
            members = np.flatnonzero(labels == digit)
            paired[members] = rng.permutation(members)
        speech.append(paired)
    speech, image = np.concatenate(speech)[:rows], np.arange(rows) % len(labels)
    np.save(out / "x_train_wr.npy", np.load(source / "x_train_wr.npy", allow_pickle=False)[image])
    np.save(out / "x_train_sp.npy", np.load(source / "x_train_sp.npy", allow_pickle=False)[speech])
    recordings, speakers = read_groups(source, "train", rows=len(labels))
    if recordings is not None:
        write_groups(out, "train", recordings=recordings[speech], speakers=speakers[speech])
    for name in ("x_test_wr.npy", "x_test_sp.npy", "y_test.csv", "groups_test.csv"):
        (out / name).unlink(missing_ok=True)  # a run killed while writing left it
        if (source / name).exists():
            (out / name).symlink_to((source / name).resolve())
    # Last: the file whose presence says the folder is complete.
    pd.DataFrame({"row_id": np.arange(rows), "label": labels[image]}).to_csv(out / "y_train.csv", index=False)
    return out


def random_course_folder(out, train_rows, test_rows):
    """A Kaggle-layout folder of the course's size and dtype (float64, as its files are) with
    random values of the right shapes and ranges: for memory, not accuracy."""
    if (out / "y_train.csv").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for part, rows in (("train", train_rows), ("test", test_rows)):
        np.save(out / f"x_{part}_wr.npy", rng.uniform(0, 255, size=(rows, 784)))
        np.save(out / f"x_{part}_sp.npy", rng.normal(size=(rows, 507)))
    pd.DataFrame({"row_id": np.arange(train_rows), "label": rng.integers(0, 10, train_rows)}).to_csv(
        out / "y_train.csv", index=False)
    return out


def test_rows(data, shared=SHARED):
    """The test part of `data` with its labels: the folder's own, or for ``kaggle_sample``
    (which has none) MNIST test images 4000-4999's, the images it was built from."""
    from mmdigits_keras.data import load_dataset

    test = load_dataset(data, "test")
    if test.labels is None:
        with np.load(shared / "mnist_t10k_first5000.npz", allow_pickle=False) as mnist:
            test = dataclasses.replace(test, labels=mnist["y"][4000:5000].astype(np.int64))
    return test


def test_accuracy(run_or_model, data, shared=SHARED):
    """Accuracy of a run directory (or a loaded model) on `data`'s test rows."""
    from mmdigits_keras.training import load_trained_model, predict_labels

    model = load_trained_model(run_or_model) if isinstance(run_or_model, (str, Path)) else run_or_model
    test = test_rows(data, shared)
    return float(np.mean(predict_labels(model, test) == test.labels))


def retrieval_scores(run, data):
    """Xia et al.'s annotation and retrieval accuracy of a retrieval run on `data`'s test rows,
    as `evaluate_retrieval` plays it: {"test": annotation, "test_retrieval": retrieval}."""
    from mmdigits_keras.evaluation import evaluate_retrieval

    scores = evaluate_retrieval(run, data, split="test")["metrics"]
    return {"test": scores["annotation_accuracy"], "test_retrieval": scores["retrieval_accuracy"]}


def TestScores(test, *, every_epoch=False, retrieval=False):  # a Keras callback's class, made late
    """A Keras callback scoring the model on `test` (a dataset with labels): after every epoch
    (`every_epoch`; the scoring time is kept off its clock: ``records`` of epoch, seconds since
    the process started, accuracy), or once, when the first `fit` ends (EarlyStopping, earlier
    in the list, has restored the best epoch by then): inside a fine-tuning run, the validated
    model a single run would save (``scores``, and ``ended``: `time.perf_counter` then).
    Retrieval: Xia et al.'s annotation and retrieval accuracy of the towers."""
    import keras
    import psutil

    from mmdigits_keras.training import predict_labels
    from mmdigits_keras.training.retrieval_protocol import protocol_accuracy

    def score(model):
        if not retrieval:
            return {"test": float(np.mean(predict_labels(model, test) == test.labels))}
        pairs = model.predict(test.inputs(), batch_size=512, verbose=0)
        images, audio = np.split(np.asarray(pairs, np.float32), 2, axis=1)
        found = protocol_accuracy(images @ audio.T, test.labels)
        return {"test": found["annotation_accuracy"], "test_retrieval": found["retrieval_accuracy"]}

    class Scores(keras.callbacks.Callback):
        born, paused, records, scores, ended = psutil.Process().create_time(), 0.0, [], None, None

        def on_epoch_end(self, epoch, logs=None):
            if every_epoch:
                stop = time.time()
                self.records.append({"epoch": epoch + 1, "seconds": stop - self.born - self.paused,
                                     **score(self.model)})
                self.paused += time.time() - stop

        def on_train_end(self, logs=None):
            if not every_epoch and self.scores is None:
                self.ended, self.scores = time.perf_counter(), score(self.model)

    return Scores()


def median_seconds(run, repeats=3):
    """Median seconds of `repeats` calls of `run`, after a warm-up call (tracing, compiling,
    tf.data's autotuning) when `repeats` > 1; 1 is a smoke run: one call, compiling included."""
    if repeats > 1:
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


PLACEMENTS = ("device", "host", "none")


def throughput(prepared, recipe, *, model="hybrid_cnn", placements=PLACEMENTS, repeats=3, precision="float32"):
    """Training samples per second on `PreparedData` with the recipe's augmentation on the
    device (inside the training step), on the host (an input pipeline: `tf.data` on TensorFlow,
    `HostBatches` elsewhere) and with none, and of the host pipeline alone: {stage: samples/s},
    each the median of `repeats` `fit` epochs (`median_seconds`) under the dtype policy
    `precision` (``float32`` or ``mixed_bfloat16``)."""
    import keras

    from mmdigits_keras.training import classification_spec, compile_model
    from mmdigits_keras.training.fitting import build_training_state
    from mmdigits_keras.training.fused import fused_batch_normalization
    from mmdigits_keras.training.placement import training_inputs

    samples, rates = len(prepared.train), {}
    keras.mixed_precision.set_global_policy(precision)
    try:
        for placement in placements:
            plan = recipe if placement != "none" else dataclasses.replace(recipe, augment=False)
            net, _ = classification_spec(model, plan, None).build(prepared)
            compile_model(net, plan, learning_rate=1e-3)
            trainer, data = training_inputs(net, prepared.train, plan, seed=0,
                                            augment_on=None if placement == "none" else placement)
            build_training_state(trainer, prepared.train, plan)
            # One context around every epoch, as `fit_model` wraps its one `fit`: leaving it drops
            # the traced step, and a context per epoch would time a retrace every epoch.
            with fused_batch_normalization(trainer):
                rates[f"fit, augmentation {'on the ' + placement if placement != 'none' else 'none'}"] = (
                    samples / median_seconds(lambda: trainer.fit(**data, epochs=1, verbose=0), repeats))
            if placement == "host":
                batches = data["x"]  # a tf.data.Dataset, or a PyDataset (HostBatches)
                each = (lambda: (batches[i] for i in range(len(batches)))) if isinstance(
                    batches, keras.utils.PyDataset) else (lambda: batches)
                rates["host pipeline alone"] = samples / median_seconds(lambda: [None for _ in each()], repeats)
            keras.backend.clear_session()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return rates


def record(path, make):
    """The JSON record at `path`, made by `make()` (a dict) and written unless it exists."""
    if path.is_file():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    result = make()
    path.write_text(json.dumps(result))
    return result


def in_child(script, arguments, *, env=None):
    """Runs ``python script --child ARGUMENTS`` (a fresh process: its own peak memory, its own
    backend) and returns the JSON record it prints on its last line, with ``wall_seconds`` from
    the start of the process to the record."""
    started = time.time()
    done = subprocess.run([sys.executable, str(script), "--child", *map(str, arguments)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})})
    if done.returncode:
        raise SystemExit(f"{script} --child {' '.join(map(str, arguments))} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "wall_seconds": result.pop("done_at", time.time()) - started}


def paired_table(table, rows, speakers, seeds, *, key="test", baseline=None, title=""):
    """Prints the Markdown comparison of `rows` on `key`: the mean over seeds per rotation, the
    mean of rotations as mean +/- sd over seeds, the difference from `baseline` (default the
    first row) paired by rotation and seed (mean +/- sd, and on how many it is ahead), per seed,
    the validation mean and the seconds per run (and as a ratio of the baseline's).
    `table[row, seed, speaker]` is a record with `key`, ``val`` and ``seconds``.
    Returns {row: (mean, sd over seeds)}."""
    baseline = baseline or rows[0]
    sd = lambda values: float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    base_seconds = np.mean([table[baseline, s, r]["seconds"] for s in seeds for r in speakers])
    print(f"\n### {title}\n\n| set-up | " + " | ".join(speakers) + " | mean +/- sd over seeds | "
          f"vs {baseline}, paired | ahead | per seed | validation | s per run | x {baseline} |")
    print("|---|" + "---|" * (len(speakers) + 7))
    summary = {}
    for row in rows:
        per_seed = [np.mean([table[row, s, r][key] for r in speakers]) for s in seeds]
        summary[row] = (float(np.mean(per_seed)), sd(per_seed))
        diffs = [table[row, s, r][key] - table[baseline, s, r][key] for s in seeds for r in speakers]
        by_seed = [np.mean([table[row, s, r][key] - table[baseline, s, r][key] for r in speakers]) for s in seeds]
        versus = "" if row == baseline else f"{np.mean(diffs):+.4f} +/- {sd(diffs):.4f}"
        ahead = "" if row == baseline else f"{sum(d > 0 for d in diffs)} of {len(diffs)}"
        seconds = np.mean([table[row, s, r]["seconds"] for s in seeds for r in speakers])
        vals = [table[row, s, r].get("val") for s in seeds for r in speakers]
        val = "-" if None in vals else f"{np.mean(vals):.4f}"
        print(f"| {row} | " + " | ".join(f"{np.mean([table[row, s, r][key] for s in seeds]):.4f}" for r in speakers)
              + f" | {summary[row][0]:.4f} +/- {summary[row][1]:.4f} | {versus} | {ahead} | "
              + ("" if row == baseline else " / ".join(f"{d:+.4f}" for d in by_seed))
              + f" | {val} | {seconds:.0f} | {seconds / base_seconds:.2f} |")
    return summary
