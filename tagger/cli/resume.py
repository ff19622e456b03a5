"""``tagger train --resume RUN``: the run's stored config, with only what may change changed.

A resumed run is the run it was: a flag that would change the model, the data or the
optimisation is refused (silently ignoring it would train something other than what was asked),
unless it equals the stored value. ``--epochs``, ``--checkpoint-every`` and
``--checkpoint-minutes`` may change and are stored; ``--max-minutes`` limits this invocation only.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import read_checkpoint
from ..config import Config
from ..errors import ConfigError
from .flags import given_flags

RESUMABLE = ("epochs", "max_minutes", "checkpoint_every", "checkpoint_minutes")  # what may change on --resume


def _shown(value) -> str:
    return "-".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _refuse(flag: str, given, stored, run_dir: Path) -> None:
    raise ConfigError(f"{flag} {_shown(given)} conflicts with the resumed run's {_shown(stored)}: on --resume only "
                      f"--epochs, --max-minutes, --checkpoint-every and --checkpoint-minutes may change (for other "
                      f"settings start a new "
                      f"run, e.g. with --init {run_dir} to keep its weights)")


def _check_command(args: argparse.Namespace, config: Config, run_dir: Path) -> None:
    """The dataset, --preset, --digits and --run-dir given next to --resume must be the run's."""
    stored = {"dataset": config.train.dataset, "preset": config.preset, "digits": config.train.n_digits,
              "run_dir": run_dir}
    for name, value in stored.items():
        given = getattr(args, name, None)
        if given is not None and given != value and not (name == "run_dir" and Path(given) == run_dir):
            _refuse("DATASET" if name == "dataset" else "--" + name.replace("_", "-"), given, value, run_dir)


def resume_config(args: argparse.Namespace) -> Config:
    """The stored config of ``args.resume`` with the allowed flags applied; a conflicting flag is a
    :class:`ConfigError` that says how to override it."""
    run_dir = Path(args.resume)
    config, state, _, _ = read_checkpoint(run_dir)
    _check_command(args, config, run_dir)
    done = int(state.get("epoch", 0))
    epochs = getattr(args, "train.epochs", None)
    if epochs is not None and epochs < done:  # it would train nothing, and the config would disagree
        raise ConfigError(f"--epochs {epochs} is fewer than the {done} epochs the run in {run_dir} has trained; "
                          f"give --epochs {done} or more (its config keeps --epochs {config.train.epochs})")
    for section, prefix in ((config.model, "model."), (config.train, "train.")):
        for name, value in given_flags(section, args, prefix).items():
            if section is config.train and name in RESUMABLE:
                continue
            if value != getattr(section, name):
                flag = "--" + ("init" if name == "init_from" else name.replace("_", "-"))
                _refuse(flag, value, getattr(section, name), run_dir)
    allowed = given_flags(config.train, args, "train.")
    config.train.max_minutes = 0.0  # a time limit is one invocation's, not the run's
    for name in RESUMABLE:
        if name in allowed:
            setattr(config.train, name, allowed[name])
    return config
