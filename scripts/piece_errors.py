"""How a Tetrominoes grouping fails, piece by piece: fragmenting (a piece's pixels spread over
groups, and where the stray pixels go) and merging (two pieces in one group, for pairs of
different and of the same colour); tagger/baselines/pieces.py defines the measures. Scores a
trained run or a shipped model on the first N test scenes (the argmax of the last iteration's
masks or, with --assign posterior, of Tagger.posterior), or the colour-clustering baseline with
--kmeans. Writes JSON and prints a Markdown table.

    python scripts/piece_errors.py --pretrained tetrominoes-quick --examples 2000
    python scripts/piece_errors.py runs/tetrominoes-quick --iterations 5 --output runs/pieces.json
    python scripts/piece_errors.py --kmeans --groups 6 --examples 2000
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import tagger
from tagger.baselines.colour import kmeans_masks
from tagger.baselines.pieces import piece_errors
from tagger.datasets import load
from tagger.evaluate import ASSIGNS, assigned, infer_in_batches
from tagger.metrics import ari


def grouping(args, split, n: int) -> tuple[np.ndarray, int]:
    """``(N, K, P)`` masks of the chosen model (or k-means) on the first ``n`` scenes, and K."""
    if args.kmeans:
        groups = args.groups or 6
        return kmeans_masks(split.features[:n], split.image_shape[2], groups, args.seed), groups
    model = tagger.load_pretrained(args.pretrained) if args.pretrained else tagger.load(args.run)
    groups = args.groups or model.config.groups
    x = torch.as_tensor(split.features[:n])  # (N, D)
    out = infer_in_batches(model, x, last_only=True, iterations=args.iterations, groups=groups,
                           generator=torch.Generator().manual_seed(args.seed))  # tagger eval's batches
    return assigned(model, x, out.masks, out.reconstructions, args.assign)[0].numpy(), groups  # (N, K, P)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", type=Path, help="a Tetrominoes run directory")
    parser.add_argument("--pretrained", help="a shipped model instead (e.g. tetrominoes-quick)")
    parser.add_argument("--kmeans", action="store_true", help="score colour clustering (k-means) instead")
    parser.add_argument("--examples", type=int, default=2000, help="first N test scenes")
    parser.add_argument("--groups", type=int, help="K (default: the model's; 6 for --kmeans)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--assign", choices=list(ASSIGNS), default="masks",
                        help="score the network's masks (default) or the per-pixel posterior (tagger eval --assign)")
    parser.add_argument("--seed", type=int, default=0, help="initial masks (or k-means) seed")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--output", type=Path, help="JSON file for the result")
    args = parser.parse_args(argv)
    if sum([args.run is not None, args.pretrained is not None, args.kmeans]) != 1:
        parser.error("give exactly one of RUN, --pretrained NAME, --kmeans")
    try:
        split = load("tetrominoes", "test", args.data_dir)
        n = min(args.examples, len(split))
        masks, groups = grouping(args, split, n)
    except (tagger.UserError, ValueError) as error:  # a missing run, an unknown name, a non-Tetrominoes model
        parser.error(str(error))
    result = piece_errors(split.objects[:n], masks.argmax(axis=1), split.colors[:n], groups)
    result["ari"] = float(ari(torch.as_tensor(split.objects[:n].astype("int64")), torch.as_tensor(masks)).mean())
    result["source"] = "kmeans" if args.kmeans else (args.pretrained or str(args.run))
    result["source"] += ", posterior" if args.assign == "posterior" and not args.kmeans else ""
    result |= {"groups": groups, "iterations": None if args.kmeans else args.iterations, "seed": args.seed,
               "assign": None if args.kmeans else args.assign}
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    stray = result["stray_to"]
    print("| grouping | FG-ARI | piece purity | pieces >= 90 % whole | stray pixels to background / other piece / "
          "spare group | pairs merged: different colour / same colour |\n|---|---|---|---|---|---|")
    print(f"| {result['source']} (K = {groups}) | {result['ari']:.3f} | {result['purity']:.3f} | {result['whole']:.3f} | "
          f"{stray['background']:.2f} / {stray['other_piece']:.2f} / {stray['spare']:.2f} | "
          f"{result['merged_distinct']:.3f} ({result['distinct_pairs']}) / {result['merged_same']:.3f} "
          f"({result['same_pairs']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
