"""The augmentation's signal processing (training/augment.py), in `keras.ops`: on whichever
backend the suite runs (the backend matrix runs it on JAX and PyTorch too)."""

import keras
import numpy as np
import pytest
import scipy.fft
import scipy.stats

from mmdigits_keras.training import augment
from mmdigits_keras.training.augment import (
    MFCC_REFERENCE_MEAN,
    MFCC_REFERENCE_STD,
    SeedGeneratorDraws,
    from_mel_power,
    image_jitter,
    mel_centres_hz,
    reverberate,
    to_mel_power,
    vtlp_matrix,
)

numpy = keras.ops.convert_to_numpy
backends = pytest.mark.backends  # also run by the backend matrix (make backends)


def draws(seed):
    """A fresh random source: the same seed, the same draws."""
    return SeedGeneratorDraws(keras.random.SeedGenerator(seed))


def tensor(array):
    return keras.ops.convert_to_tensor(np.asarray(array, dtype=np.float32))


@backends
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


@backends
def test_reverberation_spreads_energy_into_the_following_frames():
    quiet = MFCC_REFERENCE_MEAN[None].copy()
    quiet[:, :, 0] = -9.0  # quiet frames (log energy)
    burst = quiet.copy()
    burst[:, 15:20, 0] = 6.0  # plus a loud burst

    def energy(raw, drr_db=(-10.0, 5.0)):
        x = tensor((raw - MFCC_REFERENCE_MEAN) / MFCC_REFERENCE_STD)
        return (numpy(reverberate(x, 1.0, draws(0), drr_db)) * MFCC_REFERENCE_STD + MFCC_REFERENCE_MEAN)[0, :, 0]

    with_burst, without = energy(burst), energy(quiet)
    np.testing.assert_allclose(with_burst[:15], without[:15], atol=1e-3)  # nothing reaches back in time
    tail = with_burst[20:30] - without[20:30]
    assert np.all(tail > 1.0) and np.all(np.diff(tail) < 0)  # a tail after the burst that decays
    # A far talker (-10 dB direct-to-reverberant) leaves a louder tail than a near one (+5 dB).
    far, near = energy(burst, (-10.0, -10.0)), energy(burst, (5.0, 5.0))
    assert np.all(far[20:30] > near[20:30] + 1.0)


@backends
def test_reverberation_is_a_causal_convolution_of_each_mel_band(monkeypatch):
    """With RT60 and the direct-to-reverberant ratio pinned, the wet rows are each mel band's
    power convolved over time (numpy's convolution) with Polack's kernel: the direct sound,
    then taps decaying 60 dB over RT60 whose sum is the reverberant energy."""
    monkeypatch.setattr(augment, "RT60_SECONDS", (0.3, 0.3))
    rng = np.random.default_rng(1)
    x = tensor(rng.normal(size=(2, 39, 13)) * 0.5)
    wet = numpy(reverberate(x, 1.0, draws(3), (-4.0, -4.0)))
    tail = np.exp(-6.9 * np.arange(1, augment.REVERB_TAPS) * 0.025 / 0.3)
    kernel = np.concatenate([[1.0], tail / tail.sum() / 10 ** (-4.0 / 10)])
    raw, power = to_mel_power(x)
    convolved = np.stack([[np.convolve(band, kernel)[:39] for band in utterance.T] for utterance in numpy(power)])
    expected = numpy(from_mel_power(raw, power, tensor(convolved.transpose(0, 2, 1))))
    np.testing.assert_allclose(wet, expected, atol=1e-3)
    assert np.abs(wet - numpy(x)).max() > 0.1  # and it does change the rows
    # With probability p, a share of the utterances is reverberated as above, the rest untouched
    # (the same seed draws the same decay and ratio for each utterance).
    many = tensor(rng.normal(size=(200, 39, 13)) * 0.5)
    every = numpy(reverberate(many, 1.0, draws(5), (-4.0, -4.0)))
    some = numpy(reverberate(many, 0.3, draws(5), (-4.0, -4.0)))
    untouched = np.all(some == numpy(many), axis=(1, 2))
    assert 0.15 < 1 - untouched.mean() < 0.45
    np.testing.assert_allclose(some[~untouched], every[~untouched], atol=1e-5)


@backends
def test_the_mel_power_envelope_round_trips_and_the_bands_are_the_mfccs():
    rng = np.random.default_rng(0)
    x = tensor(rng.normal(size=(4, 39, 13)) * 0.5)
    raw, power = to_mel_power(x)
    np.testing.assert_allclose(numpy(from_mel_power(raw, power, power)), numpy(x), atol=1e-3)
    # mfcc_507's 26 filters over 0-4 kHz: the first centre one mel step above 0, the last below 4 kHz.
    centres = mel_centres_hz()
    assert centres.shape == (26,) and np.all(np.diff(centres) > 0) and 0 < centres[0] < 150 < 3500 < centres[-1] < 4000



def test_image_jitter_draws_shift_rotation_and_zoom_as_kerass_layers_do():
    """Same distribution as Keras's RandomTranslation(0.1, 0.1), RandomRotation(0.05) and
    RandomZoom(0.1) in sequence: a blob off the centre lands where the layers put it (its
    centre of mass and its mass, two-sample Kolmogorov-Smirnov tests). Not in the backend
    matrix: on Keras 3.15's PyTorch backend the layers themselves shift the columns by half as
    much (ours match them on TensorFlow and JAX, and move alike on all three)."""
    rows, cols = np.mgrid[0:28, 0:28]
    blob = np.exp(-((cols - 18.0) ** 2 + (rows - 9.0) ** 2) / 4.0).astype(np.float32)
    images = np.repeat(blob[None, :, :, None], 1000, axis=0)
    layers = keras.Sequential([keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=0),
                               keras.layers.RandomRotation(0.05, fill_mode="constant", seed=1),
                               keras.layers.RandomZoom(0.1, fill_mode="constant", seed=2)])
    theirs = numpy(layers(images, training=True))[..., 0]
    ours = numpy(image_jitter(tensor(images), draws(7)))[..., 0]

    def placement(batch):
        mass = batch.sum(axis=(1, 2))
        return (batch * cols).sum(axis=(1, 2)) / mass, (batch * rows).sum(axis=(1, 2)) / mass, mass

    for name, a, b in zip(("column", "row", "mass"), placement(theirs), placement(ours)):
        assert scipy.stats.ks_2samp(a, b).pvalue > 1e-3, name
    assert ours.std(axis=0).max() > 0.1  # the images do move
    again = numpy(image_jitter(tensor(images), draws(7)))[..., 0]
    np.testing.assert_array_equal(again, ours)  # the seed decides
    assert not np.array_equal(numpy(image_jitter(tensor(images), draws(8)))[..., 0], ours)
