"""Speed and memory: the default `train` against the plain-Keras peer, per Keras backend, each
run the way a user runs it, in a fresh process with ``KERAS_BACKEND`` set.

- ``peer``: Nippani Ravi's Model 2 as a student writes it -- `build_model(depth=2)`, Adam,
  sparse cross-entropy, batch 32, 10 epochs, ``validation_split=0.2``, numpy arrays; saved;
- ``default``: `train(data, out=...)` with every default (`hybrid_cnn`, the default recipe,
  early stopping, fine-tuning on every row), or ``--model`` / ``--epochs`` / ``--augment-on``.

Data: ``kaggle_sample`` (its two unheard speakers, labels from MNIST), ``rot-<speaker>`` (a
speaker-disjoint FSDD rotation) or ``random-<rows>`` (a course-size folder of random values,
float64 as the course's files: for memory, not accuracy). Reported per backend, data set,
contender and seed: wall seconds from the process's start to its saved model (interpreter,
imports, data, training, writing), test accuracy, epochs, seconds per epoch (after the first,
which traces and compiles) and peak RSS. ``--per-epoch`` also scores the test rows after every
epoch (the scoring kept off the clock) and prints time to accuracy (DAWNBench's metric): when
the default first reaches the peer's final accuracy, and 0.99. Records go to ``--work`` and are
reused (``--fresh`` reruns them).

    .venv/bin/python benchmarks/bench_speed.py --work W --backends tensorflow jax torch --data kaggle_sample
    .venv/bin/python benchmarks/bench_speed.py --work W --backends tensorflow --data rot-george rot-nicolas --per-epoch
    .venv/bin/python benchmarks/bench_speed.py --work W --backends tensorflow --data random-60000 --contenders default \
        --model model2 --epochs 1
"""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness


def child(contender, data, seed, options):
    """Trains one contender in this process; prints its record (JSON) on the last line."""
    import keras

    from mmdigits_keras.data import load_dataset
    from mmdigits_keras.models import build_model
    from mmdigits_keras.training import load_trained_model, train

    data, seed, options = Path(data), int(seed), json.loads(options)
    scores = harness.TestScores(harness.test_rows(data), every_epoch=True) if options.pop("per_epoch") else None
    epochs = []

    class EpochSeconds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # before the scoring callback: its time is not counted
            epochs.append(time.perf_counter() - self.started)

    callbacks = [EpochSeconds(), *([scores] if scores else [])]
    with tempfile.TemporaryDirectory() as folder:
        if contender == "peer":
            keras.utils.set_random_seed(seed)
            part = load_dataset(data, "train")
            model = build_model(depth=2)
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(part.inputs(), part.labels, batch_size=32, epochs=10, validation_split=0.2, verbose=0,
                      callbacks=callbacks)
            model.save(Path(folder) / "model.keras")
        else:
            model = Path(train(data, out=Path(folder) / "run", seed=seed, verbose=0, callbacks=callbacks, **options))
        done_at = time.time() - (scores.paused if scores else 0.0)
        # The validated run's epochs, as `train` reports them (fine-tuning's come on top in `epoch_seconds`).
        validated = len(epochs) if contender == "peer" else json.loads((model / "metrics.json").read_text())["epochs"]
        accuracy = harness.test_accuracy(model if contender == "peer" else load_trained_model(model), data)
    print(json.dumps({"accuracy": accuracy, "epochs": validated, "epochs_run": len(epochs), "done_at": done_at,
                      "epoch_seconds": statistics.mean(epochs[1:] or epochs), "peak_rss_mib": harness.peak_rss_mib(),
                      "records": scores.records if scores else []}))


