"""A timm-style registry: named configurations of the builders.

``create_model(model_name, **overrides)`` is ``build_model(**{**MODEL_CONFIGS[name], **overrides})``.
"""

from __future__ import annotations

import fnmatch

from mmdigits_keras import zoo
from mmdigits_keras.models import build_model

MODEL_CONFIGS = {
    **{f"model{depth}": dict(depth=depth, audio="conv1d") for depth in (1, 2, 3, 4)},
    **{f"model{depth}_lstm": dict(depth=depth, audio="lstm") for depth in (1, 2, 3, 4)},
    **{name: {} for name in zoo.BUILDERS},  # seed 001's family and seed 003's FusionModel
}

BUILDERS = {**{name: build_model for name in MODEL_CONFIGS if name.startswith("model")}, **zoo.BUILDERS}

# Models that look at one modality only (the other input is accepted and left unused).
IMAGE_ONLY = ("image_cnn",)
AUDIO_ONLY = ("audio_cnn", "audio_lstm")


def list_models(pattern=None):
    """Returns the sorted registry names, optionally filtered by a shell-style `pattern`.

    Example: ``list_models("model*_lstm")`` -> ``["model1_lstm", ..., "model4_lstm"]``.
    """
    names = sorted(MODEL_CONFIGS)
    return names if pattern is None else fnmatch.filter(names, pattern)


def model_config(model_name):
    """Returns a copy of the builder arguments registered under `model_name`.

    Raises:
        ValueError: if `model_name` is not registered (the message lists the known names).
    """
    if model_name not in MODEL_CONFIGS:
        raise ValueError(f"`model_name` must be one of {list_models()}. Received: model_name={model_name!r}")
    return dict(MODEL_CONFIGS[model_name])


def create_model(model_name, /, **overrides):
    """Builds the registered model `model_name`, with keyword `overrides` of its arguments.

    Args:
        model_name: A name from `list_models()`, e.g. ``"model2"`` or ``"model2_lstm"``
            (positional, so the builder's own ``name=`` can be overridden too).
        **overrides: Builder keyword arguments that replace the registered ones
            (e.g. ``width=0.5``, ``name="m"``, ``audio_mean=..., audio_variance=...``).

    Returns:
        The `keras.Model` (see `build_model`).

    Raises:
        ValueError: an unknown `name`, or a bad argument value (from the builder).
    """
    config = model_config(model_name)
    return BUILDERS[model_name](**{**config, **overrides})
