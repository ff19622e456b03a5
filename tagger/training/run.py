"""``tagger.train``: the one way a Tagger is trained. The command line, the demo, scripts and
tests all call it; it validates the config once, applies the process settings, joins
``torchrun``'s ranks, hands the data to the :class:`~tagger.training.trainer.Trainer` and returns
the trained model."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..config import Config
from ..datasets import Split
from ..model import Tagger


def train(config: Config, train: Split | None = None, valid: Split | None = None, run_dir=None,
          device: str | torch.device = "cpu", *, resume: bool = False, compile: str = "off",
          data_dir=None, progress: bool = True, quiet: bool = False) -> Tagger:
    """Train ``config`` (or, with ``resume``, continue the run in ``run_dir``) and return the model.

    Args:
        config: a :class:`~tagger.config.Config` (e.g. ``tagger.preset("quick")``), validated here.
        train, valid: the training and validation :class:`~tagger.datasets.Split` s. Default: the
            config's built-in dataset (``config.train.dataset``), or the file ``config.train.data``
            names; a ``valid`` left out of a given ``train`` is a seeded hold-out of it
            (``config.train.valid_fraction``).
        run_dir: where the config, checkpoints, ``metrics.csv`` and TensorBoard logs go (default:
            a temporary folder, removed afterwards: only the returned model is kept).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
        resume: continue the run in ``run_dir`` from its checkpoint (``config`` is the stored one).
        compile: the step strategy, :data:`tagger.training.steps.MODES` (``off`` = eager).
        data_dir: the data cache (default ``$TAGGER_DATA`` or ``~/.cache/tagger``).
        progress: progress bars; quiet: no start and end lines.

    Returns:
        The trained :class:`~tagger.model.Tagger` in eval mode (under ``torchrun``: on every rank).
    """
    config.validate()
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="tagger-run-") as folder:
            return _train(config, train, valid, Path(folder), device, resume, compile, data_dir, progress, quiet)
    return _train(config, train, valid, Path(run_dir), device, resume, compile, data_dir, progress, quiet)


def _train(config, train, valid, run_dir: Path, device, resume, compile, data_dir, progress, quiet) -> Tagger:
    from . import distributed
    from .device import apply_process_settings, machine_name, resolve_device
    from .labeled import init_source
    from .rundir import check_new_run_dir
    from .trainer import Trainer, load_splits
    from ..checkpoint import find_checkpoint

    if not resume:
        if config.train.init_from:
            find_checkpoint(init_source(config.train.init_from))  # fail before loading any data
        check_new_run_dir(run_dir)  # a run is resumed or refused, never overwritten
    if train is None:
        train, valid = load_splits(config, data_dir)
    elif valid is None:
        train, valid = hold_out(train, config.train.valid_fraction, config.train.seed)
    ranks, device_name = distributed.setup(str(device))
    try:
        device = resolve_device(device_name)
        apply_process_settings(config.train, device)
        trainer = Trainer(config, run_dir, train, valid, device, progress=progress, compile=compile, ranks=ranks)
        say = ranks.main and not quiet
        if say:
            step = trainer.step
            print(f"training {config.preset} ({train.name}, {config.model.norm} norm) on {device} x {ranks.world} "
                  f"({machine_name(device)}), {step.precision}, compile {step.mode} -> {run_dir}")
        last = trainer.run(resume=resume)
        ranks.barrier()  # every rank is done before any leaves the group (a rank leaving early could abort another)
    finally:
        distributed.teardown()
    if say:
        print(summary(config, last, trainer.state.epoch, run_dir))
    return trainer.model.eval()


def hold_out(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """``(train, valid)``: a seeded random ``fraction`` of ``split`` held out for validation."""
    from ..datasets.user import split_validation

    return split_validation(split, fraction, seed)


def summary(config: Config, last: dict, epoch: int, run_dir: Path) -> str:
    """"done" only for a run that trained all its epochs; a time limit says where it stopped."""
    epochs = config.train.epochs
    if epoch < epochs:
        return f"stopped at epoch {epoch} of {epochs} (time limit); checkpoint in {run_dir}; --resume {run_dir} continues"
    t = config.train.eval_iterations
    return (f"done: epoch {last['epoch']} of {epochs}, valid AMI / FG-ARI (last iteration) "
            f"{last[f'valid_ami_{t}']:.3f} / {last[f'valid_ari_{t}']:.3f}; checkpoint in {run_dir}")
