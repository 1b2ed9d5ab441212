"""Cross-modal retrieval (seed 002): a joint image-speech embedding space.

Two towers map a handwritten digit and a spoken digit into one d-dimensional space where
matching pairs score high; the score of image k and utterance l is the cosine similarity
``S_kl = x_k . y_l`` of their L2-normalized embeddings, in [-1, 1].

The towers are a fusion model's backbone (default ``hybrid_cnn``: seed 001's image CNN and
speech CNN, 128 values each; or seed 000's Models 1-4, whose Model 2 gives 512 image and 64
speech values) with `retrieval_towers` on top: a linear projection to d dimensions,
BatchNormalization and L2 normalization per modality. The backbone is built fresh or taken from
a trained fusion run (``init``), whose branches then start already knowing digits.

Losses over the in-batch similarity matrix (``S`` = image embeddings x audio embeddings^T):

- ``"max_margin"`` (seed 002, section 3.4): ``sum_k sum_l max(0, margin - S_kk + S_kl)``, here in
  both directions (image anchors against utterances, utterance anchors against images, as in
  Harwath & Glass 2015, seed 002's reference [1]) and averaged over the negatives. Seed 002's
  batches hold one utterance per class, so every ``l != k`` is another digit; in a random batch
  several rows share a digit, so only rows of *another digit* count as negatives.
- ``"info_nce"`` (the default): symmetric InfoNCE (CLIP-style cross-entropy over
  ``S / temperature`` rows and columns); rows of the same digit are all positives (the target
  spreads over them), for the same reason. Chosen on validation (held-out training speakers,
  docs/results.md).

The saved model is a plain functional model of built-in layers (loads in safe mode); the loss
is only needed for training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
from keras import layers, ops

from mmdigits_keras.models import create_backbone, get_backbone, model_info, retrieval_towers
from mmdigits_keras.training import engine
from mmdigits_keras.training.metrics import protocol_accuracy, similarities
from mmdigits_keras.training.recipes import get_recipe
from mmdigits_keras.training.rundir import load_trained_model
from mmdigits_keras.training.settings import resolve_settings
from mmdigits_keras.utils.checks import check_choice, check_positive
from mmdigits_keras.utils.names import (
    DEFAULT_TOWERS,
    EMBEDDING_DIM,
    MARGIN,
    RETRIEVAL_BATCH_SIZE,
    RETRIEVAL_EPOCHS,
    RETRIEVAL_LOSS,
    RETRIEVAL_LOSSES,
    TEMPERATURE,
)

LOSSES = RETRIEVAL_LOSSES
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
    """Builds the two-tower image-speech embedding model of seed 002.

    Args:
        model: The registry fusion model whose backbone carries the towers (ignored with
            `init`): ``"hybrid_cnn"`` (default: seed 001's image and speech CNN encoders, the
            speech CNN generalizing best to unseen speakers in our measurements, docs/retrieval.md) or
            any other of ``list_models(modality="both")``.
        embedding_dim: d, the size of the shared, L2-normalized space (seed 002: h = 512).
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
        Seed 002, section 3.4 (alignment model); Harwath & Glass, ASRU 2015.
    """
    if init is not None:
        backbone = get_backbone(load_trained_model(init))
    else:
        backbone = create_backbone(model, audio_features=audio_features, audio_mean=audio_mean,
                                   audio_variance=audio_variance, utterance_normalization=utterance_normalization)
    return retrieval_towers(backbone, embedding_dim=embedding_dim, name=name)


def _split_pair(y_true, y_pred):
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    dim = ops.shape(y_pred)[-1] // 2
    return labels, y_pred[:, :dim], y_pred[:, dim:]


def max_margin_loss(labels, image_embedding, audio_embedding, *, margin=0.2):
    """Seed 002's max-margin ranking loss over in-batch negatives, both directions.

    Args:
        labels: int (B,) digit of each pair.
        image_embedding: float32 (B, d), unit-norm rows.
        audio_embedding: float32 (B, d), unit-norm rows; row k is image k's utterance.
        margin: The hinge margin (> 0) in cosine-similarity units.

    Returns:
        float32 (B,): per pair, the mean hinge ``max(0, margin - S_kk + S_kl)`` over the
        other-digit utterances l plus the same with utterance k as the anchor.
    """
    scores = ops.matmul(image_embedding, ops.transpose(audio_embedding))
    positive = ops.diagonal(scores)
    negative = ops.cast(ops.not_equal(labels[:, None], labels[None, :]), scores.dtype)
    count = ops.maximum(ops.sum(negative, axis=1), 1.0)  # symmetric mask: rows and columns alike
    image_anchor = ops.sum(negative * ops.relu(margin - positive[:, None] + scores), axis=1)
    audio_anchor = ops.sum(negative * ops.relu(margin - positive[None, :] + scores), axis=0)
    return (image_anchor + audio_anchor) / count


def info_nce_loss(labels, image_embedding, audio_embedding, *, temperature=0.1):
    """Symmetric InfoNCE over the in-batch similarity matrix; same-digit rows are positives.

    Args:
        labels: int (B,) digit of each pair.
        image_embedding: float32 (B, d), unit-norm rows.
        audio_embedding: float32 (B, d), unit-norm rows.
        temperature: Softmax temperature (> 0) applied to cosine similarities.

    Returns:
        float32 (B,): per pair, the mean of the image->speech and speech->image cross-entropies
        against the uniform distribution over same-digit rows.
    """
    logits = ops.matmul(image_embedding, ops.transpose(audio_embedding)) / temperature
    positive = ops.cast(ops.equal(labels[:, None], labels[None, :]), logits.dtype)
    target = positive / ops.sum(positive, axis=1, keepdims=True)  # symmetric: columns alike
    image_anchor = -ops.sum(target * ops.log_softmax(logits, axis=1), axis=1)
    audio_anchor = -ops.sum(target * ops.log_softmax(logits, axis=0), axis=0)
    return (image_anchor + audio_anchor) / 2.0


class PairRankingLoss(keras.losses.Loss):
    """A Keras loss on ``y_pred`` = concat(image, audio embeddings) and ``y_true`` = labels:
    `info_nce_loss` (``kind="info_nce"``, the default) or `max_margin_loss` (seed 002's)."""

    def __init__(self, kind=RETRIEVAL_LOSS, *, margin=MARGIN, temperature=TEMPERATURE, name="ranking_loss"):
        super().__init__(name=name)
        self.kind, self.margin, self.temperature = kind, margin, temperature

    def call(self, y_true, y_pred):
        labels, image, audio = _split_pair(y_true, y_pred)
        if self.kind == "max_margin":
            return max_margin_loss(labels, image, audio, margin=self.margin)
        return info_nce_loss(labels, image, audio, temperature=self.temperature)


def ranking_loss(kind=RETRIEVAL_LOSS, *, margin=MARGIN, temperature=TEMPERATURE):
    """A `keras.losses.Loss` for `training_model`'s output: ``"info_nce"`` (the default,
    `info_nce_loss`) or ``"max_margin"`` (seed 002's, `max_margin_loss`).

    Raises:
        ValueError: an unknown `kind` or a non-positive `margin` / `temperature`.
    """
    check_choice("loss", kind, LOSSES)
    check_positive("margin", margin, float)
    check_positive("temperature", temperature, float)
    return PairRankingLoss(kind, margin=float(margin), temperature=float(temperature))


def training_model(towers):
    """The towers with both embeddings concatenated into one (N, 2d) output, for `fit` with
    `ranking_loss` (a Keras loss sees one prediction tensor). Shares all weights with `towers`."""
    pair = layers.Concatenate(name="pair_embeddings")([towers.output[name] for name in EMBEDDING_OUTPUTS])
    return keras.Model(inputs=towers.input, outputs=pair, name=f"{towers.name}_pairs")


def validate_towers(towers, validation, *, seed=0):
    """``val_annotation_accuracy`` / ``val_retrieval_accuracy`` of seed 002's protocol."""
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
                    settings=None, overwrite=False, callbacks=(), **options):
    """Trains the two towers on paired rows and writes a retrieval run directory.

    Training goes through the engine with `retrieval_recipe` (the default recipe's speech
    augmentation and image jitter, AdamW, EarlyStopping on the validation loss with best
    weights restored, ReduceLROnPlateau). The run directory holds ``model.keras`` (the towers,
    audio standardization inside), ``config.json`` (``"task": "retrieval"``), ``history.csv``,
    ``metrics.json`` (seed 002's annotation / retrieval accuracy on the validation rows, 100
    trials per class) and ``curves.png``; it appears atomically.

    Args:
        data: A data folder (its ``train`` split) or a labelled `MultimodalDataset`.
        out: Run directory to write (must not exist unless `overwrite`).
        loss: ``"info_nce"`` (default, chosen on validation) or ``"max_margin"`` (seed 002's loss).
        margin: Hinge margin for ``max_margin`` (cosine units, > 0).
        temperature: Softmax temperature for ``info_nce`` (> 0).
        embedding_dim: d, the size of the shared space.
        model: Registry fusion model whose backbone carries the towers (without `init`); see
            `build_retrieval_model`.
        init: Optional fusion run directory to start the towers from.
        batch_size: Pairs per step (int > 1; in-batch negatives come from the same batch).
        settings: A `TrainingSettings`; None: the defaults with ``epochs=RETRIEVAL_EPOCHS``
            (50). Its ``protocol``: ``"finetune"`` (the default) trains the validated towers on
            further on every row and saves them, ``"single"`` saves the validated towers;
            ``metrics.json`` keeps the validated run's scores.
        overwrite: Replace an existing `out`.
        callbacks: More Keras callbacks for `fit` (after early stopping, the learning-rate
            schedule and TensorBoard).
        **options: Fields of `TrainingSettings` given one by one (``epochs=10, seed=1``).

    Returns:
        The run directory as a `Path`.

    Raises:
        ValueError: bad data, a bad argument value, a unimodal `model`, an `init` that is not
            a fusion run, or an existing `out` without `overwrite`.
    """
    objective = ranking_loss(loss, margin=margin, temperature=temperature)
    if init is None and len(model_info(model).modalities) != 2:  # before any data is read
        raise ValueError(f"retrieval towers need an image and an audio branch; {model!r} looks at "
                         f"{list(model_info(model).modalities)} only")
    check_positive("batch_size", batch_size)
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be at least 2 (negatives come from the batch). Received: {batch_size}")
    settings = resolve_settings(settings, options, epochs=RETRIEVAL_EPOCHS)
    spec = retrieval_spec(model=model, init=init, embedding_dim=embedding_dim, loss=objective, seed=settings.seed)
    return engine.run(data, spec, out=out, recipe=retrieval_recipe(batch_size=batch_size), settings=settings,
                      overwrite=overwrite, callbacks=callbacks,
                      extra_config={"loss": {"kind": loss, "margin": float(margin), "temperature": float(temperature)}})
