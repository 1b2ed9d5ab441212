import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import synthetic_arrays
from sklearn.metrics import log_loss

from mmdigits_keras.data import MultimodalDataset, load_kaggle, train_val_split
from mmdigits_keras.models import create_model, task_features
from mmdigits_keras.training import get_recipe, load_trained_model, train
from mmdigits_keras.training.adversary import (
    GradientReversal,
    SpeakerAdversary,
    speaker_index,
    speaker_loss,
    with_speaker_adversary,
)
from mmdigits_keras.training.pipeline import training_dataset


@pytest.mark.parametrize("scale", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_is_the_identity_forward_and_flips_the_gradient(scale):
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 7)) * 100, tf.float32)
    upstream = tf.constant(np.random.default_rng(1).normal(size=(4, 7)), tf.float32)
    layer = GradientReversal(scale)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        objective = tf.reduce_sum(upstream * y)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(objective, x).numpy(), -scale * upstream.numpy(), rtol=1e-6)


@pytest.mark.parametrize("scale", [-1.0, "1", True, float("nan")])
def test_gradient_reversal_refuses_a_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        GradientReversal(scale)


def test_the_speaker_loss_is_the_cross_entropy_of_the_known_rows_only():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(12, 3)).astype(np.float32)
    speakers = np.array([0, 1, 2, -1, 2, 0, -1, 1, 1, 0, 2, -1], dtype=np.int32)
    known = speakers >= 0
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = log_loss(speakers[known], probabilities[known], labels=[0, 1, 2])
    assert float(speaker_loss(speakers, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(speaker_loss(np.full(4, -1), logits[:4])) == 0.0


def test_the_encoder_cannot_fool_the_speaker_classifier_by_scaling_its_features():
    features = tf.constant(np.random.default_rng(0).normal(size=(5, 16)), tf.float32)
    adversary = SpeakerAdversary(3, scale=1.0, name="adversary")
    adversary.build([(None, 16), (None, 16), (None,)])
    with tf.GradientTape() as tape:
        tape.watch(features)
        logits = adversary.speaker_logits(features)
        loss = speaker_loss(tf.constant([0, 1, 2, 0, 1]), logits)
    np.testing.assert_allclose(adversary.speaker_logits(features * 50.0).numpy(), logits.numpy(), rtol=1e-4, atol=1e-5)
    # The gradient reaching the features is orthogonal to them: growing them changes nothing.
    along = tf.reduce_sum(tape.gradient(loss, features) * features, axis=-1).numpy()
    np.testing.assert_allclose(along, 0.0, atol=1e-5)


def test_speaker_index_maps_unknown_and_unseen_speakers_to_minus_one():
    index = speaker_index(np.array(["b", None, "a", "zed"], dtype=object), ["a", "b"])
    np.testing.assert_array_equal(index, [1, -1, 0, -1])
    assert speaker_index(None, ["a", "b"]) is None


def test_the_speaker_follows_the_speech_through_modality_dropout_and_swaps(tiny_kaggle):
    part, _ = train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)
    ids = np.arange(len(part), dtype=np.int32)  # one speaker per row: each row traceable
    base = dict(get_recipe("plain").__dict__, augment=True, batch_size=len(part))
    recipe = get_recipe("plain").__class__

    (clean, _), = training_dataset(part, recipe(**base), seed=0, speakers=ids).take(1)
    (mixed, _), = training_dataset(part, recipe(**{**base, "audio_mismatch": 0.5}), seed=0, speakers=ids).take(1)
    swapped = ~np.all(np.isclose(mixed["audio"].numpy(), clean["audio"].numpy()), axis=1)
    assert 0.3 < swapped.mean() < 0.7
    np.testing.assert_array_equal(mixed["speaker"].numpy()[swapped], np.roll(clean["speaker"].numpy(), 1)[swapped])
    np.testing.assert_array_equal(mixed["speaker"].numpy()[~swapped], clean["speaker"].numpy()[~swapped])

    (dropped, _), = training_dataset(part, recipe(**{**base, "audio_dropout": 0.5}), seed=0, speakers=ids).take(1)
    blank = np.all(np.isclose(dropped["audio"].numpy(), part.audio.mean(axis=0), atol=1e-4), axis=1)
    assert 0.3 < blank.mean() < 0.7
    assert np.all(dropped["speaker"].numpy()[blank] == -1) and np.all(dropped["speaker"].numpy()[~blank] >= 0)


def speaker_rows(rows=240, speakers=6):
    pixels, audio, labels = synthetic_arrays(rows)
    who = np.arange(rows) % speakers
    return MultimodalDataset(images=(pixels / 255.0).reshape(-1, 28, 28, 1).astype(np.float32),
                             audio=(audio + who[:, None] * 0.3).astype(np.float32), labels=labels.astype(np.int64),
                             ids=np.arange(rows), recordings=np.array([f"r{i}" for i in range(rows)], dtype=object),
                             speakers=np.array([f"s{w}" for w in who], dtype=object))


def test_the_adversary_trains_and_the_saved_model_has_built_in_layers_only(tmp_path):
    recipe = dataclasses.replace(get_recipe("plain"), name="adversarial", speaker_adversary=1.0)
    run = train(speaker_rows(), out=tmp_path / "run", model="model1", recipe=recipe, epochs=1, verbose=0)
    history = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
    # Plain recipe: the loss is the cross-entropy plus the speaker classifier's, logged beside it.
    assert float(history["loss"]) - float(history["crossentropy"]) == pytest.approx(float(history["speaker_loss"]),
                                                                                    abs=0.05)
    assert float(history["speaker_loss"]) > 0.5 and 0 <= float(history["speaker_accuracy"]) <= 1
    model = load_trained_model(run)  # safe mode
    modules = {type(layer).__module__.split(".")[0] for layer in model._flatten_layers(include_self=False)}
    assert modules == {"keras"}, modules
    assert "speaker" not in model.input and model.predict(speaker_rows(20).inputs(), verbose=0).shape == (20, 10)


def test_without_speaker_ids_or_speech_the_model_fits_without_the_adversary_and_says_so(caplog):
    recipe = dataclasses.replace(get_recipe("plain"), speaker_adversary=1.0)
    fused, image_only = create_model("model1"), create_model("image_cnn")
    one_speaker = dataclasses.replace(speaker_rows(), speakers=np.full(240, "s0", dtype=object))
    with caplog.at_level("WARNING", logger="mmdigits_keras"):
        assert with_speaker_adversary(fused, task_features(fused)["audio"], one_speaker, recipe) is fused
        assert "1 speaker(s)" in caplog.text
        assert with_speaker_adversary(image_only, None, speaker_rows(), recipe) is image_only
        assert "no speech branch" in caplog.text
    adversarial = with_speaker_adversary(fused, task_features(fused)["audio"], speaker_rows(), recipe)
    assert set(adversarial.input) == {"image", "audio", "speaker"} and adversarial.count_params() > fused.count_params()
    assert with_speaker_adversary(fused, task_features(fused)["audio"], speaker_rows(),
                                  dataclasses.replace(recipe, speaker_adversary=0.0)) is fused
    with pytest.raises(ValueError, match="speaker_adversary"):
        with_speaker_adversary(fused, None, speaker_rows(), dataclasses.replace(recipe, speaker_adversary=-0.5))
