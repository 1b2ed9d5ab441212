import keras
import numpy as np
import pytest
from conftest import find_layer, layer_names

from mmdigits_keras.models import build_model, create_model

# Nippani Ravi, Tables 1-4: the "Param #" column summed by hand from the paper.
TABLE_TOTALS = {1: 1_869_454, 2: 6_766_478, 3: 1_344_654, 4: 2_504_270}
# The audio branch's rows of each table (Conv1D, BN, Dense, BN, ... up to its 10-unit Dense).
TABLE_AUDIO_BRANCH = {
    1: 48 + 64 + 259_136 + 256 + 650,
    2: 48 + 64 + 1_056 + 128 + 4_160 + 256 + 254_016 + 256 + 650,
    3: 48 + 64 + 1_056 + 128 + 516_160 + 256 + 650,
    4: 48 + 64 + 1_056 + 128 + 4_160 + 256 + 16_512 + 512 + 245_824 + 256 + 8_320 + 512 + 1_290,
}


def lstm_params(inputs, units):
    return 4 * (units * (inputs + units) + units)


# Tseng's encoder: LSTM(64) over 13 coefficients, LSTM(64), Dense(64) + BN, Dense(10).
LSTM_BRANCH = lstm_params(13, 64) + lstm_params(64, 64) + (64 * 64 + 64) + 4 * 64 + (64 * 10 + 10)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_late_fusion_parameter_totals_equal_the_papers_tables(depth):
    assert build_model(depth=depth).count_params() == TABLE_TOTALS[depth]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_lstm_variant_swaps_only_the_audio_branch(depth):
    expected = TABLE_TOTALS[depth] - TABLE_AUDIO_BRANCH[depth] + LSTM_BRANCH
    assert build_model(depth=depth, audio="lstm").count_params() == expected


def test_model_contract_inputs_outputs_and_names():
    model = build_model(depth=2)
    assert model.name == "model2_conv1d"
    assert [t.name for t in model.inputs] == ["image", "audio"] or {t.name for t in model.inputs} == {"image", "audio"}
    assert find_layer(model, "image").output.shape[1:] == (28, 28, 1)
    assert find_layer(model, "audio").output.shape[1:] == (507,)
    rng = np.random.default_rng(0)
    inputs = {"image": rng.uniform(size=(3, 28, 28, 1)).astype("float32"),
              "audio": rng.normal(size=(3, 507)).astype("float32")}
    probs = np.asarray(model(inputs, training=False))
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    names = layer_names(model)
    prefixes = ("image", "audio", "fusion", "predictions")
    assert all(name.startswith(prefixes) for name in names), names
    assert "fusion_concat" in names and find_layer(model, "fusion_concat").output.shape[-1] == 20
    assert find_layer(model, "audio_reshape").output.shape[1:] == (507, 1)
    lstm = build_model(depth=2, audio="lstm")
    assert find_layer(lstm, "audio_reshape").output.shape[1:] == (39, 13)


def test_width_scales_filters_and_units_and_dropout_sets_rates():
    half = build_model(depth=2, width=0.5, dropout=0.4)
    assert find_layer(half, "image_conv1").filters == 16
    assert find_layer(half, "fusion_dense3").units == 128
    assert find_layer(half, "image_output").units == 10
    assert {find_layer(half, n).rate for n in ("image_dropout1", "image_dropout2")} == {0.4}
    assert half.count_params() < build_model(depth=2).count_params() / 3


def test_audio_normalization_layer_standardizes_and_is_excluded_from_table_totals():
    mean = np.linspace(-1, 1, 507).astype("float32")
    variance = np.full(507, 4.0, dtype="float32")
    model = build_model(depth=1, audio_mean=mean, audio_variance=variance)
    normalized = find_layer(model, "audio_normalization")(mean[None] + 2.0)
    np.testing.assert_allclose(np.asarray(normalized), 1.0, rtol=1e-4)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == sum(int(np.prod(w.shape)) for w in build_model(depth=1).trainable_weights)


