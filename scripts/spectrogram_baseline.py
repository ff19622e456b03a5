"""The baselines on the spectrogram mixtures' test split: per mixture, NMF with K components on
the magnitude spectrogram (or on the active-bin map), each bin to its strongest component; and
the trivial time slices (k-means on each active bin's frame index, K clusters). With
``--dataset spikes`` the same two on the spike rasters (NMF of each raster, neurons x bins, and
k-means on each spike's bin), fitted on every spike the model sees, background spikes included.
Last, two references that read the truth: grouping by time alone (every element of a time step
to the object owning most of it) and by row alone (frequency bin or neuron). Scored with FG-ARI
and AMI like Tagger. Writes JSON and prints a Markdown table.

    python scripts/spectrogram_baseline.py --examples 2000 --output runs/spectrogram-baseline.json
    python scripts/spectrogram_baseline.py --dataset spikes --examples 10000 --output runs/spike-baseline.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from tagger.baselines.nmf import line_oracle_masks, magnitudes, nmf_masks, time_slice_masks
from tagger.datasets import load
from tagger.datasets import sound
from tagger.metrics import ami, ari


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["spectrograms", "spikes"], default="spectrograms")
    parser.add_argument("--examples", type=int, default=2000, help="first N test examples")
    parser.add_argument("--groups", type=int, nargs="+", default=[3, 4], help="K components (clusters) per example")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--output", type=Path, default=Path("runs/spectrogram-baseline.json"))
    args = parser.parse_args(argv)
    split = load(args.dataset, "test", args.data_dir)
    n = min(args.examples, len(split))
    objects = torch.as_tensor(split.objects[:n].astype("int64"))
    if args.dataset == "spikes":
        active = split.features[:n] > 0  # (N, D): every spike, background ones too (scored: objects > 0)
        active_name, line, inputs = "spike raster", "neuron", {}
    else:
        active = split.objects[:n] > 0  # (N, D): the scored bins, what the binary model sees
        active_name, line = "active bins", "frequency bin"
        inputs = {"magnitude": magnitudes(split.features[:n], sound.DB_RANGE)}
    inputs[active_name] = active.astype("float64")
    methods = [(f"NMF on the {name}", name, lambda g, x=spectra: nmf_masks(x, split.image_shape, g))
               for name, spectra in inputs.items()]
    methods.append(("time slices (k-means on frame index)", active_name,
                    lambda g: time_slice_masks(active, split.image_shape, g)))
    oracles = [(f"by {what} alone, each line to its majority owner (reads the truth)", "truth",
                lambda g, axis=axis: line_oracle_masks(split.objects[:n], split.image_shape, axis))
               for what, axis in (("time", 1), (line, 0))]
    rows = []
    for label, name, method in methods + oracles:
        for groups in args.groups if name != "truth" else [int(split.objects[:n].max()) + 1]:
            started = time.time()
            masks = torch.as_tensor(method(groups))
            rows.append({"method": label, "input": name, "groups": groups, "examples": n,
                         "ari": float(ari(objects, masks).mean()), "ami": float(ami(objects, masks).mean()),
                         "seconds": round(time.time() - started, 1)})
            print(f"| {label}, K={groups} | {n} test examples | FG-ARI {rows[-1]['ari']:.3f} | "
                  f"AMI {rows[-1]['ami']:.3f} |", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
