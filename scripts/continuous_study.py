"""The CPU study of continuous grouping (docs/continuous.md): train named variants of a preset
for a fixed wall-time budget and log validation FG-ARI / AMI per iteration as they learn.

Each variant is a plain dict of config overrides applied to ``--preset`` of ``--dataset``.
Validation runs every ``--epoch-examples`` training examples (an "epoch" here is that many
examples drawn from the first ``--epoch-examples`` of the training split), so curves have
enough points within minutes. Results: ``OUT/NAME/metrics.csv`` per variant and a summary
``OUT/summary.csv`` (one row per variant: last and best FG-ARI at the last iteration).

    python scripts/continuous_study.py --variants ln-v0.3 ln-ref --minutes 10 --out runs/study
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch

import tagger
from tagger.checkpoint import read_checkpoint
from tagger.presets import preset


def _variant(norm: str, v_param: str, v_init, lr: float, batch: int) -> dict:
    return {"model.norm": norm, "model.v_param": v_param, "model.v_init": v_init, "train.lr": lr,
            "train.batch_size": batch}


VARIANTS = {  # name -> {"model.FIELD" | "train.FIELD": value}, applied on top of --preset
    "ref-b100": _variant("batch", "reference", None, 1e-3, 100),  # the reference's recipe at quick width
    "ln-ref-b100": _variant("layer", "reference", None, 1e-3, 100),
    "ln-fixv0.2-b32": _variant("layer", "fixed", 0.2, 2e-3, 32),
    "bn-fixv0.2-b32": _variant("batch", "fixed", 0.2, 2e-3, 32),
}


def configure(args, overrides: dict):
    config = preset(args.preset, args.dataset, args.digits)
    for key, value in overrides.items():
        section, name = key.split(".")
        setattr(getattr(config, section), name, tuple(value) if isinstance(value, list) else value)
    config.train.epochs = 10_000  # the time budget ends the run
    config.train.max_minutes = args.minutes
    config.train.train_examples = args.epoch_examples
    config.train.valid_examples = args.valid_examples
    config.train.seed = args.seed
    return config.validate()


def run_variant(args, name: str) -> dict:
    overrides = dict(VARIANTS[name]) if name in VARIANTS else json.loads(name)
    config = configure(args, overrides)
    run_dir = args.out / (name if name in VARIANTS else f"custom{abs(hash(name)) % 10**6}")
    started = time.time()
    tagger.train(config, run_dir=run_dir, data_dir=args.data_dir, progress=False, quiet=True)
    state = read_checkpoint(run_dir)[1]
    history = state["history"]
    last_t = config.train.eval_iterations
    key = f"valid_ari_{last_t}"
    return {"variant": name, "overrides": json.dumps(overrides), "steps": state["step"],
            "minutes": round((time.time() - started) / 60, 2),
            "last_ari": history[-1][key] if history else float("nan"),
            "best_ari": max(row[key] for row in history) if history else float("nan"),
            "last_ami": history[-1][f"valid_ami_{last_t}"] if history else float("nan"),
            "v": history[-1].get("v", float("nan")) if history else float("nan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", required=True,
                        help=f"names ({', '.join(VARIANTS)}) or JSON dicts of overrides")
    parser.add_argument("--dataset", default="tetrominoes")
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall time per variant")
    parser.add_argument("--epoch-examples", type=int, default=5000, help="training examples between validations")
    parser.add_argument("--valid-examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("runs/study"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = args.out / "summary.csv"
    for name in args.variants:
        row = run_variant(args, name)
        print(json.dumps(row), flush=True)
        new = not summary.exists()
        with summary.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
