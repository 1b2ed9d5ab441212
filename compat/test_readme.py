"""README's notebook snippet, run as written where users paste it (a notebook image), after
`make demo`: its ``runs/demo/data`` exists. It trains with every default, so it runs here, not
in the main suite."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from mmdigits_keras.data import build_demo_data
from mmdigits_keras.submission import validate_submission

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readmes_snippet_runs_as_written_on_the_demos_data_and_predicts_with_the_trained_run(tmp_path):
    (snippet,) = re.findall(r"```python\n(.*?)```", README, re.S)
    build_demo_data(tmp_path / "runs" / "demo" / "data", seed=0)  # what `make demo` leaves
    # Run as pasted, then a check appended: the probabilities are the trained run's.
    check = "\nimport numpy; numpy.save('probabilities.npy', probabilities)\n"
    done = subprocess.run([sys.executable, "-c", snippet + check], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    submission = validate_submission(tmp_path / "submissions" / "default.csv", rows=1000)
    probabilities = np.load(tmp_path / "probabilities.npy", allow_pickle=False)
    assert probabilities.shape == (1000, 10)
    np.testing.assert_array_equal(probabilities.argmax(1), submission["label"].to_numpy())
