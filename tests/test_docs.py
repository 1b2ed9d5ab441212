"""The documentation site's generated CLI reference (docs/hooks/cli_reference.py)."""

import importlib.util
from pathlib import Path

from mmdigits_keras.cli import build_parser

HOOK = Path(__file__).resolve().parents[1] / "docs" / "hooks" / "cli_reference.py"


def _hook():
    spec = importlib.util.spec_from_file_location("cli_reference", HOOK)
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
