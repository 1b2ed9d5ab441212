"""The documentation site's generated pages: the CLI reference and the public API
(docs/hooks/cli_reference.py, docs/hooks/api_reference.py)."""

import importlib
import importlib.util
from pathlib import Path

import mmdigits_keras as mk
from mmdigits_keras.cli import build_parser

HOOKS = Path(__file__).resolve().parents[1] / "docs" / "hooks"


def _hook(name="cli_reference"):
    spec = importlib.util.spec_from_file_location(name, HOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_lists_every_command_with_its_options():
    hook = _hook()
    page = hook.on_page_markdown(f"# CLI reference\n\n{hook.MARKER}\n", page=None)
    assert hook.MARKER not in page
    commands = build_parser()._actions[-1].choices  # the subcommands
    for name in commands:
        assert f"## `mmdigits {name}`" in page, name
    assert "## `mmdigits export`" in page and "--quantize {dynamic}" in page
    assert "## `mmdigits data build`" in page and "## `mmdigits retrieval query`" in page
    assert hook.on_page_markdown("no marker", page=None) == "no marker"


def test_api_reference_is_the_public_api_at_its_defining_modules():
    hook = _hook("api_reference")
    paths = [path for section in hook.public_api().values() for path in section]
    assert sorted(path.rsplit(".", 1)[1] for path in paths) == sorted(mk.__all__)
    for path in paths:  # each path names the object the top level exports
        module, name = path.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name) is getattr(mk, name), path
    page = hook.on_page_markdown(f"# API\n\n{hook.MARKER}\n", page=None)
    assert hook.MARKER not in page and "::: mmdigits_keras.training.classification.train" in page
    # What users call is there; the internals are not.
    assert {"build_model", "train", "submit", "evaluate", "load_kaggle", "run_search", "list_models"} <= set(mk.__all__)
    assert not {"train_val_split", "fit_audio_statistics", "make_submission", "compare"} & set(mk.__all__)
