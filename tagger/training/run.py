"""``tagger.train``: the one way a Tagger is trained. The command line, the demo, scripts and
tests all call it; it validates the config once, applies the process settings, joins
``torchrun``'s ranks, hands the data to the :class:`~tagger.training.trainer.Trainer` and returns
the trained model."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..config import Config
from ..errors import ConfigError
from ..datasets import Split, split_validation
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
    from .device import resolve_device
    from .labeled import init_source
    from .rundir import claim_run_dir
    from .trainer import check_data, load_splits
    from ..checkpoint import find_checkpoint

    if not resume and config.train.init_from:
        find_checkpoint(init_source(config.train.init_from))  # fail before loading any data
    check_memory(config, resolve_device(str(device)))  # before anything is written
    if train is None:
        train, valid = load_splits(config, data_dir, progress)
    elif valid is None:
        train, valid = split_validation(train, config.train.valid_fraction, config.train.seed)
    check_data(config, train, valid)
    # one writer per run directory; a new run only where no run is (or one that died before its
    # first checkpoint, with this very config: nothing of it can be lost)
    lock = claim_run_dir(run_dir, resume=resume, config=config)
    try:
        return _train_locked(config, train, valid, run_dir, device, resume, compile, progress, quiet)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(config, train, valid, run_dir: Path, device, resume, compile, progress, quiet) -> Tagger:
    from . import distributed
    from .device import apply_process_settings, machine_name, resolve_device
    from .trainer import Trainer

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


def check_memory(config: Config, device: torch.device) -> None:
    """Refuse, in one line and before allocating anything, a model whose training would not fit in
    this machine's free memory: its weights, their gradients and Adam's two moments (4 copies),
    plus the activations one step keeps for the backward pass (a rough count: every group and
    iteration keeps its inputs and each layer's values a few times)."""
    with torch.device("meta"):  # shapes only, no memory
        parameters = sum(p.numel() for p in Tagger(config.model).parameters())
    model, train = config.model, config.train
    per_group = 4 * model.input_size + 6 * sum(model.widths)
    activations = train.batch_size * model.groups * model.iterations * per_group * 3
    needed = 4 * (4 * parameters + activations)  # bytes (fp32)
    free = free_memory(device)
    if free is not None and needed > free:
        raise ConfigError(f"training this model needs about {needed / 2**30:.1f} GiB ({parameters / 1e6:.0f} M weights, "
                          f"batch {train.batch_size}) and {device} has {free / 2**30:.1f} GiB free; use --resize "
                          "to smaller images, smaller --widths or a smaller --batch-size")


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (None where unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def summary(config: Config, last: dict, epoch: int, run_dir: Path) -> str:
    """"done" only for a run that trained all its epochs; a time limit says where it stopped."""
    epochs = config.train.epochs
    if epoch < epochs:
        return f"stopped at epoch {epoch} of {epochs} (time limit); checkpoint in {run_dir}; --resume {run_dir} continues"
    t = config.train.eval_iterations
    scores = (f"valid AMI / FG-ARI (last iteration) {last[f'valid_ami_{t}']:.3f} / {last[f'valid_ari_{t}']:.3f}"
              if last[f"valid_ami_{t}"] == last[f"valid_ami_{t}"] else  # NaN: data without objects
              f"valid denoising cost (last iteration) {last[f'valid_cost_{t}']:.4f} (no objects to score)")
    return f"done: epoch {last['epoch']} of {epochs}, {scores}; checkpoint in {run_dir}"
