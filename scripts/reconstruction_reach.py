"""Does each group draw only what it owns, or the whole scene? For a trained run on any dataset:
the mean |z_k - x| of every group's last reconstruction at the foreground pixels it owns (argmax
of the last masks) and at those other groups own (tagger.baselines.pieces.reconstruction_reach),
beside the FG-ARI of the same masks, on the first N test examples. Prints a Markdown row.

    python scripts/reconstruction_reach.py runs/spectrograms-quick --examples 500
    python scripts/reconstruction_reach.py --pretrained shapes-quick --pretrained tetrominoes-quick
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

import tagger
from tagger import datasets
from tagger.baselines.pieces import reconstruction_reach
from tagger.checkpoint import load_run
from tagger.evaluate import infer_in_batches
from tagger.metrics import ari
from tagger.pretrained import pretrained_path


def reach(run: Path, examples: int, iterations: int, seed: int, data_dir) -> dict:
    config, model = load_run(run)
    split = datasets.load(config.train.dataset, "test", data_dir, **config.train.data_kwargs())
    x = torch.as_tensor(split.features[:examples])  # (N, D)
    out = infer_in_batches(model, x, last_only=True, iterations=iterations,
                           generator=torch.Generator().manual_seed(seed))  # tagger eval's batches
    masks, z = out.masks[0], out.reconstructions[0]  # (N, K, P), (N, K, D)
    objects = split.objects[:len(x)]
    result = reconstruction_reach(x.numpy(), objects, z.numpy(), masks.argmax(dim=1).numpy(), model.channels)
    result["fg_ari"] = float(ari(torch.as_tensor(objects.astype("int64")), masks).mean())
    return {"dataset": config.train.dataset, "examples": len(x), **result}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN", help="run directories")
    parser.add_argument("--pretrained", action="append", default=[], metavar="NAME",
                        help=f"a shipped model (repeatable): {', '.join(tagger.pretrained_names())}")
    parser.add_argument("--examples", type=int, default=500, help="first N test examples (default 500)")
    parser.add_argument("--iterations", type=int, default=5, help="T (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="initial masks (default 0)")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--mnist-dir", type=Path, help="MNIST's IDX files, for TextureMNIST runs")
    args = parser.parse_args(argv)
    if args.mnist_dir is not None:  # the MNIST loader reads it from the environment
        os.environ["TAGGER_MNIST"] = str(args.mnist_dir)
    try:
        runs = [(str(run), run) for run in args.runs]
        runs += [(f"pretrained {name}", pretrained_path(name)) for name in args.pretrained]
    except tagger.UserError as error:
        parser.error(str(error))
    if not runs:
        parser.error("give RUN directories or --pretrained NAME")
    print("| run | dataset | FG-ARI (masks) | own-pixel error | other-pixel error |\n|---|---|---|---|---|")
    for label, run in runs:
        try:
            row = reach(run, args.examples, args.iterations, args.seed, args.data_dir)
        except tagger.UserError as error:
            parser.error(str(error))
        print(f"| {label} | {row['dataset']} | {row['fg_ari']:.3f} | {row['own']:.3f} | {row['other']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
