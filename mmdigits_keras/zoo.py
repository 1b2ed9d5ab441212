"""The other papers' models: seed 001's ImageNet / AudioNet / HybridNet family and seed 003's
FusionModel. Every builder takes the same dict input as `build_model` (``image`` and ``audio``)
so that all models train, tune and submit through the same commands; unimodal models leave the
other input unused.
"""

from __future__ import annotations

import keras
from keras import layers

from mmdigits_keras import blocks
from mmdigits_keras.features import NUM_FEATURES
from mmdigits_keras.models import audio_frames, audio_normalization, model_inputs, utterance_normalize


def _cnn_encoder(x, *, prefix):
    """Seed 001's CNN encoder (Tables 1, 2, 4): ConvBlocks of 32 and 64 filters with 2x2 max
    pooling, dropout 0.25, Dense(128) + ReLU, dropout 0.5 -> (N, 128)."""
    x = blocks.conv_block(x, 32, name=f"{prefix}_conv1")
    x = layers.MaxPooling2D(2, name=f"{prefix}_pool1")(x)
    x = blocks.conv_block(x, 64, name=f"{prefix}_conv2")
    x = layers.MaxPooling2D(2, name=f"{prefix}_pool2")(x)
    x = layers.Dropout(0.25, name=f"{prefix}_dropout1")(x)
    x = layers.Flatten(name=f"{prefix}_flatten")(x)
    x = layers.Dense(128, activation="relu", name=f"{prefix}_dense1")(x)
    return layers.Dropout(0.5, name=f"{prefix}_dropout2")(x)


def image_encoder(image, *, prefix="image"):
    """Seed 001, Table 1 / 4: the CNN encoder on (N, 28, 28, 1) -> (N, 128)."""
    return _cnn_encoder(image, prefix=prefix)


def audio_cnn_encoder(audio, *, prefix="audio"):
    """Seed 001, Table 2 / 4: the same CNN encoder on the (39 frames x k) features as a
    one-channel image -> (N, 128)."""
    x = audio_frames(audio, name=f"{prefix}_frames")
    x = layers.Reshape((*x.shape[1:], 1), name=f"{prefix}_image")(x)
    return _cnn_encoder(x, prefix=prefix)


def audio_lstm_encoder(audio, *, units=64, dense=64, dropout=0.0, prefix="audio"):
    """Seed 001, Table 3 / 5: two LSTM(64) layers over the 39 frames, then Dense + ReLU
    (64 in AudioNet_LSTM, 128 with dropout 0.25 in HybridNet_CNN_LSTM) -> (N, dense)."""
    x = audio_frames(audio, name=f"{prefix}_frames")
    x = blocks.lstm_encoder(x, units, name=f"{prefix}_lstm")
    x = layers.Dense(dense, activation="relu", name=f"{prefix}_dense1")(x)
    return blocks.dropout(x, dropout, name=f"{prefix}_dropout1")


def audio_conv1d_encoder(audio, *, prefix="audio"):
    """Seed 003's AudioEncoder, a 1-D CNN over time: ConvBlocks of 64 and 128 filters (kernel 3)
    with pooling, global average pooling, Dense(128) + ReLU -> (N, 128). (Seed 003 names the
    parts, not their sizes; these follow seed 001's widths.)"""
    x = audio_frames(audio, name=f"{prefix}_frames")
    x = blocks.conv_block(x, 64, name=f"{prefix}_conv1")
    x = layers.MaxPooling1D(2, name=f"{prefix}_pool1")(x)
    x = blocks.conv_block(x, 128, name=f"{prefix}_conv2")
    x = layers.GlobalAveragePooling1D(name=f"{prefix}_gap")(x)
    return layers.Dense(128, activation="relu", name=f"{prefix}_dense1")(x)


def _classifier(x, *, num_classes, classifier_activation):
    return layers.Dense(num_classes, activation=classifier_activation, name="predictions")(x)


def _hybrid_head(image, audio, *, num_classes, classifier_activation):
    """Seed 001, Table 6: concat (256) -> Dense(128) + BN + ReLU -> dropout 0.25 -> classes."""
    x = layers.Concatenate(name="fusion_concat")([image, audio])
    x = layers.Dense(128, name="fusion_dense1")(x)
    x = layers.BatchNormalization(momentum=blocks.BN_MOMENTUM, name="fusion_dense1_bn")(x)
    x = layers.ReLU(name="fusion_dense1_relu")(x)
    x = layers.Dropout(0.25, name="fusion_dropout1")(x)
    return _classifier(x, num_classes=num_classes, classifier_activation=classifier_activation)


