"""Accuracy on speakers never heard: model x recipe x held-out FSDD speaker, and kaggle_sample.

Protocol: for each of the four FSDD speakers, `mmdigits data build` pairs the other three
speakers' recordings with 4,000 MNIST images (training) and the held-out speaker's with the
other 1,000 images (test; images disjoint from training). Model 2 is trained with the ``plain``
and the ``default`` recipe; the image-only (``image_cnn``) and audio-only (``audio_cnn``)
models with the plain recipe are the references. Then Model 2 with each recipe on
``kaggle_sample`` (its test labels are MNIST test images 4000-4999). Prints Markdown tables.

    .venv/bin/python benchmarks/bench_accuracy.py [--epochs 30] [--speakers george ...]

Targets (issue): default-recipe Model 2 >= 0.995 mean fused accuracy over the rotations, above
the image-only model in every rotation, and >= 0.99 on kaggle_sample's test part.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUNS = [("model2", "plain"), ("model2", "default"), ("image_cnn", "plain"), ("audio_cnn", "plain")]


def score(run, data, labels=None):
    from mmdigits_keras.data import load_dataset
    from mmdigits_keras.training import classification_metrics, load_trained_model, predict_labels

    test = load_dataset(data, "test")
    truth = test.labels if labels is None else labels
    return classification_metrics(truth, predict_labels(load_trained_model(run), test))


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--speakers", nargs="+", default=["george", "jackson", "lucas", "nicolas"])
    parser.add_argument("--runs", nargs="+", default=[f"{m}:{r}" for m, r in RUNS],
                        help="model:recipe pairs to train (default: all four)")
    args = parser.parse_args()
    runs = [tuple(item.split(":")) for item in args.runs]

    from mmdigits_keras.data import build_dataset
    from mmdigits_keras.training import train

    results, started = {}, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for speaker in args.speakers:
            data = build_dataset(audio=args.data / "fsdd" / "recordings", audio_format="fsdd",
                                 images=args.data / "mnist_t10k_first5000.npz", out=tmp / f"data_{speaker}",
                                 test_speakers=[speaker], seed=0, verbose=0)
            for model, recipe in runs:
                run = train(data, out=tmp / f"{speaker}_{model}_{recipe}", model=model, recipe=recipe,
                            epochs=args.epochs, seed=0, verbose=0)
                results[(model, recipe, speaker)] = score(run, data)
                print(f"{speaker:8s} {model:10s} {recipe:8s} accuracy {results[(model, recipe, speaker)]['accuracy']:.4f}",
                      flush=True)
        with np.load(args.data / "mnist_t10k_first5000.npz", allow_pickle=False) as mnist:
            kaggle_labels = mnist["y"][4000:5000].astype(np.int64)
        kaggle = {}
        for recipe in sorted({r for m, r in runs if m == "model2"}):
            run = train(args.data / "kaggle_sample", out=tmp / f"kaggle_{recipe}", model="model2", recipe=recipe,
                        epochs=args.epochs, seed=0, verbose=0)
            kaggle[recipe] = score(run, args.data / "kaggle_sample", kaggle_labels)
            print(f"kaggle_sample model2 {recipe:8s} accuracy {kaggle[recipe]['accuracy']:.4f}", flush=True)

    print(f"\n{time.perf_counter() - started:.0f} s. Test accuracy / macro-F1 on the held-out speaker "
          f"(training: the other three speakers, 4,000 rows; test: 1,000 rows, other images)\n")
    print("| model | recipe | " + " | ".join(args.speakers) + " | mean accuracy |")
    print("|---|---|" + "---|" * (len(args.speakers) + 1))
    for model, recipe in runs:
        cells = [results[(model, recipe, s)] for s in args.speakers]
        print(f"| {model} | {recipe} | " + " | ".join(f"{c['accuracy']:.3f} / {c['macro_f1']:.3f}" for c in cells)
              + f" | **{np.mean([c['accuracy'] for c in cells]):.4f}** |")
    print("\n| kaggle_sample test (speaker absent from training) | accuracy | macro-F1 |\n|---|---|---|")
    for recipe, c in kaggle.items():
        print(f"| model2, {recipe} | {c['accuracy']:.4f} | {c['macro_f1']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
