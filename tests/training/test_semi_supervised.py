"""Semi-supervised training on a folder's unlabeled test rows: the test labels are never read,
retrieval never trains on test pairs, a teacher labels for a speech-alone student, and what is
refused is refused before any training."""

import dataclasses
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_arrays, write_kaggle
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mmdigits_keras as mk
from mmdigits_keras.cli import main
from mmdigits_keras.data import load_dataset
from mmdigits_keras.evaluation import evaluate
from mmdigits_keras.submission import submit
from mmdigits_keras.training import TrainingSettings, load_trained_model, train, train_retrieval
from mmdigits_keras.training.pseudo_labels import confidence_threshold
from mmdigits_keras.tuning import run_search

pytestmark = pytest.mark.backends  # also in the backend matrix: JAX and PyTorch
# A run that learns enough in seconds to pseudo-label some of the synthetic test rows.
QUICK = {"model": "model1", "recipe": "plain", "epochs": 4}


@pytest.fixture
def labelled_test(tmp_path):
    """200 training rows and 100 test rows with their labels on disk (y_test.csv)."""
    pixels, audio, labels = synthetic_arrays(300)
    return write_kaggle(tmp_path / "data", pixels=pixels[:200], audio=audio[:200], labels=labels[:200],
                        test_pixels=pixels[200:], test_audio=audio[200:], test_labels=labels[200:])


@pytest.mark.slow(15)
def test_test_labels_are_never_read_and_the_run_records_the_test_inputs_it_used(labelled_test, tmp_path, capsys,
                                                                                caplog, monkeypatch):
    first = train(labelled_test, out=tmp_path / "first", semi_supervised=True, verbose=0, **QUICK)
    metrics = json.loads((first / "metrics.json").read_text())
    used = metrics["semi_supervised"]
    assert used["test_inputs_used"] is True and used["test_labels_read"] is False
    assert used["labeller"] == "validated model" and used["test_rows"] == 100
    assert 0 < used["pseudo_labelled_rows"] <= 100 and used["rows"] == 200 + used["pseudo_labelled_rows"]
    assert metrics["finetune"]["rows"] == 200 + used["pseudo_labelled_rows"]  # they joined the fine-tuning
    assert used["validation_precision"] >= used["precision_target"] == 0.99
    config = json.loads((first / "config.json").read_text())
    assert config["training"]["semi_supervised"]["pseudo_labelled_rows"] == used["pseudo_labelled_rows"]

    truth = pd.read_csv(labelled_test / "y_test.csv")
    truth.assign(label=np.random.default_rng(1).permutation(truth["label"].to_numpy())).to_csv(
        labelled_test / "y_test.csv", index=False)  # shuffled on disk: nothing changes
    second = train(labelled_test, out=tmp_path / "second", semi_supervised=True, verbose=0, **QUICK)
    test = load_dataset(labelled_test, "test", labels=False)
    predictions = [load_trained_model(run).predict(test.inputs(), verbose=0) for run in (first, second)]
    assert np.array_equal(predictions[0], predictions[1])
    truth.to_csv(labelled_test / "y_test.csv", index=False)

    # A fused teacher labels for a speech-alone student, which still predicts from speech alone.
    student = train(labelled_test, out=tmp_path / "student", model="audio_cnn", recipe="plain", epochs=1,
                    verbose=0, semi_supervised=first)
    taught = json.loads((student / "metrics.json").read_text())["semi_supervised"]
    assert taught["labeller"] == str(first) and taught["pseudo_labelled_rows"] > 0
    speech_alone = load_trained_model(student)
    other_images = dataclasses.replace(test, images=np.random.default_rng(2).permutation(test.images))
    assert np.array_equal(speech_alone.predict(test.inputs(), verbose=0),
                          speech_alone.predict(other_images.inputs(), verbose=0))

    # The CLI's flag: alone, the validated model labels; with a run, that teacher does. It prints the stage.
    given = []
    monkeypatch.setattr(mk, "train", lambda *args, **kwargs: given.append(kwargs) or first)
    for teacher in ([], [str(first)]):
        assert main(["train", "--data", str(labelled_test), "--out", "o", "--semi-supervised", *teacher]) == 0
    assert [kwargs["semi_supervised"] for kwargs in given] == [True, str(first)]
    assert re.search(r"semi-supervised: the fine-tuning also trained on \d+ of the 100 test rows, pseudo-labelled by "
                     r"the validated model \(their labels unread\)", capsys.readouterr().out)

    # evaluate and submit of such a run say so; a run that did not learn from them is scored quietly.
    with pytest.warns(UserWarning, match="learned from these test rows' inputs"):
        scored = evaluate(first, labelled_test, split="test")
    assert json.loads((scored["dir"] / "metrics.json").read_text())["test_inputs_used"] == [str(first)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert json.loads((evaluate(first / "model.keras", labelled_test, split="test", out=tmp_path / "e")["dir"]
                           / "metrics.json").read_text())["test_inputs_used"] == []
    assert not [w for w in caught if "test rows' inputs" in str(w.message)]
    with caplog.at_level("INFO", logger="mmdigits_keras"):
        submit(first, labelled_test, tmp_path / "submission.csv")
    assert "check the competition's rules" in caplog.text


def test_what_cannot_learn_from_test_rows_is_refused_before_training(labelled_test, tiny_fusion_run, tmp_path):
    with pytest.raises(ValueError, match="pairing is its label"):
        train_retrieval(labelled_test, out=tmp_path / "r", semi_supervised=True)
    with pytest.raises(ValueError, match="needs protocol='finetune'"):
        TrainingSettings(semi_supervised=True, protocol="single")
    with pytest.raises(ValueError, match="`semi_supervised` and `folds`"):
        train(labelled_test, out=tmp_path / "cv", folds=2, semi_supervised=True)
    with pytest.raises(ValueError, match="semi_supervised"):
        TrainingSettings(semi_supervised=1)
    with pytest.raises(ValueError, match="`ensemble`"):
        run_search(labelled_test, out=tmp_path / "s", ensemble=2, settings=TrainingSettings(semi_supervised=True))
    no_test = tiny_fusion_run[0]  # a folder without test files, and a run of other data
    with pytest.raises(ValueError, match="needs the folder's test inputs"):
        train(no_test, out=tmp_path / "n", semi_supervised=True, **QUICK)
    with pytest.raises(ValueError, match="trained on other data"):
        train(labelled_test, out=tmp_path / "t", semi_supervised=tiny_fusion_run[1], **QUICK)
    with pytest.raises(ValueError, match="in-memory"):
        train(load_dataset(labelled_test), out=tmp_path / "m", semi_supervised=True, **QUICK)
    assert not any((tmp_path / name).exists() for name in ("r", "cv", "s", "n", "t", "m"))


@settings(max_examples=60, deadline=None)
@given(labels=arrays(np.int64, 30, elements=st.integers(0, 2)),
       probabilities=arrays(np.float64, (30, 3), elements=st.floats(0.01, 1.0)),
       precision=st.sampled_from([0.5, 0.9, 0.99, 1.0]))
def test_the_threshold_is_the_lowest_confidence_that_is_precise_enough(labels, probabilities, precision):
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    threshold, reached = confidence_threshold(labels, probabilities, precision=precision)
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    precise = [t for t in np.unique(confidence) if correct[confidence >= t].mean() >= precision]
    if not precise:
        assert threshold == np.inf and reached == 0.0
    else:
        assert threshold == pytest.approx(min(precise))
        assert reached == pytest.approx(correct[confidence >= threshold].mean()) and reached >= precision
