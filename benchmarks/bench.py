"""Benchmark the training step, inference and AMI for the Shapes presets on this machine.

    python benchmarks/bench.py                 # CPU (or the GPU if there is one)
    python benchmarks/bench.py --device cuda --compile graph

Prints one Markdown row per preset (see docs/performance.md for the columns) and writes JSON
next to them with --output-dir. A thin loop over ``tagger bench``.
"""
import argparse
from pathlib import Path

from tagger.training.bench import BenchOptions, markdown_row, run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", default="off", choices=["off", "graph", "inductor", "fused"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--presets", default="quick,paper")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output-dir", type=Path)
    args = parser.parse_args()
    rows = []
    for name in args.presets.split(","):
        output = args.output_dir / f"bench_shapes_{name}_{args.compile}_{args.precision}.json" if args.output_dir else None
        options = BenchOptions(dataset="shapes", preset=name, device=args.device, batch_size=None,
                               steps=args.steps if name != "paper" else max(2, args.steps // 4),
                               repeats=args.repeats, compile=args.compile, precision=args.precision,
                               output=output)
        rows.append(run_benchmark(options))
    print()
    print(markdown_row(rows[0], header=True))
    for row in rows[1:]:
        print(markdown_row(row))


if __name__ == "__main__":
    main()
