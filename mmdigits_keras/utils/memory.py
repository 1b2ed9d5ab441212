"""A process's own peak memory, read without a backend (trial workers retire on it)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mib():
    """This process's own peak resident memory in MiB. Linux: ``VmHWM`` of /proc/self/status;
    `ru_maxrss` is no good there, it carries over the parent's peak through fork and exec (a
    worker started by a large search process would retire at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:  # not Linux
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
