"""Argument checks whose errors read like Keras's own (``ValueError: `name` must be ... Received: name=...``)."""

from __future__ import annotations

import difflib

import numpy as np


def check_positive(name, value, kind=int):
    """Raises ValueError unless `value` is a positive number equal to `kind(value)` (int or float)."""
    if not (isinstance(value, (int, float, np.integer, np.floating)) and kind(value) == value and value > 0):
        raise ValueError(f"`{name}` must be a positive {kind.__name__}. Received: {name}={value!r}")


def did_you_mean(value, choices):
    """`` Did you mean 'x'?`` naming the choices closest to `value` (difflib's ratio >= 0.6), or
    ``""`` when none is close or `value` is not a string."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=2)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_choice(name, value, choices):
    """Raises ValueError unless `value` is one of `choices`; the message lists them and names the
    nearest (a typo: ``'hybrid_cnnn'`` -> ``Did you mean 'hybrid_cnn'?``)."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}."
                         f"{did_you_mean(value, choices)}")


def check_non_negative(name, value):
    """Raises ValueError unless `value` is a finite number >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}")
