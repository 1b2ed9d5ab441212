"""Progress output that suits where it goes: bars that redraw in place on a terminal or in a
notebook, one line per epoch (or none) in a log file or CI output, where carriage-return
updates pile up into one unreadable line."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def is_interactive(stream=None):
    """True when `stream` (default ``sys.stdout``) can redraw a progress bar in place: a
    terminal, or a Jupyter / Colab / Kaggle kernel (whose streams are not TTYs but render
    ``\\r`` updates)."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or _in_kernel()


def _in_kernel():
    """True inside a running Jupyter kernel: ipykernel imported is not enough (a process that
    starts kernels, e.g. nbclient, imports it too); the kernel's IPython shell must be live."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    return "ipykernel" in sys.modules and get_ipython is not None and get_ipython() is not None


def fit_verbosity(verbose="auto"):
    """Keras ``fit`` verbosity: ``"auto"`` becomes 1 (a progress bar) where
    `is_interactive`, else 2 (one line per epoch); 0, 1 and 2 pass through.

    Raises:
        ValueError: `verbose` is not ``"auto"``, 0, 1 or 2.
    """
    if verbose == "auto":
        return 1 if is_interactive() else 2
    if verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be one of ['auto', 0, 1, 2]. Received: verbose={verbose!r}")
    return verbose


def progress_bar(total, *, unit, enabled=True):
    """A tqdm progress bar over `total` items, drawn on stderr only where `is_interactive`
    (and `enabled`); elsewhere a silent counter with the same ``update`` / ``close`` calls."""
    return tqdm(total=total, unit=unit, disable=not (enabled and is_interactive(sys.stderr)), leave=False)
