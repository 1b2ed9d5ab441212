"""Ensembles: one functional model that averages the class probabilities of several trained
classifiers (a cross-validation run's fold models, or runs named together), so every command
that takes a model -- ``submit``, ``evaluate``, ``export`` -- takes an ensemble unchanged.

Built from built-in layers only (each member is a nested functional model, weighted by a
`Rescaling` layer, summed by `Add`), so an ensemble saves and loads in Keras's safe mode like
any model here.
"""

from __future__ import annotations

import keras
import numpy as np

from mmdigits_keras.data.constants import IMAGE_SHAPE


def _input_names(model):
    return [tensor.name for tensor in keras.tree.flatten(model.input)]


def check_weights(weights, count):
    """Normalized member weights: `weights` (non-negative, not all zero; one per member) divided
    by their sum, or equal weights when None.

    Returns:
        float64 (count,) summing to 1.

    Raises:
        ValueError: a count other than `count`, a negative or non-finite weight, or all zero.
    """
    if weights is None:
        return np.full(count, 1.0 / count)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(weights) != count:
        raise ValueError(f"`weights` must hold one weight per member ({count}). Received: {weights.tolist()}")
    if not np.all(np.isfinite(weights)) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"`weights` must be non-negative, finite and not all zero. Received: {weights.tolist()}")
    return weights / weights.sum()


def ensemble_model(members, *, weights=None, name="ensemble"):
    """One model whose output is the weighted mean of its members' class probabilities.

    Args:
        members: Trained classifiers (`keras.Model`), each taking inputs named ``image`` and/or
            ``audio`` and returning (N, num_classes) probabilities; at least one.
        weights: One non-negative weight per member (normalized to sum 1), or None for the
            plain mean.
        name: The model's name.

    Returns:
        A functional `keras.Model` taking ``{"image": (N, 28, 28, 1), "audio": (N, F)}``
        (float32; F the members' speech width) and returning (N, num_classes) float32
        probabilities; member k is the nested model ``member_k``.

    Raises:
        ValueError: no members, members that disagree on the number of classes or the speech
            width, or bad `weights` (see `check_weights`).
    """
    members = list(members)
    if not members:
        raise ValueError("an ensemble needs at least one member")
    weights = check_weights(weights, len(members))
    classes = {int(m.output.shape[-1]) for m in members}
    if len(classes) > 1:
        raise ValueError(f"ensemble members disagree on the number of classes: {sorted(classes)}")
    widths = {int(t.shape[-1]) for m in members for t in keras.tree.flatten(m.input) if t.name == "audio"}
    if len(widths) > 1:
        raise ValueError(f"ensemble members disagree on the speech features per row: {sorted(widths)}")
    inputs = {"image": keras.Input(IMAGE_SHAPE, name="image"),
              "audio": keras.Input((widths.pop() if widths else 507,), name="audio")}
    outputs = []
    for index, (member, weight) in enumerate(zip(members, weights), start=1):
        # A fresh functional wrapper gives each member a unique name (fold models share theirs).
        nested = keras.Model(member.input, member.output, name=f"member_{index}")
        used = {key: inputs[key] for key in _input_names(member)}
        outputs.append(keras.layers.Rescaling(float(weight), name=f"weight_{index}")(nested(used)))
    mean = outputs[0] if len(outputs) == 1 else keras.layers.Add(name="predictions")(outputs)
    return keras.Model(inputs, mean, name=name)
