"""The GPU check (`benchmarks/gpu_check.sh`) on a machine without a GPU, in the notebook-like
environment a Kaggle or Colab GPU user has: it says so and runs every check on the CPU (CI has
no GPU; a session lent one runs it as docs/results.md says). Here rather than in the main suite:
its five trainings and TensorFlow start-up would take a seventh of that suite's five minutes."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
CHECKS = ("device", "train, float32", "train, mixed_float16", "train, --strategy mirrored",
          "pipeline vs steps (default recipe, batch 128)", "export (SavedModel)")


def tiny_copy(source, out, rows=240):
    """The first `rows` training and 60 test rows of a Kaggle-layout folder."""
    out.mkdir()
    for name, count in (("x_train_wr", rows), ("x_train_sp", rows), ("x_test_wr", 60), ("x_test_sp", 60)):
        np.save(out / f"{name}.npy", np.load(source / f"{name}.npy", allow_pickle=False)[:count])
    pd.read_csv(source / "y_train.csv").head(rows).to_csv(out / "y_train.csv", index=False)
    return out


def test_the_gpu_check_reports_no_gpu_and_runs_every_check_on_the_cpu(kaggle_sample, tmp_path):
    tiny_kaggle = tiny_copy(kaggle_sample, tmp_path / "tiny")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT), "--data", str(tiny_kaggle), "--epochs", "1", "--repeats", "1",
                           "--work", str(tmp_path / "work")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0][2:] for line in table[1:]] == list(CHECKS)
    assert "| device | no GPU: the checks ran on the CPU |" in done.stdout
    assert "FAILED" not in done.stdout
    # The verdict depends on timings (noisy for one tiny epoch); that it is given does not.
    assert "the pipeline keeps up" in done.stdout or "the device waits on the pipeline" in done.stdout
    assert (tmp_path / "work" / "mixed_float16" / "model.keras").is_file()
