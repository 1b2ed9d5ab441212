"""The GPU check's script (`benchmarks/gpu_check.sh`) without a usable interpreter or package:
one line, exit 2. Its full run on the CPU is rehearsed in the backend matrix
(`test_gpu_rehearsal.py`)."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def test_the_gpu_check_without_python_or_keras_says_so_in_one_line(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "PYTHON": "false"}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "false does not run" in done.stderr
    # An interpreter without Keras (a bare venv): one line naming what to install.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True, timeout=60)
    done = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "PYTHON": str(tmp_path / "bare" / "bin" / "python"),
                                                      "PYTHONPATH": ""}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "cannot import keras and mmdigits_keras" in done.stderr
