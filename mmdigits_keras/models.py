"""Model builders: seed 000's late-fusion Models 1-4 and their LSTM-audio variants.

Every builder takes the dict input ``{"image": (N, 28, 28, 1) float32, "audio": (N, 507)
float32}`` and returns (N, num_classes) softmax probabilities from a plain functional
`keras.Model` of built-in layers, so `.keras` files load without custom objects.
"""

from __future__ import annotations

import numpy as np
import keras
from keras import layers

from mmdigits_keras import blocks
from mmdigits_keras.data import IMAGE_SHAPE
from mmdigits_keras.features import AUDIO_WIDTHS, NUM_FEATURES, NUM_FRAMES

AUDIO_ENCODERS = ("conv1d", "lstm")

# Seed 000, Tables 1-4, layer for layer. ("conv", f): conv + BN; ("pool",); ("drop",);
# ("dense", u): Dense + BN; each branch then flattens (before its first dense) and ends in a
# num_classes-unit Dense; the fusion stack is Dense + BN layers, then the softmax.
SEED000_TABLES = {
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


def _branch(x, ops, *, prefix, kernel_size, padding, width, dropout, num_classes):
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
    # A hidden layer of the whole network, hence ReLU like the others (DESIGN.md).
    return layers.Dense(num_classes, activation="relu", name=f"{prefix}_output")(x)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")


def check_audio_features(audio_features):
    """Raises ValueError unless `audio_features` is 507 (MFCC) or 1560 (log-mel)."""
    if audio_features not in AUDIO_WIDTHS:
        raise ValueError(f"`audio_features` must be one of {list(AUDIO_WIDTHS)} (39 frames x 13 MFCC or 40 "
                         f"log-mel values). Received: audio_features={audio_features!r}")


def model_inputs(audio_features=NUM_FEATURES):
    """Returns the two named Inputs: ``image`` (28, 28, 1) and ``audio`` (audio_features,)."""
    check_audio_features(audio_features)
    return {
        "image": keras.Input(shape=IMAGE_SHAPE, name="image"),
        "audio": keras.Input(shape=(audio_features,), name="audio"),
    }


def audio_frames(audio, *, name="audio_frames"):
    """(batch, 39 * k) -> (batch, 39 frames, k values per frame)."""
    return layers.Reshape((NUM_FRAMES, audio.shape[-1] // NUM_FRAMES), name=name)(audio)


def audio_normalization(audio, *, audio_mean=None, audio_variance=None):
    """Standardizes the (N, 507) audio tensor with fixed per-column statistics, if given.

    The statistics are fitted on training rows only (see `training.fit_audio_statistics`) and
    live in the layer's config, so a saved model predicts on raw loader output.
    """
    if audio_mean is None and audio_variance is None:
        return audio
    if audio_mean is None or audio_variance is None:
        raise ValueError("`audio_mean` and `audio_variance` must be given together")
    width = audio.shape[-1]
    mean = np.asarray(audio_mean, dtype=np.float32).reshape(width)
    variance = np.asarray(audio_variance, dtype=np.float32).reshape(width)
    return layers.Normalization(mean=mean, variance=variance, name="audio_normalization")(audio)


def utterance_normalize(audio):
    """Per-utterance cepstral mean and variance normalization: each of the k values per frame
    to zero mean and unit variance over the 39 frames of its utterance, (N, 39 * k) -> same.

    Removes a speaker's constant channel and level; adds no parameters (layers
    ``audio_utterance_frames``, ``audio_utterance_norm``, ``audio_utterance_flat``).
    """
    x = audio_frames(audio, name="audio_utterance_frames")
    x = layers.LayerNormalization(axis=1, center=False, scale=False, name="audio_utterance_norm")(x)
    return layers.Flatten(name="audio_utterance_flat")(x)


def build_model(
    depth=2,
    *,
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
    """Builds Model `depth` of seed 000: an image CNN and an audio encoder fused late.

    With the defaults, ``build_model(depth=k).count_params()`` equals seed 000's table totals:
    1,869,454 / 6,766,478 / 1,344,654 / 2,504,270 for k = 1..4.

    Args:
        depth: Which of seed 000's Models (1..4). Model 2, the paper's final model, is the
            default; Model 3 has a shallower image branch than Model 2, as in the paper.
        audio: ``"conv1d"`` (the table's Conv1D branch over (507, 1), kernel 2) or
            ``"lstm"`` (seed 001's 2-layer LSTM encoder over (39 frames, 13 coefficients),
            then Dense(64) + BN and the 10-unit output).
        width: Multiplier on every conv filter count and hidden Dense width (> 0); 1.0
            reproduces the tables. The 10-unit branch outputs are not scaled.
        dropout: Rate of every Dropout layer, in [0, 1) (the tables list the layers, not
            the rates).
        lstm_units: Units of each LSTM layer when ``audio="lstm"`` (seed 001: 64).
        num_classes: Number of classes (output units of each branch and of the model).
        classifier_activation: Activation of the final layer (``"softmax"`` or None for
            logits).
        audio_features: Values per audio row: 507 (39 x 13 MFCC, the default) or 1560
            (39 x 40 log-mel, from ``mmdigits data build --features logmel``).
        audio_mean: Optional (audio_features,) per-column mean of the training audio; with
            `audio_variance`, adds an ``audio_normalization`` layer in front of the audio
            branch (not counted in the table totals).
        audio_variance: Optional (507,) per-column variance of the training audio.
        utterance_normalization: Also normalize each coefficient to zero mean and unit
            variance over the 39 frames of every utterance (cepstral mean and variance
            normalization, which removes a speaker's constant channel and level; part of the
            model, so it applies at inference too). Adds no parameters.
        name: Model name; default ``f"model{depth}_{audio}"``.

    Returns:
        A functional `keras.Model` with inputs ``image`` (N, 28, 28, 1) and ``audio``
        (N, audio_features),
        float32, and output (N, num_classes) probabilities.

    Raises:
        ValueError: for a depth outside 1..4, an unknown `audio`, a `width` <= 0, a `dropout`
            outside [0, 1), non-positive `lstm_units` / `num_classes`, or `audio_features`
            other than 507 / 1560.

    Reference:
        Seed 000, Tables 1-4 (Models 1-4); seed 001, Table 3 (the LSTM audio encoder).
    """
    _check_choice("depth", depth, tuple(SEED000_TABLES))
    _check_choice("audio", audio, AUDIO_ENCODERS)
    if not width > 0:
        raise ValueError(f"`width` must be > 0. Received: width={width!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    for arg, value in (("lstm_units", lstm_units), ("num_classes", num_classes)):
        if not (isinstance(value, (int, np.integer)) and value > 0):
            raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
    table = SEED000_TABLES[depth]
    inputs = model_inputs(audio_features)

    image = _branch(inputs["image"], table["image"], prefix="image", kernel_size=3, padding="same",
                    width=width, dropout=dropout, num_classes=num_classes)

    audio_x = audio_normalization(inputs["audio"], audio_mean=audio_mean, audio_variance=audio_variance)
    if utterance_normalization:
        audio_x = utterance_normalize(audio_x)
    if audio == "conv1d":
        audio_x = layers.Reshape((audio_features, 1), name="audio_reshape")(audio_x)
        audio_x = _branch(audio_x, table["audio"], prefix="audio", kernel_size=2, padding="valid",
                          width=width, dropout=dropout, num_classes=num_classes)
    else:
        audio_x = audio_frames(audio_x, name="audio_reshape")
        audio_x = blocks.lstm_encoder(audio_x, lstm_units, name="audio_lstm")
        audio_x = _branch(audio_x, [("dense", 64)], prefix="audio", kernel_size=None, padding=None,
                          width=width, dropout=dropout, num_classes=num_classes)

    # Seed 000 concatenates the audio branch's 10 outputs before the image branch's.
    x = layers.Concatenate(name="fusion_concat")([audio_x, image])
    for i, units in enumerate(table["fusion"], start=1):
        x = blocks.dense_bn(x, blocks.scaled(units, width), name=f"fusion_dense{i}")
    outputs = layers.Dense(num_classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name=name or f"model{depth}_{audio}")
