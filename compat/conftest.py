"""The compatibility suite runs in the notebook-like environment of `make compat`, not in the
main suite: Python 3.12 with the TensorFlow, Keras and numpy of `notebook.txt`."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kaggle_sample():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    folder = shared / "kaggle_sample"
    if not folder.is_dir():
        pytest.fail(f"the compatibility run needs the shared data; not found at {folder}")
    return folder
