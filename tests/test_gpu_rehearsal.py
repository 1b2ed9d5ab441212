"""The GPU check (benchmarks/gpu_check.sh) rehearsed on the CPU, where the GPU machine's
environment is matched: no TensorFlow (`make backends`' environment; conftest.py collects this
module only there), the backend the matrix runs, a tiny copy of kaggle_sample."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
CHECKS = ("device", "train, sample", "train, 600 rows", "throughput, float32 (samples/s)")


def tiny_copy(source, out, rows=240):
    """The first `rows` training and 60 test rows of a Kaggle-layout folder."""
    out.mkdir()
    for name, count in (("x_train_wr", rows), ("x_train_sp", rows), ("x_test_wr", 60), ("x_test_sp", 60)):
        np.save(out / f"{name}.npy", np.load(source / f"{name}.npy", allow_pickle=False)[:count])
    pd.read_csv(source / "y_train.csv").head(rows).to_csv(out / "y_train.csv", index=False)
    return out


@pytest.mark.slow(60)
@pytest.mark.backends
def test_the_gpu_check_reports_no_gpu_and_runs_every_check_on_the_cpu(kaggle_sample, tmp_path):
    backend = keras.backend.backend()
    data = tiny_copy(kaggle_sample, tmp_path / "tiny")
    done = subprocess.run(["bash", str(SCRIPT), "--data", str(data), "--rows", "600", "--epochs", "1", "--repeats", "1",
                           "--backends", backend, "--precisions", "float32", "--work", str(tmp_path / "work")],
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith(f"| {backend} |")]
    assert [cells[1] for cells in table] == list(CHECKS)
    assert table[0][2].startswith("no GPU: the checks ran on the CPU")
    assert "FAILED" not in done.stdout
    for stage in ("augmentation on the device", "augmentation on the host", "augmentation none"):
        assert stage in table[3][2]
    assert (tmp_path / "work" / backend / "scale" / "model.keras").is_file()
