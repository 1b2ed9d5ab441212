"""The 1-D CNN fusion model (the Multimodal-Deep-Learning report's FusionModel): the HybridNet image CNN and a 1-D CNN
over the speech frames, fused by one Dense layer."""

from __future__ import annotations

from keras import layers

from mmdigits_keras.data.constants import NUM_FEATURES
from mmdigits_keras.models import blocks, heads
from mmdigits_keras.models.backbone import make_backbone, with_head
from mmdigits_keras.models.hybridnet import cnn_encoder
from mmdigits_keras.models.preprocessing import audio_frames, model_inputs, speech_input
from mmdigits_keras.models.registry import register_model


def audio_conv1d_encoder(audio, *, prefix="audio", width=1.0):
    """The Multimodal-Deep-Learning report's AudioEncoder, a 1-D CNN over time: ConvBlocks of 64
    and 128 filters (kernel 3) with pooling, global average pooling, Dense(128) + ReLU -> (N, 128).
    (The report names the parts, not their sizes; these follow Tseng's widths.)"""
    x = audio_frames(audio, name=f"{prefix}_frames")
    x = blocks.conv_block(x, blocks.scaled(64, width), name=f"{prefix}_conv1")
    x = layers.MaxPooling1D(2, name=f"{prefix}_pool1")(x)
    x = blocks.conv_block(x, blocks.scaled(128, width), name=f"{prefix}_conv2")
    x = layers.GlobalAveragePooling1D(name=f"{prefix}_gap")(x)
    return layers.Dense(blocks.scaled(128, width), activation="relu", name=f"{prefix}_dense1")(x)


@register_model("fusion_1dcnn", modalities=("image", "audio"), source="the Multimodal-Deep-Learning report",
                description="FusionModel: image CNN + 1-D CNN speech encoder + one fusion layer")
def build_fusion_1dcnn(*, include_top=True, width=1.0, dropout=0.3, num_classes=10, classifier_activation="softmax",
                       audio_features=NUM_FEATURES, audio_mean=None, audio_variance=None,
                       utterance_normalization=False, name=None):
    """FusionModel: Tseng's image CNN with dropout + a 1-D CNN audio encoder + a fusion layer
    (the Multimodal-Deep-Learning report).

    Args:
        include_top: True: the classifier; False: the backbone (features dict, 128 + 128).
        width: Multiplier (> 0) on every filter count and hidden width.
        dropout: Rate of the fusion layer's dropout, in [0, 1) (the Multimodal-Deep-Learning report: 0.3).
        num_classes, classifier_activation, audio_features, audio_mean, audio_variance,
        utterance_normalization, name: as in `build_hybrid_cnn`.

    Returns:
        A functional `keras.Model` (inputs ``image``, ``audio``; (N, num_classes) probabilities),
        or the backbone without top.

    Raises:
        ValueError: a `width` <= 0, a `dropout` outside [0, 1), or bad `audio_features`.
    """
    blocks.check_width_and_dropout(width, dropout)
    inputs = model_inputs(audio_features)
    speech = speech_input(inputs["audio"], audio_mean=audio_mean, audio_variance=audio_variance,
                          utterance_normalization=utterance_normalization)
    features = {"image": cnn_encoder(inputs["image"], prefix="image", width=width),
                "audio": audio_conv1d_encoder(speech, width=width)}
    if not include_top:
        return make_backbone(inputs, features, name=name or "fusion_1dcnn_backbone")

    def head(f):
        return heads.fusion_layer_head(f, width=width, dropout=dropout, num_classes=num_classes,
                                       classifier_activation=classifier_activation)

    return with_head(make_backbone(inputs, features), head, name=name or "fusion_1dcnn")
