import pytest

from mmdigits_keras.models import create_model, list_models, model_info, register_model


def test_registry_metadata_describes_each_model():
    info = model_info("model2")
    assert info.family == "late_fusion" and info.source == "seed 000, Table 2" and info.paper_params == 6_766_478
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
