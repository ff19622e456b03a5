"""One writer per run directory: ``RUN/.lock``, held by the process that trains into ``RUN``.

A scheduler may start the same job twice (a requeue racing the original, a double submit). Two
writers in one run directory would interleave checkpoints and logs, so the writer takes an
exclusive ``flock`` on ``RUN/.lock`` and writes its PID, host and start time into the file; a
second writer is refused with one line naming them. The kernel drops the lock when the holder's
process dies, however it dies (SIGKILL, OOM, pre-emption), so a stale lock never blocks a restart;
the file itself stays and means nothing without the lock. Readers (eval, show, export, report,
``tagger.load``) take no lock: checkpoints are swapped in atomically (:mod:`tagger.checkpoint`).

On a system without ``fcntl.flock`` (Windows) the lock is a no-op. ``flock`` works on local file
systems and on Linux NFS clients (the kernel maps it to a POSIX byte-range lock there).

Only the process that writes holds it: under ``torchrun`` that is rank 0.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # not a POSIX system: no lock (see the module's docstring)
    fcntl = None

LOCK_NAME = ".lock"

_held: dict[Path, "RunLock"] = {}  # run directory (resolved) -> this process's lock on it
_guard = threading.Lock()


class RunLock:
    """Context manager: hold ``run_dir/.lock`` exclusively (``with RunLock(run): ...``).

    Re-entrant within one process (a nested ``RunLock`` on the same directory shares the lock and
    only the outermost release drops it). Raises a one-line :class:`ConfigError` when another
    process holds it::

        RUN is being written by PID 1234 on HOST (started 2026-12-05 10:31:02); wait for it or
        choose another --run-dir
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._fd: int | None = None  # the locked file (-1: no flock on this system)
        self._depth = 0  # acquisitions through this object and the objects sharing it
        self._owner: RunLock | None = None  # the object holding the lock when this one shares it

    @property
    def path(self) -> Path:
        return self.run_dir / LOCK_NAME

    def acquire(self) -> "RunLock":
        key = self.run_dir.resolve()
        with _guard:
            if self._owner is None and not self._depth:
                held = _held.get(key)
                if held is not None:  # this process already writes there: share its lock
                    self._owner = held
                else:
                    self._take()
                    _held[key] = self
            (self._owner or self)._depth += 1
            if self._owner is not None:
                self._depth += 1
            return self

    def _take(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            self._fd = -1
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise ConfigError(f"{self.run_dir} is being written by {holder}; wait for it or choose another "
                              "--run-dir") from None
        except BaseException:
            os.close(fd)
            raise
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\nhost {socket.gethostname()}\nstarted {started}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        with _guard:
            if not self._depth:
                return
            owner = self._owner or self
            if self._owner is not None:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
            owner._depth -= 1
            if not owner._depth:
                owner._drop()

    def _drop(self) -> None:
        _held.pop(self.run_dir.resolve(), None)
        fd, self._fd = self._fd, None
        if fd is None or fd < 0:
            return
        try:
            os.ftruncate(fd, 0)  # the file stays (removing a locked file races a new writer)
        except OSError:
            pass
        os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return (self._owner or self)._depth > 0

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    """"PID 1234 on HOST (started ...)" from the lock file (read while another process holds it;
    the holder writes just after locking, so an empty file is read again briefly)."""
    fields = {}
    for _ in range(20):
        try:
            text = os.pread(fd, 4096, 0).decode(errors="replace")
        except OSError:
            text = ""
        fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        if "pid" in fields:
            break
        time.sleep(0.01)
    if "pid" not in fields:
        return "another process"
    text = f"PID {fields['pid']} on {fields.get('host', '?')}"
    return text + (f" (started {fields['started']})" if "started" in fields else "")


def writer_of(run_dir: Path) -> str | None:
    """"PID 1234 on HOST (started ...)" where another process holds ``run_dir``'s lock, else None.
    Creates nothing (a refusal must leave the directory as it was)."""
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or Path(run_dir).resolve() in _held or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None  # nobody holds it
    except BlockingIOError:
        return _holder(fd)
    finally:
        os.close(fd)


def hold_run_lock(run_dir: Path) -> RunLock:
    """Take ``run_dir``'s lock for the rest of this process (the kernel drops it at exit; nothing
    needs to release it); a one-line :class:`ConfigError` if another process writes there. Within
    one process it shares a lock already held (e.g. by a ``with RunLock(run_dir)``), which then
    stays held when that block ends."""
    return RunLock(run_dir).acquire()


def is_lock_file(path: Path) -> bool:
    """Whether ``path`` is a run directory's lock file (to leave out where run folders are copied)."""
    return Path(path).name == LOCK_NAME
