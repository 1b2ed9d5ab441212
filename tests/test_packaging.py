"""The distribution as users install it: wheel metadata, and the wheel in a fresh environment."""

import email
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the sources (the checkout stays untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "mmdigits_keras", source / "mmdigits_keras",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(work / "dist"), str(source)], check=True, timeout=300)
    (built,) = (work / "dist").glob("mmdigits_keras-*.whl")
    return built


def _requirements(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.message_from_bytes(archive.read(metadata))
        return [Requirement(r) for r in message.get_all("Requires-Dist")], archive.namelist()


def test_wheel_requires_no_tensorflow_unless_an_extra_asks(wheel):
    requirements, files = _requirements(wheel)
    tensorflow = [r for r in requirements if r.name.startswith("tensorflow")]
    assert tensorflow, "the [cpu] and [gpu] extras name TensorFlow"
    for requirement in tensorflow:  # every TensorFlow requirement sits behind an extra
        assert requirement.marker is not None and "extra" in str(requirement.marker), requirement
    by_extra = {str(r.marker).split('"')[1]: r.name for r in tensorflow}
    assert by_extra == {"cpu": "tensorflow-cpu", "gpu": "tensorflow"}
    plain = {r.name for r in requirements if r.marker is None}
    assert {"keras", "keras-tuner", "tensorboard"} <= plain
    assert "mmdigits_keras/training/mfcc_reference.json" in files  # package data travels


def test_wheel_in_a_fresh_environment(wheel, tmp_path):
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    python = fresh / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=300)

    # No Keras backend in this environment: one clear line at import.
    done = subprocess.run([str(python), "-c", "import mmdigits_keras"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "ImportError: mmdigits_keras needs one of Keras's backends and none is installed")
    assert "pip install 'mmdigits_keras[cpu]' (TensorFlow), 'mmdigits_keras[jax]'" in done.stderr

    # A notebook that already has TensorFlow (and the rest): this environment sees the test
    # environment's packages behind its own, as a kernel sees the image's.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "notebook_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([str(fresh / "bin" / "mmdigits"), "models", "model2"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "6,766,478" in done.stdout
    where = subprocess.run([str(python), "-c", "import mmdigits_keras; print(mmdigits_keras.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True, timeout=300).stdout
    assert where.startswith(site), where  # the installed wheel, not the source tree
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "check"], capture_output=True,
                           text=True, timeout=300)
    assert check.returncode == 0, check.stdout  # every requirement met by what the notebook has
