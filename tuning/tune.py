"""Hyperparameter search with keras-tuner: a thin script over `mmdigits_keras.tuning`.

    python tuning/tune.py --data ../shared/data/kaggle_sample --tuner random --max-trials 6 --epochs 5 --out runs/search

Same arguments as `mmdigits tune` (see `--help` and docs/tuning.md).
"""

import sys

from mmdigits_keras.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
