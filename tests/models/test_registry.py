import pytest
from conftest import find_layer
from harness import run_model_test

from mmdigits_keras.models import (
    MODEL_CONFIGS,
    PAPERS,
    create_model,
    list_models,
    model_config,
    model_info,
    register_model,
)

HYBRIDNET_FAMILY = ["image_cnn", "audio_cnn", "audio_lstm", "hybrid_cnn", "hybrid_cnn_lstm"]


def test_registry_names():
    expected = [f"model{d}" for d in range(1, 5)] + [f"model{d}_lstm" for d in range(1, 5)] + HYBRIDNET_FAMILY + ["fusion_1dcnn"]
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


def test_registry_metadata_describes_each_model():
    info = model_info("model2")
    assert info.family == "late_fusion" and info.source == "Nippani Ravi, Table 2" and info.paper_params == 6_766_478
    assert info.papers == (PAPERS["Nippani Ravi"],) and "Classification of Image and Audio Digits" in info.papers[0]
    # Every model cites at least one course report by title and authors.
    assert all(model_info(name).papers for name in list_models())
    assert len(model_info("model2_lstm").papers) == 2
    assert info.modalities == ("image", "audio") and info.config == {"depth": 2, "audio": "conv1d"}
    assert {"depth", "width", "dropout", "include_top", "num_classes"} <= set(info.arguments)
    assert info.defaults["dropout"] == 0.25 and info.defaults["depth"] == 2
    assert model_info("image_cnn").modalities == ("image",) and model_info("audio_lstm").family == "hybridnet"
    assert model_info("fusion_1dcnn").family == "fusion_1dcnn"


def test_list_models_filters_by_modality():
    assert list_models(modality="audio") == sorted(n for n in list_models() if "audio" in model_info(n).modalities)
    assert "image_cnn" not in list_models(modality="both") and "hybrid_cnn" in list_models(modality="both")
    assert set(list_models(modality="image")) & {"audio_cnn", "audio_lstm"} == set()
    with pytest.raises(ValueError, match="`modality` must be one of"):
        list_models(modality="video")


def test_create_model_refuses_arguments_the_builder_does_not_take():
    with pytest.raises(ValueError, match=r"takes no argument\(s\) \['depth'\]"):
        create_model("hybrid_cnn", depth=3)


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="registered already"):
        register_model("model2", modalities=("image",), source="x", description="x")(lambda **kwargs: None)


@pytest.mark.backends
@pytest.mark.parametrize("name", list_models())
def test_every_registry_model_keeps_the_model_contract(name, tmp_path):
    # Models 1-4 (Nippani Ravi) train in tests/training and tests/test_submission.py; a training step
    # of each here would add a minute to the suite.
    run_model_test(name, tmp_path, train_step=model_info(name).family != "late_fusion")
