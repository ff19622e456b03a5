"""Output can't kill training: a closed, broken or full stdout/stderr costs the messages, never the run.

Under a scheduler, stdout and stderr are pipes to log collectors that may die, or files on a disk
that may fill. Python ignores SIGPIPE (and this module leaves it so), so writing to a pipe whose
reader is gone raises ``BrokenPipeError``, and a full disk raises ``OSError(ENOSPC)``: from a
``print`` or a progress bar in the middle of an epoch, that would end the run. Here every write goes
through a :class:`SafeStream`: on the first failure it stops writing to that stream and points the
stream's file descriptor at ``os.devnull`` (as the Python documentation recommends for
``BrokenPipeError``), so that the interpreter's own flush at exit cannot fail either; the work
(checkpoints, metrics.csv, result files) goes on and the process exits with its own status.

- :func:`safe_print`: ``print`` that never raises for its stream.
- :func:`safe_stream` / :func:`progress_stream`: a stream for ``tqdm(file=...)`` or ``tqdm.write``.
- :func:`guarded_output`: a context manager routing ``sys.stdout`` and ``sys.stderr`` through safe
  streams for a block (the command line wraps every command in it).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

# what a write to a gone pipe, a full disk, a closed descriptor or file raises
FAILURES = (OSError, ValueError)


class SafeStream:
    """A text stream that swallows write and flush failures; after the first one it writes nothing
    more (``broken``) and its descriptor, if it has one, is redirected to ``os.devnull``."""

    def __init__(self, stream):
        self.stream = stream
        self.broken = stream is None  # sys.stdout is None when a process starts with it closed

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except FAILURES:
                self._give_up()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except FAILURES:
                self._give_up()

    def _give_up(self) -> None:
        self.broken = True
        try:  # the text still buffered, and the interpreter's flush at exit, go to devnull
            fd = self.stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
            self.stream.flush()
        except FAILURES:
            pass

    def isatty(self) -> bool:
        try:
            return not self.broken and self.stream.isatty()
        except FAILURES:
            return False

    def __getattr__(self, name):  # encoding, fileno, ... of the stream underneath
        if self.stream is None:
            raise AttributeError(name)
        return getattr(self.stream, name)


_wrapped: dict[int, tuple[object, SafeStream]] = {}  # id(stream) -> (stream, its SafeStream)


def safe_stream(stream) -> SafeStream:
    """The :class:`SafeStream` over ``stream`` (the same object for the same stream, so a failure
    seen once is remembered; a SafeStream is returned as it is)."""
    if isinstance(stream, SafeStream):
        return stream
    held = _wrapped.get(id(stream))
    if held is None or held[0] is not stream:
        held = _wrapped[id(stream)] = (stream, SafeStream(stream))
    return held[1]


def progress_stream() -> SafeStream:
    """Where progress bars write: ``tqdm(..., file=progress_stream())``."""
    return safe_stream(sys.stderr)


def safe_print(*args, file=None, **kw) -> None:
    """``print`` to ``file`` (default ``sys.stdout``) that never raises for a broken or full stream."""
    print(*args, file=safe_stream(sys.stdout if file is None else file), **kw)


@contextmanager
def guarded_output():
    """``sys.stdout`` and ``sys.stderr`` write through :class:`SafeStream` inside the block (and
    are flushed, never raising, at its end); the originals are restored after it."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = safe_stream(saved[0]), safe_stream(saved[1])
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved
