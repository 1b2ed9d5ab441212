"""The model registry (timm's ``@register_model``, keras-hub presets): one place records every
named model with its builder, arguments, modalities and source.

``create_model(name, **overrides)`` is ``builder(**{**config, **overrides})`` (timm's
``dict(model_args, **kwargs)``); ``include_top=False`` gives the backbone.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import inspect

from mmdigits_keras.utils.checks import check_choice

_REGISTRY = {}

# The course reports the models come from, by the short name `ModelInfo.source` cites them with
# (docs/models.md, "Sources", has the same table).
PAPERS = {
    "Nippani Ravi": 'P. S. Nippani Ravi, "Classification of Image and Audio Digits Dataset", Texas A&M University',
    "Tseng": 'M.-R. Tseng, "Homework 5" (ImageNet, AudioNet and HybridNet on the Written and Spoken Digits '
             'database), Texas A&M University',
    "Xia et al.": 'A. Xia, K. Kashyap, S. Persad, "Learning Digits via Audio-Visual Representations"',
    "the Multimodal-Deep-Learning report": '"Multimodal-Deep-Learning", a course report (its authors are not named)',
    "Pragadaraju and Shah": 'S. D. S. Pragadaraju, S. Shah, "Audio Classification Using Neural Networks", '
                            'University of Colorado Boulder',
}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of one model.

    Attributes:
        name: Registry name, e.g. ``"model2"``.
        builder: The builder function (keyword arguments, ``include_top``).
        config: The builder arguments this name fixes, e.g. ``{"depth": 2, "audio": "conv1d"}``.
        modalities: The inputs the model looks at: ``("image", "audio")``, ``("image",)`` or
            ``("audio",)`` (every model accepts both inputs).
        source: Paper (by its short name in `PAPERS`) and table, e.g. ``"Nippani Ravi, Table 2"``;
            `papers` gives the full citations.
        description: One line for listings.
        paper_params: The parameter total printed in the source, when it prints one.
    """

    name: str
    builder: object
    config: dict
    modalities: tuple
    source: str
    description: str
    paper_params: int | None = None

    @property
    def family(self):
        """The family, from the module of the builder: ``"late_fusion"`` (Models 1-4),
        ``"hybridnet"`` or ``"fusion_1dcnn"``; the paper is `source`."""
        return self.builder.__module__.rsplit(".", 1)[-1]

    @property
    def papers(self):
        """The full citations (authors, title) of the papers `source` names, from `PAPERS`."""
        return tuple(citation for short, citation in PAPERS.items() if short in self.source)

    @property
    def arguments(self):
        """The builder's keyword arguments (names), e.g. ``("depth", "include_top", "audio", ...)``."""
        return tuple(inspect.signature(self.builder).parameters)

    @property
    def defaults(self):
        """The arguments the model is built with when none are given: the builder's defaults
        updated with the registered `config`."""
        parameters = inspect.signature(self.builder).parameters.values()
        return {**{p.name: p.default for p in parameters if p.default is not p.empty}, **self.config}

    def count_params(self):
        """Parameters of the model with its registered arguments (built once, then cached)."""
        return _count_params(self.name)


def register_model(name, *, modalities, source, description, paper_params=None, **config):
    """Registers `builder` under `name` with fixed `config` arguments; use as a decorator.

    Raises:
        ValueError: `name` is registered already.
    """

    def register(builder):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered already")
        _REGISTRY[name] = ModelInfo(name=name, builder=builder, config=dict(config), modalities=tuple(modalities),
                                    source=source, description=description, paper_params=paper_params)
        return builder

    return register


def list_models(pattern=None, *, modality=None):
    """Sorted registry names, filtered by a shell-style `pattern` and by `modality`.

    Args:
        pattern: e.g. ``"model*_lstm"`` -> ``["model1_lstm", ..., "model4_lstm"]``.
        modality: ``"image"`` or ``"audio"``: only models that look at it; ``"both"``: only
            fusion models.

    Raises:
        ValueError: an unknown `modality`.
    """
    if modality not in (None, "image", "audio", "both"):
        raise ValueError(f"`modality` must be one of ['image', 'audio', 'both']. Received: modality={modality!r}")
    names = sorted(_REGISTRY) if pattern is None else fnmatch.filter(sorted(_REGISTRY), pattern)
    if modality == "both":
        return [n for n in names if len(_REGISTRY[n].modalities) == 2]
    return [n for n in names if modality is None or modality in _REGISTRY[n].modalities]


def model_info(model_name):
    """The `ModelInfo` registered under `model_name`.

    Raises:
        ValueError: `model_name` is not registered (the message lists the known names).
    """
    check_choice("model_name", model_name, list_models())
    return _REGISTRY[model_name]


def model_config(model_name):
    """A copy of the builder arguments registered under `model_name` (see `model_info`)."""
    return dict(model_info(model_name).config)


def create_model(model_name, /, *, include_top=True, **overrides):
    """Builds the registered model `model_name`, with keyword `overrides` of its arguments.

    Args:
        model_name: A name from `list_models()`, e.g. ``"model2"`` or ``"hybrid_cnn"``
            (positional, so the builder's own ``name=`` can be overridden too).
        include_top: False gives the backbone: outputs ``{"image": (N, d), "audio": (N, d)}``
            (unimodal models: one of them).
        **overrides: Builder keyword arguments that replace the registered ones
            (e.g. ``width=0.5``, ``name="m"``, ``audio_mean=..., audio_variance=...``).

    Returns:
        The `keras.Model`: inputs ``image`` (N, 28, 28, 1) and ``audio`` (N, 507) float32;
        output (N, num_classes) probabilities, or the features dict without top.

    Raises:
        ValueError: an unknown name, an argument the builder does not take, or a bad value.
    """
    info = model_info(model_name)
    unknown = sorted(set(overrides) - set(info.arguments))
    if unknown:
        raise ValueError(f"model {model_name!r} takes no argument(s) {unknown}; it takes {list(info.arguments)}")
    return info.builder(**{**info.config, **overrides}, include_top=include_top)


def create_backbone(model_name, /, **overrides):
    """``create_model(model_name, include_top=False, **overrides)``: the feature extractor."""
    return create_model(model_name, include_top=False, **overrides)


@functools.lru_cache(maxsize=None)
def _count_params(model_name):
    return int(create_model(model_name).count_params())
