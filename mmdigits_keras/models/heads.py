"""Heads: tensor-in/tensor-out functions from a backbone's features dict to an output.

Classifier heads end in the ``predictions`` Dense layer (keras.applications' name); the
retrieval head projects each modality into one shared, L2-normalized space (Xia et al.).
"""

from __future__ import annotations

import numpy as np
from keras import layers

from mmdigits_keras.models import blocks
from mmdigits_keras.models.backbone import MODALITIES, with_head

PRIMARY_OUTPUT = "predictions"


def predictions(x, *, num_classes, classifier_activation):
    """The final ``predictions`` Dense: (N, d) -> (N, num_classes), float32 whatever the dtype
    policy: under ``mixed_float16`` the softmax (and the loss on it) stays in float32, as
    Keras's mixed precision guide asks of a model's output."""
    return layers.Dense(num_classes, activation=classifier_activation, dtype="float32", name=PRIMARY_OUTPUT)(x)


def linear_head(features, *, num_classes, classifier_activation):
    """Unimodal models (Tseng, Tables 1-3): the one feature -> ``predictions``."""
    (x,) = features.values()
    return predictions(x, num_classes=num_classes, classifier_activation=classifier_activation)


def late_fusion_head(features, *, fusion_units, width, num_classes, classifier_activation):
    """Nippani Ravi, Tables 1-4: each branch ends in a ``num_classes``-unit Dense with ReLU
    (``image_output``, ``audio_output``), concatenated speech first (``fusion_concat``, 20
    values), then the Dense + BatchNormalization fusion stack and ``predictions``."""
    outputs = {m: layers.Dense(num_classes, activation="relu", name=f"{m}_output")(features[m]) for m in MODALITIES}
    x = layers.Concatenate(name="fusion_concat")([outputs["audio"], outputs["image"]])
    for i, units in enumerate(fusion_units, start=1):
        x = blocks.dense_bn(x, blocks.scaled(units, width), name=f"fusion_dense{i}")
    return predictions(x, num_classes=num_classes, classifier_activation=classifier_activation)


def hybrid_head(features, *, width=1.0, num_classes, classifier_activation):
    """Tseng, Table 6: concat (256) -> Dense(128) + BN + ReLU -> dropout 0.25 -> classes."""
    x = layers.Concatenate(name="fusion_concat")([features["image"], features["audio"]])
    x = layers.Dense(blocks.scaled(128, width), name="fusion_dense1")(x)
    x = layers.BatchNormalization(momentum=blocks.BN_MOMENTUM, name="fusion_dense1_bn")(x)
    x = layers.ReLU(name="fusion_dense1_relu")(x)
    x = layers.Dropout(0.25, name="fusion_dropout1")(x)
    return predictions(x, num_classes=num_classes, classifier_activation=classifier_activation)


def fusion_layer_head(features, *, width=1.0, dropout=0.3, num_classes, classifier_activation):
    """The Multimodal-Deep-Learning report's FusionModel head: concat -> Dense(128) + ReLU -> dropout -> classes."""
    x = layers.Concatenate(name="fusion_concat")([features["image"], features["audio"]])
    x = layers.Dense(blocks.scaled(128, width), activation="relu", name="fusion_dense1")(x)
    x = blocks.dropout(x, dropout, name="fusion_dropout1")
    return predictions(x, num_classes=num_classes, classifier_activation=classifier_activation)


def retrieval_towers(backbone, *, embedding_dim=128, name="retrieval"):
    """Xia et al.'s two towers on a two-modality backbone: per modality a linear projection
    (``{m}_projection``), BatchNormalization (``{m}_projection_bn``) and L2 normalization
    (``{m}_embedding``).

    Args:
        backbone: A backbone with ``image`` and ``audio`` features (`create_backbone`, or
            `get_backbone` of a trained fusion model: its weights are shared, not copied).
        embedding_dim: d, the size of the shared space (int > 0).
        name: Model name.

    Returns:
        A functional `keras.Model`: inputs ``image`` (N, 28, 28, 1) and ``audio`` (N, 507 or
        1560) float32; outputs ``{"image_embedding": (N, d), "audio_embedding": (N, d)}``
        float32 with unit-norm rows. The backbone is nested as one layer.

    Raises:
        ValueError: the backbone lacks one of the modalities, or a bad `embedding_dim`.

    Reference:
        Xia et al., section 3.4 (alignment model); Harwath & Glass, ASRU 2015.
    """
    if set(backbone.output) != set(MODALITIES):
        raise ValueError(f"retrieval towers need an image and an audio branch; backbone {backbone.name!r} has "
                         f"{sorted(backbone.output)} (use a fusion model: list_models(modality='both'))")
    if not (isinstance(embedding_dim, (int, np.integer)) and embedding_dim > 0):
        raise ValueError(f"`embedding_dim` must be a positive integer. Received: embedding_dim={embedding_dim!r}")

    def head(features):
        outputs = {}
        for modality in MODALITIES:
            x = layers.Dense(embedding_dim, name=f"{modality}_projection")(features[modality])
            # Branch features are post-ReLU, all >= 0: projected as they are, every row starts
            # pointing the same way (cosine ~1 for all pairs; the loss sat at 2 x margin for the
            # first 5 epochs). Centring each dimension over the batch removes that shared direction.
            x = layers.BatchNormalization(momentum=blocks.BN_MOMENTUM, name=f"{modality}_projection_bn")(x)
            outputs[f"{modality}_embedding"] = layers.UnitNormalization(name=f"{modality}_embedding")(x)
        return outputs

    return with_head(backbone, head, name=name)
