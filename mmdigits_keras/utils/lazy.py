"""Lazy package exports (PEP 562): a package names its public objects and the submodules that
hold them; each submodule is imported on first use, so importing the package stays cheap (the
CLI's ``--help`` starts without TensorFlow; models need no data-loading code)."""

from __future__ import annotations

import importlib


def lazy_exports(package, exports):
    """Returns ``(__getattr__, __dir__)`` for `package` (its ``__name__``), whose public names
    are `exports`: a dict name -> submodule path relative to the package (e.g. ``"data.layouts"``).

    Raises (from the returned ``__getattr__``):
        AttributeError: a name that is not exported.
    """
    module = importlib.import_module(package)

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(module, name, value)
        return value

    def __dir__():
        return sorted(set(vars(module)) | set(exports))

    return __getattr__, __dir__
