"""``tagger train ... --seeds 10-29``: several seeds trained together (:mod:`tagger.training.seeds`),
and ``tagger train --resume RUN`` on such a group (``RUN/seeds.json``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .resume import resume_config
from .train import config_from_args, default_run_dir


def run_train_seeds(args: argparse.Namespace) -> int:
    from ..training.seeds import group_seeds, is_group, parse_seeds, train_seeds

    common = dict(device=args.device, compile=args.compile, data_dir=args.data_dir, progress=not args.no_progress)
    if args.resume is not None:
        run_dir = Path(args.resume)
        seeds = group_seeds(run_dir) if is_group(run_dir) else parse_seeds(args.seeds)
        first = argparse.Namespace(**vars(args))  # the flags are checked against the first seed's stored config
        first.resume, first.run_dir = run_dir / f"seed{seeds[0]}", None
        train_seeds(resume_config(first), seeds, run_dir=run_dir, resume=True, **common)
        return 0
    seeds = parse_seeds(args.seeds)
    config = config_from_args(args)
    base = default_run_dir(config)
    run_dir = args.run_dir or base.with_name(f"{base.name}-seeds{args.seeds.replace(',', '_')}")
    train_seeds(config, seeds, run_dir=run_dir, **common)
    return 0
