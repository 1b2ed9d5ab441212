"""What a training batch looks like wherever the augmentation runs (training/augment.py's
`augment_batch`, `HostBatches`, `DeviceAugmentation`), on whichever backend the suite runs."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from mmdigits_keras.data import load_kaggle, train_val_split
from mmdigits_keras.models import create_model
from mmdigits_keras.training import compile_model, load_trained_model, train
from mmdigits_keras.training.augment import SeedGeneratorDraws, augment_batch
from mmdigits_keras.training.batches import HostBatches, audio_statistics, model_inputs
from mmdigits_keras.training.on_device import augmenting_trainer
from mmdigits_keras.training.recipes import get_recipe

pytestmark = pytest.mark.backends


def augmented(part, recipe, *, seed=0, multimodal=True):
    mean, std = audio_statistics(part)
    batch = augment_batch(model_inputs(part), mean=mean, std=std, recipe=recipe, multimodal=multimodal,
                          draws=SeedGeneratorDraws(keras.random.SeedGenerator(seed)))
    return {name: keras.ops.convert_to_numpy(value) for name, value in batch.items()}


@pytest.fixture
def part(tiny_kaggle):
    return train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)[0]


def test_default_augmentation_changes_batches_only_as_described(part):
    inputs = augmented(part, get_recipe("default"))
    blank_audio = np.all(np.isclose(inputs["audio"], part.audio.mean(axis=0), atol=1e-4), axis=1)
    blank_image = np.all(inputs["image"] == 0, axis=(1, 2, 3))
    assert not np.any(blank_audio & blank_image), "never both modalities blanked"
    share_audio, share_image = blank_audio.mean(), blank_image.mean()
    assert 0.3 < share_audio < 0.7 and 0.02 < share_image < 0.35, (share_audio, share_image)
    assert inputs["image"].shape == (len(part), 28, 28, 1) and inputs["audio"].shape == (len(part), 507)
    kept = ~blank_image
    assert not np.allclose(inputs["image"][kept], part.images[kept])  # jittered
    assert np.all((inputs["image"] >= 0) & (inputs["image"] <= part.images.max() + 1e-6))


def test_unimodal_models_get_no_modality_dropout(part):
    recipe = dataclasses.replace(get_recipe("default"), image_dropout=0.5, audio_dropout=0.5)
    assert np.all(augmented(part, recipe)["image"] == 0, axis=(1, 2, 3)).mean() > 0.2
    assert not np.any(np.all(augmented(part, recipe, multimodal=False)["image"] == 0, axis=(1, 2, 3)))


def test_audio_mismatch_swaps_speech_between_samples(part):
    base = dataclasses.replace(get_recipe("plain"), augment=True)
    clean = augmented(part, base)
    mixed = augmented(part, dataclasses.replace(base, audio_mismatch=0.5))
    np.testing.assert_array_equal(mixed["image"], clean["image"])
    swapped = ~np.all(np.isclose(mixed["audio"], clean["audio"]), axis=1)
    assert 0.3 < swapped.mean() < 0.7
    np.testing.assert_allclose(mixed["audio"][swapped], np.roll(clean["audio"], 1, axis=0)[swapped], atol=1e-4)


def test_host_batches_are_the_seeds_and_reshuffled_each_epoch(part):
    recipe = dataclasses.replace(get_recipe("default"), batch_size=48)

    def epoch(batches):
        out = [batches[i] for i in range(len(batches))]
        batches.on_epoch_end()
        return out

    first, again = HostBatches(part, recipe, seed=3), HostBatches(part, recipe, seed=3)
    one, two = epoch(first), epoch(first)
    assert len(one) == -(-len(part) // 48) and sum(len(t) for _, t in one) == len(part)
    for ours, theirs in zip(one + two, epoch(again) + epoch(again), strict=True):
        for name in ("image", "audio"):
            np.testing.assert_array_equal(ours[0][name], theirs[0][name])
        np.testing.assert_array_equal(ours[1], theirs[1])
    assert not np.array_equal(one[0][0]["audio"], two[0][0]["audio"])  # another epoch, other batches
    assert not np.array_equal(one[0][0]["audio"], epoch(HostBatches(part, recipe, seed=4))[0][0]["audio"])
    plain = HostBatches(part, dataclasses.replace(recipe, drop_remainder=True), augment=False)
    rows = np.concatenate([b[0]["audio"] for b in epoch(plain)])
    assert len(rows) == len(part) // 48 * 48
    assert {r.tobytes() for r in rows} <= {r.tobytes() for r in part.audio}  # the rows as they are


def test_augmentation_on_the_device_trains_and_saves_the_plain_model(part, tmp_path):
    recipe = dataclasses.replace(get_recipe("default"), batch_size=32)
    model = compile_model(create_model("model1"), recipe, learning_rate=1e-3)
    trainer = augmenting_trainer(model, mean=part.audio.mean(axis=0), std=part.audio.std(axis=0) + 1e-6,
                                 recipe=recipe, seed=0, multimodal=True)
    inputs = model_inputs(part)
    # Inference passes the batch through; training augments it.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(trainer(inputs, training=False)),
                               keras.ops.convert_to_numpy(model(inputs, training=False)), atol=1e-6)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    targets = np.eye(10, dtype="float32")[part.labels]
    history = trainer.fit(inputs, targets, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "crossentropy" in history.history
    assert any(not np.array_equal(b, keras.ops.convert_to_numpy(w)) for b, w in zip(before, model.trainable_weights))
    trainer.save(tmp_path / "model.keras")
    trainer.save_weights(tmp_path / "best.weights.h5")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    assert loaded.name == model.name and [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-5)
    fresh = create_model("model1")
    fresh.load_weights(tmp_path / "best.weights.h5")
    np.testing.assert_allclose(fresh.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-5)


@pytest.mark.slow(10)
def test_a_run_augmenting_on_the_host_records_it_and_saves_the_plain_model(tiny_kaggle, tmp_path):
    run = train(tiny_kaggle, out=tmp_path / "run", model="model1", epochs=1, augment_on="host", protocol="single",
                verbose=0)
    assert json.loads((run / "config.json").read_text())["training"]["augment_on"] == "host"
    model = load_trained_model(run)
    assert model.name.startswith("model1") and not any("augmentation" in layer.name for layer in model.layers)
    with pytest.raises(ValueError, match="`augment_on` must be one of"):
        train(tiny_kaggle, out=tmp_path / "bad", augment_on="gpu")
    assert not (tmp_path / "bad").exists()
