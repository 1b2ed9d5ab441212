import pytest
from conftest import find_layer
from harness import run_model_test

from mmdigits_keras.models import MODEL_CONFIGS, create_model, list_models, model_config, model_info

SEED001 = ["image_cnn", "audio_cnn", "audio_lstm", "hybrid_cnn", "hybrid_cnn_lstm"]


def test_registry_names():
    expected = [f"model{d}" for d in range(1, 5)] + [f"model{d}_lstm" for d in range(1, 5)] + SEED001 + ["fusion_1dcnn"]
    assert list_models() == sorted(expected)
    assert list_models("model*_lstm") == ["model1_lstm", "model2_lstm", "model3_lstm", "model4_lstm"]
    assert list_models("hybrid*") == ["hybrid_cnn", "hybrid_cnn_lstm"]
    assert list_models("nothing*") == []


def test_create_model_applies_overrides_like_timm():
    model = create_model("model3_lstm", lstm_units=32, name="small")
    assert model.name == "small"
    assert find_layer(model, "audio_lstm1").units == 32
    assert find_layer(model, "image_conv1").filters == 32


def test_model_config_is_a_copy_and_unknown_names_fail():
    config = model_config("model2")
    config["depth"] = 4
    assert MODEL_CONFIGS["model2"]["depth"] == 2
    with pytest.raises(ValueError, match=r"`model_name` must be one of \[.*'model2'.*\]. Received: model_name='model9'"):
        create_model("model9")
    # A typo names the nearest registry names (difflib); a name near none names none.
    with pytest.raises(ValueError, match=r"Received: model_name='hybrid_cnnn'\. Did you mean 'hybrid_cnn' or "):
        create_model("hybrid_cnnn")
    with pytest.raises(ValueError, match=r"Received: model_name='resnet50'\.$"):
        create_model("resnet50")


@pytest.mark.backends
@pytest.mark.parametrize("name", list_models())
def test_every_registry_model_keeps_the_model_contract(name, tmp_path):
    # Models 1-4 (seed 000) train in tests/training and tests/test_submission.py; a training step
    # of each here would add a minute to the suite.
    run_model_test(name, tmp_path, train_step=model_info(name).family != "late_fusion")
