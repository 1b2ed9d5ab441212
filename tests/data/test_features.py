import glob

import numpy as np
import pytest
import scipy.io.wavfile

from mmdigits_keras.data.features import centre_clip, mfcc_507


def chirp(sample_rate, seconds=0.6):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return np.sin(2 * np.pi * (300 + 900 * t) * t) * np.hanning(t.size)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
def test_shape_and_dtype_at_any_rate(rate):
    features = mfcc_507(chirp(rate), rate)
    assert features.shape == (39, 13) and features.dtype == np.float32
    assert np.all(np.isfinite(features))


def test_same_sound_at_different_rates_gives_nearly_the_same_features():
    low, high = mfcc_507(chirp(8000), 8000), mfcc_507(chirp(44100), 44100)
    voiced = slice(10, 29)  # the chirp's frames; silent edges are dither only
    assert np.corrcoef(low[voiced].ravel(), high[voiced].ravel())[0, 1] > 0.99


def test_amplitude_and_stereo_do_not_matter():
    wave = chirp(8000)
    np.testing.assert_allclose(mfcc_507(wave, 8000), mfcc_507(wave * 0.01, 8000), atol=1e-3)
    pcm = (wave * 20000).astype(np.int16)
    np.testing.assert_allclose(mfcc_507(np.stack([pcm, pcm], axis=1), 8000), mfcc_507(pcm, 8000), atol=1e-3)


def test_centre_clip_pads_and_crops_to_one_second():
    short = centre_clip(np.ones(100), 8000)
    assert short.shape == (8000,) and abs(short[3950] - 1) < 1e-3 and abs(short[0]) < 1e-3
    long = centre_clip(np.arange(20000.0), 8000)
    assert long.shape == (8000,)
    assert abs(long[0] - 6000 / 19999) < 1e-3  # cropped around the centre, then peak-normalized


@pytest.mark.parametrize("wave, rate, message", [
    (np.zeros(0), 8000, "empty"),
    (np.array([0.0, np.nan]), 8000, "NaN"),
    (np.zeros((2, 2, 2)), 8000, "shape"),
    (np.zeros(100), 44.1, "sample_rate"),
])
def test_bad_input(wave, rate, message):
    with pytest.raises(ValueError, match=message):
        mfcc_507(wave, rate)


def test_reproduces_the_shared_sample_features(shared_data):
    """kaggle_sample's speech rows are standardized MFCCs of FSDD recordings: each of them must
    match the features of some training-speaker recording computed here (voiced frames)."""
    files = [f for f in sorted(glob.glob(str(shared_data / "fsdd" / "recordings" / "*.wav")))
             if "_nicolas_" not in f][::3]
    ours = np.stack([mfcc_507(*reversed(scipy.io.wavfile.read(f))).reshape(-1) for f in files])
    ours = (ours - ours.mean(0)) / ours.std(0)
    given = np.load(shared_data / "kaggle_sample" / "x_train_sp.npy")[:300]
    voiced = np.zeros((39, 13), bool)
    voiced[12:27] = True
    voiced = voiced.ravel()
    a = given[:, voiced] - given[:, voiced].mean(1, keepdims=True)
    b = ours[:, voiced] - ours[:, voiced].mean(1, keepdims=True)
    corr = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    best = corr.max(axis=1)
    # Only every third recording is computed, so about a third of the rows have their twin here.
    assert np.mean(best > 0.99) > 0.25
    assert np.mean(best > 0.99) < 0.45
