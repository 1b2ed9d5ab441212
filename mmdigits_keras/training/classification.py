"""Classification training: a registry model on a data folder -> a run directory, through the
engine (`mmdigits_keras.training.engine`)."""

from __future__ import annotations

import dataclasses

from mmdigits_keras.data.constants import NUM_FEATURES
from mmdigits_keras.models import create_model, model_config, model_info
from mmdigits_keras.training import engine
from mmdigits_keras.training.crossval import cross_validate
from mmdigits_keras.training.distribute import check_strategy
from mmdigits_keras.training.metrics import classification_metrics, predict_labels
from mmdigits_keras.training.recipes import get_recipe
from mmdigits_keras.training.rundir import load_trained_model
from mmdigits_keras.utils.checks import check_positive
from mmdigits_keras.utils.names import (  # DEFAULT_MODEL: `build_model` stays seed 000's Model k
    DEFAULT_MODEL,
    DEFAULT_RECIPE,
    EPOCHS,
    LEARNING_RATE,
    PATIENCE,
    SEED,
    VAL_FRACTION,
)


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


def classification_task(model, recipe, model_kwargs=None):
    """The engine `Task` that trains registry classifier `model` (see `engine.Task`)."""
    def build(prepared):
        net = build_classifier(model, prepared, recipe, **(model_kwargs or {}))
        return net, net

    def config(prepared):
        used = model_arguments(model, prepared, recipe, model_kwargs)
        return {"model": model, "builder": model_info(model).builder.__name__,
                "model_kwargs": {**model_config(model), **used}}

    return engine.Task(name="classification", build=build, validate=validate_classifier, config=config)


