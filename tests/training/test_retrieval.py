import json

import keras
import numpy as np
import pytest
from conftest import find_layer, layer_names

from mmdigits_keras.data import load_kaggle
from mmdigits_keras.models import create_backbone, retrieval_towers
from mmdigits_keras.training import load_trained_model
from mmdigits_keras.training.ranking import info_nce_loss, max_margin_loss, ranking_loss
from mmdigits_keras.training.retrieval import build_retrieval_model, train_retrieval, training_model
from mmdigits_keras.training.retrieval_protocol import embed


def _unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_max_margin_is_zero_when_pairs_beat_every_other_digit_by_the_margin():
    basis = np.eye(4, dtype=np.float32)  # cosine 1 with the partner, 0 with the rest
    labels = np.array([0, 1, 2, 3])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(max_margin_loss(labels, basis, basis, margin=0.5)), 0.0)
    # Identical embeddings everywhere: every hinge is exactly the margin, in both directions.
    same = np.ones((4, 3), np.float32) / np.sqrt(3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(max_margin_loss(labels, same, same, margin=0.5)), 1.0,
                               rtol=1e-6)


def test_rows_of_the_same_digit_are_not_negatives():
    # Rows 0 and 1 are both "7" and lie close together: as each other's negatives they would
    # break the margin (cosine 0.74 for the pair against 0.67 for the other row).
    image = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    audio = _unit([[1, 0.9, 0], [0.9, 1, 0], [0, 0, 1]])
    loss = keras.ops.convert_to_numpy(max_margin_loss(np.array([7, 7, 3]), image, audio, margin=0.2))
    np.testing.assert_allclose(loss, 0.0, atol=1e-6)
    assert keras.ops.convert_to_numpy(max_margin_loss(np.array([7, 8, 3]), image, audio, margin=0.2)).max() > 0.1


def test_info_nce_of_uniform_scores_is_log_batch_size():
    same = np.ones((6, 4), np.float32) / 2.0
    loss = keras.ops.convert_to_numpy(info_nce_loss(np.array([0, 0, 1, 2, 3, 4]), same, same, temperature=0.1))
    np.testing.assert_allclose(loss, np.log(6.0), rtol=1e-5)


@pytest.mark.parametrize("kind, floor", [
    ("max_margin", 0.0),
    ("info_nce", np.log(5.0)),  # a row's target spreads over ~5 same-digit rows per batch of 50
])
def test_loss_falls_on_a_tiny_fixture(tiny_kaggle, kind, floor):
    data = load_kaggle(tiny_kaggle)
    keras.utils.set_random_seed(0)
    # The fixture's speech classes are a constant offset per row, which per-utterance
    # normalization would erase; real MFCCs keep their shape through it.
    net = training_model(build_retrieval_model(embedding_dim=16, utterance_normalization=False))
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss=ranking_loss(kind))
    before = net.evaluate(data.inputs(), data.labels, batch_size=50, verbose=0)
    net.fit(data.inputs(), data.labels, batch_size=50, epochs=12, verbose=0)
    after = net.evaluate(data.inputs(), data.labels, batch_size=50, verbose=0)
    assert before - after > 0.4 * (before - floor), (before, after)


def test_towers_emit_unit_vectors_and_survive_save_and_load(tiny_kaggle, tmp_path):
    data = load_kaggle(tiny_kaggle)
    towers = build_retrieval_model(embedding_dim=8, audio_mean=data.audio.mean(0), audio_variance=data.audio.var(0))
    images, audio = embed(towers, data)
    assert images.shape == audio.shape == (len(data), 8)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, rtol=1e-5)
    towers.save(tmp_path / "towers.keras")
    again = embed(load_trained_model(tmp_path / "towers.keras"), data)
    np.testing.assert_allclose(images @ audio.T, again[0] @ again[1].T, atol=1e-6)


def test_towers_start_from_a_fusion_runs_branches(tiny_fusion_run):
    _, run = tiny_fusion_run
    fusion = load_trained_model(run)
    towers = build_retrieval_model(init=run, embedding_dim=8)
    for layer in ("image_conv1", "audio_conv1", "audio_dense1", "audio_normalization"):
        for mine, theirs in zip(find_layer(towers, layer).get_weights(), find_layer(fusion, layer).get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    assert "predictions" not in set(layer_names(towers))


@pytest.mark.parametrize("model, image_width, audio_width", [
    ("model2", 512, 64),  # what enters Nippani Ravi's 10-unit branch heads
    ("hybrid_cnn", 128, 128),  # Tseng's encoder outputs, concatenated by its fusion head
    ("fusion_1dcnn", 128, 128),
])
def test_towers_take_each_branch_before_the_fusion_head(model, image_width, audio_width):
    towers = retrieval_towers(create_backbone(model), embedding_dim=8)
    assert find_layer(towers, "image_projection").kernel.shape == (image_width, 8)
    assert find_layer(towers, "audio_projection").kernel.shape == (audio_width, 8)
    assert not {"predictions", "fusion_concat"} & set(layer_names(towers))


def test_unimodal_models_have_no_towers():
    with pytest.raises(ValueError, match="need an image and an audio branch"):
        retrieval_towers(create_backbone("image_cnn"))
    with pytest.raises(ValueError, match="need an image and an audio branch"):
        train_retrieval("unused", out="unused", model="audio_cnn")


def test_train_retrieval_writes_a_run_whose_towers_are_fine_tuned_on_every_row(tiny_kaggle, tmp_path):
    run = train_retrieval(tiny_kaggle, out=tmp_path / "run", embedding_dim=8, epochs=2, batch_size=32, verbose=0)
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["task"] == "retrieval" and config["loss"]["kind"] == "info_nce"  # the default
    assert metrics["epochs"] == 2 and metrics["validation_rows"] == config["data"]["validation_rows"]
    assert 36 <= metrics["validation_rows"] <= 44 and config["training"]["split"] == "recording"
    assert 0 <= metrics["val_annotation_accuracy"] <= 1 and 0 <= metrics["val_retrieval_accuracy"] <= 1
    assert {"model.keras", "history.csv", "curves.png"} <= {p.name for p in run.iterdir()}
    # Fine-tuned on every row by default; the validated run's scores stay.
    assert config["training"]["protocol"] == "finetune"
    assert metrics["finetune"]["rows"] == 200 and 1 <= metrics["finetune"]["epochs"] <= 2
    # The saved towers are the fine-tuned ones (they share every weight with the fitted pair model).
    single = train_retrieval(tiny_kaggle, out=tmp_path / "single", embedding_dim=8, epochs=2, batch_size=32,
                             verbose=0, protocol="single")
    assert json.loads((single / "metrics.json").read_text())["val_annotation_accuracy"] == (
        metrics["val_annotation_accuracy"])
    tuned, validated = load_trained_model(run), load_trained_model(single)
    assert any(not np.array_equal(a, b) for a, b in zip(tuned.get_weights(), validated.get_weights()))


@pytest.mark.parametrize("kwargs, message", [
    (dict(loss="triplet"), "`loss` must be one of"),
    (dict(model="resnet"), "`model_name` must be one of"),
    (dict(margin=0), "`margin` must be a positive"),
    (dict(batch_size=1), "at least 2"),
    (dict(embedding_dim=0), "`embedding_dim` must be a positive integer"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tiny_kaggle, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_retrieval(tiny_kaggle, out=tmp_path / "run", epochs=1, verbose=0, **kwargs)
    assert not (tmp_path / "run").exists()
