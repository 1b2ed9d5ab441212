"""Classification training: a registry model on a data folder -> a run directory, through the
engine (`mmdigits_keras.training.engine`)."""

from __future__ import annotations

import dataclasses

from mmdigits_keras.data.constants import NUM_FEATURES
from mmdigits_keras.models import create_model, model_config, model_info
from mmdigits_keras.training import engine
from mmdigits_keras.training.crossval import cross_validate
from mmdigits_keras.training.metrics import classification_metrics, predict_labels
from mmdigits_keras.training.recipes import get_recipe
from mmdigits_keras.training.rundir import load_trained_model
from mmdigits_keras.training.settings import resolve_protocol, resolve_settings
from mmdigits_keras.utils.checks import check_positive
from mmdigits_keras.utils.defaults import DEFAULT_MODEL, DEFAULT_RECIPE


def model_arguments(model, prepared, recipe, model_kwargs=None):
    """The builder arguments a run of registry model `model` uses on `prepared` data with
    `recipe`: `model_kwargs`, the speech feature width, and the recipe's per-utterance
    normalization (statistics not included)."""
    kwargs = dict(model_kwargs or {})
    if prepared.audio_features != NUM_FEATURES:  # log-mel data
        kwargs.setdefault("audio_features", prepared.audio_features)
    if recipe.utterance_normalization:
        kwargs.setdefault("utterance_normalization", True)
    return kwargs


def build_classifier(model, prepared, recipe, **model_kwargs):
    """The registry classifier `model` for `prepared` data: `model_arguments` plus the speech
    standardization fitted on its training rows (part of the saved model)."""
    kwargs = model_arguments(model, prepared, recipe, model_kwargs)
    return create_model(model, audio_mean=prepared.audio_mean, audio_variance=prepared.audio_variance, **kwargs)


def validate_classifier(model, validation):
    """``val_accuracy`` and ``val_macro_f1`` of a classifier on the validation rows."""
    scores = classification_metrics(validation.labels, predict_labels(model, validation))
    return {"val_accuracy": scores["accuracy"], "val_macro_f1": scores["macro_f1"]}


def classification_spec(model, recipe, model_kwargs=None):
    """The engine's `TrainingSpec` that trains registry classifier `model`."""
    def build(prepared):
        net = build_classifier(model, prepared, recipe, **(model_kwargs or {}))
        return net, net

    def config(prepared):
        used = model_arguments(model, prepared, recipe, model_kwargs)
        return {"model": model, "builder": model_info(model).builder.__name__,
                "model_kwargs": {**model_config(model), **used}}

    return engine.TrainingSpec(name="classification", build=build, validate=validate_classifier, config=config)


def train(data, *, out, model=DEFAULT_MODEL, recipe=DEFAULT_RECIPE, batch_size=None, model_kwargs=None, folds=None,
          overwrite=False, extra_config=None, callbacks=(), **options):
    """Trains a registry classifier and writes a run directory.

    The recipe sets optimizer, loss, batch size and augmentation; `settings` how the run
    trains: on the validation split, EarlyStopping on the validation cross-entropy
    (``val_crossentropy``, without label smoothing; best weights restored) and
    ReduceLROnPlateau (factor 0.5 after ``patience // 2`` epochs), as in Tseng's training
    set-up. The speech standardization is fitted on the training rows only and built into the
    saved model. Everything runs through `mmdigits_keras.training.engine.run`.

        >>> train("data/kaggle", out="runs/m2", model="model2", epochs=20, seed=1)

    Args:
        data: A data folder (Kaggle or Khacef layout; its ``train`` split is used) or a
            labelled `MultimodalDataset`.
        out: The run directory to write (must not exist unless `overwrite`).
        model: A registry name (`list_models()`); default `DEFAULT_MODEL` (``"hybrid_cnn"``, the
            winner of the robustness benchmark), e.g. ``"model2"`` for Nippani Ravi's Model 2.
        recipe: ``"default"`` (tf.data pipeline with speech augmentation, image jitter,
            modality dropout, label smoothing, AdamW), ``"plain"`` (Adam on numpy arrays, no
            augmentation: the course papers' way) or a `Recipe`
            (`mmdigits_keras.training.recipes`).
        batch_size: Samples per gradient step and replica (int > 0); default the recipe's
            (128 for ``default``, 32 for ``plain``). With several replicas a step takes
            ``batch_size * replicas`` samples.
        model_kwargs: Extra builder arguments (e.g. ``{"width": 0.5}``).
        folds: None, or K >= 2: K-fold cross-validation (`mmdigits_keras.training.crossval`):
            K fold models, out-of-fold predictions and a summary in `out`, which then predicts
            (and submits) as the mean of its fold models' probabilities; a killed run resumes
            fold by fold. Its protocol is ``"single"``; asking ``"finetune"`` is refused.
        overwrite: Replace an existing `out`.
        extra_config: Extra top-level entries for ``config.json`` (e.g. the tuning trial).
        callbacks: More Keras callbacks for `fit` (after early stopping, the learning-rate
            schedule and TensorBoard).
        **options: How the run trains: the fields of `TrainingSettings` as keywords
            (``epochs``, ``learning_rate``, ``val_fraction``, ``split``, ``seed``,
            ``patience``, ``strategy``, ``protocol``, ``finetune_epochs``, ``augment_on``,
            ``verbose``, ``semi_supervised``; e.g. ``epochs=20, seed=1``); those not given keep
            their defaults (the validated model fine-tuned on every row:
            ``protocol="finetune"``; no learning from the test rows: ``semi_supervised=False``).

    Returns:
        The run directory as a `Path`; its ``metrics.json`` has ``val_accuracy``,
        ``val_macro_f1``, ``validation_rows``, ``epochs``, ``seconds`` (with `folds`:
        out-of-fold scores, and per-fold scores with their mean and sd).

    Raises:
        ValueError: bad data (see `load_kaggle`), an unknown model or recipe, an argument the
            model does not take, an unknown option, a bad value, an existing `out` without
            `overwrite`, or ``semi_supervised`` without test inputs in `data`, with `folds`, or
            with a teacher run of other data.
    """
    model_info(model)  # fail on an unknown name before loading anything
    settings = resolve_settings(options=options)
    plan = get_recipe(recipe)
    if batch_size is not None:
        check_positive("batch_size", batch_size)
        plan = dataclasses.replace(plan, batch_size=int(batch_size))
    # Refuses a fold run that fine-tunes or learns from the test rows.
    resolve_protocol(settings.protocol, folds=folds is not None, semi_supervised=settings.semi_supervised)
    spec = classification_spec(model, plan, model_kwargs)
    if folds is None:
        return engine.run(data, spec, out=out, recipe=plan, settings=settings, overwrite=overwrite,
                          extra_config=extra_config, callbacks=callbacks)

    def train_fold(fold_out, *, fold, split):
        return engine.run(data, spec, out=fold_out, recipe=plan, settings=dataclasses.replace(settings, split=split),
                          overwrite=True, extra_config=extra_config, callbacks=callbacks, fold=fold)

    plan_record = {"model": model, "model_kwargs": model_kwargs or {}, "recipe": dataclasses.asdict(plan),
                   "epochs": int(settings.epochs), "learning_rate": float(settings.learning_rate),
                   "patience": settings.patience}  # None: scaled to each fold's training rows
    return cross_validate(data, out=out, folds=folds, train_fold=train_fold, settings=plan_record,
                          split=settings.split, seed=settings.seed, overwrite=overwrite, predict=_probabilities)


def _probabilities(run, dataset):
    return load_trained_model(run).predict(dataset.inputs(), batch_size=512, verbose=0)
