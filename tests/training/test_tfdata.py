"""The tf.data pipeline (training/tfdata.py): TensorFlow's host pipeline, batches augmented in
parallel and still the same for the same seed."""

import dataclasses

import numpy as np
import tensorflow as tf

from mmdigits_keras.data import load_kaggle, train_val_split
from mmdigits_keras.training.recipes import get_recipe
from mmdigits_keras.training.tfdata import training_dataset


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


def test_without_augment_the_pipeline_only_shuffles_and_batches(tiny_kaggle):
    """For augmentation on the device the pipeline hands the rows over as they are."""
    part, _ = train_val_split(load_kaggle(tiny_kaggle), val_fraction=0.2, seed=0)
    recipe = dataclasses.replace(get_recipe("default"), batch_size=len(part))
    (inputs, targets), = training_dataset(part, recipe, seed=0, augment=False).take(1)
    order = np.argsort(np.argmax(targets.numpy(), axis=1), kind="stable")
    assert {a.tobytes() for a in inputs["audio"].numpy()} == {a.tobytes() for a in part.audio}
    assert {a.tobytes() for a in inputs["image"].numpy()} == {a.tobytes() for a in part.images}
    assert len(order) == len(part)
