"""Progress output that suits where it goes: bars that redraw in place on a terminal or in a
notebook, one line per epoch (or none) in a log file or CI output, where carriage-return
updates pile up into one unreadable line; and the time left of long work (`Eta`)."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm as _tqdm
from tqdm.auto import tqdm

format_interval = _tqdm.format_interval


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


class Eta:
    """The time left of `total` units of work (epochs, folds, trials) at the pace so far: a
    clock started at creation, with `initial` units already done (a resumed run), so the
    pace counts only the units done since.

    ``Eta(30, unit="epoch").describe(4)`` -> ``"4 of 30 epochs done in 00:48, about 05:12 left"``
    (times as tqdm formats them: ``MM:SS``, or ``H:MM:SS`` past an hour).
    """

    def __init__(self, total, *, unit, initial=0):
        self.total, self.unit, self.initial = int(total), unit, int(initial)
        self.started = time.monotonic()

    def seconds_left(self, done):
        """Seconds left after `done` units (None before the first unit of this clock)."""
        fresh = done - self.initial
        if fresh <= 0:
            return None
        return (time.monotonic() - self.started) / fresh * max(self.total - done, 0)

    def describe(self, done):
        """One line: units done, time taken, and the time left (once there is a pace)."""
        text = f"{done} of {self.total} {self.unit}s done in {format_interval(time.monotonic() - self.started)}"
        left = self.seconds_left(done)
        return text if left is None else f"{text}, about {format_interval(left)} left"
