import json

import numpy as np
import pandas as pd
import pytest
import scipy.io.wavfile

from mmdigits_keras.cli import main
from mmdigits_keras.evaluation.retrieval import query, wav_features
from mmdigits_keras.training.retrieval_protocol import protocol_trials, recall_at_k, run_protocol


def _labels(rows, seed=0):
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(rows) % 10)


def test_protocol_draws_one_candidate_per_class_and_the_right_number_of_trials():
    query_labels, candidate_labels = _labels(300, 1), _labels(230, 2)
    queries, candidates = protocol_trials(query_labels, candidate_labels, trials_per_class=100, seed=0)
    assert queries.shape == (1000,) and candidates.shape == (1000, 10)
    assert np.array_equal(np.bincount(query_labels[queries]), np.full(10, 100))
    assert np.array_equal(query_labels[queries], np.repeat(np.arange(10), 100))  # class-major
    assert (candidate_labels[candidates] == np.arange(10)[None, :]).all()
    assert len(np.unique(queries)) > 250  # queries are drawn across the class, not one row repeated


def test_protocol_refuses_a_pool_missing_a_class():
    with pytest.raises(ValueError, match=r"no candidate rows of class\(es\) \[9\]"):
        protocol_trials(_labels(100), np.arange(90) % 9)


def test_protocol_scores_a_perfect_and_a_wrong_similarity():
    labels = _labels(200)
    noise = np.random.default_rng(0).uniform(0, 0.5, size=(200, 200))
    perfect = (labels[:, None] == labels[None, :]) + noise
    true, predicted = run_protocol(perfect, labels, labels, trials_per_class=20)
    assert len(true) == 200 and np.array_equal(true, predicted)
    # Every query prefers the next digit: every trial answers (class + 1) mod 10.
    shifted = (labels[None, :] == (labels[:, None] + 1) % 10) + noise
    true, predicted = run_protocol(shifted, labels, labels, trials_per_class=20)
    assert np.array_equal(predicted, (true + 1) % 10)


def test_recall_at_k_counts_a_same_class_row_among_the_top_k():
    scores = np.array([[0.9, 0.8, 0.1], [0.9, 0.8, 0.1]])
    recall = recall_at_k(scores, np.array([1, 2]), np.array([0, 1, 2]), ks=(1, 2, 3))
    assert recall == {"recall@1": 0.0, "recall@2": 0.5, "recall@3": 1.0}


def test_wav_features_standardize_with_given_statistics(tmp_path):
    rate = 8000
    t = np.arange(rate // 2) / rate
    wave = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    scipy.io.wavfile.write(tmp_path / "a.wav", rate, wave)
    raw = wav_features(tmp_path / "a.wav")
    assert raw.shape == (1, 507)
    mean, std = np.full(507, 2.0), np.full(507, 4.0)
    np.testing.assert_allclose(wav_features(tmp_path / "a.wav", mean=mean, std=std), (raw - 2.0) / 4.0, rtol=1e-5)
    (tmp_path / "b.wav").write_bytes(b"RIFF not really")
    with pytest.raises(ValueError, match="b.wav: unreadable wav"):
        wav_features(tmp_path / "b.wav")


def test_retrieval_commands_train_evaluate_and_query(tiny_kaggle, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["retrieval", "train", "--data", str(tiny_kaggle), "--out", str(run),
                 "--epochs", "1"]) == 0
    assert "validation annotation accuracy" in capsys.readouterr().out
    labels = tmp_path / "test_labels.csv"
    pd.DataFrame({"row_id": np.arange(50), "label": np.arange(50) % 10}).to_csv(labels, index=False)
    assert main(["retrieval", "evaluate", "--model", str(run), "--data", str(tiny_kaggle), "--test-labels",
                 str(labels)]) == 0
    out = capsys.readouterr().out
    rows = json.loads((run / "metrics.json").read_text())["validation_rows"]  # the run's own validation rows
    assert out.startswith(f"validation ({rows} rows, 100 trials per class)") and "\ntest (50 rows" in out
    for split in ("validation", "test"):
        folder = run / "eval" / f"retrieval_{split}"
        assert {"metrics.json", "annotation_confusion.png", "retrieval_confusion.png", "trials.csv"} <= {
            p.name for p in folder.iterdir()}
        trials = pd.read_csv(folder / "trials.csv")
        assert len(trials) == 2 * 10 * 100 and (trials.groupby(["direction", "true"]).size() == 100).all()
        metrics = json.loads((folder / "metrics.json").read_text())
        accuracy = trials[trials["direction"] == "annotation"].eval("true == predicted").mean()
        assert metrics["annotation_accuracy"] == pytest.approx(accuracy)

    assert main(["retrieval", "query", "--model", str(run), "--data", str(tiny_kaggle), "--image-index", "3",
                 "-k", "4"]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(printed.split("rows ")[1].split("]")[0] + "]")
    assert len(rows) == 4 and "digits" not in printed  # no labels, no captions
    assert (run / "queries" / "test_image_3.png").stat().st_size > 1000
    captioned = query(run, tiny_kaggle, image_index=3, k=4, labels=labels)  # labels: Python only
    assert captioned["rows"].tolist() == rows and captioned["labels"].tolist() == [r % 10 for r in rows]

    wav = tmp_path / "one.wav"
    scipy.io.wavfile.write(wav, 8000, (np.random.default_rng(0).normal(size=6000) * 3000).astype(np.int16))
    code = main(["retrieval", "query", "--model", str(run), "--data", str(tiny_kaggle), "--wav", str(wav)])
    assert code == 2 and "manifest.json: not found" in capsys.readouterr().err
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"features": {"kind": "mfcc", "mean": [0.0] * 507, "std": [1.0] * 507}}))
    result = query(run, tiny_kaggle, wav=wav, audio_stats=manifest, out=tmp_path / "q.png")
    assert result["path"] == tmp_path / "q.png" and (tmp_path / "q.png").stat().st_size > 1000


def test_query_and_evaluate_refuse_a_classification_run(tiny_fusion_run, capsys):
    tiny_kaggle, run = tiny_fusion_run
    code = main(["retrieval", "evaluate", "--model", str(run), "--data", str(tiny_kaggle), "--split", "validation"])
    assert code == 2 and "not a retrieval run" in capsys.readouterr().err
    code = main(["retrieval", "query", "--model", str(run), "--data", str(tiny_kaggle), "--image-index", "0"])
    assert code == 2 and "not a retrieval run" in capsys.readouterr().err
