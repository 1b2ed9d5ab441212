"""Time to accuracy (DAWNBench's metric): the default `mmdigits train` against a plain-Keras peer.

For each speaker-disjoint FSDD rotation (the robustness benchmark's data sets: three speakers'
recordings with 4,000 MNIST images for training, the fourth speaker with the other 1,000 for
test), two contenders each run in a fresh process:

- ``peer``: Nippani Ravi's Model 2 as a student writes it — `build_model(depth=2)`, Adam, sparse
  cross-entropy, batch 32, 10 epochs, ``validation_split=0.2``, numpy arrays;
- ``default``: `train(data, out=...)` with every default (`hybrid_cnn`, the default recipe, up
  to 30 epochs, early stopping).

The clock starts when the process starts (interpreter start-up, imports, data loading and model
build included). At the end of every epoch a callback scores the held-out speaker's test rows;
the time it takes is taken off the clock. Reported: the peer's final accuracy and wall time;
the seconds until the default first reaches (a) the peer's final accuracy and (b) 0.99; the
default's accuracy at the last epoch that ended within the peer's wall time.

    .venv/bin/python benchmarks/bench_time_to_accuracy.py --work /tmp/robust [--speakers george ...]
        [--recipe swap4_rsv --epochs 12 --reuse-peer]

``--work`` is `bench_robust.py`'s folder (its ``data/rot-<speaker>`` sets are built when missing).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEAKERS = ("george", "jackson", "lucas", "nicolas")


def child(contender, data, log, recipe="default", epochs=None):
    """Trains one contender on `data`, scoring its test rows after every epoch, into `log`."""
    import keras
    import psutil

    from mmdigits_keras.data import load_dataset
    from mmdigits_keras.models import build_model
    from mmdigits_keras.training import train

    born = psutil.Process().create_time()
    test = load_dataset(data, "test")
    records, paused = [], [0.0]

    class ScoreTestRows(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            stop = time.time()
            probabilities = self.model.predict(test.inputs(), batch_size=512, verbose=0)
            accuracy = float(np.mean(probabilities.argmax(1) == test.labels))
            records.append({"epoch": epoch + 1, "seconds": stop - born - paused[0], "accuracy": accuracy})
            paused[0] += time.time() - stop

    if contender == "peer":
        train_part = load_dataset(data, "train")
        model = build_model(depth=2)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(train_part.inputs(), train_part.labels, batch_size=32, epochs=10, validation_split=0.2,
                  callbacks=[ScoreTestRows()], verbose=2)
    else:
        with tempfile.TemporaryDirectory() as folder:
            from bench_robust import recipe_named  # a lever combination can be timed before it becomes a default

            train(data, out=Path(folder) / "run", recipe=recipe_named(recipe), **({"epochs": int(epochs)} if epochs else {}),
                  callbacks=[ScoreTestRows()], verbose=2)
    Path(log).write_text(json.dumps({"records": records, "seconds": time.time() - born - paused[0]}))


def first_time(records, accuracy):
    return next((r["seconds"] for r in records if r["accuracy"] >= accuracy), None)


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="bench_robust.py's folder (data sets reused)")
    parser.add_argument("--speakers", nargs="+", default=list(SPEAKERS))
    parser.add_argument("--recipe", default="default", help="the default contender's recipe (a lever of "
                        "bench_robust.py's LEVERS to time one before it becomes the default)")
    parser.add_argument("--epochs", type=int, help="the default contender's epochs (default: train's)")
    parser.add_argument("--reuse-peer", action="store_true", help="reuse the peer's logs of an earlier invocation")
    parser.add_argument("--child", nargs=3, metavar=("CONTENDER", "DATA", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.child:
        return child(*args.child, recipe=args.recipe, epochs=args.epochs)

    from bench_robust import build

    results = {}
    for speaker in args.speakers:
        data = build(f"rot-{speaker}", args.work, shared, audio=shared / "fsdd" / "recordings",
                     test_speakers=[speaker])
        for contender in ("peer", "default"):
            name = contender if contender == "peer" or args.recipe == "default" else f"{args.recipe}{args.epochs or ''}"
            log = args.work / f"time_to_accuracy-{speaker}-{name}.json"
            if not (contender == "peer" and args.reuse_peer and log.exists()):
                subprocess.run([sys.executable, __file__, "--work", str(args.work), "--recipe", args.recipe,
                                *(["--epochs", str(args.epochs)] if args.epochs else []), "--child", contender,
                                str(data), str(log)], check=True)
            results[(speaker, contender)] = json.loads(log.read_text())
            run = results[(speaker, contender)]
            print(f"{speaker} {contender}: {run['records'][-1]['accuracy']:.4f} after {len(run['records'])} epochs, "
                  f"{run['seconds']:.0f} s", flush=True)

    print("\n| held-out speaker | peer: final accuracy, wall s | default: s to peer's accuracy | ratio to peer's "
          "wall time | default: s to 0.99 | default: accuracy within peer's wall time | default: final "
          "accuracy, wall s |")
    print("|---|---|---|---|---|---|---|")
    for speaker in args.speakers:
        peer, default = results[(speaker, "peer")], results[(speaker, "default")]
        target = peer["records"][-1]["accuracy"]
        reach = first_time(default["records"], target)
        reach99 = first_time(default["records"], 0.99)
        within = [r["accuracy"] for r in default["records"] if r["seconds"] <= peer["seconds"]]
        cells = [f"{target:.4f}, {peer['seconds']:.0f}",
                 "not reached" if reach is None else f"{reach:.0f}",
                 "-" if reach is None else f"{reach / peer['seconds']:.2f}",
                 "not reached" if reach99 is None else f"{reach99:.0f}",
                 "-" if not within else f"{within[-1]:.4f}",
                 f"{default['records'][-1]['accuracy']:.4f}, {default['seconds']:.0f}"]
        print(f"| {speaker} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
