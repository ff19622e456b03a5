"""The baselines on the spectrogram mixtures' test split: per mixture, NMF with K components on
the magnitude spectrogram (or on the active-bin map), each bin to its strongest component; and
the trivial time slices (k-means on each active bin's frame index, K clusters). Scored with
FG-ARI and AMI like Tagger. Writes JSON and prints a Markdown table.

    python scripts/spectrogram_baseline.py --examples 2000 --output runs/spectrogram-baseline.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from tagger.baselines.nmf import magnitudes, nmf_masks, time_slice_masks
from tagger.datasets import load
from tagger.datasets import sound
from tagger.metrics import ami, ari


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000, help="first N test mixtures")
    parser.add_argument("--groups", type=int, nargs="+", default=[3, 4], help="K components per mixture")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--output", type=Path, default=Path("runs/spectrogram-baseline.json"))
    args = parser.parse_args(argv)
    split = load("spectrograms", "test", args.data_dir)
    n = min(args.examples, len(split))
    objects = torch.as_tensor(split.objects[:n].astype("int64"))
    active = split.objects[:n] > 0  # (N, D): the scored bins, what the binary model sees
    inputs = {"magnitude": magnitudes(split.features[:n], sound.DB_RANGE), "active bins": active.astype("float64")}
    methods = [(f"NMF on the {name}", name, lambda g, x=spectra: nmf_masks(x, split.image_shape, g))
               for name, spectra in inputs.items()]
    methods.append(("time slices (k-means on frame index)", "active bins",
                    lambda g: time_slice_masks(active, split.image_shape, g)))
    rows = []
    for label, name, method in methods:
        for groups in args.groups:
            started = time.time()
            masks = torch.as_tensor(method(groups))
            rows.append({"method": label, "input": name, "groups": groups, "examples": n,
                         "ari": float(ari(objects, masks).mean()), "ami": float(ami(objects, masks).mean()),
                         "seconds": round(time.time() - started, 1)})
            print(f"| {label}, K={groups} | {n} test mixtures | FG-ARI {rows[-1]['ari']:.3f} | "
                  f"AMI {rows[-1]['ami']:.3f} |", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