def data_folder(name, args):
    if name == "kaggle_sample":
        return args.shared / "kaggle_sample"
    if name.startswith("random-"):
        rows = int(name.removeprefix("random-"))
        return harness.random_course_folder(args.work / "data" / name, rows, rows // 6)
    return harness.rotation(args.work, args.shared, name.removeprefix("rot-"))


def measure(args, backend, name, contender, seed):
    """One contender's record, run in a fresh process (or reused from an earlier call)."""
    options = {} if contender == "peer" else {k: v for k, v in (("model", args.model), ("epochs", args.epochs),
                                                                   ("augment_on", args.augment_on)) if v}
    tag = "".join(f"-{v}" for v in options.values()) + ("-per-epoch" if args.per_epoch else "")
    path = args.work / "speed" / f"{backend}-{name}-{contender}{tag}-seed{seed}.json"
    if args.fresh:
        path.unlink(missing_ok=True)
    arguments = [contender, data_folder(name, args), seed, json.dumps({**options, "per_epoch": args.per_epoch})]
    return harness.record(path, lambda: harness.in_child(__file__, arguments, env={"KERAS_BACKEND": backend}))


def time_to_accuracy(rows):
    """The time-to-accuracy table of the module docstring, per backend, data set and seed."""
    print("\n| backend | data | seed | peer: final accuracy, wall s | default: s to the peer's accuracy | x the peer's "
          "wall | default: s to 0.99 | default: accuracy within the peer's wall | default: final accuracy, wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (backend, name, seed), pair in rows.items():
        peer, default = pair["peer"], pair["default"]
        target = peer["records"][-1]["test"]
        reach = next((r["seconds"] for r in default["records"] if r["test"] >= target), None)
        reach99 = next((r["seconds"] for r in default["records"] if r["test"] >= 0.99), None)
        within = [r["test"] for r in default["records"] if r["seconds"] <= peer["wall_seconds"]]
        cells = ["not reached" if reach is None else f"{reach:.0f}",
                 "-" if reach is None else f"{reach / peer['wall_seconds']:.2f}",
                 "not reached" if reach99 is None else f"{reach99:.0f}", f"{within[-1]:.4f}" if within else "-"]
        print(f"| {backend} | {name} | {seed} | {target:.4f}, {peer['wall_seconds']:.0f} | " + " | ".join(cells)
              + f" | {default['records'][-1]['test']:.4f}, {default['wall_seconds']:.0f} |")


def main():
    if sys.argv[1:2] == ["--child"]:  # a run in its own process (`harness.in_child`)
        return child(*sys.argv[2:])
    parser = harness.arguments(__doc__, seeds=(0,))
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--data", nargs="+", default=["kaggle_sample"], help="kaggle_sample, rot-<speaker>, random-<rows>")
    parser.add_argument("--contenders", nargs="+", default=["peer", "default"], choices=["peer", "default"])
    parser.add_argument("--model", help="the default contender's model (default: train's)")
    parser.add_argument("--epochs", type=int, help="the default contender's maximum epochs (default: train's)")
    parser.add_argument("--augment-on", choices=["device", "host"], help="the default's placement (default: its own)")
    parser.add_argument("--per-epoch", action="store_true", help="score the test rows after every epoch")
    parser.add_argument("--fresh", action="store_true", help="rerun records found in --work")
    args = parser.parse_args()
    runs, pairs = [], {}
    for backend in args.backends:
        for name in args.data:
            for contender in args.contenders:
                for seed in args.seeds:
                    result = measure(args, backend, name, contender, seed)
                    runs.append(((backend, name, contender), result))
                    pairs.setdefault((backend, name, seed), {})[contender] = result
                    print(f"{backend} {name} {contender} seed {seed}: {result['accuracy']:.4f}, {result['epochs']} "
                          f"epochs, {result['wall_seconds']:.0f} s", flush=True)
    print("\n| backend | data | contender | test accuracy | wall s to the saved model | s per epoch | epochs "
          "| peak RSS MiB | runs |\n|---|---|---|---|---|---|---|---|---|")
    for key in dict.fromkeys(k for k, _ in runs):
        found = [r for k, r in runs if k == key]
        mean = lambda field: statistics.mean(r[field] for r in found)
        spread = f" ± {statistics.stdev(r['accuracy'] for r in found):.4f}" if len(found) > 1 else ""
        print(f"| {' | '.join(key)} | {mean('accuracy'):.4f}{spread} | {mean('wall_seconds'):.0f} | "
              f"{mean('epoch_seconds'):.1f} | {mean('epochs'):.1f} | {max(r['peak_rss_mib'] for r in found):,.0f} | "
              f"{len(found)} |")
    if args.per_epoch:
        time_to_accuracy({key: pair for key, pair in pairs.items() if set(pair) == {"peer", "default"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
