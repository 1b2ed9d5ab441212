"""Every command's library call once, on the backend the backend matrix (`make backends`) runs:
JAX, then PyTorch, in a virtual environment without TensorFlow (conftest.py collects this module
only there; on TensorFlow the main suite's own tests cover the same calls: test_cli's demo,
test_crossval, test_search, test_retrieval)."""

import json

import keras
import pandas as pd
import pytest

from mmdigits_keras.submission import submit
from mmdigits_keras.training import TrainingSettings, train, train_retrieval
from mmdigits_keras.tuning import run_search

pytestmark = pytest.mark.backends
BACKEND = keras.backend.backend()


@pytest.mark.slow(20)
def test_cross_validation_trains_its_folds_and_submits_their_mean(tiny_kaggle, tmp_path):
    run = train(tiny_kaggle, out=tmp_path / "cv", model="model1", epochs=1, folds=2, verbose=0)
    assert json.loads((run / "config.json").read_text())["training"]["protocol"] == "single"
    path, frame = submit(run, tiny_kaggle, tmp_path / "cv.csv")
    assert len(pd.read_csv(path)) == 50 and frame["label"].between(0, 9).all()


@pytest.mark.slow(30)
def test_a_search_of_two_trials_exports_best(tiny_kaggle, tmp_path):
    space = {"depth": [1], "width": [0.5], "audio": ["conv1d"], "batch_size": [128]}
    result = run_search(tiny_kaggle, out=tmp_path / "search", model="model2", space=space, max_trials=2, epochs=1,
                        settings=TrainingSettings(epochs=1, verbose=0))
    assert len(result["leaderboard"]) == 2 and result["failed"] == 0 and (result["best"] / "model.keras").is_file()
    assert json.loads((result["best"] / "config.json").read_text())["versions"]["backend"] == BACKEND


@pytest.mark.slow(15)
def test_retrieval_towers_train_one_epoch(tiny_kaggle, tmp_path):
    run = train_retrieval(tiny_kaggle, out=tmp_path / "towers", embedding_dim=8, epochs=1, batch_size=32, verbose=0)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["val_annotation_accuracy"] <= 1 and metrics["finetune"]["epochs"] == 1
