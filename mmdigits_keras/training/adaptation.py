"""Transductive test-time adaptation (AdaBN): BatchNormalization statistics re-estimated on the
unlabelled rows to be predicted (Li et al., "Revisiting Batch Normalization For Practical
Domain Adaptation", ICLR workshop 2017). Off by default everywhere; `submit --adapt` asks for it.
"""

from __future__ import annotations

import keras
import numpy as np


def adapt_batch_normalization(model, dataset, *, modalities=("audio",), batch_size=512):
    """Replaces the moving mean and variance of `model`'s BatchNormalization layers with the
    statistics of `dataset`'s rows (AdaBN), in place.

    Each BatchNormalization layer is re-estimated from all rows, in the order of computation
    (each layer sees what its adapted predecessors produce). Only the layers that the given
    `modalities` reach change: the default adapts the speech branch (the domain that shifts
    between speakers and microphones) and the fusion layers after it; the image branch stays
    as trained.

    Args:
        model: A classifier built by this package (nested backbone allowed).
        dataset: The rows to adapt to (`MultimodalDataset`; labels are not used). Use a few
            hundred rows or more: the statistics of a handful are noisy.
        modalities: Inputs whose dependent BatchNormalization layers adapt (``"audio"``,
            ``"image"``).
        batch_size: Rows per forward pass while measuring.

    Returns:
        The names of the adapted layers (list of str).

    Raises:
        ValueError: `dataset` has no rows.
    """
    if len(dataset) == 0:
        raise ValueError("test-time adaptation needs at least one row")
    inputs = dataset.inputs()
    sample = {k: v[:32] for k, v in inputs.items()}
    adapted = []
    for graph in _graphs(model):  # the backbone first, then the head: the order of computation
        for layer in graph.layers:
            if not isinstance(layer, keras.layers.BatchNormalization):
                continue
            probe = keras.Model(graph.input, layer.input)
            if not any(_depends_on(probe, sample, modality) for modality in modalities):
                continue
            values = probe.predict(inputs, batch_size=batch_size, verbose=0)
            axes = tuple(range(values.ndim - 1))
            layer.moving_mean.assign(values.mean(axis=axes).astype(np.float32))
            layer.moving_variance.assign(values.var(axis=axes).astype(np.float32))
            adapted.append(layer.name)
    return adapted


def _graphs(model):
    """`model`'s nested functional models (depth first), then `model`."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _graphs(layer)
    yield model


def _depends_on(probe, sample, modality):
    """Whether the probe's output changes when input `modality` changes."""
    shifted = {**sample, modality: sample[modality] + 1.0}
    return not np.allclose(probe.predict(sample, verbose=0), probe.predict(shifted, verbose=0))
