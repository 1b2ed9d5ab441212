"""Cross-modal retrieval (Xia et al.): a joint image-speech embedding space.

Two towers map a handwritten digit and a spoken digit into one d-dimensional space where
matching pairs score high; the score of image k and utterance l is the cosine similarity
``S_kl = x_k . y_l`` of their L2-normalized embeddings, in [-1, 1].

The towers are a fusion model's backbone (default ``hybrid_cnn``: Tseng's image CNN and
speech CNN, 128 values each; or Nippani Ravi's Models 1-4, whose Model 2 gives 512 image and 64
speech values) with `retrieval_towers` on top: a linear projection to d dimensions,
BatchNormalization and L2 normalization per modality. The backbone is built fresh or taken from
a trained fusion run (``init``), whose branches then start already knowing digits.

The towers train with a ranking loss over the in-batch similarity matrix
(`mmdigits_keras.training.ranking`: ``info_nce``, the default, or Xia et al.'s ``max_margin``).

The saved model is a plain functional model of built-in layers (loads in safe mode); the loss
is only needed for training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
from keras import layers

from mmdigits_keras.models import create_backbone, get_backbone, model_info, retrieval_towers
from mmdigits_keras.training import engine
from mmdigits_keras.training.ranking import ranking_loss
from mmdigits_keras.training.recipes import get_recipe
from mmdigits_keras.training.retrieval_protocol import protocol_accuracy, similarities
from mmdigits_keras.training.rundir import load_trained_model
from mmdigits_keras.training.settings import resolve_settings
from mmdigits_keras.utils.checks import check_positive
from mmdigits_keras.utils.defaults import (
    DEFAULT_TOWERS,
    EMBEDDING_DIM,
    MARGIN,
    RETRIEVAL_BATCH_SIZE,
    RETRIEVAL_EPOCHS,
    RETRIEVAL_LOSS,
    TEMPERATURE,
)

EMBEDDING_OUTPUTS = ("image_embedding", "audio_embedding")


def retrieval_recipe(*, batch_size=RETRIEVAL_BATCH_SIZE):
    """The default recipe for the towers, less what has no meaning for retrieval: no modality
    dropout or swapped speech (a blanked or swapped modality has nothing to match), no label
    smoothing and no auxiliary classifiers (labels only mark which in-batch rows are
    negatives), and full batches only (a short last batch would have few negatives). The
    speech augmentation and synthetic voices of the default recipe stay."""
    return dataclasses.replace(get_recipe("default"), name="retrieval", batch_size=int(batch_size), label_smoothing=0.0,
                               image_dropout=0.0, audio_dropout=0.0, audio_mismatch=0.0,
                               drop_remainder=True)


def build_retrieval_model(model=DEFAULT_TOWERS, *, embedding_dim=EMBEDDING_DIM, init=None, audio_features=507,
                          audio_mean=None, audio_variance=None, utterance_normalization=True, name="retrieval"):
    """Builds the two-tower image-speech embedding model of Xia et al.

    Args:
        model: The registry fusion model whose backbone carries the towers (ignored with
            `init`): ``"hybrid_cnn"`` (default: Tseng's image and speech CNN encoders, the
            speech CNN generalizing best to unseen speakers in our measurements, docs/retrieval.md) or
            any other of ``list_models(modality="both")``.
        embedding_dim: d, the size of the shared, L2-normalized space (Xia et al.: h = 512).
        init: Optional run directory (or ``.keras`` file) of a trained fusion run; the towers
            start from its backbone's weights (and its speech standardization).
        audio_features: 507 (MFCC) or 1560 (log-mel) values per utterance.
        audio_mean: Optional (audio_features,) training-audio mean (with `audio_variance`).
        audio_variance: Optional (audio_features,) training-audio variance.
        utterance_normalization: Per-utterance mean/variance normalization of each coefficient
            over the 39 frames (see `build_model`); on by default because the speech tower
            must match speakers it never heard.
        name: Model name.

    Returns:
        The towers (`retrieval_towers`): inputs ``image`` / ``audio``, outputs
        ``image_embedding`` / ``audio_embedding`` (N, embedding_dim), unit L2 norm.

    Raises:
        ValueError: an unknown or unimodal `model`, an `init` that is not a loadable fusion
            run with a backbone, or a bad `embedding_dim`.

    Reference:
        Xia et al., section 3.4 (alignment model); Harwath & Glass, ASRU 2015.
    """
    if init is not None:
        backbone = get_backbone(load_trained_model(init))
    else:
        backbone = create_backbone(model, audio_features=audio_features, audio_mean=audio_mean,
                                   audio_variance=audio_variance, utterance_normalization=utterance_normalization)
    return retrieval_towers(backbone, embedding_dim=embedding_dim, name=name)


def training_model(towers):
    """The towers with both embeddings concatenated into one (N, 2d) output, for `fit` with
    `ranking_loss` (a Keras loss sees one prediction tensor). Shares all weights with `towers`."""
    pair = layers.Concatenate(name="pair_embeddings")([towers.output[name] for name in EMBEDDING_OUTPUTS])
    return keras.Model(inputs=towers.input, outputs=pair, name=f"{towers.name}_pairs")


def validate_towers(towers, validation, *, seed=0):
    """``val_annotation_accuracy`` / ``val_retrieval_accuracy`` of Xia et al.'s protocol."""
    scores = protocol_accuracy(similarities(towers, validation), validation.labels, seed=seed)
    return {"val_annotation_accuracy": scores["annotation_accuracy"],
            "val_retrieval_accuracy": scores["retrieval_accuracy"]}


