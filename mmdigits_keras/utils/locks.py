"""Claims on output paths: one writer per run directory, search folder or submission file.

A claim is an operating-system lock (``flock``, through the `filelock` library) on a sibling
file ``.<name>.lock``, taken before any work starts, so a second writer is refused at once
instead of after training a whole run. The kernel drops the lock when its process dies, however
it dies (``kill -9`` included), so a lock is never left held by nobody; what a killed holder
leaves is its record in the lock file (pid, host, command, start time), which the next claim
reports as taken over. A finished claim removes its lock file.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import sys
from pathlib import Path

import filelock

logger = logging.getLogger("mmdigits_keras")


def lock_path(path):
    """The lock file of `path`: ``.<name>.lock`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _record():
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]}


def _read_record(path):
    try:
        return json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None


def describe_holder(record):
    """One line about a claim's holder: ``pid 123 on HOST since 2026-...+00:00 (mmdigits train ...)``."""
    if not record:
        return "another process (no record)"
    return f"pid {record.get('pid')} on {record.get('host')} since {record.get('started')} ({record.get('command')})"


@contextlib.contextmanager
def claim(path, *, what="output"):
    """Holds the lock of `path` for the ``with`` block.

    Args:
        path: The output the block writes (a folder or a file; it need not exist).
        what: What `path` is, for messages (``"run directory"``, ``"search folder"``, ...).

    Yields:
        The record of a killed holder whose lock was taken over, or None.

    Raises:
        ValueError: another live process holds the claim (the message names it), or `path`'s
            folder cannot be made or written in (a file in the way, a read-only file system, no
            permission): before any work starts, with nothing written.
    """
    lock_file = lock_path(path)
    folder = lock_file.parent
    for parent in (folder, *folder.parents):  # the nearest that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{path}: {parent} is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{path}: cannot create the folder {folder} ({error.strerror or error})") from None
    lock = filelock.FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        if not lock_file.exists():  # filelock reports a file it could not create as held
            raise ValueError(f"{path}: cannot write in the folder {folder}") from None
        raise ValueError(f"{path}: {what} in use by {describe_holder(_read_record(lock_file))}; "
                         f"wait for it to end or choose another path") from None
    except OSError as error:  # a read-only file system, no permission
        raise ValueError(f"{path}: cannot write in the folder {folder} ({error.strerror or error})") from None
    try:
        # The lock is ours, so whoever wrote a record here no longer holds it: killed mid-work.
        stale = _read_record(lock_file)
        if stale:
            logger.warning("%s: took over the %s from %s, which ended without releasing it (killed?)", path, what,
                           describe_holder(stale))
        with open(lock_file, "w") as f:  # the record, for anyone refused while we hold it
            json.dump(_record(), f)
        yield stale
    finally:
        # Removed while still held: a contender that opened the old file retries on the new one
        # (filelock checks the locked file is still the one at the path).
        lock_file.unlink(missing_ok=True)
        lock.release()
