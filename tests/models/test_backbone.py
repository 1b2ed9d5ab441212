
import keras
import numpy as np
import pytest

from mmdigits_keras.models import (
    create_backbone,
    create_model,
    feature_extractor,
    get_backbone,
    modalities_of,
    model_info,
    retrieval_towers,
)

INPUTS = {"image": np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32"),
          "audio": np.random.default_rng(1).normal(size=(3, 507)).astype("float32")}


def test_create_backbone_is_the_models_backbone_without_a_head():
    for name in ("model1", "hybrid_cnn", "image_cnn"):
        backbone, model = create_backbone(name), create_model(name)
        assert tuple(backbone.output) == model_info(name).modalities
        assert backbone.count_params() == get_backbone(model).count_params()


def test_feature_extractor_shares_the_models_weights_and_adds_the_fused_features():
    model = create_model("model2")
    extractor = feature_extractor(model)
    features = extractor.predict(INPUTS, verbose=0)
    assert {k: v.shape[1] for k, v in features.items()} == {"image": 512, "audio": 64, "fused": 256}
    direct = get_backbone(model).predict(INPUTS, verbose=0)
    np.testing.assert_allclose(features["image"], direct["image"], rtol=1e-5)
    assert set(feature_extractor(create_model("image_cnn")).output) == {"image"}  # no fusion, no "fused"


def test_the_backbone_is_found_again_after_save_and_load(tmp_path):
    model = create_model("hybrid_cnn", name="renamed")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert modalities_of(loaded) == ("image", "audio")
    towers = retrieval_towers(get_backbone(loaded), embedding_dim=4)
    for mine, theirs in zip(get_backbone(towers).get_weights(), get_backbone(loaded).get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_a_flat_model_without_backbone_is_refused_with_how_to_retrain():
    inputs = {"image": keras.Input((28, 28, 1), name="image"), "audio": keras.Input((507,), name="audio")}
    x = keras.layers.Concatenate()([keras.layers.Flatten()(inputs["image"]), inputs["audio"]])
    flat = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="predictions")(x))
    with pytest.raises(ValueError, match="retrain it with `mmdigits train`"):
        get_backbone(flat)
