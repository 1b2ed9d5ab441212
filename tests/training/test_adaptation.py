import keras
import numpy as np
import pytest

from mmdigits_keras.data import MultimodalDataset, load_kaggle
from mmdigits_keras.models import get_backbone
from mmdigits_keras.training import adapt_batch_normalization, load_trained_model


def _moving(model):
    backbone = get_backbone(model)
    return {layer.name: layer.moving_mean.numpy().copy() for graph in (backbone, model) for layer in graph.layers
            if isinstance(layer, keras.layers.BatchNormalization)}


def test_adabn_adapts_the_speech_path_only_and_standardizes_it(tiny_fusion_run):
    data, run = tiny_fusion_run
    rows = load_kaggle(data)
    shifted = MultimodalDataset(images=rows.images, audio=rows.audio * 3.0 + 2.0, labels=None, ids=rows.ids)
    model = load_trained_model(run)
    before = _moving(model)
    adapted = adapt_batch_normalization(model, shifted)
    after = _moving(model)
    assert set(adapted) == {"audio_conv1_bn", "audio_dense1_bn", "fusion_dense1_bn"}
    for name in before:
        assert np.array_equal(before[name], after[name]) == (name not in adapted), name
    # AdaBN's promise: on the adapted rows, the first speech BN layer outputs mean beta and
    # standard deviation |gamma| (shrunk by the layer's epsilon).
    layer = get_backbone(model).get_layer("audio_conv1_bn")
    output = keras.Model(get_backbone(model).input, layer.output).predict(shifted.inputs(), verbose=0)
    axes = tuple(range(output.ndim - 1))
    np.testing.assert_allclose(output.mean(axis=axes), layer.beta.numpy(), atol=1e-3)
    variance = layer.moving_variance.numpy()
    expected = np.abs(layer.gamma.numpy()) * np.sqrt(variance / (variance + layer.epsilon))
    np.testing.assert_allclose(output.std(axis=axes), expected, rtol=1e-2)


def test_adaptation_needs_rows(tiny_fusion_run):
    data, run = tiny_fusion_run
    empty = load_kaggle(data).subset(np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="at least one row"):
        adapt_batch_normalization(load_trained_model(run), empty)
