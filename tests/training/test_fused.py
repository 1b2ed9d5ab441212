import keras
import numpy as np
import pytest
import tensorflow as tf

from mmdigits_keras.training import fused
from mmdigits_keras.training.fused import fused_batch_normalization


def batch_norm_model(shape, **options):
    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.9, name="bn", **options)(inputs))
    layer = model.get_layer("bn")
    rng = np.random.default_rng(1)
    layer.gamma.assign(rng.uniform(0.5, 1.5, shape[-1]))
    layer.beta.assign(rng.normal(size=shape[-1]))
    return model


def training_step(model, x, *, graph=False):
    """Output, gradients (input, gamma, beta) of a non-trivial loss, moving statistics after;
    `graph`: traced as `fit` runs it."""
    # Per-element weights: a loss linear in y per channel has a zero gamma gradient (normalized
    # values sum to zero), which would compare rounding noise.
    weights = tf.constant(np.random.default_rng(3).normal(size=x.shape).astype(np.float32))

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x, training=True)
            loss = tf.reduce_sum(tf.sin(y) * weights)
        return [y, *tape.gradient(loss, [x, *model.trainable_weights])]

    tensors = tf.function(step)(x) if graph else step(x)
    return [t.numpy() for t in tensors] + [v.numpy() for v in model.non_trainable_weights]


@pytest.mark.parametrize("shape", [(32, 6), (32, 9, 6), (16, 7, 5, 6), (1, 6), (1, 3, 3, 6)])
def test_fused_training_step_matches_keras_batch_normalization(shape):
    # Rank 2 (after Dense), 3 (Conv1D), 4 (Conv2D); a one-row batch has zero variance.
    x = tf.constant(np.random.default_rng(0).normal(3.0, 2.0, size=shape).astype(np.float32))
    reference = training_step(batch_norm_model(shape), x)
    model = batch_norm_model(shape)
    with fused_batch_normalization(model) as swapped:
        fused = training_step(model, x, graph=True)
    assert swapped == 1
    names = ["output", "input gradient", "gamma gradient", "beta gradient", "moving mean", "moving variance"]
    for name, want, got in zip(names, reference, fused, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * (1 + np.abs(want).max()), err_msg=name)


def test_the_fused_kernel_runs_inside_the_context_only_and_the_layer_is_plain_again_after():
    model = batch_norm_model((8, 4, 4, 3))
    x = tf.zeros((8, 4, 4, 3))

    def ops_of_a_training_call():
        graph = tf.function(lambda t: model(t, training=True)).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    with fused_batch_normalization(model):
        assert "FusedBatchNormV3" in ops_of_a_training_call()
    assert "FusedBatchNormV3" not in ops_of_a_training_call()
    layer = model.get_layer("bn")
    assert "call" not in vars(layer) and type(layer) is keras.layers.BatchNormalization
    assert keras.saving.serialize_keras_object(layer)["class_name"] == "BatchNormalization"


def test_a_training_step_traced_inside_the_context_is_not_kept_after_it():
    model = batch_norm_model((8, 4, 4, 3))
    model.compile(optimizer="sgd", loss="mse")
    x, y = tf.zeros((8, 4, 4, 3)), tf.zeros((8, 4, 4, 3))
    with fused_batch_normalization(model):
        model.fit(x, y, epochs=1, verbose=0)
        fused_step = model.train_function
        assert fused_step is not None
    # Dropped on exit: the next fit traces a new step, with the layer's own call (the test
    # above shows a trace after the context has no fused kernel).
    assert model.train_function is None
    model.fit(x, y, epochs=1, verbose=0)
    assert model.train_function is not None and model.train_function is not fused_step


def test_inference_is_keras_own_and_options_the_kernel_lacks_are_left_alone():
    model = batch_norm_model((8, 5))
    x = np.random.default_rng(2).normal(size=(8, 5)).astype(np.float32)
    want = model(x, training=False).numpy()
    with fused_batch_normalization(model):
        np.testing.assert_array_equal(model(x, training=False).numpy(), want)
    with fused_batch_normalization(batch_norm_model((8, 5), renorm=True)) as swapped:
        assert swapped == 0


def test_the_call_comes_back_when_training_fails():
    model = batch_norm_model((8, 5))
    with pytest.raises(RuntimeError), fused_batch_normalization(model):
        raise RuntimeError("interrupted")
    assert "call" not in vars(model.get_layer("bn"))


def test_the_environment_switch_leaves_keras_own_call(monkeypatch):
    monkeypatch.setattr(fused, "ENABLED", False)  # what MMDIGITS_FUSED_BATCH_NORM=0 sets at import
    model = batch_norm_model((8, 5))
    with fused_batch_normalization(model) as swapped:
        assert swapped == 0 and "call" not in vars(model.get_layer("bn"))


def test_a_batch_normalization_without_the_renorm_attribute_is_fused():
    # Keras 3.10 (Colab / Kaggle, 2025) has no `renorm` attribute: `_eligible` crashed there.
    model = batch_norm_model((8, 3))
    layer = model.get_layer("bn")
    object.__delattr__(layer, "renorm")
    assert not hasattr(layer, "renorm")
    with fused_batch_normalization(model) as swapped:
        assert swapped == 1
    layer.synchronized = True  # an option the fused kernel lacks still keeps Keras's call
    with fused_batch_normalization(model) as swapped:
        assert swapped == 0
