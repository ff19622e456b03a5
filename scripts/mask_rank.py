"""How sharp can a Tagger's masks be? The rank bound of its mask read-out, measured on Tetrominoes.

Tagger reads each group's mask logits out of the Ladder's bottom layer, ``c * norm(W_m u_k)``
with ``u_k`` of width H0 (docs/design.md, "The TAG loop"): whatever the network computes,
every group's logit image lies in one fixed H0-dimensional subspace of the P-pixel images (up
to a per-pixel offset shared by all groups, which the softmax over groups ignores). This script
measures what that costs before any training: it fits the best rank-r subspace to the true
object indicator images of training scenes (PCA, background included as an object), projects
each test object's indicator onto it, takes the argmax over objects and scores FG-ARI against
the truth. A rank that cannot draw the pieces caps the masks' FG-ARI whatever the training;
the per-pixel posterior (``tagger eval --assign posterior``) is not bound by it.

With a trained model (``--pretrained NAME`` or a run directory) it also scores the subspace
that model's mask layer actually spans: the principal directions of its last-iteration log
masks (centred over groups) on test scenes, as many as H0. Near the PCA bound: the read-out
can draw the pieces and the masks fail in inference; far below: the learned read-out is blurred.

    python scripts/mask_rank.py --ranks 16 32 64 128 256 512 --output runs/mask_rank.json
    python scripts/mask_rank.py --pretrained tetrominoes-quick --ranks 64
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from tagger.baselines.colour import distinct_colours
from tagger.baselines.readout import model_basis, score, subspace
from tagger.datasets import load


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512],
                        help="subspace widths r (H0 of the model whose masks they bound)")
    parser.add_argument("--train-examples", type=int, default=20_000, help="training scenes for the PCA")
    parser.add_argument("--examples", type=int, default=2000, help="first N test scenes scored")
    parser.add_argument("run", nargs="?", type=Path, help="a trained Tetrominoes run directory (optional)")
    parser.add_argument("--pretrained", help="a shipped model instead (e.g. tetrominoes-quick)")
    parser.add_argument("--iterations", type=int, default=5, help="the model's iteration whose masks are used")
    parser.add_argument("--seed", type=int, default=0, help="initial masks seed of the model's inference")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--output", type=Path, help="JSON file for the result")
    args = parser.parse_args(argv)
    if min(args.ranks) < 1 or args.examples < 1 or args.train_examples < 1:
        parser.error("ranks and example counts must be positive")
    train, test = (load("tetrominoes", split, args.data_dir) for split in ("train", "test"))
    count = int(train.objects.max()) + 1  # background and the pieces
    mean, vectors = subspace(train.objects[:args.train_examples], count, max(args.ranks))
    objects, colors = test.objects[:args.examples], test.colors[:args.examples]
    distinct = distinct_colours(colors)
    rows = []
    for rank in sorted(args.ranks):
        fg_ari = score(objects, count, mean, vectors[:, :rank])
        rows.append({"rank": rank, "fg_ari": float(fg_ari.mean()),
                     "distinct": float(fg_ari[distinct].mean()), "repeated": float(fg_ari[~distinct].mean())})
    if args.run or args.pretrained:
        import tagger
        model = tagger.load_pretrained(args.pretrained) if args.pretrained else tagger.load(args.run)
        fg_ari = score(objects, count, 0.0, model_basis(model, test.features[:args.examples], args.iterations, args.seed))
        rows.append({"rank": f"model ({args.pretrained or args.run}, H0 = {model.config.widths[0]})",
                     "fg_ari": float(fg_ari.mean()), "distinct": float(fg_ari[distinct].mean()),
                     "repeated": float(fg_ari[~distinct].mean())})
    result = {"train_examples": args.train_examples, "test_examples": args.examples, "rows": rows}
    print("| rank r (H0) | FG-ARI | distinct colours | repeated colour |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['rank']} | {row['fg_ari']:.3f} | {row['distinct']:.3f} | {row['repeated']:.3f} |")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
