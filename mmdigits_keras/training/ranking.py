"""Ranking losses for the retrieval towers, over the in-batch similarity matrix ``S`` = image
embeddings x audio embeddings^T (unit-norm rows, so cosine similarities in [-1, 1]):

- ``"max_margin"`` (Xia et al., section 3.4): ``sum_k sum_l max(0, margin - S_kk + S_kl)``, here in
  both directions (image anchors against utterances, utterance anchors against images, as in
  Harwath & Glass 2015, Xia et al.'s reference [1]) and averaged over the negatives. Xia et al.'s
  batches hold one utterance per class, so every ``l != k`` is another digit; in a random batch
  several rows share a digit, so only rows of *another digit* count as negatives.
- ``"info_nce"`` (the default): symmetric InfoNCE (CLIP-style cross-entropy over
  ``S / temperature`` rows and columns); rows of the same digit are all positives (the target
  spreads over them), for the same reason. Chosen on validation (held-out training speakers,
  docs/results.md).

The loss is only needed for training; the saved towers load without it.
"""

from __future__ import annotations

import keras
from keras import ops

from mmdigits_keras.utils.checks import check_choice, check_positive
from mmdigits_keras.utils.defaults import MARGIN, RETRIEVAL_LOSS, RETRIEVAL_LOSSES, TEMPERATURE

LOSSES = RETRIEVAL_LOSSES


def _split_pair(y_true, y_pred):
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    dim = ops.shape(y_pred)[-1] // 2
    return labels, y_pred[:, :dim], y_pred[:, dim:]


def max_margin_loss(labels, image_embedding, audio_embedding, *, margin=0.2):
    """Xia et al.'s max-margin ranking loss over in-batch negatives, both directions.

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
    `info_nce_loss` (``kind="info_nce"``, the default) or `max_margin_loss` (Xia et al.'s)."""

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
    `info_nce_loss`) or ``"max_margin"`` (Xia et al.'s, `max_margin_loss`).

    Raises:
        ValueError: an unknown `kind` or a non-positive `margin` / `temperature`.
    """
    check_choice("loss", kind, LOSSES)
    check_positive("margin", margin, float)
    check_positive("temperature", temperature, float)
    return PairRankingLoss(kind, margin=float(margin), temperature=float(temperature))
