"""Figures for run directories, searches and reports: matplotlib without a display, written atomically."""

from __future__ import annotations

from pathlib import Path

from mmdigits_keras.utils.files import atomic_write


def pyplot():
    """`matplotlib.pyplot` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, *, dpi=90):
    """Writes a matplotlib figure as PNG atomically and closes it; returns the path."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
    pyplot().close(fig)
    return Path(path)
