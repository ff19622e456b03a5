"""Samples per second of `quick` Shapes training steps: S seeds as one stacked model (tagger train
--seeds) against S single runs one after another, interleaved A/B, with the fraction of the measured
matmul rate (tagger bench's definitions: 3 x model.flops_per_example per sample; matmul_peak).

    python benchmarks/seeds_bench.py [--members 1 2 4 8] [--precision fp32 auto] [--rounds 3] [--steps 10]

A single run's time for S seeds is S x one single step; "speedup" = that over the stacked step's time.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import tagger  # before torch: GOMP_SPINCOUNT
import torch

from tagger.model import Tagger
from tagger.training.bench import matmul_peak
from tagger.training.device import machine_name, resolve_precision
from tagger.training.seeds import SeedGroup
from tagger.training.steps import make_step


class Fake:  # a Split of random binary images (no data loading)
    def __init__(self, n, d):
        import numpy as np
        rng = np.random.default_rng(0)
        self.features = (rng.random((n, d)) < 0.3).astype("float32")
        self.objects = np.zeros((n, d), dtype="uint8")
        self.labels, self.input_size, self.name, self.image_shape = None, d, "random", (20, 20)

    def __len__(self):
        return len(self.features)


def seconds_per_step(fn, steps):
    fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--precision", nargs="+", default=["fp32", "auto"])
    parser.add_argument("--compile", default="off")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = torch.device("cpu")
    base = tagger.preset("quick")
    batch = base.train.batch_size
    data = Fake(batch * 4, base.model.input_size)
    x = torch.as_tensor(data.features[:batch])
    rows = {}
    for precision in args.precision:
        config = copy.deepcopy(base)
        config.train.precision = precision
        resolved = resolve_precision(precision, device)
        torch.manual_seed(0)
        model = Tagger(config.model)
        single = make_step(args.compile, model, config, device)
        groups = {}
        for count in args.members:
            configs = [copy.deepcopy(config) for _ in range(count)]
            for seed, c in enumerate(configs):
                c.train.seed = seed
            group = SeedGroup(configs, "/nonexistent", data, data, device, compile=args.compile, progress=False)
            group.stack()
            groups[count] = group
        for _ in range(args.rounds):  # interleaved: single, then each group size
            rows.setdefault((resolved, "single"), []).append(seconds_per_step(lambda: single.fn(x), args.steps))
            for count, group in groups.items():
                rows.setdefault((resolved, count), []).append(
                    seconds_per_step(lambda: group.step([x] * count), args.steps))
        flops = 3.0 * model.flops_per_example() * batch
        peak = matmul_peak(device, dtype=torch.bfloat16 if resolved == "bf16" else torch.float32)
        one = rows[(resolved, "single")]
        print(f"\n{machine_name(device)}, quick (batch {batch}), {resolved}, compile {args.compile}, "
              f"matmul peak {peak / 1e12:.2f} TFLOP/s; min / median over {args.rounds} rounds of {args.steps} steps")
        print("| seeds | single runs in sequence, samples/s | stacked, samples/s | time of S seeds / time of one | "
              "speedup | stacked utilisation |\n|---|---|---|---|---|---|")
        for count in args.members:
            stacked = rows[(resolved, count)]
            fmt = lambda values: f"{min(values):.0f} / {statistics.median(values):.0f}"  # noqa: E731
            single_rate = [batch / s for s in one]
            stacked_rate = [count * batch / s for s in stacked]
            ratio = statistics.median(stacked) / statistics.median(one)
            print(f"| {count} | {fmt(single_rate)} | {fmt(stacked_rate)} | {ratio:.2f} | {count / ratio:.2f}x | "
                  f"{100 * count * flops / statistics.median(stacked) / peak:.1f} % |")
        print(f"single run utilisation {100 * flops / statistics.median(one) / peak:.1f} %", flush=True)


if __name__ == "__main__":
    main()
