"""Ctrl-C and every signal a job scheduler sends during training: finish the current step,
checkpoint, stop.

SIGINT (Ctrl-C), SIGTERM (pre-emption, ``scancel``), SIGHUP (a closed terminal or session) and
SIGUSR1 / SIGUSR2 (what SLURM's ``--signal`` and other schedulers send before a deadline) only set
a flag that the training loop reads after each step (a step cut in half cannot be checkpointed);
the loop then saves and raises :class:`Interrupted`, which the command line reports as one line
with the conventional exit code 128 + the signal's number (130 for SIGINT, 143 for SIGTERM, 129
for SIGHUP, 138 / 140 for SIGUSR1 / SIGUSR2 on Linux). A second signal raises ``KeyboardInterrupt``
at once: checkpoints are written atomically, so even that loses only the steps since the last save.
"""
from __future__ import annotations

import signal
import threading


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after writing a checkpoint; the message says where.
    ``exit_code``: 128 + the signal's number (130 where it is not known)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class StopRequests:
    """Context manager that turns SIGINT/SIGTERM into a flag (main thread only; elsewhere,
    e.g. a notebook's worker thread, signals keep their usual meaning)."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
                    if hasattr(signal, name))

    def __init__(self):
        self.requested: str | None = None  # the signal's name once one arrived
        self.exit_code = 130
        self.previous = {}

    def _handle(self, number, frame) -> None:
        if self.requested is not None:  # the second signal: stop now
            raise KeyboardInterrupt
        self.requested = signal.Signals(number).name
        self.exit_code = 128 + int(number)

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}
