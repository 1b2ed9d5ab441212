"""Speed on this CPU, per Keras backend: the default `train` against the plain-Keras peer, both
run the way a user runs them, in a fresh process with ``KERAS_BACKEND`` set.

- ``peer``: the course report's Model 2 as a student writes it -- `build_model(depth=2)`, Adam,
  sparse cross-entropy, batch 32, 10 epochs, ``validation_split=0.2``, numpy arrays; saved;
- ``default``: `train(data, out=...)` with every default (`hybrid_cnn`, the default recipe,
  early stopping, fine-tuning on every row; the augmentation where the backend's default puts
  it, or ``--augment-on``).

Reported per backend, data set and seed: wall seconds from the process's start to its saved
model (interpreter, imports, data, training, writing), accuracy on the data set's test rows
(speakers never heard in training: ``kaggle_sample``'s two, labels from MNIST; a rotation's
held-out speaker), and the default's epochs. Records go to ``--work`` and are reused (``--fresh``
reruns them).

    .venv/bin/python benchmarks/bench_backends.py --work W [--backends tensorflow jax torch]
        [--data kaggle_sample rot-george ...] [--seeds 0 1 2] [--contenders peer default]
        [--augment-on device]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEAKERS = ("george", "jackson", "lucas", "nicolas")


def test_labels(data, shared):
    """The test rows' labels: the data set's own, or kaggle_sample's from MNIST (rows 4000..4999)."""
    from mmdigits_keras.data import load_dataset

    test = load_dataset(data, "test")
    if test.labels is not None:
        return test, test.labels
    with np.load(shared / "mnist_t10k_first5000.npz", allow_pickle=False) as mnist:
        return test, mnist["y"][4000:5000].astype(np.int64)


def child(contender, data, record, *, seed, augment_on, shared):
    """Trains one contender in this process and writes its record (accuracy, epochs)."""
    import keras

    from mmdigits_keras.data import load_dataset
    from mmdigits_keras.models import build_model
    from mmdigits_keras.training import load_trained_model, train

    with tempfile.TemporaryDirectory() as folder:
        if contender == "peer":
            keras.utils.set_random_seed(seed)
            part = load_dataset(data, "train")
            model = build_model(depth=2)
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            history = model.fit(part.inputs(), part.labels, batch_size=32, epochs=10, validation_split=0.2, verbose=0)
            model.save(Path(folder) / "model.keras")
            epochs = len(history.history["loss"])
        else:
            placement = {"augment_on": augment_on} if augment_on else {}  # (a commit before the option: none)
            run = train(data, out=Path(folder) / "run", seed=seed, verbose=0, **placement)
            model = load_trained_model(run)
            epochs = json.loads((run / "metrics.json").read_text())["epochs"]
        trained = time.time()
        test, labels = test_labels(data, shared)
        accuracy = float(np.mean(model.predict(test.inputs(), batch_size=512, verbose=0).argmax(1) == labels))
    Path(record).write_text(json.dumps({"accuracy": accuracy, "epochs": epochs, "trained": trained}))


def data_folder(name, work, shared):
    if name == "kaggle_sample":
        return shared / "kaggle_sample"
    from bench_robust import build

    speaker = name.removeprefix("rot-")
    return build(name, work, shared, audio=shared / "fsdd" / "recordings", test_speakers=[speaker])


def measure(args, shared, backend, name, contender, seed):
    """One contender's record, run in a fresh process (or reused from an earlier call)."""
    suffix = f"-{args.augment_on}" if contender == "default" and args.augment_on else ""
    record = args.work / "backends" / f"{backend}-{name}-{contender}{suffix}-seed{seed}.json"
    if record.exists() and not args.fresh:
        return json.loads(record.read_text())
    record.parent.mkdir(parents=True, exist_ok=True)
    data = data_folder(name, args.work, shared)
    env = {**os.environ, "KERAS_BACKEND": backend}
    started = time.time()
    subprocess.run([sys.executable, __file__, "--work", str(args.work), "--child", contender, str(data), str(record),
                    "--seeds", str(seed), *(["--augment-on", args.augment_on] if args.augment_on else [])],
                   check=True, env=env)
    result = {**json.loads(record.read_text()), "backend": backend, "data": name, "contender": contender,
              "seed": seed, "augment_on": args.augment_on}
    result["seconds"] = result.pop("trained") - started
    record.write_text(json.dumps(result))
    return result


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="records and rotation data sets (reused)")
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--data", nargs="+", default=["kaggle_sample"],
                        help="kaggle_sample and/or rot-<speaker> (FSDD rotations: " + ", ".join(SPEAKERS) + ")")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--contenders", nargs="+", default=["peer", "default"], choices=["peer", "default"])
    parser.add_argument("--augment-on", choices=["device", "host"], help="the default's placement (default: its own)")
    parser.add_argument("--fresh", action="store_true", help="rerun records found in --work")
    parser.add_argument("--child", nargs=3, metavar=("CONTENDER", "DATA", "RECORD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.child:
        return child(*args.child, seed=args.seeds[0], augment_on=args.augment_on, shared=shared)

    rows = []
    for backend in args.backends:
        for name in args.data:
            for contender in args.contenders:
                for seed in args.seeds:
                    result = measure(args, shared, backend, name, contender, seed)
                    rows.append(result)
                    print(f"{backend} {name} {contender} seed {seed}: {result['accuracy']:.4f}, {result['epochs']} "
                          f"epochs, {result['seconds']:.0f} s", flush=True)
    print("\n| backend | data | contender | test accuracy | wall s to the saved model | epochs | runs |")
    print("|---|---|---|---|---|---|---|")
    for backend in args.backends:
        for name in args.data:
            for contender in args.contenders:
                runs = [r for r in rows if (r["backend"], r["data"], r["contender"]) == (backend, name, contender)]
                accuracy = [r["accuracy"] for r in runs]
                seconds = [r["seconds"] for r in runs]
                spread = f" ± {statistics.stdev(accuracy):.4f}" if len(runs) > 1 else ""
                print(f"| {backend} | {name} | {contender} | {statistics.mean(accuracy):.4f}{spread} | "
                      f"{statistics.mean(seconds):.0f} | {statistics.mean(r['epochs'] for r in runs):.1f} | "
                      f"{len(runs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
