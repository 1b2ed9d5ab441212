"""The GPU check (`benchmarks/gpu_check.sh`) on a machine without a GPU: it says so and runs
every check on the CPU (CI has no GPU; a session lent one runs it as docs/results.md says)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
CHECKS = ("device", "train, float32", "train, mixed_float16", "train, --strategy mirrored",
          "pipeline vs steps (default recipe, batch 128)", "export (SavedModel)")


@pytest.mark.slow(30)
def test_the_gpu_check_reports_no_gpu_and_runs_every_check_on_the_cpu(tiny_kaggle, tmp_path):
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


def test_the_gpu_check_without_tensorflow_says_so_in_one_line(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "PYTHON": "false"}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "cannot import tensorflow and mmdigits_keras" in done.stderr
