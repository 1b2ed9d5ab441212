"""The HybridNet family (Tseng's ImageNet / AudioNet / HybridNet): CNN and LSTM encoders
per modality, a linear head for the unimodal models and Table 6's classifier for the hybrids,
declared as data (`HYBRIDNET_MODELS`).

Every builder takes the same dict input as `build_model` (``image`` and ``audio``) so all
models train, tune and submit through the same commands; unimodal models leave the other
input unused.
"""

from __future__ import annotations

from keras import layers

from mmdigits_keras.data.constants import NUM_FEATURES
from mmdigits_keras.models import blocks, heads
from mmdigits_keras.models.backbone import make_backbone, with_head
from mmdigits_keras.models.preprocessing import audio_frames, model_inputs, speech_input
from mmdigits_keras.models.registry import register_model


def cnn_encoder(x, *, prefix, width=1.0, dropout=0.5):
    """Tseng's CNN encoder (Tables 1, 2, 4): ConvBlocks of 32 and 64 filters with 2x2 max
    pooling, dropout 0.25, Dense(128) + ReLU, dropout `dropout` (0.5 in the tables) -> (N, 128),
    all sizes times `width`."""
    x = blocks.conv_block(x, blocks.scaled(32, width), name=f"{prefix}_conv1")
    x = layers.MaxPooling2D(2, name=f"{prefix}_pool1")(x)
    x = blocks.conv_block(x, blocks.scaled(64, width), name=f"{prefix}_conv2")
    x = layers.MaxPooling2D(2, name=f"{prefix}_pool2")(x)
    x = layers.Dropout(0.25, name=f"{prefix}_dropout1")(x)
    x = layers.Flatten(name=f"{prefix}_flatten")(x)
    x = layers.Dense(blocks.scaled(128, width), activation="relu", name=f"{prefix}_dense1")(x)
    return blocks.dropout(x, dropout, name=f"{prefix}_dropout2")


def audio_cnn_encoder(audio, *, prefix="audio", width=1.0, dropout=0.5):
    """Tseng, Table 2 / 4: the CNN encoder on the (39 frames x k) features as a one-channel
    image -> (N, 128)."""
    x = audio_frames(audio, name=f"{prefix}_frames")
    x = layers.Reshape((*x.shape[1:], 1), name=f"{prefix}_image")(x)
    return cnn_encoder(x, prefix=prefix, width=width, dropout=dropout)


def audio_lstm_encoder(audio, *, units=64, dense=64, dropout=0.0, prefix="audio"):
    """Tseng, Table 3 / 5: two LSTM layers over the 39 frames, then Dense + ReLU (64 in
    AudioNet_LSTM, 128 with dropout 0.25 in HybridNet_CNN_LSTM) -> (N, dense)."""
    x = audio_frames(audio, name=f"{prefix}_frames")
    x = blocks.lstm_encoder(x, units, name=f"{prefix}_lstm")
    x = layers.Dense(dense, activation="relu", name=f"{prefix}_dense1")(x)
    return blocks.dropout(x, dropout, name=f"{prefix}_dropout1")


# Tseng's five models as data: the encoder per modality (None: the model does not look at
# it; "cnn": `cnn_encoder` / `audio_cnn_encoder`; "lstm": `audio_lstm_encoder` with its Dense
# width and dropout), with the table each reproduces. One head per kind: linear for the unimodal
# models, Table 6's classifier for the hybrids.
HYBRIDNET_MODELS = {
    "image_cnn": dict(image="cnn", audio=None, source="Tseng, Table 1",
                      description="ImageNet_CNN: image only (99.13% in Tseng's Table 7)"),
    "audio_cnn": dict(image=None, audio="cnn", source="Tseng, Table 2",
                      description="AudioNet_CNN: 2-D convolutions over the MFCC as a 39x13 image (97.75%)"),
    "audio_lstm": dict(image=None, audio="lstm", audio_dense=64, audio_dropout=0.0, source="Tseng, Table 3",
                       description="AudioNet_LSTM: 2-layer LSTM(64) over the 39 frames (97.18%)"),
    "hybrid_cnn": dict(image="cnn", audio="cnn", source="Tseng, Tables 4 and 6",
                       description="HybridNet_CNN: image CNN + audio CNN encoders, Table 6 classifier (99.74%)"),
    "hybrid_cnn_lstm": dict(image="cnn", audio="lstm", audio_dense=128, audio_dropout=0.25,
                            source="Tseng, Tables 5 and 6",
                            description="HybridNet_CNN_LSTM: image CNN + audio LSTM encoders (99.36%)"),
}