@pytest.mark.parametrize("kwargs, message", [
    (dict(depth=5), "`depth` must be one of"),
    (dict(audio="gru"), "`audio` must be one of \\['conv1d', 'lstm'\\]. Received: audio='gru'"),
    (dict(width=0), "`width` must be > 0"),
    (dict(dropout=1.0), "`dropout` must be in"),
    (dict(num_classes=0), "`num_classes` must be a positive integer"),
    (dict(audio_mean=np.zeros(507)), "must be given together"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)


# Tseng, Tables 1-2 (PyTorch layer sizes): conv 3x3 weights + bias, BatchNorm (4 per channel),
# Dense weights + bias. The audio CNN flattens 9 x 3 x 64 = 1,728 values (the paper prints 1278).
IMAGE_CNN = (9 * 32 + 32) + 4 * 32 + (9 * 32 * 64 + 64) + 4 * 64 + (3136 * 128 + 128) + (128 * 10 + 10)
AUDIO_CNN = (9 * 32 + 32) + 4 * 32 + (9 * 32 * 64 + 64) + 4 * 64 + (1728 * 128 + 128) + (128 * 10 + 10)
AUDIO_LSTM = lstm_params(13, 64) + lstm_params(64, 64) + (64 * 64 + 64) + (64 * 10 + 10)


@pytest.mark.parametrize("name, expected", [("image_cnn", IMAGE_CNN), ("audio_cnn", AUDIO_CNN),
                                            ("audio_lstm", AUDIO_LSTM)])
def test_hybridnet_unimodal_sizes(name, expected):
    assert create_model(name).count_params() == expected


def test_hybridnets_share_encoders_and_the_table6_head():
    head = (256 * 128 + 128) + 4 * 128 + (128 * 10 + 10)
    image_encoder = IMAGE_CNN - (128 * 10 + 10)
    audio_cnn_encoder = AUDIO_CNN - (128 * 10 + 10)
    audio_lstm_encoder = lstm_params(13, 64) + lstm_params(64, 64) + (64 * 128 + 128)
    assert create_model("hybrid_cnn").count_params() == image_encoder + audio_cnn_encoder + head
    assert create_model("hybrid_cnn_lstm").count_params() == image_encoder + audio_lstm_encoder + head


def test_unimodal_models_ignore_the_other_input():
    rng = np.random.default_rng(2)
    image, audio = rng.uniform(size=(2, 28, 28, 1)).astype("float32"), rng.normal(size=(2, 507)).astype("float32")
    for name, fixed, varied in (("image_cnn", "image", "audio"), ("audio_cnn", "audio", "image")):
        model = create_model(name)
        base = {"image": image, "audio": audio}
        other = {**base, varied: base[varied] + 5.0}
        np.testing.assert_allclose(model.predict(base, verbose=0), model.predict(other, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("name", ["model2", "model1_lstm", "audio_cnn", "hybrid_cnn_lstm", "fusion_1dcnn"])
def test_log_mel_input_width(name):
    model = create_model(name, audio_features=1560)
    assert find_layer(model, "audio").output.shape[1:] == (1560,)
    out = model.predict({"image": np.zeros((2, 28, 28, 1), "float32"), "audio": np.zeros((2, 1560), "float32")}, verbose=0)
    assert out.shape == (2, 10)
    with pytest.raises(ValueError, match="`audio_features` must be one of"):
        create_model(name, audio_features=500)


def test_utterance_normalization_removes_each_utterances_offset_and_scale():
    model = build_model(depth=1, utterance_normalization=True)
    assert model.count_params() == TABLE_TOTALS[1]
    rng = np.random.default_rng(4)
    frames = rng.normal(size=(2, 39, 13)).astype("float32")
    shifted = frames * 3.0 + rng.normal(size=(2, 1, 13)).astype("float32")  # per-utterance gain and offset
    image = np.zeros((2, 28, 28, 1), "float32")
    a = model.predict({"image": image, "audio": frames.reshape(2, -1)}, verbose=0)
    b = model.predict({"image": image, "audio": shifted.reshape(2, -1)}, verbose=0)
    np.testing.assert_allclose(a, b, atol=1e-4)
    plain = build_model(depth=1)
    plain.set_weights(model.get_weights())
    c = plain.predict({"image": image, "audio": shifted.reshape(2, -1)}, verbose=0)
    assert not np.allclose(a, c, atol=1e-4)


def test_under_mixed_float16_the_model_computes_in_float16_and_predicts_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model("hybrid_cnn")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    assert sum(layer.dtype_policy.name == "mixed_float16" for layer in model.layers) > 0
    out = model({"image": np.zeros((2, 28, 28, 1), np.float32), "audio": np.zeros((2, 507), np.float32)})
    assert out.dtype == "float32" and np.allclose(np.asarray(out).sum(axis=1), 1.0, atol=1e-5)
