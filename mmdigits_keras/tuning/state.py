"""A search folder's state and its resumption: keras-tuner's state files backed up after each
trial and mended after a kill (`repair_search_state`), the record of a search's settings
(``search.json``) that a rerun must match to resume it, and clearing a folder for a new search."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from mmdigits_keras.training.logs import LOGS_DIR
from mmdigits_keras.utils.defaults import PATIENCE
from mmdigits_keras.utils.files import atomic_write, read_json

logger = logging.getLogger("mmdigits_keras")

PROJECT_NAME = "keras_tuner"
SEARCH_FILE = "search.json"


BACKUP_SUFFIX = ".last-good"


def backup_search_state(project_dir):
    """Copies keras-tuner's state files (``oracle.json``, ``<tuner_id>.json``) aside, atomically."""
    for path in Path(project_dir).glob("*.json"):
        atomic_write(path.with_name(path.name + BACKUP_SUFFIX), lambda tmp, src=path: shutil.copyfile(src, tmp))


def repair_search_state(project_dir):
    """Mends keras-tuner state files cut off by a kill: keras-tuner writes ``oracle.json`` in
    place, so a kill -9 during that write leaves a file that cannot be reloaded. Such a file is
    replaced by its copy from the end of the previous trial (`backup_search_state`); without a
    copy, the whole state is removed and the search starts over (its trial folders are reused).

    Returns:
        The names of the files mended (empty when all were whole).
    """
    project_dir = Path(project_dir)
    mended = []
    for path in sorted(project_dir.glob("*.json")):
        try:
            json.loads(path.read_text())
            continue
        except ValueError:
            mended.append(path.name)
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if backup.is_file():
            shutil.copyfile(backup, path)
            logger.warning("%s: cut off by an interrupted run; restored its state from the last finished trial", path)
        else:
            for state in project_dir.glob("*.json"):
                state.unlink()
            logger.warning("%s: cut off by an interrupted run and no earlier copy; starting the search over", path)
            break
    return mended


def search_record(*, data, model, recipe, kind, objective, epochs, seed, space, val_fraction, split, fingerprint,
                   folds=None, patience=PATIENCE):
    """The settings a search is resumed only with (``search.json``): model, recipe, tuner kind,
    objective, epochs, seed, space, validation fraction and split, the data folder (absolute)
    and its SHA-256 `fingerprint`, and `folds` and the trials' early-stopping `patience` when
    they are not the defaults.

    Returns:
        A JSON-ready dict.
    """
    # `folds` and `patience` only when not the defaults: searches written before they could be
    # set still resume.
    return {"model": model, "recipe": recipe, "tuner": kind, "objective": objective, "epochs": int(epochs),
            "seed": int(seed), "val_fraction": float(val_fraction), "split": split, "space": space,
            "data": str(Path(data).resolve()), "data_fingerprint": fingerprint,
            **({"folds": int(folds)} if folds else {}),
            **({"patience": int(patience)} if patience != PATIENCE else {})}


def check_resume(out, record, *, overwrite):
    """Whether `out` holds a search to resume with `record` (`search_record`).

    Returns:
        True when ``out/search.json`` exists and matches `record` (the data folder's path may
        differ, its fingerprint may not); False when there is none or `overwrite` is set.

    Raises:
        ValueError: `out` holds a search with other data, space or settings (names them).
    """
    path = out / SEARCH_FILE
    if overwrite or not path.exists():
        return False
    previous = read_json(path)
    # "data" (the folder's path) may move; its fingerprint decides.
    differences = [k for k in record if k != "data" and previous.get(k) != record[k]]
    if differences:
        what = ", ".join("data (fingerprint)" if k == "data_fingerprint" else k for k in differences)
        raise ValueError(f"{out}: holds a search with a different {what}; use another --out, "
                         f"or --overwrite to start over")
    return True


def clear_search(out):
    """Deletes what a search wrote in folder `out` (keras-tuner project, ``best/``, logs,
    leaderboard, plot, settings), for ``--overwrite``; other files in `out` stay."""
    for name in (PROJECT_NAME, "best", ".best.staging", LOGS_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (SEARCH_FILE, "leaderboard.csv", "scores.png", "best_hyperparameters.json", "best_ensemble.json"):
        (out / name).unlink(missing_ok=True)
