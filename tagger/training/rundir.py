"""Run directories are continued or refused, never cleaned: the one rule that keeps ``tagger
train``, ``tagger demo`` and ``scripts/seeds.py`` from losing a run.

A directory holding any run artefact (a checkpoint, its fallback ``checkpoint.old``, the
metrics log, evaluation results, figures) is a run. A new run may not start there; a run with a
checkpoint (current or fallback) can be continued with ``--resume``. The one exception: a run that
died before its first checkpoint (only its ``config.json``, ``tb/``, ``metrics.csv`` or a staged
checkpoint there) has nothing that could be lost, so the same config starts it again from the
start; another config is refused.
The lock file ``.lock`` (:mod:`tagger.training.lock`) is not an artefact: a run directory that
holds only it is new.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..checkpoint import CURRENT, PREVIOUS, find_checkpoint
from ..config import Config
from ..errors import CheckpointError, ConfigError
from .lock import RunLock, hold_run_lock, writer_of

EARLY = ("config.json", "metrics.csv", "tb", ".checkpoint-*")  # what a run leaves before its first checkpoint
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


def died_early(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that stopped before its first checkpoint (and nothing else)."""
    found = artefacts(run_dir)
    partial = {path.name for pattern in EARLY for path in Path(run_dir).glob(pattern)}
    return "config.json" in found and set(found) <= partial and not holds_checkpoint(run_dir)


def same_run(stored: Config, config: Config) -> bool:
    """Whether two configs train the same run (a time limit is one invocation's, not the run's)."""
    a, b = stored.to_dict(), config.to_dict()
    a["train"].pop("max_minutes"), b["train"].pop("max_minutes")
    return a == b


def _restart(run_dir: Path, config: Config, clear: bool) -> None:
    """Clear a run that died before its first checkpoint, if ``config`` is its config (``clear=False``:
    only say whether it would be refused)."""
    try:
        stored = Config.load(run_dir / "config.json")
    except ConfigError:
        stored = None
    if stored is None or not same_run(stored, config):
        raise ConfigError(f"--run-dir {run_dir} holds a run with no checkpoint (it stopped before its first) and "
                          f"{'other settings in its' if stored else 'an unreadable'} config.json; give the same "
                          "settings to start it again, or choose another --run-dir (nothing there was changed)")
    if not clear:
        return
    for pattern in EARLY:
        for path in run_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    print(f"{run_dir}: the run stopped before its first checkpoint; starting it again from the start")


def check_new_run_dir(run_dir: Path, config: Config | None = None, clear: bool = True) -> None:
    """Raise a one-line :class:`ConfigError` unless a new run may be written into ``run_dir``; with
    ``config``, a run there that died before its first checkpoint with that config is cleared
    (unless ``clear`` is False: then only checked)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file, not a directory; choose another --run-dir")
    found = artefacts(run_dir)
    if not found:
        return
    if config is not None and died_early(run_dir):
        return _restart(run_dir, config, clear)
    listed = ", ".join(found[:4]) + (" ..." if len(found) > 4 else "")
    if holds_checkpoint(run_dir):
        raise ConfigError(f"--run-dir {run_dir} already holds a run ({listed}); continue it with "
                          f"--resume {run_dir} or choose another --run-dir")
    raise ConfigError(f"--run-dir {run_dir} holds run files ({listed}) but no checkpoint to resume; "
                      "choose another --run-dir (nothing there was changed)")


def claim_run_dir(run_dir: Path, resume: bool = False, config: Config | None = None) -> RunLock | None:
    """What a writer does before it writes into ``run_dir``: take the directory's lock for the rest
    of the process (a one-line :class:`ConfigError` when another process writes there), then, for
    a new run, :func:`check_new_run_dir`. Under ``torchrun`` only rank 0 (which alone writes)
    takes the lock; the other ranks return ``None``."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file, not a directory; choose another --run-dir")
    writer = os.environ.get("RANK", "0") == "0"
    if not resume:  # refused before anything (the lock file) is written; another rank refuses as rank 0 will
        try:
            check_new_run_dir(run_dir, config, clear=False)
        except ConfigError:
            holder = writer_of(run_dir)
            if holder is not None:  # a double launch: say so, not "a run is there"
                raise ConfigError(f"{run_dir} is being written by {holder}; wait for it or choose another "
                                  "--run-dir") from None
            raise
    lock = hold_run_lock(run_dir) if writer else None
    if lock is not None and not resume:  # again under the lock: another writer may have been quicker
        try:
            check_new_run_dir(run_dir, config)
        except ConfigError:
            if lock is not None:
                lock.release()
            raise
    return lock
