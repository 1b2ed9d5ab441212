"""``best/`` of a finished search: the best configuration (or the top N as an ensemble) trained
by `train` as `mmdigits train` trains, into a normal run directory that appears atomically."""

from __future__ import annotations

import dataclasses
import logging
import math

from mmdigits_keras.training import load_trained_model, predict_labels, prepare_data, train
from mmdigits_keras.training.metrics import classification_metrics
from mmdigits_keras.training.settings import as_options, resolve_protocol
from mmdigits_keras.tuning.space import DEFAULT_LEARNING_RATE, model_hyperparameters, trial_recipe
from mmdigits_keras.utils.files import publish_directory, read_json, write_json

logger = logging.getLogger("mmdigits_keras")


def _train_trial_config(data, out, trial, *, model, recipe, settings, folds=None):
    """Trains one trial's configuration with `train` into `out`, as `mmdigits train` would
    (with `folds`, as ``train(folds=K)`` would: a cross-validation run of K fold models)."""
    values = trial["values"]
    settings = dataclasses.replace(settings, learning_rate=values.get("learning_rate", DEFAULT_LEARNING_RATE))
    return train(data, out=out, model=model, recipe=trial_recipe(recipe, values), **as_options(settings),
                 model_kwargs=model_hyperparameters(values), overwrite=True, folds=folds,
                 extra_config={"tuning": {"trial_id": trial["trial_id"], "score": trial["score"],
                                          "objective": trial["objective"]}})


def announce_export(top, settings, *, trial_epochs, folds=None):
    """Logs, before ``best/`` trains, what it trains and for how long: as long as a `train` run,
    often longer than the whole search of short trials.

    Args:
        top: The trials ``best/`` is made of (one, or the top N of an ensemble).
        settings: The `TrainingSettings` ``best/`` trains with (``epochs``, ``protocol``,
            ``finetune_epochs``).
        trial_epochs: The trials' maximum epochs (`run_search`'s ``epochs``).
        folds: None, or the K of a cross-validated search.
    """
    if len(top) > 1:
        which = f"the top {len(top)} trials' configurations ({', '.join(t['trial_id'] for t in top)}), each"
    else:
        which = f"trial {top[0]['trial_id']}'s configuration"
    budget = "as the trials" if settings.epochs == trial_epochs else f"the trials trained at most {trial_epochs}"
    if folds:
        then = f", {folds} fold models"
    elif len(top) == 1 and resolve_protocol(settings.protocol, folds=False) == "finetune":
        then = f", then fine-tuned on every row for at most {settings.finetune_epochs} epochs"
    else:
        then = ""
    logger.info("training best/ as `train` trains: %s, up to %d epochs with early stopping (%s)%s",
                which, settings.epochs, budget, then)


def export_best(data, out, best, *, model, recipe, settings, folds=None):
    """Trains the best configuration with `train` into ``out/best`` (a normal run directory), as
    `mmdigits train` would: same recipe (with the trial's recipe fields) and `settings` (a
    `TrainingSettings`: split, seed, epochs with early stopping), the trial's learning rate.

    Skipped when ``out/best`` already holds this trial's configuration (a resumed search that
    had finished exporting). The run directory is written aside and renamed into place.

    Returns:
        (run directory, exported): exported is False when it was kept.
    """
    best_dir = out / "best"
    if (best_dir / "config.json").is_file():
        config = read_json(best_dir / "config.json")
        if config.get("tuning", {}).get("trial_id") == best["trial_id"]:
            return best_dir, False
    return _train_trial_config(data, best_dir, best, model=model, recipe=recipe, settings=settings, folds=folds), True


def check_replayed(best_dir, best):
    """Warns when ``best/`` scores other than its trial on validation. `train` runs with the
    search's seed, as every trial did, so ``best/`` is the winning trial's model again and
    scores what it scored (never below trial 0, the untuned configuration, which is `train`'s
    own run); ops that are not deterministic on a device would break that. Only for the
    ``val_accuracy`` objective (what ``metrics.json`` records) and when ``best/`` trains as its
    trial did (the caller checks: the same epochs, no Hyperband continuation); a
    cross-validation ``best/`` is not checked (its folds restore their own epochs)."""
    metrics = read_json(best_dir / "metrics.json")
    if best["objective"] != "val_accuracy" or "folds" in metrics or "val_accuracy" not in metrics:
        return
    if not math.isclose(metrics["val_accuracy"], best["score"], abs_tol=1e-6):
        logger.warning("best/ scored val_accuracy %.4f, its trial %s %.4f: training did not repeat exactly "
                       "(non-deterministic ops on this device?)", metrics["val_accuracy"], best["trial_id"],
                       best["score"])


def export_ensemble(data, out, trials, *, model, recipe, settings):
    """Trains the configurations of `trials` (the search's top N) with `train` and makes
    ``out/best`` their ensemble: ``best/trial_<id>/`` run directories, and a ``config.json``
    naming them as members, so ``best/`` loads, submits and exports as the mean of their
    probabilities (`load_trained_model`). ``metrics.json`` has each member's validation scores
    and the ensemble's, on the members' common validation rows.

    Members are trained in ``out/.best.staging`` and kept there until all are done (a killed
    export resumes member by member); then the folder is renamed to ``best``. They are the
    validated models (protocol ``"single"``, whatever `settings` asks), so that the
    ensemble's validation scores are on rows none of its members trained on.

    Returns:
        (run directory, exported): exported is False when ``best/`` already held these trials.
    """
    best_dir = out / "best"
    ids = [trial["trial_id"] for trial in trials]
    if (best_dir / "config.json").is_file():
        if read_json(best_dir / "config.json").get("tuning", {}).get("trial_ids") == ids:
            return best_dir, False
    staging = out / ".best.staging"
    settings = dataclasses.replace(settings, protocol="single")
    staging.mkdir(parents=True, exist_ok=True)
    members = [f"trial_{trial_id}" for trial_id in ids]
    for name, trial in zip(members, trials):
        if not (staging / name / "config.json").is_file():
            _train_trial_config(data, staging / name, trial, model=model, recipe=recipe, settings=settings)
    validation = prepare_data(data, val_fraction=settings.val_fraction, seed=settings.seed,
                              split=settings.split).validation
    scores = {name: read_json(staging / name / "metrics.json") for name in members}
    first = read_json(staging / members[0] / "config.json")
    config = {key: first[key] for key in ("format", "task", "model", "training", "data", "versions") if key in first}
    config.update({"ensemble": {"members": members, "weights": None},
                   "tuning": {"trial_ids": ids, "scores": [trial["score"] for trial in trials],
                              "objective": trials[0]["objective"]}})
    write_json(staging / "config.json", config)
    ensemble = classification_metrics(validation.labels, predict_labels(load_trained_model(staging), validation))
    write_json(staging / "metrics.json", {
        "val_accuracy": ensemble["accuracy"], "val_macro_f1": ensemble["macro_f1"], "validation_rows": ensemble["rows"],
        "epochs": max(s["epochs"] for s in scores.values()),
        "seconds": round(sum(s["seconds"] for s in scores.values()), 2),
        "members": {name: {k: s[k] for k in ("val_accuracy", "val_macro_f1", "epochs")} for name, s in scores.items()},
        "data": validation.source})
    return publish_directory(staging, best_dir, overwrite=True), True
