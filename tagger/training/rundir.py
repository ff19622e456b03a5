"""Run directories are continued or refused, never cleaned: the one rule that keeps ``tagger
train``, ``tagger demo`` and ``scripts/seeds.py`` from losing a run.

A directory holding any run artefact (a checkpoint, its fallback ``checkpoint.old``, the
metrics log, evaluation results, figures) is a run. A new run may not start there; a run with a
checkpoint (current or fallback) can be continued with ``--resume``; one without is refused.
The lock file ``.lock`` (:mod:`tagger.training.lock`) is not an artefact: a run directory that
holds only it is new.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..checkpoint import CURRENT, PREVIOUS, find_checkpoint
from ..errors import CheckpointError, ConfigError
from .lock import RunLock, hold_run_lock

ARTEFACTS = (CURRENT, PREVIOUS, ".checkpoint-*", "config.json", "metrics.csv", "tb", "eval_*.json",
             "groupings_*.png", "summary.json")


def artefacts(run_dir: Path) -> list[str]:
    """The names of the run artefacts in ``run_dir`` (sorted; empty for a new or absent folder)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted({path.name for pattern in ARTEFACTS for path in run_dir.glob(pattern)})


def holds_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` has a checkpoint that ``--resume`` would read (current or fallback)."""
    try:
        find_checkpoint(run_dir)
    except CheckpointError:
        return False
    return True


def check_new_run_dir(run_dir: Path) -> None:
    """Raise a one-line :class:`ConfigError` unless a new run may be written into ``run_dir``."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file, not a directory; choose another --run-dir")
    found = artefacts(run_dir)
    if not found:
        return
    listed = ", ".join(found[:4]) + (" ..." if len(found) > 4 else "")
    if holds_checkpoint(run_dir):
        raise ConfigError(f"--run-dir {run_dir} already holds a run ({listed}); continue it with "
                          f"--resume {run_dir} or choose another --run-dir")
    raise ConfigError(f"--run-dir {run_dir} holds run files ({listed}) but no checkpoint to resume; "
                      "choose another --run-dir (nothing there was changed)")


def claim_run_dir(run_dir: Path, resume: bool = False) -> RunLock | None:
    """What a writer does before it writes into ``run_dir``: take the directory's lock for the rest
    of the process (a one-line :class:`ConfigError` when another process writes there), then, for
    a new run, :func:`check_new_run_dir`. Under ``torchrun`` only rank 0 (which alone writes)
    takes the lock; the other ranks return ``None``."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file, not a directory; choose another --run-dir")
    lock = hold_run_lock(run_dir) if os.environ.get("RANK", "0") == "0" else None
    if not resume:
        try:
            check_new_run_dir(run_dir)
        except ConfigError:
            if lock is not None:
                lock.release()
            raise
    return lock
