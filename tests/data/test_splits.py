"""Grouped validation splits: no recording (or speaker) on both sides."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdigits_keras.data import MultimodalDataset, fold_rows, read_groups, resolve_split, train_val_split, write_groups


def dataset(labels, *, recordings=None, speakers=None, audio=None):
    n = len(labels)
    if audio is None:
        audio = np.random.default_rng(0).normal(size=(n, 507)).astype(np.float32)
    return MultimodalDataset(images=np.zeros((n, 28, 28, 1), np.float32), audio=audio,
                             labels=np.asarray(labels, np.int64), ids=np.arange(n),
                             recordings=None if recordings is None else np.asarray(recordings, dtype=object),
                             speakers=None if speakers is None else np.asarray(speakers, dtype=object))


@st.composite
def grouped_data(draw):
    """Random recordings (each of one digit, repeated over 1-6 rows, as the Khacef rule pairs
    them) spoken by random speakers."""
    count = draw(st.integers(12, 60))
    digits = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    speakers = draw(st.lists(st.integers(0, 7), min_size=count, max_size=count))
    repeats = draw(st.lists(st.integers(1, 6), min_size=count, max_size=count))
    rows = np.repeat(np.arange(count), repeats)
    order = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(len(rows))
    rows = rows[order]
    return dataset(np.asarray(digits)[rows], recordings=[f"rec{r}" for r in rows],
                   speakers=[f"spk{speakers[r]}" for r in rows])


@settings(max_examples=60, deadline=None)
@given(data=grouped_data(), folds=st.integers(2, 5), seed=st.integers(0, 1000))
def test_no_recording_or_speaker_straddles_a_split(data, folds, seed):
    for split, groups in (("recording", data.recordings), ("speaker", data.speakers)):
        if len(set(groups)) < folds or np.bincount(data.labels).min(initial=2) < 2:
            continue
        try:
            used, parts = fold_rows(data, folds=folds, split=split, seed=seed)
        except ValueError as error:
            assert "single row" in str(error) or "cannot split" in str(error)
            continue
        assert used == split
        seen = np.zeros(len(data), int)
        for train_rows, val_rows in parts:
            assert set(groups[train_rows]).isdisjoint(groups[val_rows])
            seen[val_rows] += 1
        assert (seen == 1).all()  # every row is validated exactly once
        train, val = train_val_split(data, val_fraction=1 / folds, seed=seed, split=split)
        assert set(train.recordings).isdisjoint(val.recordings)
        if split == "speaker":
            assert set(train.speakers).isdisjoint(val.speakers)


def test_without_a_groups_file_equal_speech_vectors_are_one_recording():
    rng = np.random.default_rng(1)
    recordings = rng.normal(size=(40, 507)).astype(np.float32)
    which = np.arange(200) % 40
    data = dataset(which % 10, audio=recordings[which])
    assert resolve_split(data, None, folds=5) == "recording"
    train, val = train_val_split(data, val_fraction=0.2, seed=0)
    assert {r.tobytes() for r in train.audio}.isdisjoint({r.tobytes() for r in val.audio})
    row_train, row_val = train_val_split(data, val_fraction=0.2, seed=0, split="row")
    # The leak the grouped split closes: a random row split shares speech across the parts.
    assert not {r.tobytes() for r in row_train.audio}.isdisjoint({r.tobytes() for r in row_val.audio})


def test_the_default_is_the_strictest_split_the_data_supports(caplog):
    labels = np.arange(120) % 10
    many = dataset(labels, recordings=[f"r{i}" for i in range(120)], speakers=[f"s{i % 6}" for i in range(120)])
    assert resolve_split(many, None, folds=5) == "speaker"
    few = dataset(labels, recordings=[f"r{i}" for i in range(120)], speakers=[f"s{i % 3}" for i in range(120)])
    with caplog.at_level(logging.INFO, logger="mmdigits_keras"):
        assert resolve_split(few, None, folds=5) == "recording"  # 5-fold cross-validation
    assert "3 speakers are too few for 5 folds" in caplog.text
    # One hold-out split: one of the three speakers is validation, two voices train.
    with caplog.at_level(logging.INFO, logger="mmdigits_keras"):
        train, val = train_val_split(few, val_fraction=0.2, seed=0)
    assert "validating on 1 of the 3 speakers" in caplog.text
    assert len(set(val.speakers)) == 1 and set(train.speakers) == {"s0", "s1", "s2"} - set(val.speakers)
    two = dataset(labels, recordings=[f"r{i}" for i in range(120)], speakers=[f"s{i % 2}" for i in range(120)])
    assert resolve_split(two, None, folds=5, holdout=True) == "recording"  # never train on a single voice
    one_recording = dataset(labels, audio=np.zeros((120, 507), np.float32))
    with caplog.at_level(logging.WARNING, logger="mmdigits_keras"):
        assert resolve_split(one_recording, None, folds=5) == "row"
    assert "too few distinct recordings" in caplog.text


def test_asking_for_more_than_the_data_supports_is_one_clear_error():
    labels = np.arange(60) % 10
    with pytest.raises(ValueError, match=r"has no speaker ids"):
        train_val_split(dataset(labels), split="speaker")
    with pytest.raises(ValueError, match=r"3 speaker\(s\) cannot be dealt into 5 folds"):
        fold_rows(dataset(labels, speakers=[f"s{i % 3}" for i in range(60)]), folds=5, split="speaker")
    with pytest.raises(ValueError, match=r"1 speaker\(s\) cannot be dealt into 2 folds"):
        train_val_split(dataset(labels, speakers=["s"] * 60), split="speaker")
    with pytest.raises(ValueError, match="`split` must be one of"):
        train_val_split(dataset(labels), split="voice")
    with pytest.raises(ValueError, match="`folds` must be an integer >= 2"):
        fold_rows(dataset(labels), folds=1)


def test_groups_file_round_trip_and_refusals(tmp_path):
    write_groups(tmp_path, "train", recordings=["a.wav", "a.wav", "b.wav"], speakers=["x", "x", "y"])
    recordings, speakers = read_groups(tmp_path, "train", rows=3)
    assert recordings.tolist() == ["a.wav", "a.wav", "b.wav"] and speakers.tolist() == ["x", "x", "y"]
    assert read_groups(tmp_path, "test", rows=3) == (None, None)
    with pytest.raises(ValueError, match="groups_train.csv: has 3 rows but the feature files have 4"):
        read_groups(tmp_path, "train", rows=4)
    (tmp_path / "groups_train.csv").write_text("row_id,recording\n0,a\n1,b\n2,c\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['speaker'\]"):
        read_groups(tmp_path, "train", rows=3)
    (tmp_path / "groups_train.csv").write_text("row_id,recording,speaker\n0,a,x\n0,b,x\n2,c,\n")
    with pytest.raises(ValueError, match="`row_id` must be the integers 0..2"):
        read_groups(tmp_path, "train", rows=3)
