import numpy as np
import pytest
from conftest import built_once

from mmdigits_keras.cli import main
from mmdigits_keras.data.demo import ACCENTS, TEST_ACCENTS, build_demo_arrays
from mmdigits_keras.data.sources import find_recordings, read_wav


@pytest.fixture(scope="module")
def demo_arrays(tmp_path_factory, worker_id):
    # Built once for both workers; so the same-seed test compares two processes' builds.
    def build(folder):
        np.savez(folder / "arrays.npz", **build_demo_arrays(seed=0))

    with np.load(built_once("demo_arrays", build, tmp_path_factory, worker_id) / "arrays.npz",
                 allow_pickle=False) as arrays:
        return dict(arrays)


def test_shapes_and_label_balance(demo_arrays):
    assert demo_arrays["x_train_wr"].shape == (4000, 784) and demo_arrays["x_test_wr"].shape == (1000, 784)
    assert demo_arrays["x_train_sp"].shape == (4000, 507) and demo_arrays["x_test_sp"].shape == (1000, 507)
    np.testing.assert_array_equal(np.bincount(demo_arrays["y_train"]), [400] * 10)
    np.testing.assert_array_equal(np.bincount(demo_arrays["y_test"]), [100] * 10)
    assert 0 <= demo_arrays["x_train_wr"].min() and demo_arrays["x_train_wr"].max() == 255
    assert np.all(np.isfinite(demo_arrays["x_train_sp"]))
    np.testing.assert_allclose(demo_arrays["x_train_sp"].mean(axis=0), 0, atol=1e-4)


def test_test_speech_comes_only_from_held_out_accents(demo_arrays):
    test_accents = {voice.split("+")[0] for voice in demo_arrays["voice_test"]}
    train_accents = {voice.split("+")[0] for voice in demo_arrays["voice_train"]}
    assert test_accents == set(TEST_ACCENTS)
    assert train_accents == set(ACCENTS) - set(TEST_ACCENTS)


def test_speech_carries_the_digit(demo_arrays):
    """Each digit's utterances are more alike than other digits': nearest class mean wins."""
    x, y = demo_arrays["x_train_sp"], demo_arrays["y_train"]
    means = np.stack([x[y == d].mean(axis=0) for d in range(10)])
    predicted = np.argmin(((demo_arrays["x_test_sp"][:, None] - means) ** 2).sum(-1), axis=1)
    assert np.mean(predicted == demo_arrays["y_test"]) > 0.5


def test_same_seed_same_bytes_and_other_seed_differs(demo_arrays):
    again = build_demo_arrays(seed=0)
    for key in ("x_train_sp", "x_test_sp", "x_train_wr", "y_train"):
        np.testing.assert_array_equal(again[key], demo_arrays[key])
    assert not np.array_equal(build_demo_arrays(seed=1)["x_train_sp"], demo_arrays["x_train_sp"])


def test_synthesize_writes_a_corpus_that_data_build_reads(tmp_path, capsys):
    assert main(["data", "synthesize", "--out", str(tmp_path / "voices")]) == 0
    assert "720 wav files" in capsys.readouterr().out
    recordings, skipped = find_recordings(tmp_path / "voices", "fsdd")
    assert not skipped and len(recordings) == 720
    speakers = {r["speaker"] for r in recordings}
    assert len(speakers) == 72 and all(s.startswith("espeak") for s in speakers)
    assert {r["digit"] for r in recordings} == set(range(10))
    wave, rate = read_wav(recordings[0]["path"])
    assert rate == 22050 and wave.ndim == 1 and np.abs(wave).max() > 1000  # int16 PCM speech
