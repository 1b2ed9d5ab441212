"""The GPU check's script (`benchmarks/gpu_check.sh`) without TensorFlow: one line, exit 2.
Its full run on the CPU is in the compatibility suite (`compat/test_gpu_check.py`)."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def test_the_gpu_check_without_tensorflow_says_so_in_one_line():
    done = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "PYTHON": "false"}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "cannot import tensorflow and mmdigits_keras" in done.stderr
