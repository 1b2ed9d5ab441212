"""Figures for run directories, searches and reports, written atomically.

Figures are `matplotlib.figure.Figure` objects drawn on matplotlib's Agg canvas, never through
pyplot: a library that switched pyplot's backend would break a notebook's inline plots.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from mmdigits_keras.utils.files import atomic_write


def subplots(nrows=1, ncols=1, *, figsize=None, **kwargs):
    """A new figure and its axes, like `matplotlib.pyplot.subplots` (same arguments), without
    pyplot's global state. Returns (figure, axes)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig, path, *, dpi=90):
    """Writes a figure as PNG atomically; returns the path."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
    return Path(path)
