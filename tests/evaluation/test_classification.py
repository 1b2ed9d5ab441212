import re

import numpy as np
import pandas as pd
import pytest
from conftest import built_once, synthetic_arrays, write_kaggle

from mmdigits_keras.cli import main
from mmdigits_keras.evaluation import classification_summary, error_overlap, evaluate
from mmdigits_keras.evaluation.report import write_report
from mmdigits_keras.training import train

RUNS = ("model1", "image_cnn")


def test_classification_summary_known_answers():
    labels = np.array([0, 1, 2, 2])
    predicted = np.array([0, 1, 1, 2])
    metrics, per_class, confusion = classification_summary(labels, predicted)
    assert metrics["accuracy"] == 0.75
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert per_class.loc[2, "precision"] == 1.0 and per_class.loc[2, "recall"] == 0.5
    assert per_class.loc[1, "precision"] == 0.5 and per_class.loc[1, "support"] == 1
    assert confusion[2, 1] == 1 and confusion[2, 2] == 1 and confusion.sum() == 4


def test_error_overlap_counts_each_row_once():
    overlap = error_overlap({"image": {1, 2, 3}, "fused": {3, 4}, "audio": {3, 4, 5, 6}})
    counts = dict(zip(overlap["models"], overlap["rows"]))
    assert counts == {"image": 2, "audio": 2, "image & fused & audio": 1, "fused & audio": 1}
    assert overlap["rows"].sum() == len({1, 2, 3, 4, 5, 6})


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, worker_id):
    def build(root):
        pixels, audio, labels = synthetic_arrays(300)
        data = write_kaggle(root / "data", pixels=pixels[:250], audio=audio[:250], labels=labels[:250],
                            test_pixels=pixels[250:], test_audio=audio[250:], test_labels=labels[250:])
        for name in RUNS:
            train(data, out=root / name, model=name, epochs=2, recipe="plain", verbose=0)

    root = built_once("evaluation_runs", build, tmp_path_factory, worker_id)
    return root / "data", [root / name for name in RUNS]


@pytest.mark.backends
def test_evaluate_writes_metrics_that_match_the_predictions(tiny_runs):
    data, runs = tiny_runs
    result = evaluate(runs[0], data, split="test")
    predictions = pd.read_csv(result["dir"] / "predictions.csv")
    assert len(predictions) == 50
    assert result["metrics"]["accuracy"] == pytest.approx(predictions["correct"].mean())
    confusion = pd.read_csv(result["dir"] / "confusion.csv", index_col=0).to_numpy()
    assert confusion.trace() == predictions["correct"].sum()
    assert (result["dir"] / "confusion.png").stat().st_size > 2000
    validation = evaluate(runs[0], data, split="validation")
    assert validation["metrics"]["rows"] == 50  # 20% of 250, the run's own split


@pytest.mark.backends
def test_report_is_complete_and_every_link_resolves(tiny_runs, tmp_path):
    data, runs = tiny_runs
    report = write_report(runs, data, tmp_path / "report", split="test", max_embedding_rows=50)
    text = report.read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert len(links) >= 10
    for link in links:
        target = report.parent / link
        assert target.is_file() and target.stat().st_size > 0, link
    for png in report.parent.rglob("*.png"):
        assert png.stat().st_size > 2000, png
    for section in ("Accuracy and macro-F1", "Which rows each model gets wrong", "Embeddings", "Robustness"):
        assert section in text
    robustness = pd.read_csv(report.parent / "robustness.csv")
    assert set(robustness["condition"]) == {"image_noise", "audio_noise", "image_missing", "audio_missing"}
    assert robustness.groupby(["model", "condition"]).size().loc[("model1", "image_noise")] >= 6
    image_only = robustness[(robustness["model"] == "image_cnn") & (robustness["condition"] == "audio_noise")]
    assert image_only["accuracy"].nunique() == 1  # the image-only model ignores speech noise
    assert "![venn" not in text or (report.parent / "venn.png").is_file()
    assert (runs[0] / "curves.png").stat().st_size > 2000


def test_test_split_without_labels_is_refused(tiny_fusion_run, tiny_kaggle):
    _, run = tiny_fusion_run  # any run: tiny_kaggle's test part has no y_test.csv
    with pytest.raises(ValueError, match="no labels"):
        evaluate(run, tiny_kaggle, split="test")


def test_cli_evaluate_and_report(tiny_runs, tmp_path, capsys):
    data, runs = tiny_runs
    assert main(["evaluate", "--model", str(runs[0]), "--model", str(runs[1]), "--data", str(data),
                 "--split", "test"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("test accuracy") == 2
    comparison = runs[0].parent / "comparison"  # beside the first run; `evaluate(out=...)` from Python
    assert (comparison / "comparison.md").read_text().count("| model1 |") == 1
    assert (comparison / "venn.png").stat().st_size > 2000


def test_a_folder_that_is_not_a_run_is_refused(tiny_kaggle, tmp_path):
    with pytest.raises(ValueError, match="config.json: file not found"):
        evaluate(tmp_path, tiny_kaggle, split="validation")
