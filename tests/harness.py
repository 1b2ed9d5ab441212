"""One test harness for every registry model, as keras-hub's `TestCase.run_backbone_test` /
`run_task_test`: whatever family a model comes from, the same contract is checked the same way."""

import keras
import numpy as np
from conftest import layer_names

from mmdigits_keras.models import create_model, get_backbone, model_info
from mmdigits_keras.training import compile_model, get_recipe

# Names every layer of a registry model starts with: its inputs and branches, the fusion head,
# the classifier (keras.applications' "predictions"), and the nested backbone itself.
LAYER_PREFIXES = ("image", "audio", "fusion", "predictions")


def run_model_test(name, tmp_path, *, train_step=True):
    """Builds registry model `name` (with speech statistics) and checks: a nested backbone with
    one named feature per modality the registry says it reads, plus a head; the two named
    inputs and (N, 10) probabilities; every layer named by the package's scheme; a save and
    load in safe mode that predicts the same; with `train_step`, one training step with the
    plain recipe that changes the weights."""
    rng = np.random.default_rng(0)
    info = model_info(name)
    model = create_model(name, audio_mean=rng.normal(size=507), audio_variance=rng.uniform(0.5, 2, size=507))
    backbone = get_backbone(model)
    assert backbone is not model and tuple(backbone.output) == info.modalities
    assert all(len(tensor.shape) == 2 for tensor in backbone.output.values())  # (N, d) features
    assert 0 < model.count_params() - backbone.count_params() < model.count_params()  # a head of its own
    assert {tensor.name for tensor in model.inputs} == {"image", "audio"}
    names = [n for n in layer_names(model) if n not in {backbone.name}]
    assert all(n.startswith(LAYER_PREFIXES) for n in names), names

    inputs = {"image": rng.uniform(size=(4, 28, 28, 1)).astype("float32"),
              "audio": rng.normal(size=(4, 507)).astype("float32")}
    probabilities = model.predict(inputs, verbose=0)
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), probabilities, rtol=1e-5, atol=1e-6)
    assert loaded.count_params() == model.count_params()

    if not train_step:
        return
    compile_model(model, get_recipe("plain"), learning_rate=1e-3)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(inputs, np.arange(4), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
