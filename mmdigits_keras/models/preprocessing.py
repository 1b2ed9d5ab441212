"""The two named inputs and the speech preprocessing every backbone starts with.

Standardization and per-utterance normalization are layers of the model (fitted statistics in
their config), so a saved model predicts on raw loader output (docs/models.md).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from mmdigits_keras.data.constants import AUDIO_WIDTHS, IMAGE_SHAPE, NUM_FEATURES, NUM_FRAMES


def check_audio_features(audio_features):
    """Raises ValueError unless `audio_features` is 507 (MFCC) or 1560 (log-mel)."""
    if audio_features not in AUDIO_WIDTHS:
        raise ValueError(f"`audio_features` must be one of {list(AUDIO_WIDTHS)} (39 frames x 13 MFCC or 40 "
                         f"log-mel values). Received: audio_features={audio_features!r}")


def model_inputs(audio_features=NUM_FEATURES):
    """Returns the two named Inputs: ``image`` (28, 28, 1) and ``audio`` (audio_features,), float32."""
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

    The statistics are fitted on training rows only (`mmdigits_keras.data.fit_audio_statistics`)
    and live in the layer's config, so a saved model predicts on raw loader output.

    Raises:
        ValueError: only one of `audio_mean` / `audio_variance` given.
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
    ``audio_utterance_frames``, ``audio_utterance_norm``, ``audio_utterance_flat``). The
    normalization is instance normalization over the frames (`GroupNormalization` with one
    group per value): a `LayerNormalization` over the frame axis computes the same, but Keras's
    PyTorch backend (3.15) normalizes a non-trailing axis wrongly there.
    """
    x = audio_frames(audio, name="audio_utterance_frames")
    x = layers.GroupNormalization(groups=-1, axis=-1, center=False, scale=False, name="audio_utterance_norm")(x)
    return layers.Flatten(name="audio_utterance_flat")(x)


def speech_input(audio, *, audio_mean=None, audio_variance=None, utterance_normalization=False):
    """The speech preprocessing in front of every audio branch: optional standardization with
    training statistics, then optional per-utterance normalization. (N, k) -> (N, k)."""
    audio = audio_normalization(audio, audio_mean=audio_mean, audio_variance=audio_variance)
    return utterance_normalize(audio) if utterance_normalization else audio
