import numpy as np
import scipy.fft
import tensorflow as tf

from mmdigits_keras.training.augment import (
    MFCC_REFERENCE_MEAN,
    MFCC_REFERENCE_STD,
    from_mel_power,
    mel_centres_hz,
    reverberate,
    to_mel_power,
    vtlp_matrix,
)


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


def test_reverberation_spreads_energy_into_the_following_frames():
    quiet = MFCC_REFERENCE_MEAN[None].copy()
    quiet[:, :, 0] = -9.0  # quiet frames (log energy)
    burst = quiet.copy()
    burst[:, 15:20, 0] = 6.0  # plus a loud burst
    seed = tf.constant([0, 0], tf.int64)

    def energy(raw, drr_db=(-10.0, 5.0)):
        x = tf.constant((raw - MFCC_REFERENCE_MEAN) / MFCC_REFERENCE_STD, tf.float32)
        return (reverberate(x, 1.0, seed, drr_db).numpy() * MFCC_REFERENCE_STD + MFCC_REFERENCE_MEAN)[0, :, 0]

    with_burst, without = energy(burst), energy(quiet)
    np.testing.assert_allclose(with_burst[:15], without[:15], atol=1e-3)  # nothing reaches back in time
    tail = with_burst[20:30] - without[20:30]
    assert np.all(tail > 1.0) and np.all(np.diff(tail) < 0)  # a tail after the burst that decays
    # A far talker (-10 dB direct-to-reverberant) leaves a louder tail than a near one (+5 dB).
    far, near = energy(burst, (-10.0, -10.0)), energy(burst, (5.0, 5.0))
    assert np.all(far[20:30] > near[20:30] + 1.0)


def test_the_mel_power_envelope_round_trips_and_the_bands_are_the_mfccs():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 39, 13)) * 0.5, tf.float32)
    raw, power = to_mel_power(x)
    np.testing.assert_allclose(from_mel_power(raw, power, power).numpy(), x.numpy(), atol=1e-3)
    # mfcc_507's 26 filters over 0-4 kHz: the first centre one mel step above 0, the last below 4 kHz.
    centres = mel_centres_hz()
    assert centres.shape == (26,) and np.all(np.diff(centres) > 0) and 0 < centres[0] < 150 < 3500 < centres[-1] < 4000

