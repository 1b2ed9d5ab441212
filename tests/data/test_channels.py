import json

import numpy as np
import pytest
from scipy.signal import welch

from mmdigits_keras.data import load_kaggle
from mmdigits_keras.data.build import build_dataset
from mmdigits_keras.data.channels import CHANNELS, apply_channel, room_impulse_response, speed_perturb

RATE = 8000


@pytest.fixture(scope="module")
def mnist_npz(shared_data):
    return shared_data / "mnist_t10k_first5000.npz"


@pytest.fixture(scope="module")
def small_fsdd(shared_data, tmp_path_factory):
    """4 takes per digit of george and nicolas (80 recordings, as symbolic links)."""
    folder = tmp_path_factory.mktemp("rec")
    for digit in range(10):
        for speaker in ("george", "nicolas"):
            for n in range(4):
                name = f"{digit}_{speaker}_{n}.wav"
                (folder / name).symlink_to(shared_data / "fsdd" / "recordings" / name)
    return folder


def _tone(hz, seconds=1.0, amplitude=0.5):
    t = np.arange(int(RATE * seconds)) / RATE
    return amplitude * np.sin(2 * np.pi * hz * t)


def _band_power(wave, hz):
    freqs, power = welch(wave, fs=RATE, nperseg=1024)
    return power[np.argmin(np.abs(freqs - hz))]


def test_telephone_band_keeps_speech_band_and_cuts_outside():
    wave = _tone(100) + _tone(1000) + _tone(3800)
    out = apply_channel(wave, RATE, "telephone")
    assert _band_power(out, 1000) / _band_power(wave, 1000) > 0.8
    for hz in (100, 3800):
        assert _band_power(out, hz) / _band_power(wave, hz) < 0.01  # > 20 dB down


@pytest.mark.parametrize("snr", [20, 10])
def test_noise_channels_reach_their_snr(snr):
    wave = _tone(440, seconds=2)
    out = apply_channel(wave, RATE, f"noise{snr}", key="a.wav")
    measured = 10 * np.log10(np.mean(wave**2) / np.mean((out - wave) ** 2))
    assert abs(measured - snr) < 0.3
    again = apply_channel(wave, RATE, f"noise{snr}", key="a.wav")
    other = apply_channel(wave, RATE, f"noise{snr}", key="b.wav")
    np.testing.assert_array_equal(out, again)
    assert not np.allclose(out, other)


def test_gain_scales_then_saturates_at_full_scale():
    quiet = apply_channel(_tone(440, amplitude=0.5), RATE, "gain-12")
    assert np.max(np.abs(quiet)) == pytest.approx(0.5 * 10 ** (-12 / 20), rel=1e-3)
    pcm = np.round(_tone(440, amplitude=12000.0))  # int16 numbers, as read_wav returns them
    loud = apply_channel(pcm, RATE, "gain+12")
    assert np.max(loud) == 32768 and np.mean(np.abs(loud) == 32768) > 0.2  # clipped
    assert np.all(loud == np.round(loud))  # requantized


def test_room_reverberates_and_keeps_the_level():
    response = room_impulse_response(RATE)
    assert np.argmax(np.abs(response)) > 0 and response.size > 0.2 * RATE  # a delay and a tail
    click = np.zeros(RATE)
    click[100] = 1.0
    out = apply_channel(click, RATE, "room")
    assert out.size == click.size + RATE // 2  # the recording and its 0.5 s (RT60) tail
    assert np.argmax(np.abs(out)) == 100  # aligned with the dry recording (direct path first)
    assert np.max(np.abs(out)) == pytest.approx(1.0)
    assert np.count_nonzero(np.abs(out) > 1e-3) > 100  # one click became many reflections


def test_speed_perturbation_changes_duration():
    wave = _tone(440)
    np.testing.assert_array_equal(speed_perturb(wave, 1.0), wave)
    assert speed_perturb(wave, 1.1).size == pytest.approx(wave.size / 1.1, abs=2)
    assert speed_perturb(wave, 0.9).size == pytest.approx(wave.size / 0.9, abs=2)
    with pytest.raises(ValueError, match="factor"):
        speed_perturb(wave, 3.0)


def test_unknown_channel_and_low_rate_are_refused():
    with pytest.raises(ValueError, match="`channel` must be one of"):
        apply_channel(_tone(440), RATE, "phone")
    with pytest.raises(ValueError, match="telephone channel needs a rate"):
        apply_channel(_tone(440), 6000, "telephone")
    assert set(CHANNELS) == {"telephone", "gain+12", "gain-12", "noise20", "noise10", "room"}


def test_build_with_a_channel_changes_only_the_test_speech(small_fsdd, mnist_npz, tmp_path):
    common = dict(audio=small_fsdd, audio_format="fsdd", images=mnist_npz, test_speakers=["nicolas"], verbose=0)
    clean = build_dataset(out=tmp_path / "clean", **common)
    noisy = build_dataset(out=tmp_path / "noisy", channel="noise10", **common)
    for name in ("x_train_sp", "x_train_wr", "x_test_wr"):
        np.testing.assert_array_equal(np.load(clean / f"{name}.npy"), np.load(noisy / f"{name}.npy"))
    assert not np.allclose(load_kaggle(clean, "test").audio, load_kaggle(noisy, "test").audio)
    assert json.loads((noisy / "manifest.json").read_text())["channel"]["test"] == "noise10"


def test_build_with_speed_perturbation_adds_training_utterances(small_fsdd, mnist_npz, tmp_path):
    out = build_dataset(audio=small_fsdd, audio_format="fsdd", images=mnist_npz, out=tmp_path / "o",
                        test_speakers=["nicolas"], speed_perturbation=(0.9, 1.1), verbose=0)
    manifest = json.loads((out / "manifest.json").read_text())
    files = manifest["train"]["source_files"]
    assert len(files) == 3 * 40 and sum(f.endswith("(speed x0.9)") for f in files) == 40
    assert manifest["audio"]["recordings"] == 80 and manifest["train"]["rows"] == 4000
    assert not any("speed" in f for f in manifest["test"]["source_files"])
    with pytest.raises(ValueError, match="speed_perturbation"):
        build_dataset(audio=small_fsdd, audio_format="fsdd", images=mnist_npz, out=tmp_path / "p",
                      test_speakers=["nicolas"], speed_perturbation=(1.0,), verbose=0)
