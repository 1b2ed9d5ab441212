"""Write a Kaggle submission from a run directory: a thin wrapper over `mmdigits submit`.

    python submissions/make_submission.py --model runs/m2 --data DATA_DIR --out submissions/m2.csv
"""

import sys

from mmdigits_keras.cli import main

if __name__ == "__main__":
    sys.exit(main(["submit", *sys.argv[1:]]))
