"""Pragadaraju and Shah on real recordings: audio-only CNN and LSTM on MFCC and log-mel, speaker-disjoint.

Trains Tseng's AudioNet_CNN (2-D convolutions over the 39-frame feature map) and
AudioNet_LSTM (recurrent) on three FSDD speakers and tests on the fourth, for all four
rotations, with both feature kinds (`mfcc_507`: 39 x 13; log-mel: 39 x 40). Prints a Markdown
table (per held-out speaker and mean). Pragadaraju and Shah report CNN 88% and RNN 69% on a random split
that shares speakers between training and test (AudioMNIST, spectrogram images).

    .venv/bin/python benchmarks/bench_audio.py [--data ../shared/data] [--epochs 30]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load_fsdd(folder, kind):
    from mmdigits_keras.data.features import speech_features
    from mmdigits_keras.data.sources import find_recordings, read_wav

    recordings, skipped = find_recordings(folder, "fsdd")
    if skipped:
        raise SystemExit(f"unexpected unparseable files: {skipped[:3]}")
    features = np.stack([speech_features(*read_wav(r["path"]), kind).reshape(-1) for r in recordings])
    digits = np.array([r["digit"] for r in recordings])
    speakers = np.array([r["speaker"] for r in recordings])
    return features.astype(np.float32), digits, speakers


def dataset(features, labels):
    from mmdigits_keras.data import MultimodalDataset

    n = len(labels)
    return MultimodalDataset(images=np.zeros((n, 28, 28, 1), np.float32), audio=features,
                             labels=labels.astype(np.int64), ids=np.arange(n), source="FSDD (audio only)")


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--models", nargs="+", default=["audio_cnn", "audio_lstm"])
    parser.add_argument("--features", nargs="+", default=["mfcc", "logmel"])
    args = parser.parse_args()

    from mmdigits_keras.training import classification_metrics, load_trained_model, predict_labels, train

    results = {}
    started = time.perf_counter()
    for kind in args.features:
        features, digits, speakers = load_fsdd(args.data / "fsdd" / "recordings", kind)
        for held_out in sorted(set(speakers)):
            train_rows, test_rows = speakers != held_out, speakers == held_out
            for model in args.models:
                with tempfile.TemporaryDirectory() as tmp:
                    run = train(dataset(features[train_rows], digits[train_rows]), out=Path(tmp) / "run",
                                model=model, epochs=args.epochs, batch_size=32, val_fraction=0.15, seed=0,
                                verbose=0)
                    test = dataset(features[test_rows], digits[test_rows])
                    scores = classification_metrics(test.labels, predict_labels(load_trained_model(run), test))
                results[(model, kind, held_out)] = scores["accuracy"]
                print(f"{model:10s} {kind:6s} held out {held_out:8s} accuracy {scores['accuracy']:.3f}", flush=True)
    held = sorted({k[2] for k in results})
    print(f"\n{len(results)} trainings in {time.perf_counter() - started:.0f} s; test accuracy on the held-out "
          f"speaker (train on the other three)\n")
    print("| model | features | " + " | ".join(held) + " | mean |")
    print("|---|---|" + "---|" * (len(held) + 1))
    for model in args.models:
        for kind in args.features:
            row = [results[(model, kind, s)] for s in held]
            print(f"| {model} | {kind} | " + " | ".join(f"{a:.3f}" for a in row) + f" | **{np.mean(row):.3f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