def _encode(kind, inputs, *, width, dropout, audio_mean, audio_variance, utterance_normalization):
    """The features dict of `kind`'s backbone: the encoders `HYBRIDNET_MODELS` names for it."""
    spec = HYBRIDNET_MODELS[kind]
    speech = speech_input(inputs["audio"], audio_mean=audio_mean, audio_variance=audio_variance,
                          utterance_normalization=utterance_normalization)
    features = {}
    if spec["image"] == "cnn":
        features["image"] = cnn_encoder(inputs["image"], prefix="image", width=width, dropout=dropout)
    if spec["audio"] == "cnn":
        features["audio"] = audio_cnn_encoder(speech, width=width, dropout=dropout)
    elif spec["audio"] == "lstm":
        features["audio"] = audio_lstm_encoder(speech, units=blocks.scaled(64, width),
                                               dense=blocks.scaled(spec["audio_dense"], width),
                                               dropout=spec["audio_dropout"])
    return features


def _build(kind, *, include_top=True, width=1.0, dropout=0.5, num_classes=10, classifier_activation="softmax",
           audio_features=NUM_FEATURES, audio_mean=None, audio_variance=None, utterance_normalization=False,
           name=None):
    blocks.check_width_and_dropout(width, dropout)
    inputs = model_inputs(audio_features)
    features = _encode(kind, inputs, width=width, dropout=dropout, audio_mean=audio_mean,
                       audio_variance=audio_variance, utterance_normalization=utterance_normalization)
    if not include_top:
        return make_backbone(inputs, features, name=name or f"{kind}_backbone")
    top = dict(num_classes=num_classes, classifier_activation=classifier_activation)
    if len(features) == 1:
        def head(f):
            return heads.linear_head(f, **top)
    else:
        def head(f):
            return heads.hybrid_head(f, width=width, **top)
    return with_head(make_backbone(inputs, features), head, name=name or kind)


COMMON_ARGS = """
    Args:
        include_top: True: the classifier; False: the backbone (features dict).
        width: Multiplier (> 0) on every filter count and hidden width (1.0: the tables).
        dropout: Rate of the dropout after each CNN encoder's Dense(128), in [0, 1) (tables:
            0.5); the other dropouts keep their table rates.
        num_classes: Number of output classes.
        classifier_activation: Final activation (``"softmax"``, or None for logits).
        audio_features: 507 (39 x 13 MFCC) or 1560 (39 x 40 log-mel) values per audio row.
        audio_mean: Optional (audio_features,) training-audio mean for the built-in
            standardization (with `audio_variance`); unused by image-only models.
        audio_variance: Optional (audio_features,) training-audio variance.
        utterance_normalization: Per-utterance mean/variance normalization of the speech
            features (see `build_model`); off by default, as in Tseng.
        name: Model name.

    Returns:
        A functional `keras.Model`: inputs ``image`` (N, 28, 28, 1) and ``audio``
        (N, audio_features) float32, output (N, num_classes) probabilities; without top the
        features dict (128 values per modality at width 1).

    Raises:
        ValueError: a `width` <= 0, a `dropout` outside [0, 1), `audio_features` other than
            507 / 1560, or only one of the statistics.
"""

def _builder(kind):
    spec = HYBRIDNET_MODELS[kind]
    modalities = tuple(m for m in ("image", "audio") if spec[m])
    source, description = spec["source"], spec["description"]

    def build(*, include_top=True, width=1.0, dropout=0.5, num_classes=10, classifier_activation="softmax",
              audio_features=NUM_FEATURES, audio_mean=None, audio_variance=None, utterance_normalization=False,
              name=None):
        return _build(kind, include_top=include_top, width=width, dropout=dropout, num_classes=num_classes,
                      classifier_activation=classifier_activation, audio_features=audio_features,
                      audio_mean=audio_mean, audio_variance=audio_variance,
                      utterance_normalization=utterance_normalization, name=name)

    build.__name__ = build.__qualname__ = f"build_{kind}"
    build.__doc__ = f"{description} ({source}).\n{COMMON_ARGS}"
    return register_model(kind, modalities=modalities, source=source, description=description)(build)


build_image_cnn = _builder("image_cnn")
build_audio_cnn = _builder("audio_cnn")
build_audio_lstm = _builder("audio_lstm")
build_hybrid_cnn = _builder("hybrid_cnn")
build_hybrid_cnn_lstm = _builder("hybrid_cnn_lstm")
