"""The late-fusion family: Nippani Ravi's Models 1-4 and their LSTM-audio variants, declared as
layer tables (`LATE_FUSION_TABLES`) that one builder reads.

Every builder takes the dict input ``{"image": (N, 28, 28, 1) float32, "audio": (N, 507)
float32}`` and returns (N, num_classes) softmax probabilities from a plain functional
`keras.Model` of built-in layers, so `.keras` files load without custom objects.
"""

from __future__ import annotations

import numpy as np
from keras import layers

from mmdigits_keras.data.constants import NUM_FEATURES
from mmdigits_keras.models import blocks, heads
from mmdigits_keras.models.backbone import make_backbone, with_head
from mmdigits_keras.models.preprocessing import audio_frames, model_inputs, speech_input
from mmdigits_keras.models.registry import register_model
from mmdigits_keras.utils.checks import check_choice

AUDIO_ENCODERS = ("conv1d", "lstm")

# Nippani Ravi, Tables 1-4, layer for layer. ("conv", f): conv + BN; ("pool",); ("drop",);
# ("dense", u): Dense + BN; each branch then flattens (before its first dense) and ends in a
# num_classes-unit Dense; the fusion stack is Dense + BN layers, then the softmax.
LATE_FUSION_TABLES = {
    1: dict(
        image=[("conv", 32), ("dense", 64), ("drop",)],
        audio=[("conv", 16), ("pool",), ("dense", 64)],
        fusion=[64],
    ),
    2: dict(
        image=[("conv", 32), ("conv", 32), ("pool",), ("drop",), ("conv", 64), ("dense", 512), ("drop",)],
        audio=[("conv", 16), ("pool",), ("conv", 32), ("pool",), ("conv", 64), ("pool",), ("dense", 64)],
        fusion=[64, 128, 256],
    ),
    3: dict(
        image=[("conv", 32), ("conv", 32), ("pool",), ("drop",), ("dense", 128), ("drop",)],
        audio=[("conv", 16), ("pool",), ("conv", 32), ("dense", 64)],
        fusion=[64, 128],
    ),
    4: dict(
        image=[("conv", 32), ("conv", 32), ("pool",), ("drop",), ("conv", 64), ("conv", 64), ("pool",),
               ("drop",), ("dense", 512), ("drop",), ("dense", 1024), ("drop",)],
        audio=[("conv", 16), ("pool",), ("conv", 32), ("pool",), ("conv", 64), ("pool",), ("conv", 128),
               ("pool",), ("dense", 64), ("dense", 128)],
        fusion=[64, 128],
    ),
}


def _branch(x, ops, *, prefix, kernel_size, padding, width, dropout):
    """One branch of a late-fusion table up to (not including) its 10-unit output layer."""
    counts = {"conv": 0, "pool": 0, "drop": 0, "dense": 0}
    flat = False
    for op in ops:
        kind = op[0]
        counts[kind] += 1
        n = counts[kind]
        if kind == "conv":
            x = blocks.conv_bn(x, blocks.scaled(op[1], width), kernel_size=kernel_size, padding=padding,
                               name=f"{prefix}_conv{n}")
        elif kind == "pool":
            x = blocks.pool(x, name=f"{prefix}_pool{n}")
        elif kind == "drop":
            x = blocks.dropout(x, dropout, name=f"{prefix}_dropout{n}")
        else:
            if not flat:
                x = layers.Flatten(name=f"{prefix}_flatten")(x)
                flat = True
            x = blocks.dense_bn(x, blocks.scaled(op[1], width), name=f"{prefix}_dense{n}")
    return x


