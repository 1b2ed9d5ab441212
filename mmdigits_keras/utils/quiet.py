"""Keeps TensorFlow's C++ log lines off the command line's output, and off a notebook's or
script's once the package is imported (`quiet_tensorflow`; ``MMDIGITS_TF_LOGS=1`` keeps them).

TensorFlow's C++ runtime logs through absl straight to file descriptor 2, around Python:
``TF_CPP_MIN_LOG_LEVEL`` no longer silences what it prints before absl is initialized (the
"All log messages before absl::InitializeLog()" banner and oneDNN's ``I0000`` notices, TF 2.16
and later) nor the ``E0000 ... use_unbounded_threadpool`` line that tf.data pipelines print
with TensorFlow 2.19-2.21 here (an attribute the op registry does not know, which TensorFlow
then ignores, as the line itself says). `native_logs_filtered` routes descriptor 2
through a pipe and drops those lines; other C++ errors pass, and Python's own stderr (warnings,
tracebacks, the CLI's errors, progress bars) bypasses the filter.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import re
import sys
import threading

# absl's prefix: severity and MMDD, time (seconds since the epoch when absl is not yet set up),
# thread id, file:line] -- e.g. "I0000 00:00:1796146639.027802    5506 port.cc:153] ".
_ABSL = re.compile(rb"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
# TensorFlow's own C++ logging before absl: "2025-07-01 12:00:00.000000: I tensorflow/...".
_TF_LOG = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) \S+:\d+\] ")
_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# The second line of cpu_feature_guard's notice (its first is an I line).
_CPU_FEATURES = re.compile(rb"^To enable the following instructions: .*rebuild TensorFlow with the appropriate")
# Error lines seen on every healthy start (the ignored tf.data attribute; CUDA plug-ins probed on
# a machine without a GPU; oneDNN's fallback to Eigen for 64-bit integer ops on a CPU without
# AVX-512, which the augmentation's index arithmetic meets); any other error line still shows.
_BENIGN_ERRORS = (b"use_unbounded_threadpool", b"Unable to register cu", b"failed call to cuInit",
                  b"oneDNN supports DT_INT64 only on platforms with AVX-512")


def is_native_log(line):
    """Whether `line` (bytes) is a TensorFlow C++ log line the CLI hides: informational and
    warning lines (with the CPU-feature notice's second line), the absl banner, and the error
    lines of `_BENIGN_ERRORS`. Fatal lines and other errors are kept."""
    if line.startswith(_BANNER) or _CPU_FEATURES.match(line):
        return True
    if _ABSL.match(line):
        severity = line[:1]
    else:
        match = _TF_LOG.match(line)
        if not match:
            return False
        severity = match.group(1)
    if severity in (b"I", b"W"):
        return True
    return severity == b"E" and any(marker in line for marker in _BENIGN_ERRORS)


def _forward(read_fd, write_fd):
    with os.fdopen(read_fd, "rb") as lines:
        for line in lines:
            if not is_native_log(line):
                os.write(write_fd, line)


def _is_descriptor_2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        return False


@contextlib.contextmanager
def native_logs_filtered(enabled=True):
    """Within the context, what is written to file descriptor 2 from outside Python (TensorFlow's
    C++ runtime, child processes) passes through a filter thread that drops `is_native_log`
    lines; Python's own `sys.stderr` (warnings, tracebacks, log handlers, progress bars) writes
    to the real stderr directly, so a terminal is still a terminal to it. On exit both are
    restored.

    Args:
        enabled: False: a no-op (the CLI's ``--verbose``).
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    original = os.dup(2)
    python_stderr = sys.stderr
    # Python's stderr, where it is descriptor 2 itself, moves to a copy of the real one; one that
    # was replaced already (a notebook's, a test's capture) stays as it is.
    if _is_descriptor_2(python_stderr):
        sys.stderr = open(os.dup(original), "w", buffering=1, errors="backslashreplace",
                          encoding=getattr(python_stderr, "encoding", None) or "utf-8")
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_forward, args=(read_fd, original), daemon=True, name="native-log-filter")
    thread.start()
    try:
        yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(original, 2)  # closes the pipe's last write end unless a child process still holds it
        thread.join(timeout=2.0)
        if not thread.is_alive():  # else a child still writes through the pipe to `original`
            os.close(original)


# Set to 1 before importing the package to leave TensorFlow's logging as TensorFlow sets it.
TF_LOGS_ENV = "MMDIGITS_TF_LOGS"
_QUIET = contextlib.ExitStack()
_quieted = False


class _NoRetracingNotice(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls to <function> triggered tf.function
    retracing" warnings: every `fit` after a `compile` (fine-tuning, each trial, each fold)
    traces Keras's training function anew, as intended, and the notice says nothing to act on."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def quiet_tensorflow():
    """Keeps TensorFlow's own notices out of the output of a process that imports the package
    (a notebook, a script), as the CLI does: ``TF_CPP_MIN_LOG_LEVEL=2`` unless already set,
    `native_logs_filtered` for the rest of the process (the absl banner, oneDNN's notices, the
    benign error lines of `_BENIGN_ERRORS`; other errors and fatal lines pass), and
    `_NoRetracingNotice` on the ``tensorflow`` logger. Called once by ``import mmdigits_keras``
    where TensorFlow is installed, before anything imports it; a no-op when the environment has
    ``MMDIGITS_TF_LOGS=1`` (TensorFlow's logging left as it is), on a second call, and where
    TensorFlow is not installed. On exit, file descriptor 2 is restored and the filter flushed."""
    global _quieted
    if _quieted or os.environ.get(TF_LOGS_ENV) == "1" or importlib.util.find_spec("tensorflow") is None:
        return
    _quieted = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    notice_filter = _NoRetracingNotice()
    logging.getLogger("tensorflow").addFilter(notice_filter)
    _QUIET.callback(logging.getLogger("tensorflow").removeFilter, notice_filter)
    _QUIET.enter_context(native_logs_filtered())
    atexit.register(_QUIET.close)


def loud_tensorflow():
    """Undoes `quiet_tensorflow` (the CLI's ``--verbose``): file descriptor 2 and the
    ``tensorflow`` logger as they were. ``TF_CPP_MIN_LOG_LEVEL`` is the caller's to set, before
    TensorFlow is imported."""
    _QUIET.close()
