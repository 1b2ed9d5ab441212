"""Atomic file writes: a final path holds either the old file or the complete new one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path


def is_occupied(path):
    """Whether `path` holds something: a file, or a folder that is not empty."""
    path = Path(path)
    return path.exists() and not (path.is_dir() and not any(path.iterdir()))


def check_output_free(out, *, overwrite):
    """Raises the one message every command gives for an occupied output path.

    Args:
        out: A file or folder to be written.
        overwrite: True: anything there may be replaced.

    Raises:
        ValueError: `out` holds a file or a non-empty folder and `overwrite` is False.
    """
    if not overwrite and is_occupied(out):
        raise ValueError(f"{out}: already exists; pass overwrite=True to replace it")


def atomic_write(path, write):
    """Writes a file through a temporary sibling and a rename, so `path` is never half-written;
    removes the temporary siblings that killed processes left.

    Args:
        path: Final path (str or Path); its folder is created when missing.
        write: A callable taking the temporary path (str, same suffix as `path`) and writing
            the whole file there.

    Returns:
        The final path as a `Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.stem}.tmp-"
    tmp = path.with_name(f"{prefix}{os.getpid()}{path.suffix}")
    for stale in _left_by_ended_writers(path.parent, prefix, path.suffix):  # kill -9 leaves them
        stale.unlink(missing_ok=True)
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_json(path, obj):
    """Writes `obj` as indented JSON, atomically."""

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")

    return atomic_write(path, write)


def read_json(path):
    """Reads a JSON file written by this package; a ValueError names a missing or broken file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: not readable JSON ({error})") from None


def publish_directory(staging, final, *, overwrite):
    """Moves a completely written `staging` folder to `final` with renames only.

    Args:
        staging: A folder on the same file system as `final`.
        final: Where the folder should end up.
        overwrite: Replace an existing `final`; otherwise an existing non-empty `final`
            raises.

    Raises:
        ValueError: `final` exists, is not empty, and `overwrite` is False.
    """
    staging, final = Path(staging), Path(final)
    if is_occupied(final):
        check_output_free(final, overwrite=overwrite)
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
        return final
    if final.exists():
        final.rmdir()
    os.replace(staging, final)
    return final


def staging_directory(final):
    """Creates and returns an empty temporary sibling of `final` for `publish_directory`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


@contextlib.contextmanager
def staged_directory(final):
    """A `staging_directory` of `final` for a ``with`` block that fills it and publishes it;
    removed again when the block raises (Ctrl-C included), so a failure leaves nothing."""
    staging = staging_directory(final)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def removed_on_failure(folder):
    """For a folder written file by file (each file atomically): when it did not exist before
    and the block raises, it is removed again, so a failed command (a full disk) leaves no
    partial folder; a folder that existed keeps what it had."""
    folder = Path(folder)
    existed = folder.exists()
    try:
        yield folder
    except BaseException:
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def remove_interrupted(final):
    """Deletes staging folders of `final` left by processes that were killed mid-write.

    Returns:
        The names of the folders removed (empty when there were none).
    """
    final = Path(final)
    removed = []
    for leftover in _left_by_ended_writers(final.parent, f".{final.name}.tmp-"):
        shutil.rmtree(leftover, ignore_errors=True)
        removed.append(leftover.name)
    return removed


def _left_by_ended_writers(folder, prefix, suffix=""):
    """The entries of `folder` named `prefix` + PID + `suffix` (a temporary file or staging
    folder) that no other live process is writing, sorted."""
    entries = sorted(folder.glob(f"{prefix}*{suffix}")) if folder.is_dir() else []
    for entry in entries:
        pid = entry.name[len(prefix):len(entry.name) - len(suffix)]
        if not (pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid))):
            yield entry


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
