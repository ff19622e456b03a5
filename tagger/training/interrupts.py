"""Ctrl-C and SIGTERM during training: finish the current step, checkpoint, stop.

The first SIGINT or SIGTERM only sets a flag that the training loop reads after each step (a
step cut in half cannot be checkpointed); the loop then saves and raises :class:`Interrupted`,
which the command line reports as one line with exit code 130. A second signal raises
``KeyboardInterrupt`` at once: checkpoints are written atomically, so even that loses only
the steps since the last save.
"""
from __future__ import annotations

import signal
import threading


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after writing a checkpoint; the message says where."""


class StopRequests:
    """Context manager that turns SIGINT/SIGTERM into a flag (main thread only; elsewhere,
    e.g. a notebook's worker thread, signals keep their usual meaning)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: str | None = None  # the signal's name once one arrived
        self.previous = {}

    def _handle(self, number, frame) -> None:
        if self.requested is not None:  # the second signal: stop now
            raise KeyboardInterrupt
        self.requested = signal.Signals(number).name

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}