def build_model(
    depth=2,
    *,
    include_top=True,
    audio="conv1d",
    width=1.0,
    dropout=0.25,
    lstm_units=64,
    num_classes=10,
    classifier_activation="softmax",
    audio_features=NUM_FEATURES,
    audio_mean=None,
    audio_variance=None,
    utterance_normalization=False,
    name=None,
):
    """Builds Model `depth` of Nippani Ravi: an image CNN and an audio encoder fused late.

    With the defaults, ``build_model(depth=k).count_params()`` equals Nippani Ravi's table totals:
    1,869,454 / 6,766,478 / 1,344,654 / 2,504,270 for k = 1..4.

    The model is a backbone (both branches up to their last hidden layer, nested as the layer
    ``backbone``) plus the late-fusion head (each branch's 10-unit ``{m}_output``,
    ``fusion_concat``, the ``fusion_dense{i}`` stack, ``predictions``); layer names follow
    the tables (``image_conv1``, ``audio_pool2``, ...).

    Args:
        depth: Which of Nippani Ravi's Models (1..4). Model 2, the paper's final model, is the
            default; Model 3 has a shallower image branch than Model 2, as in the paper.
        include_top: True: the classifier. False: the backbone only, with outputs
            ``{"image": (N, d_image), "audio": (N, d_audio)}`` (Model 2: 512 and 64).
        audio: ``"conv1d"`` (the table's Conv1D branch over (507, 1), kernel 2) or
            ``"lstm"`` (Tseng's 2-layer LSTM encoder over (39 frames, 13 coefficients),
            then Dense(64) + BN and the 10-unit output).
        width: Multiplier on every conv filter count and hidden Dense width (> 0); 1.0
            reproduces the tables. The 10-unit branch outputs are not scaled.
        dropout: Rate of every Dropout layer, in [0, 1) (the tables list the layers, not
            the rates).
        lstm_units: Units of each LSTM layer when ``audio="lstm"`` (Tseng: 64).
        num_classes: Number of classes (output units of each branch and of the model).
        classifier_activation: Activation of the final layer (``"softmax"`` or None for
            logits).
        audio_features: Values per audio row: 507 (39 x 13 MFCC, the default) or 1560
            (39 x 40 log-mel, from ``build_dataset(..., features="logmel")``).
        audio_mean: Optional (audio_features,) per-column mean of the training audio; with
            `audio_variance`, adds an ``audio_normalization`` layer in front of the audio
            branch (not counted in the table totals).
        audio_variance: Optional (audio_features,) per-column variance of the training audio.
        utterance_normalization: Also normalize each coefficient to zero mean and unit
            variance over the 39 frames of every utterance (cepstral mean and variance
            normalization, which removes a speaker's constant channel and level; part of the
            model, so it applies at inference too). Adds no parameters.
        name: Model name; default ``f"model{depth}_{audio}"`` (``..._backbone`` without top).

    Returns:
        A functional `keras.Model` with inputs ``image`` (N, 28, 28, 1) and ``audio``
        (N, audio_features), float32, and output (N, num_classes) probabilities (or the
        features dict without top).

    Raises:
        ValueError: for a depth outside 1..4, an unknown `audio`, a `width` <= 0, a `dropout`
            outside [0, 1), non-positive `lstm_units` / `num_classes`, or `audio_features`
            other than 507 / 1560.

    Reference:
        Nippani Ravi, Tables 1-4 (Models 1-4); Tseng, Table 3 (the LSTM audio encoder).
    """
    check_choice("depth", depth, tuple(LATE_FUSION_TABLES))
    check_choice("audio", audio, AUDIO_ENCODERS)
    blocks.check_width_and_dropout(width, dropout)
    for arg, value in (("lstm_units", lstm_units), ("num_classes", num_classes)):
        if not (isinstance(value, (int, np.integer)) and value > 0):
            raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
    table = LATE_FUSION_TABLES[depth]
    default_name = f"model{depth}_{audio}"
    inputs = model_inputs(audio_features)
    image = _branch(inputs["image"], table["image"], prefix="image", kernel_size=3, padding="same",
                    width=width, dropout=dropout)
    speech = speech_input(inputs["audio"], audio_mean=audio_mean, audio_variance=audio_variance,
                          utterance_normalization=utterance_normalization)
    if audio == "conv1d":
        speech = layers.Reshape((audio_features, 1), name="audio_reshape")(speech)
        speech = _branch(speech, table["audio"], prefix="audio", kernel_size=2, padding="valid",
                         width=width, dropout=dropout)
    else:
        speech = audio_frames(speech, name="audio_reshape")
        speech = blocks.lstm_encoder(speech, lstm_units, name="audio_lstm")
        speech = _branch(speech, [("dense", 64)], prefix="audio", kernel_size=None, padding=None,
                         width=width, dropout=dropout)
    features = {"image": image, "audio": speech}
    if not include_top:
        return make_backbone(inputs, features, name=name or f"{default_name}_backbone")

    def head(features):
        return heads.late_fusion_head(features, fusion_units=table["fusion"], width=width, num_classes=num_classes,
                                      classifier_activation=classifier_activation)

    return with_head(make_backbone(inputs, features), head, name=name or default_name)


for _depth, _total in zip(LATE_FUSION_TABLES, (1_869_454, 6_766_478, 1_344_654, 2_504_270)):
    register_model(f"model{_depth}", modalities=("image", "audio"), source=f"Nippani Ravi, Table {_depth}",
                   paper_params=_total,
                   description=f"Nippani Ravi's Model {_depth}: Conv2D image + Conv1D MFCC, late fusion",
                   depth=_depth, audio="conv1d")(build_model)
    register_model(f"model{_depth}_lstm", modalities=("image", "audio"),
                   source=f"Nippani Ravi, Table {_depth}; Tseng, Table 3",
                   description=f"Model {_depth} with Tseng's 2-layer LSTM(64) audio encoder",
                   depth=_depth, audio="lstm")(build_model)
