import dataclasses
import json

import numpy as np
import pytest
import scipy.fft
import tensorflow as tf
from conftest import layer_names

from mmdigits_keras.data import load_kaggle, train_val_split
from mmdigits_keras.training import load_trained_model, recipes, train
from mmdigits_keras.training.recipes import (
    MFCC_REFERENCE_MEAN,
    MFCC_REFERENCE_STD,
    RECIPES,
    _reverberate,
    get_recipe,
    training_dataset,
    vtlp_matrix,
)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_recipe_trains_and_the_saved_model_is_deterministic_at_inference(tiny_kaggle, tmp_path, recipe):
    run = train(tiny_kaggle, out=tmp_path / recipe, model="model1", epochs=1, recipe=recipe, verbose=0)
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["recipe"]["name"] == recipe
    assert config["training"]["batch_size"] == RECIPES[recipe].batch_size
    model = load_trained_model(run)
    assert not [n for n in layer_names(model) if "random" in n or "jitter" in n]
    test = load_kaggle(tiny_kaggle, "test")
    np.testing.assert_array_equal(model.predict(test.inputs(), verbose=0), model.predict(test.inputs(), verbose=0))


def test_default_augmentation_changes_training_batches_only_as_described(tiny_kaggle):
    recipe = get_recipe("default")
    part, _ = train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)
    (inputs, targets), = training_dataset(part, recipe.__class__(**{**recipe.__dict__, "batch_size": len(part)}),
                                          seed=0).take(1)
    assert targets.shape == (len(part), 10)  # one-hot for label smoothing
    audio = inputs["audio"].numpy()
    mean = part.audio.mean(axis=0)
    blank_audio = np.all(np.isclose(audio, mean, atol=1e-4), axis=1)
    blank_image = np.all(inputs["image"].numpy() == 0, axis=(1, 2, 3))
    assert not np.any(blank_audio & blank_image), "never both modalities blanked"
    share_audio, share_image = blank_audio.mean(), blank_image.mean()
    assert 0.3 < share_audio < 0.7 and 0.02 < share_image < 0.35, (share_audio, share_image)
    assert inputs["image"].shape == (len(part), 28, 28, 1) and audio.shape == (len(part), 507)


def test_plain_recipe_does_not_augment(tiny_kaggle):
    part, _ = train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)
    recipe = get_recipe("plain")
    (inputs, targets), = training_dataset(part, recipe.__class__(**{**recipe.__dict__, "batch_size": len(part)}),
                                          seed=0).take(1)
    order = np.argsort(targets.numpy(), kind="stable")
    rows = {a.tobytes() for a in inputs["audio"].numpy()}
    assert rows == {a.tobytes() for a in part.audio} and len(order) == len(part)


def test_unknown_recipe():
    with pytest.raises(ValueError, match="`recipe` must be one of"):
        get_recipe("fancy")


def test_vtlp_factor_one_is_the_identity_and_other_factors_move_formants():
    np.testing.assert_allclose(vtlp_matrix(1.0), np.eye(12), atol=1e-12)
    # A log-mel envelope with one formant-like bump at band 10 of 26, as cepstra c1..c12.
    bands = np.arange(26)
    envelope = np.exp(-0.5 * ((bands - 10) / 1.5) ** 2)
    dct = scipy.fft.dct(np.eye(26), type=2, norm="ortho", axis=0)[1:13]
    lift = 1 + 11 * np.sin(np.pi * np.arange(1, 13) / 22)
    cepstra = lift * (dct @ envelope)
    for factor, direction in ((1.15, 1), (0.85, -1)):
        warped = dct.T @ ((vtlp_matrix(factor) @ cepstra) / lift)
        assert np.sign(np.argmax(warped) - 10) == direction, (factor, np.argmax(warped))


def test_unimodal_models_get_no_modality_dropout(tiny_kaggle):
    part, _ = train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)
    recipe = get_recipe("default").__class__(**{**get_recipe("default").__dict__, "batch_size": len(part),
                                                "image_dropout": 0.5, "audio_dropout": 0.5})
    (both, _), = training_dataset(part, recipe, seed=0).take(1)
    (single, _), = training_dataset(part, recipe, seed=0, multimodal=False).take(1)
    assert np.all(both["image"].numpy() == 0, axis=(1, 2, 3)).mean() > 0.2
    assert not np.any(np.all(single["image"].numpy() == 0, axis=(1, 2, 3)))


