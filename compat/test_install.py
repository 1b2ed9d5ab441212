"""The wheel installs into a notebook's environment without moving any of its pins (issue 24),
with the `[demo]` extra that examples/quickstart.ipynb needs (test_notebook.py runs it)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import notebook_image

PINNED = tuple(notebook_image()[1])


def _versions():
    listed = subprocess.run([sys.executable, "-m", "pip", "list", "--format", "json"], capture_output=True,
                            text=True, check=True, timeout=300).stdout
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}


def test_the_wheel_keeps_tensorflow_keras_and_numpy_and_pip_check_is_clean():
    wheel = Path(os.environ["MMDIGITS_WHEEL"])
    before = _versions()
    assert "mmdigits-keras" not in before, "the compatibility environment must start without the package"
    assert all(name in before for name in PINNED), before
    # As a notebook installs it: TensorFlow is there already, so no [cpu] extra.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"{wheel}[demo]"], check=True, timeout=900)
    after = _versions()
    assert {n: after.get(n) for n in PINNED} == {n: before[n] for n in PINNED}
    moved = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
    assert not moved, f"the install changed packages the notebook had: {moved}"
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