def retrieval_spec(*, model=DEFAULT_TOWERS, init=None, embedding_dim=128, loss=None, seed=0):
    """The engine's `TrainingSpec` that trains retrieval towers."""
    def build(prepared):
        towers = build_retrieval_model(model, embedding_dim=embedding_dim, init=init,
                                       audio_features=prepared.audio_features, audio_mean=prepared.audio_mean,
                                       audio_variance=prepared.audio_variance)
        return training_model(towers), towers

    def config(prepared):
        return {"builder": "build_retrieval_model",
                "model_kwargs": {"model": model if init is None else None, "embedding_dim": int(embedding_dim),
                                 "init": None if init is None else str(Path(init).resolve())}}

    return engine.TrainingSpec(name="retrieval", build=build, config=config, loss=loss, metrics=(), monitor="val_loss",
                               validate=lambda towers, validation: validate_towers(towers, validation, seed=seed))


def train_retrieval(data, *, out, loss=RETRIEVAL_LOSS, margin=MARGIN, temperature=TEMPERATURE,
                    embedding_dim=EMBEDDING_DIM, model=DEFAULT_TOWERS, init=None, batch_size=RETRIEVAL_BATCH_SIZE,
                    overwrite=False, callbacks=(), **options):
    """Trains the two towers on paired rows and writes a retrieval run directory.

    Training goes through the engine with `retrieval_recipe` (the default recipe's speech
    augmentation and image jitter, AdamW, EarlyStopping on the validation loss with best
    weights restored, ReduceLROnPlateau). The run directory holds ``model.keras`` (the towers,
    audio standardization inside), ``config.json`` (``"task": "retrieval"``), ``history.csv``,
    ``metrics.json`` (Xia et al.'s annotation / retrieval accuracy on the validation rows, 100
    trials per class) and ``curves.png``; it appears atomically.

    Args:
        data: A data folder (its ``train`` split) or a labelled `MultimodalDataset`.
        out: Run directory to write (must not exist unless `overwrite`).
        loss: ``"info_nce"`` (default, chosen on validation) or ``"max_margin"`` (Xia et al.'s loss).
        margin: Hinge margin for ``max_margin`` (cosine units, > 0).
        temperature: Softmax temperature for ``info_nce`` (> 0).
        embedding_dim: d, the size of the shared space.
        model: Registry fusion model whose backbone carries the towers (without `init`); see
            `build_retrieval_model`.
        init: Optional fusion run directory to start the towers from.
        batch_size: Pairs per step (int > 1; in-batch negatives come from the same batch).
        overwrite: Replace an existing `out`.
        callbacks: More Keras callbacks for `fit` (after early stopping, the learning-rate
            schedule and TensorBoard).
        **options: How the run trains: the fields of `TrainingSettings` as keywords (``epochs=10,
            seed=1``); those not given keep their defaults, with ``epochs=RETRIEVAL_EPOCHS`` (50).
            ``protocol``: ``"finetune"`` (the default) trains the validated towers on further on
            every row and saves them, ``"single"`` saves the validated towers; ``metrics.json``
            keeps the validated run's scores. ``semi_supervised`` is refused: pairing an image
            with its speech is retrieval's label, so the test pairs never train.

    Returns:
        The run directory as a `Path`.

    Raises:
        ValueError: bad data, a bad argument value, a unimodal `model`, an `init` that is not
            a fusion run, ``semi_supervised`` asked, or an existing `out` without `overwrite`.
    """
    objective = ranking_loss(loss, margin=margin, temperature=temperature)
    if init is None and len(model_info(model).modalities) != 2:  # before any data is read
        raise ValueError(f"retrieval towers need an image and an audio branch; {model!r} looks at "
                         f"{list(model_info(model).modalities)} only")
    check_positive("batch_size", batch_size)
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be at least 2 (negatives come from the batch). Received: {batch_size}")
    settings = resolve_settings(options=options, epochs=RETRIEVAL_EPOCHS)
    if settings.semi_supervised is not False:
        raise ValueError("retrieval never trains on the test rows: a test pair's pairing is its label "
                         f"(semi_supervised={settings.semi_supervised!r} is for classifiers)")
    spec = retrieval_spec(model=model, init=init, embedding_dim=embedding_dim, loss=objective, seed=settings.seed)
    return engine.run(data, spec, out=out, recipe=retrieval_recipe(batch_size=batch_size), settings=settings,
                      overwrite=overwrite, callbacks=callbacks,
                      extra_config={"loss": {"kind": loss, "margin": float(margin), "temperature": float(temperature)}})
