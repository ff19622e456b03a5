"""Durable file writes: every file a run writes appears whole or not at all.

A file is written to a temporary name in its own folder, fsynced and renamed over the target
(a rename within a folder is atomic), then the folder is fsynced so the rename survives a
power cut. A full disk is reported as ``OSError(ENOSPC)`` whichever library hit it, so the
command line prints it as one line (safetensors wraps the OS error in its own exception).
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

# how safetensors' Rust side spells an out-of-space error inside its SafetensorError text
_NO_SPACE_MARKERS = ("code: 28", "StorageFull", "No space left")


def fsync_dir(path: Path) -> None:
    """Make renames in ``path`` durable (best effort: some file systems refuse a folder fsync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def disk_errors(path: Path):
    """Re-raise a library's wrapped out-of-space error as ``OSError(ENOSPC, ..., path)``."""
    try:
        yield
    except SafetensorError as error:
        if any(marker in str(error) for marker in _NO_SPACE_MARKERS):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise


def write_file_durably(path: Path, writer) -> None:
    """``writer(path)``, then make the file world-readable and fsync it (``path`` is a fresh name)."""
    with disk_errors(path):
        writer(path)
    os.chmod(path, 0o644)
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def write_atomically(path: Path, writer) -> None:
    """Write ``path`` through ``writer(temporary_path)``: temporary file, fsync, rename. An error
    (a full disk, an interrupt) leaves the old file, if any, untouched and no temporary behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        write_file_durably(temporary, writer)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda target: Path(target).write_text(text))