def _build(kind, *, num_classes=10, classifier_activation="softmax", audio_features=NUM_FEATURES,
           audio_mean=None, audio_variance=None, utterance_normalization=False, name=None):
    inputs = model_inputs(audio_features)
    audio = inputs["audio"]
    if kind != "image_cnn":
        audio = audio_normalization(audio, audio_mean=audio_mean, audio_variance=audio_variance)
        if utterance_normalization:
            audio = utterance_normalize(audio)
    head = dict(num_classes=num_classes, classifier_activation=classifier_activation)
    if kind == "image_cnn":
        outputs = _classifier(image_encoder(inputs["image"]), **head)
    elif kind == "audio_cnn":
        outputs = _classifier(audio_cnn_encoder(audio), **head)
    elif kind == "audio_lstm":
        outputs = _classifier(audio_lstm_encoder(audio), **head)
    elif kind == "hybrid_cnn":
        outputs = _hybrid_head(image_encoder(inputs["image"]), audio_cnn_encoder(audio), **head)
    elif kind == "hybrid_cnn_lstm":
        encoded = audio_lstm_encoder(audio, dense=128, dropout=0.25)
        outputs = _hybrid_head(image_encoder(inputs["image"]), encoded, **head)
    else:  # fusion_1dcnn
        x = layers.Concatenate(name="fusion_concat")([image_encoder(inputs["image"]), audio_conv1d_encoder(audio)])
        x = layers.Dense(128, activation="relu", name="fusion_dense1")(x)
        x = layers.Dropout(0.3, name="fusion_dropout1")(x)
        outputs = _classifier(x, **head)
    return keras.Model(inputs=inputs, outputs=outputs, name=name or kind)


_COMMON_ARGS = """
    Args:
        num_classes: Number of output classes.
        classifier_activation: Final activation (``"softmax"``, or None for logits).
        audio_features: 507 (39 x 13 MFCC) or 1560 (39 x 40 log-mel) values per audio row.
        audio_mean: Optional (audio_features,) training-audio mean for the built-in
            standardization (with `audio_variance`); ignored by image-only models.
        audio_variance: Optional (audio_features,) training-audio variance.
        utterance_normalization: Per-utterance mean/variance normalization of the speech
            features (see `build_model`); off by default, as in seed 001.
        name: Model name.

    Returns:
        A functional `keras.Model`: inputs ``image`` (N, 28, 28, 1) and ``audio``
        (N, audio_features) float32, output (N, num_classes) probabilities.

    Raises:
        ValueError: `audio_features` other than 507 / 1560, or only one of the statistics.
"""


def _builder(kind, summary):
    def build(**kwargs):
        return _build(kind, **kwargs)

    build.__name__ = build.__qualname__ = f"build_{kind}"
    build.__doc__ = summary + "\n" + _COMMON_ARGS
    return build


build_image_cnn = _builder("image_cnn", "ImageNet_CNN: image only (seed 001, Table 1; 99.13% in its Table 7).")
build_audio_cnn = _builder("audio_cnn", "AudioNet_CNN: 2-D convolutions over the MFCC as a 39x13 image, audio only "
                                        "(seed 001, Table 2; 97.75%).")
build_audio_lstm = _builder("audio_lstm", "AudioNet_LSTM: 2-layer LSTM(64) over the 39 frames, audio only "
                                          "(seed 001, Table 3; 97.18%).")
build_hybrid_cnn = _builder("hybrid_cnn", "HybridNet_CNN: image CNN + audio CNN encoders, Table 6 classifier "
                                          "(seed 001, Tables 4 and 6; 99.74%).")
build_hybrid_cnn_lstm = _builder("hybrid_cnn_lstm", "HybridNet_CNN_LSTM: image CNN + audio LSTM encoders "
                                                    "(seed 001, Tables 5 and 6; 99.36%).")
build_fusion_1dcnn = _builder("fusion_1dcnn", "FusionModel: image CNN with dropout + 1-D CNN audio encoder + a "
                                              "fusion layer (seed 003).")

BUILDERS = {
    "image_cnn": build_image_cnn,
    "audio_cnn": build_audio_cnn,
    "audio_lstm": build_audio_lstm,
    "hybrid_cnn": build_hybrid_cnn,
    "hybrid_cnn_lstm": build_hybrid_cnn_lstm,
    "fusion_1dcnn": build_fusion_1dcnn,
}
