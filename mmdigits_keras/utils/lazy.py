"""Lazy package exports (PEP 562): a package names its public objects and the submodules that
hold them; each submodule is imported on first use, so importing the package stays cheap (the
CLI's ``--help`` starts without TensorFlow; models need no data-loading code)."""

from __future__ import annotations

import importlib
import importlib.util
import os

from mmdigits_keras.utils.defaults import BACKENDS


def lazy_exports(package, exports):
    """Returns ``(__getattr__, __dir__)`` for `package` (its ``__name__``), whose public names
    are `exports`: a dict name -> submodule path relative to the package (e.g. ``"data.layouts"``).

    Raises (from the returned ``__getattr__``):
        AttributeError: a name that is not exported.
        ImportError: Keras's backend is not installed (one line naming those that are).
    """
    module = importlib.import_module(package)

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            submodule = importlib.import_module(f"{package}.{exports[name]}")
        except ModuleNotFoundError as error:
            if error.name not in BACKENDS:
                raise
            raise ImportError(missing_backend(error.name)) from None
        value = getattr(submodule, name)
        setattr(module, name, value)
        return value

    def __dir__():
        return sorted(set(vars(module)) | set(exports))

    return __getattr__, __dir__


def missing_backend(name):
    """The one line for a Keras backend `name` that Keras chose and cannot import."""
    found = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    chosen = (f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}" if os.environ.get("KERAS_BACKEND")
              else "~/.keras/keras.json, else Keras's default")
    return (f"Keras's backend is {name!r} ({chosen}) and {name} is not installed; installed: "
            f"{', '.join(found) or 'none'}: set KERAS_BACKEND={found[0] if found else 'jax'} or install {name}")
