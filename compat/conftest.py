"""The compatibility suite runs in the notebook-like environments of `make compat`, not in the
main suite: one per notebook image, its Python and the packages of `notebook-IMAGE.txt`
(``MMDIGITS_NOTEBOOK`` names the image's file)."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def notebook_image():
    """(Python version as (major, minor), {package: pinned version}) of the image under test."""
    text = Path(os.environ["MMDIGITS_NOTEBOOK"]).read_text()
    python = tuple(int(part) for part in re.search(r"^# Python (\d+)\.(\d+)$", text, re.M).groups())
    return python, {line.split("==")[0]: line.split("==")[1] for line in text.split() if "==" in line}


@pytest.fixture(scope="session")
def kaggle_sample():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    folder = shared / "kaggle_sample"
    if not folder.is_dir():
        pytest.fail(f"the compatibility run needs the shared data; not found at {folder}")
    return folder