def train(
    data,
    *,
    out,
    model=DEFAULT_MODEL,
    epochs=EPOCHS,
    batch_size=None,
    learning_rate=LEARNING_RATE,
    recipe=DEFAULT_RECIPE,
    val_fraction=VAL_FRACTION,
    seed=SEED,
    patience=PATIENCE,
    overwrite=False,
    model_kwargs=None,
    extra_config=None,
    callbacks=(),
    verbose="auto",
    split=None,
    folds=None,
    strategy=None,
    refit=False,
):
    """Trains a registry classifier and writes a run directory.

    The recipe sets optimizer, loss, batch size and augmentation; on the validation split,
    EarlyStopping on the validation cross-entropy (``val_crossentropy``, without label
    smoothing; patience `patience`, best weights restored) and
    ReduceLROnPlateau (factor 0.5 after `patience` // 2 epochs), as in seed 001's training
    set-up. The speech standardization is fitted on the training rows only and built into the
    saved model. Everything runs through `mmdigits_keras.training.engine.run`.

    Args:
        data: A data folder (Kaggle or Khacef layout; its ``train`` split is used) or a
            labelled `MultimodalDataset`.
        out: The run directory to write (must not exist unless `overwrite`).
        model: A registry name (`list_models()`); default `DEFAULT_MODEL` (``"hybrid_cnn"``, the
            winner of the robustness benchmark), e.g. ``"model2"`` for seed 000's Model 2.
        epochs: Maximum number of epochs (int > 0).
        batch_size: Samples per gradient step and replica (int > 0); default the recipe's
            (128 for ``default``, 32 for ``plain``). With several replicas a step takes
            ``batch_size * replicas`` samples.
        learning_rate: The optimizer's learning rate (> 0).
        recipe: ``"default"`` (tf.data pipeline with speech augmentation, image jitter,
            modality dropout, label smoothing, AdamW) or ``"plain"`` (Adam on numpy arrays,
            no augmentation: seed 000's way). See `mmdigits_keras.training.recipes`.
        val_fraction: Fraction of rows held out, stratified, for validation, in (0, 1); with
            grouped splits one of ``round(1 / val_fraction)`` folds (a fifth for 0.2).
        seed: Seed of the split, the weight initialization and the shuffling (int).
        split: What validation holds out, so that its score predicts unseen data:
            ``"speaker"`` (whole speakers; needs the data set's speaker ids),
            ``"recording"`` (whole recordings: rows sharing a speech vector, or a recording id)
            or ``"row"`` (random rows; leaks repeated recordings into validation). None: the
            strictest the data supports (`mmdigits_keras.data.splits`). Recorded in ``config.json``.
        folds: None, or K >= 2: K-fold cross-validation (`mmdigits_keras.training.crossval`):
            K fold models, out-of-fold predictions and a summary in `out`, which then predicts
            (and submits) as the mean of its fold models' probabilities; a killed run resumes
            fold by fold.
        patience: EarlyStopping patience in epochs (int > 0).
        overwrite: Replace an existing `out`.
        model_kwargs: Extra builder arguments (e.g. ``{"width": 0.5}``).
        extra_config: Extra top-level entries for ``config.json`` (e.g. the tuning trial).
        callbacks: More Keras callbacks for `fit` (after early stopping, the learning-rate
            schedule and TensorBoard).
        verbose: Keras `fit` verbosity (``"auto"``, 0, 1 or 2); 1 shows the progress bar.
        strategy: None (one device, or the `tf.distribute` strategy whose scope is open),
            ``"mirrored"`` (`tf.distribute.MirroredStrategy` over every visible GPU, or every
            logical CPU device without one) or a `tf.distribute.Strategy`; recorded in
            ``config.json`` (``training.strategy``, ``training.replicas``). The saved model
            loads without it.
        refit: After validation picks the epoch count (and learning rates), train a fresh
            model on every row and save it (`mmdigits_keras.training.engine.run`): the saved
            model then also learns from the validation rows (with the speaker split, the
            held-out speaker); ``metrics.json`` keeps the validated run's scores. Doubles the
            training time at most. Not with `folds`.

    Returns:
        The run directory as a `Path`; its ``metrics.json`` has ``val_accuracy``,
        ``val_macro_f1``, ``validation_rows``, ``epochs``, ``seconds`` (with `folds`:
        out-of-fold scores, and per-fold scores with their mean and sd).

    Raises:
        ValueError: bad data (see `load_kaggle`), an unknown model or recipe, an argument the
            model does not take, a bad argument value, or an existing `out` without `overwrite`.
    """
    model_info(model)  # fail on an unknown name before loading anything
    check_strategy(strategy)
    plan = get_recipe(recipe)
    if batch_size is not None:
        check_positive("batch_size", batch_size)
        plan = dataclasses.replace(plan, batch_size=int(batch_size))
    if refit and folds is not None:
        raise ValueError("`refit` and `folds` exclude each other: the fold models of a cross-validation together "
                         f"already learn from every row. Received: refit=True, folds={folds!r}")
    task = classification_task(model, plan, model_kwargs)

    def train_fold(fold_out, *, fold, split):
        return engine.run(data, task, out=fold_out, recipe=plan, epochs=epochs, learning_rate=learning_rate,
                          val_fraction=val_fraction, seed=seed, patience=patience, overwrite=True,
                          extra_config=extra_config, callbacks=callbacks, verbose=verbose, split=split, fold=fold,
                          strategy=strategy)

    if folds is not None:
        settings = {"model": model, "model_kwargs": model_kwargs or {}, "recipe": dataclasses.asdict(plan),
                    "epochs": int(epochs), "learning_rate": float(learning_rate), "patience": int(patience)}
        return cross_validate(data, out=out, folds=folds, train_fold=train_fold, settings=settings, split=split,
                              seed=seed, overwrite=overwrite, predict=_probabilities)
    return engine.run(data, task, out=out, recipe=plan, epochs=epochs, learning_rate=learning_rate,
                      val_fraction=val_fraction, seed=seed, patience=patience, overwrite=overwrite,
                      extra_config=extra_config, callbacks=callbacks, verbose=verbose, split=split,
                      strategy=strategy, refit=refit)


def _probabilities(run, dataset):
    return load_trained_model(run).predict(dataset.inputs(), batch_size=512, verbose=0)