def test_auxiliary_heads_train_and_are_absent_from_the_saved_model(tiny_kaggle, tmp_path):
    RECIPES["test-aux"] = dataclasses.replace(RECIPES["default"], name="test-aux", auxiliary_weight=0.5, vtlp=0.1,
                                              equalization=0.3)
    try:
        run = train(tiny_kaggle, out=tmp_path / "aux", model="hybrid_cnn", epochs=1, recipe="test-aux",
                    model_kwargs={"width": 0.25}, verbose=0)
    finally:
        del RECIPES["test-aux"]
    history = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"image_auxiliary_loss", "audio_auxiliary_loss", "val_accuracy", "val_crossentropy"} <= set(history)
    model = load_trained_model(run)
    assert not [n for n in layer_names(model) if "auxiliary" in n]
    assert model.output.shape[-1] == 10 and not isinstance(model.output, dict)
    test = load_kaggle(tiny_kaggle, "test")
    np.testing.assert_array_equal(model.predict(test.inputs(), verbose=0), model.predict(test.inputs(), verbose=0))


def test_audio_mismatch_swaps_speech_between_samples_and_keeps_labels(tiny_kaggle):
    part, _ = train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)
    base = dict(get_recipe("plain").__dict__, augment=True, batch_size=len(part))
    recipe = get_recipe("plain").__class__(**{**base, "audio_mismatch": 0.5})
    (clean, clean_targets), = training_dataset(part, get_recipe("plain").__class__(**base), seed=0).take(1)
    (mixed, targets), = training_dataset(part, recipe, seed=0).take(1)
    np.testing.assert_array_equal(targets.numpy(), clean_targets.numpy())
    np.testing.assert_array_equal(mixed["image"].numpy(), clean["image"].numpy())
    swapped = ~np.all(np.isclose(mixed["audio"].numpy(), clean["audio"].numpy()), axis=1)
    assert 0.3 < swapped.mean() < 0.7
    rolled = np.roll(clean["audio"].numpy(), 1, axis=0)
    np.testing.assert_allclose(mixed["audio"].numpy()[swapped], rolled[swapped], atol=1e-5)


def test_reverberation_spreads_energy_into_the_following_frames():
    quiet = MFCC_REFERENCE_MEAN[None].copy()
    quiet[:, :, 0] = -9.0  # quiet frames (log energy)
    burst = quiet.copy()
    burst[:, 15:20, 0] = 6.0  # plus a loud burst
    seed = tf.constant([0, 0], tf.int64)

    def energy(raw, drr_db=(-10.0, 5.0)):
        x = tf.constant((raw - MFCC_REFERENCE_MEAN) / MFCC_REFERENCE_STD, tf.float32)
        return (_reverberate(x, 1.0, seed, drr_db).numpy() * MFCC_REFERENCE_STD + MFCC_REFERENCE_MEAN)[0, :, 0]

    with_burst, without = energy(burst), energy(quiet)
    np.testing.assert_allclose(with_burst[:15], without[:15], atol=1e-3)  # nothing reaches back in time
    tail = with_burst[20:30] - without[20:30]
    assert np.all(tail > 1.0) and np.all(np.diff(tail) < 0)  # a tail after the burst that decays
    # A far talker (-10 dB direct-to-reverberant) leaves a louder tail than a near one (+5 dB).
    far, near = energy(burst, (-10.0, -10.0)), energy(burst, (5.0, 5.0))
    assert np.all(far[20:30] > near[20:30] + 1.0)


def test_equalization_band_limits_the_mel_power_and_round_trips(monkeypatch):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 39, 13)) * 0.5, tf.float32)
    raw, power = recipes._to_mel_power(x)
    np.testing.assert_allclose(recipes._from_mel_power(raw, power, power).numpy(), x.numpy(), atol=1e-3)
    monkeypatch.setattr(recipes, "LOW_CUTOFF_HZ", (0.0, 1e-3))
    monkeypatch.setattr(recipes, "HIGH_CUTOFF_HZ", (2000.0, 2000.001))
    monkeypatch.setattr(recipes, "TILT_DB", 0.0)
    shaped = recipes._equalize(x, 1.0, tf.constant([0, 0], tf.int64))
    _, after = recipes._to_mel_power(shaped)
    above = recipes._mel_centres_hz() > 2000
    share = lambda p: p[:, :, above].sum(axis=(1, 2)) / p.sum(axis=(1, 2))  # noqa: E731
    # 12 cepstra cannot hold a 30 dB step, so the cut is smoothed, but most power above it goes
    assert np.all(share(after.numpy()) < 0.5 * share(power.numpy()))
