"""``tagger baseline`` (Table 2's classifiers) and ``tagger rc`` (Reconstruction Clustering)."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from ..errors import ConfigError
from ..files import write_text_atomically
from ..training.lock import hold_run_lock
from .flags import apply_flags


def baseline_config_from_args(args: argparse.Namespace):
    """The baseline preset for ``--model``/``--labeled``/``--digits`` with the given overrides."""
    from ..baselines.train import baseline_preset

    config = baseline_preset(args.model, args.labeled, args.digits, getattr(args, "dataset", "texture-mnist"))
    return apply_flags(config, args, "baseline.").validate()


def run_baseline(args: argparse.Namespace) -> int:
    from ..baselines.train import BaselineTrainer, load_baseline_splits
    from ..training.device import resolve_device

    if args.model == "slot-attention":
        return run_slot_attention(args)
    config = baseline_config_from_args(args)
    data = "mnist" if config.dataset == "mnist" else f"t{config.digits}"
    run_dir = args.run_dir or Path("runs") / f"baseline-{config.model}-{data}-{config.labeled or 'all'}"
    device = resolve_device(args.device)
    hold_run_lock(run_dir)  # one writer per run directory (a double launch is refused)
    if (run_dir / "result.json").exists():
        raise ConfigError(f"--run-dir {run_dir} already holds a finished baseline; choose another --run-dir")
    trainer = BaselineTrainer(config, run_dir, load_baseline_splits(config, args.data_dir),
                              device, progress=not args.no_progress)
    result = trainer.run()
    name = "MNIST" if config.dataset == "mnist" else f"TextureMNIST{config.digits}"
    print(f"{config.model} on {name}, {result['labeled_examples']} labels, "
          f"{result['epochs_run']} epochs: valid error {result['valid_class_error']:.2f} %, "
          f"test error {result['test_class_error']:.2f} % (result in {run_dir}/result.json)")
    return 0


SLOT_FLAGS = ("epochs", "batch_size", "lr", "seed", "valid_examples", "max_minutes")  # the baseline flags it takes


def run_slot_attention(args: argparse.Namespace) -> int:
    """``tagger baseline --model slot-attention --dataset tetrominoes|shapes``: this project's Slot Attention."""
    from ..baselines.slot_attention import DATASETS, SlotConfig, load_slot_splits, train_slot_attention
    from ..baselines.train import BaselineConfig
    from ..training.device import resolve_device
    from .flags import given_flags

    if args.dataset not in DATASETS:
        raise ConfigError(f"slot-attention groups objects: give --dataset {' or '.join(DATASETS)}")
    given = given_flags(BaselineConfig(), args, "baseline.")
    ignored = sorted(set(given) - set(SLOT_FLAGS))
    if ignored:
        raise ConfigError(f"slot-attention takes only --{', --'.join(f.replace('_', '-') for f in SLOT_FLAGS)}; "
                          f"got --{', --'.join(f.replace('_', '-') for f in ignored)}")
    config = SlotConfig(dataset=args.dataset, **{key: given[key] for key in SLOT_FLAGS if key in given}).validate()
    run_dir = Path(args.run_dir or Path("runs") / f"baseline-slot-attention-{config.dataset}")
    if (run_dir / "result.json").exists():
        raise ConfigError(f"--run-dir {run_dir} already holds a finished baseline; choose another --run-dir")
    result = train_slot_attention(config, load_slot_splits(config, args.data_dir), run_dir,
                                  resolve_device(args.device), progress=not args.no_progress)
    print(f"slot attention on {config.dataset}, K={config.slots}, {result['epochs_run']} epochs "
          f"({result['train_seconds']:.0f} s): valid FG-ARI {result['valid_ari']:.3f}, test FG-ARI "
          f"{result['test_ari']:.3f} (result in {run_dir}/result.json)")
    return 0


def rc_config_from_args(args: argparse.Namespace):
    """The RC preset for ``--train-set`` with the given overrides."""
    from ..baselines.reconstruction_clustering import rc_preset

    return apply_flags(rc_preset(args.train_set), args, "rc.").validate()


def seed_list(text: str) -> list[int]:
    """``"1-5"`` or ``"1,3,7"`` -> seeds (:func:`tagger.training.seeds.parse_seeds`, the one parser)."""
    from ..training.seeds import parse_seeds

    return parse_seeds(text)


def run_rc(args: argparse.Namespace) -> int:
    from ..baselines.rc_train import run_rc as train_and_test, summarise
    from ..training.device import resolve_device

    config = rc_config_from_args(args)
    run_dir = Path(args.run_dir or Path("runs") / f"rc-{config.train_set}")
    device = resolve_device(args.device)
    hold_run_lock(run_dir)  # one writer per run directory (a double launch is refused)
    seeds = seed_list(args.seeds) if args.seeds else [config.seed]
    results = {}
    for seed in seeds:
        directory = run_dir / f"seed{seed}" if args.seeds else run_dir
        if (directory / "result.json").exists():
            if not args.seeds:
                raise ConfigError(f"--run-dir {directory} already holds a finished RC run; choose another --run-dir")
            results[seed] = json.loads((directory / "result.json").read_text())  # an interrupted sweep continues
        else:
            results[seed] = train_and_test(dataclasses.replace(config, seed=seed), directory, device,
                                           args.data_dir, progress=not args.no_progress)
        ami = results[seed]["ami"]
        print(f"RC (DAE on '{config.train_set}', K={config.groups}), seed {seed}: test AMI after iteration "
              f"1/2/5/{config.iterations}: " + " / ".join(f"{ami[t]:.3f}" for t in sorted({1, 2, 5, len(ami) - 1})
                                                          if t < len(ami)) + f" ({directory})")
    if args.seeds:
        summary = summarise(results)
        write_text_atomically(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        print(f"RC over seeds {args.seeds}: test AMI {summary['ami_mean']:.3f} +- {summary['ami_std']:.3f} "
              f"(paper, Table 1b: 0.61 +- 0.005); {run_dir}/summary.json")
    return 0
