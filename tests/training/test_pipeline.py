import dataclasses

import numpy as np
import tensorflow as tf

from mmdigits_keras.data import load_kaggle, train_val_split
from mmdigits_keras.training.pipeline import training_dataset
from mmdigits_keras.training.recipes import get_recipe


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


def test_unimodal_models_get_no_modality_dropout(tiny_kaggle):
    part, _ = train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)
    recipe = get_recipe("default").__class__(**{**get_recipe("default").__dict__, "batch_size": len(part),
                                                "image_dropout": 0.5, "audio_dropout": 0.5})
    (both, _), = training_dataset(part, recipe, seed=0).take(1)
    (single, _), = training_dataset(part, recipe, seed=0, multimodal=False).take(1)
    assert np.all(both["image"].numpy() == 0, axis=(1, 2, 3)).mean() > 0.2
    assert not np.any(np.all(single["image"].numpy() == 0, axis=(1, 2, 3)))


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



def test_augmented_batches_are_the_same_for_the_same_seed_at_any_parallelism(tiny_kaggle):
    """Batches are augmented in parallel; every draw is stateless from the batch's seed, so a
    one-thread pipeline, and the same pipeline iterated again, give identical batches."""
    part, _ = train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)
    recipe = dataclasses.replace(get_recipe("default"), batch_size=16)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1

    def epoch(dataset):
        return [(inputs["image"].numpy(), inputs["audio"].numpy(), targets.numpy()) for inputs, targets in dataset]

    parallel, serial = (training_dataset(part, recipe, seed=3),
                        training_dataset(part, recipe, seed=3).with_options(options))
    first = [epoch(parallel), epoch(parallel)]  # two epochs: reshuffled, augmented afresh
    assert len(first[0]) == -(-len(part) // 16)
    fresh = training_dataset(part, recipe, seed=3)
    for batches in ([epoch(serial), epoch(serial)], [epoch(fresh), epoch(fresh)]):
        for ours, theirs in zip(sum(first, []), sum(batches, []), strict=True):
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0][0][0], first[1][0][0])  # epochs differ
    assert not np.array_equal(first[0][0][0], epoch(training_dataset(part, recipe, seed=4))[0][0])
