"""Backbones and tasks (keras-hub's Backbone/Task, keras.applications' ``include_top``).

A *backbone* is a functional `keras.Model` from the two named inputs to a dict of named
features, one per modality it looks at: ``{"image": (N, d_image), "audio": (N, d_audio)}``
(unimodal models: one of them). A *task model* is ``keras.Model(inputs, head(backbone(inputs)))``:
the backbone is nested as one layer, so a saved ``.keras`` file keeps it and `get_backbone`
finds it again by structure, never by layer names.
"""

from __future__ import annotations

import keras

BACKBONE_NAME = "backbone"
MODALITIES = ("image", "audio")


def make_backbone(inputs, features, *, name=BACKBONE_NAME):
    """Wraps feature tensors as a backbone model.

    Args:
        inputs: dict ``{"image": Input, "audio": Input}`` (`model_inputs`).
        features: dict modality -> (N, d) tensor; keys from ``("image", "audio")``.
        name: Model name.

    Returns:
        A functional `keras.Model` with the dict of `features` as outputs (ordered image, audio).
    """
    ordered = {m: features[m] for m in MODALITIES if m in features}
    return keras.Model(inputs=inputs, outputs=ordered, name=name)


def with_head(backbone, head, *, name):
    """A task model: `backbone` nested as one layer, then `head` (a tensor-in/tensor-out function
    of the features dict) on its outputs.

    Returns:
        A functional `keras.Model` with the backbone's inputs and the head's output.
    """
    inputs = {key: keras.Input(shape=tensor.shape[1:], name=key) for key, tensor in backbone.input.items()}
    return keras.Model(inputs=inputs, outputs=head(backbone(inputs)), name=name)


def get_backbone(model):
    """The backbone nested in a task model (the one layer of it that is itself a `keras.Model`);
    a backbone is returned as it is.

    Raises:
        ValueError: `model` holds no backbone: a model saved by mmdigits_keras 0.1.0 (flat graph).
            Retrain it with `mmdigits train` to use it where features are needed (retrieval
            ``--init``, report embeddings); it still predicts and submits as it is.
    """
    if isinstance(model.output, dict) and set(model.output) <= set(MODALITIES):
        return model
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"model {model.name!r} has no backbone (saved by mmdigits_keras 0.1.0?); retrain it "
                         f"with `mmdigits train` to use its features (it still predicts and submits as it is)")
    return nested[0]


def modalities_of(model):
    """The modalities a task model or backbone looks at, e.g. ``("image", "audio")``."""
    return tuple(get_backbone(model).output)


def feature_extractor(model):
    """A model from the inputs of task model `model` to its features: the backbone's (``image``,
    ``audio``) and, for fusion models, ``fused``: what the final classification layer receives.

    Returns:
        A functional `keras.Model` sharing `model`'s layers and weights, with dict outputs of
        (N, d) float32 arrays.

    Raises:
        ValueError: `model` has no backbone (see `get_backbone`).
    """
    backbone = get_backbone(model)
    if backbone is model:
        return model
    # A second call of the shared backbone on the task model's inputs: same weights, public API.
    features = dict(backbone(model.input))
    if len(features) > 1:
        features["fused"] = model.layers[-1].input
    return keras.Model(inputs=model.input, outputs=features, name=f"{model.name}_features")
