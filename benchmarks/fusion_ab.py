"""Interleaved A/B timing of the training step: ``ladder.normalize`` as PyTorch's fused
batch_norm / layer_norm kernels (the code) against the textbook formula it replaced,
``(x - mean) * rsqrt(var + eps)`` from ``torch.var_mean``.

Run from the repository root::

    python benchmarks/fusion_ab.py [--preset quick] [--norm layer|batch] [--repeats 5] [--steps 15]

The two variants alternate within one process (a shared VM's speed drifts between runs, so
separate runs cannot be compared to a few per cent). Prints the median ms per step of each, the
ratio, and the largest difference between the two normalisations on a random batch.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tagger.ladder as ladder  # noqa: E402
import tagger.model as model_module  # noqa: E402
from tagger import Tagger  # noqa: E402
from tagger.presets import preset  # noqa: E402

FUSED = ladder.normalize


def formula(values: torch.Tensor, mode: str) -> torch.Tensor:
    """The normalisation written out (the unfused form that ``ladder.normalize`` replaces)."""
    variance, mean = torch.var_mean(values, dim=0 if mode == "batch" else -1, keepdim=True, correction=0)
    return (values - mean) * torch.rsqrt(variance + ladder.EPSILON)


def use(normalize) -> None:
    ladder.normalize = normalize
    model_module.normalize = normalize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--norm", choices=["layer", "batch"], default="layer")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = preset(args.preset, "shapes")
    config.model.norm = args.norm
    model = Tagger(config.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    x = (torch.rand(args.batch_size, config.model.input_size) < 0.3).float()  # (B, D)

    def step() -> None:
        loss = model(x).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    times = {"formula": [], "fused": []}
    for _ in range(args.repeats):
        for name, normalize in (("formula", formula), ("fused", FUSED)):
            use(normalize)
            step()
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - started) / args.steps * 1000)
    use(FUSED)
    sample = torch.randn(400, 300) * 3 + 1
    difference = (formula(sample, args.norm) - FUSED(sample, args.norm)).abs().max().item()
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.preset}, {args.norm} norm, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}: formula {medians['formula']:.1f} ms/step, fused {medians['fused']:.1f} "
          f"ms/step ({medians['formula'] / medians['fused']:.2f}x); max |difference| {difference:.1e}")


if __name__ == "__main__":
    main()
