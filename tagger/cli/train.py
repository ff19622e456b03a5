"""``tagger train``, ``tagger demo``, ``tagger data`` and ``tagger bench``."""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from .. import datasets
from ..checkpoint import read_checkpoint
from ..config import DATASETS, USER, Config, TrainConfig
from ..datasets import Split
from ..presets import preset
from ..errors import ConfigError
from ..training.rundir import artefacts, check_new_run_dir, died_early, holds_checkpoint
from .resume import resume_config
from .sources import print_config, source_from_args


@dataclass
class TrainJob:
    """What ``tagger train`` does: train ``config`` into ``run_dir`` (or continue it there)."""

    config: Config
    run_dir: Path
    resume: bool = False
    device: str = "auto"
    compile: str = "off"
    data_dir: Path | None = None
    progress: bool = True
    train: Split | None = None  # your own images, already read (else tagger.train loads the data)
    valid: Split | None = None


def config_from_args(args: argparse.Namespace) -> Config:
    """The config the arguments ask for, every given override applied (:func:`tagger.train` validates it)."""
    return source_from_args(args).config


def job_from_args(args: argparse.Namespace) -> TrainJob:
    common = dict(device=args.device, compile=args.compile, data_dir=args.data_dir, progress=not args.no_progress)
    if args.resume is not None and died_early(args.resume):  # nothing to resume: the same run from the start
        config = Config.load(Path(args.resume) / "config.json")
        config.train.max_minutes = getattr(args, "train.max_minutes", None) or 0.0  # this invocation's limit
        print(f"{args.resume} has no checkpoint yet: starting its config.json from the start")
        return TrainJob(config, Path(args.resume), **common)
    if args.resume is not None:
        return TrainJob(resume_config(args), Path(args.resume), resume=True, **common)
    source = source_from_args(args)
    return TrainJob(source.config, args.run_dir or default_run_dir(source.config), train=source.train,
                    valid=source.valid, **common)


def default_run_dir(config: Config) -> Path:
    """runs/DATASET-PRESET; one-digit TextureMNIST runs get their own (runs/texture-mnist1-PRESET); a run
    on your own images is named after the file (runs/STEM-PRESET)."""
    train = config.train
    if train.dataset == USER:
        return Path("runs") / f"{Path(train.data).stem}-{config.preset}"
    digits = "1" if train.dataset == "texture-mnist" and train.n_digits == 1 else ""
    return Path("runs") / f"{train.dataset}{digits}-{config.preset}"


def train(job: TrainJob):
    """Run a :class:`TrainJob` through :func:`tagger.train`; returns the trained model."""
    from ..training.run import train as train_model

    return train_model(job.config, job.train, job.valid, run_dir=job.run_dir, device=job.device, resume=job.resume,
                       compile=job.compile, data_dir=job.data_dir, progress=job.progress)


def run_train(args: argparse.Namespace) -> int:
    if getattr(args, "seeds", None) or (args.resume is not None and (Path(args.resume) / "seeds.json").is_file()):
        from .seeds import run_train_seeds  # several seeds as one stacked model

        return run_train_seeds(args)
    job = job_from_args(args)
    if args.print_config:
        job.config.validate()
        print_config(job.config)
        return 0
    train(job)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Train the ``quick`` Shapes model (or continue it), then Table 1a and a figure."""
    from .inspect import EvalOptions, evaluate_run, show_run

    run_dir = Path(args.run_dir)
    common = dict(device=args.device, data_dir=args.data_dir, progress=not args.no_progress)
    resume = bool(artefacts(run_dir) and holds_checkpoint(run_dir))
    if resume:
        print(f"{run_dir} holds a run already; resuming it")
        config = _demo_resume_config(args, run_dir)
    else:
        config = preset("quick")
        config.train.max_minutes = args.max_minutes
        for name in ("epochs", "train_examples"):
            if getattr(args, name) is not None:
                setattr(config.train, name, getattr(args, name))
        config.validate()
        check_new_run_dir(run_dir, config, clear=False)  # refused now, before the instant look; tagger.train
        # takes the lock and restarts a run that died before its first checkpoint with this config
    _instant_look(args)  # after the checks: bad flags fail at once
    train(TrainJob(config, run_dir, resume=resume, compile=args.compile, **common))
    options = EvalOptions(run_dir=run_dir, device=args.device, data_dir=args.data_dir)
    evaluate_run(options.replace(examples=args.eval_examples))
    return show_run(options.replace(examples=4))


def _instant_look(args: argparse.Namespace) -> None:
    """Before training: the shipped ``shapes-quick`` model's groupings and Table 1a on 1,000 test
    images, in seconds, so a first result is on screen before the minutes of training start."""
    from ..pretrained import pretrained_names, working_copy
    from .inspect import EvalOptions, evaluate_run, show_run

    if "shapes-quick" not in pretrained_names():
        return
    print("a pretrained model first (tagger show/eval --pretrained shapes-quick), then training your own:")
    options = EvalOptions(run_dir=working_copy("shapes-quick"), device=args.device, data_dir=args.data_dir,
                          progress=False)
    evaluate_run(options.replace(examples=1000))
    show_run(options.replace(examples=4, order="ami", pool=1000))


def _demo_resume_config(args: argparse.Namespace, run_dir: Path) -> Config:
    """The demo run's config: --epochs and --max-minutes may change; another --train-examples is refused."""
    config, _, _, _ = read_checkpoint(run_dir)
    if args.train_examples is not None and args.train_examples != config.train.train_examples:
        raise ConfigError(f"--train-examples {args.train_examples} conflicts with the run in {run_dir} "
                          f"({config.train.train_examples}); choose another --run-dir")
    config.train.max_minutes = args.max_minutes
    if args.epochs is not None:
        config.train.epochs = args.epochs
    return config.validate()


def run_data(args: argparse.Namespace) -> int:
    """``tagger data DATASET`` (generate and cache) or ``tagger data export DATASET --output FILE.npz``."""
    export = args.words[0] == "export"
    words = args.words[1:] if export else args.words
    if len(words) != 1 or words[0] not in DATASETS:
        raise ConfigError(f"give DATASET or export DATASET, DATASET one of {', '.join(DATASETS)}; got {' '.join(args.words)}")
    dataset = words[0]
    if export and (args.output is None or args.output.suffix.lower() != ".npz"):
        raise ConfigError("tagger data export needs --output FILE.npz")
    started = time.time()
    kwargs = TrainConfig(dataset=dataset, n_digits=args.digits).data_kwargs()
    split = datasets.load(dataset, args.split if export else "train", args.data_dir, **kwargs)
    if export:
        datasets.to_npz(split, args.output)
        print(f"{split.name}: {len(split)} examples written to {args.output} ({time.time() - started:.1f} s); "
              f"train on it with: tagger train --data {args.output}")
        return 0
    where = "drawn in memory, not cached" if dataset == "spikes" else f"cached in {datasets.data_dir(args.data_dir)}"
    print(f"{split.name}: {len(split)} examples of {split.input_size} elements, {where} ({time.time() - started:.1f} s)")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from ..training.bench import BenchOptions, run_benchmark

    run_benchmark(BenchOptions(**{name: getattr(args, name) for name in BenchOptions.__dataclass_fields__}))
    return 0
