"""Xia et al. on kaggle_sample: cross-modal retrieval, both losses, from scratch and from a fusion run.

Trains the two towers on ``kaggle_sample``'s training rows (speakers george, jackson, lucas)
with Xia et al.'s max-margin loss and with InfoNCE, from scratch and initialized from a fusion run
of the same model trained with the default recipe (plus per-utterance normalization), then plays
Xia et al.'s protocol (100 trials per class, one candidate per class) on the run's validation rows
(speakers heard in training) and on the test rows (nicolas, never heard; labels = MNIST test
images 4000-4999). Prints a Markdown table beside Xia et al.'s 0.885 / 0.876.

    .venv/bin/python benchmarks/bench_retrieval.py [--data ../shared/data] [--epochs 50] [--model hybrid_cnn]
        [--out runs/bench_retrieval]
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--model", default="hybrid_cnn", help="fusion model giving the towers")
    parser.add_argument("--losses", nargs="+", default=["max_margin", "info_nce"])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_retrieval"))
    args = parser.parse_args()
    started_all = time.perf_counter()

    from mmdigits_keras.evaluation import evaluate_retrieval
    from mmdigits_keras.training import train, train_retrieval

    data = args.data / "kaggle_sample"
    args.out.mkdir(parents=True, exist_ok=True)
    with np.load(args.data / "mnist_t10k_first5000.npz", allow_pickle=False) as mnist:
        truth = mnist["y"][4000:5000].astype(np.int64)
    labels = args.out / "kaggle_sample_test_labels.csv"
    pd.DataFrame({"row_id": np.arange(len(truth)), "label": truth}).to_csv(labels, index=False)

    started = time.perf_counter()
    fusion = train(data, out=args.out / f"fusion_{args.model}", model=args.model, epochs=20, overwrite=True,
                   model_kwargs={"utterance_normalization": True}, verbose=0)
    fusion_seconds = time.perf_counter() - started
    rows = []
    for init in (None, fusion):
        for loss in args.losses:
            name = f"{loss}_{'init' if init else 'scratch'}"
            started = time.perf_counter()
            run = train_retrieval(data, out=args.out / name, loss=loss, model=args.model, init=init,
                                  epochs=args.epochs, overwrite=True, verbose=0)
            seconds = time.perf_counter() - started
            epochs = json.loads((run / "metrics.json").read_text())["epochs"]
            row = {"loss": loss, "towers": f"{args.model} from " + ("scratch" if init is None else "a fusion run"),
                   "epochs": epochs, "seconds": round(seconds)}
            for split in ("validation", "test"):
                m = evaluate_retrieval(run, data, split=split, test_labels=labels)["metrics"]
                row[f"{split} annotation"] = m["annotation_accuracy"]
                row[f"{split} retrieval"] = m["retrieval_accuracy"]
                if split == "test":
                    for direction in ("annotation", "retrieval"):
                        row[f"test {direction} R@1/5/10"] = "/".join(
                            f"{m[f'{direction}_recall@{k}']:.3f}" for k in (1, 5, 10))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\ntotal {time.perf_counter() - started_all:.0f} s; fusion run for init: {args.model}, 20 epochs, "
          f"default recipe + per-utterance normalization, {fusion_seconds:.0f} s\n")
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |")
    print("| max_margin | Xia et al. (TIDIGITS, many more speakers) | | | | | 0.885 | 0.876 | | |")


if __name__ == "__main__":
    main()
