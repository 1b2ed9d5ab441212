"""The example notebooks, executed on the notebook platforms' versions: examples/quickstart.ipynb
on the embedded demo data, examples/kaggle_notebook.ipynb on a cut of kaggle_sample (issue 24).
They run here, not in the main suite: a notebook is run where notebooks run, and each costs a
kernel and a TensorFlow start-up (docs/experiments.md, "The test suite's time, fifth pass")."""

import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
from nbclient import NotebookClient

from mmdigits_keras.data import build_demo_data
from mmdigits_keras.submission import validate_submission

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name, folder):
    """The notebook `name` executed in `folder`; the text of its code cells' outputs."""
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.get("outputs", []))


def _first_rows(source, out, *, train, test):
    """The competition files of `source`, cut to their first `train` / `test` rows."""
    out.mkdir()
    for split, rows in (("train", train), ("test", test)):
        for kind in ("wr", "sp"):
            np.save(out / f"x_{split}_{kind}.npy", np.load(source / f"x_{split}_{kind}.npy", allow_pickle=False)[:rows])
    pd.read_csv(source / "y_train.csv").head(train).to_csv(out / "y_train.csv", index=False)
    return out


def test_the_kaggle_notebook_trains_searches_and_writes_a_valid_submission(kaggle_sample, tmp_path, monkeypatch):
    data = _first_rows(kaggle_sample, tmp_path / "input", train=1000, test=200)
    # The kernel inherits this environment: small epochs and trials, a cut of the shared sample.
    for name, value in {"MMDIGITS_KAGGLE_DATA": data, "MMDIGITS_WORK": tmp_path, "MMDIGITS_EPOCHS": 1,
                        "MMDIGITS_TRIALS": 2, "MMDIGITS_TRIAL_EPOCHS": 1}.items():
        monkeypatch.setenv(name, str(value))
    text = _run("kaggle_notebook.ipynb", tmp_path)
    assert "6,766,478 parameters" in text  # Nippani Ravi, Table 2
    assert "train 1000 rows" in text and "validation accuracy" in text
    board = pd.read_csv(tmp_path / "search" / "leaderboard.csv")
    assert len(board) == 2 and set(board["status"]) == {"COMPLETED"}
    path = tmp_path / "submission.csv"
    validate_submission(path, rows=200)
    assert list(pd.read_csv(path).columns) == ["row_id", "label"]


def test_the_quickstart_notebook_runs_offline_and_learns_on_the_demos_data(tmp_path):
    # As after `make demo` in the repository: the notebook takes runs/demo/data.
    build_demo_data(tmp_path / "runs" / "demo" / "data", seed=0)
    text = _run("quickstart.ipynb", tmp_path)
    assert "\nruns/demo/data " in text, text[:500]
    assert "model2_conv1d 6,766,478 parameters" in text  # Nippani Ravi, Table 2
    accuracy = float(re.search(r"demo test accuracy: ([0-9.]+)", text).group(1))
    assert accuracy > 0.8, accuracy
