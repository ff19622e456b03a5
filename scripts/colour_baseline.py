"""The colour-clustering baseline on Tetrominoes' test scenes: k-means (K clusters) on each
image's pixel colours, scored with FG-ARI and AMI like Tagger, split by scenes whose pieces
have three distinct colours vs a repeated colour. Writes JSON and prints a Markdown table.

    python scripts/colour_baseline.py --examples 10000 --groups 4 --output runs/colour-baseline.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from tagger.baselines.colour import distinct_colours, kmeans_masks
from tagger.datasets import load
from tagger.metrics import ami, ari


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000, help="first N test scenes")
    parser.add_argument("--groups", type=int, default=4, help="K clusters per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--output", type=Path, default=Path("runs/colour-baseline.json"))
    args = parser.parse_args(argv)
    split = load("tetrominoes", "test", args.data_dir)
    n = min(args.examples, len(split))
    started = time.time()
    masks = torch.as_tensor(kmeans_masks(split.features[:n], split.image_shape[2], args.groups, args.seed))
    objects = torch.as_tensor(split.objects[:n].astype("int64"))
    fg_ari, fg_ami = ari(objects, masks), ami(objects, masks)  # (N,)
    distinct = torch.as_tensor(distinct_colours(split.colors[:n]))
    result = {"examples": n, "groups": args.groups, "seconds": round(time.time() - started, 1),
              "ari": float(fg_ari.mean()), "ami": float(fg_ami.mean()),
              "ari_distinct": float(fg_ari[distinct].mean()), "ari_repeated": float(fg_ari[~distinct].mean()),
              "distinct_scenes": int(distinct.sum())}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| k-means on colours, K={args.groups} | {n} test scenes | FG-ARI {result['ari']:.3f} | "
          f"distinct colours ({result['distinct_scenes']}) {result['ari_distinct']:.3f} | "
          f"repeated ({n - result['distinct_scenes']}) {result['ari_repeated']:.3f} | AMI {result['ami']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
