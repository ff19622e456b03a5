"""No image prior: train the same preset on plain and on pixel-permuted Shapes, several seeds each.

    python scripts/permutation_study.py --seeds 1 2 3 --epochs 3 --out runs/permutation [-- TRAIN FLAGS]

For every seed, `tagger train shapes --preset P --seed S` twice (plain, and with
`--permute-pixels PERMUTATION`; flags after `--` are passed to both), then `tagger eval` of both on the first --test-examples test
images. Writes OUT/permutation.json and OUT/permutation.md (test AMI per iteration, mean and
standard deviation over seeds, and the difference of the means in units of the seed spread) and
OUT/permuted_groupings.png (the first permuted model's masks drawn back in image space).
Runs that already have a checkpoint are evaluated, not retrained.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def tagger(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tagger", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--permutation", type=int, default=0, help="the --permute-pixels seed")
    parser.add_argument("--test-examples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("runs/permutation"))
    parser.add_argument("train_flags", nargs="*", metavar="-- TRAIN FLAGS",
                        help="more `tagger train` flags for every run (e.g. -- --precision fp32)")
    args = parser.parse_args()
    results = {"plain": {}, "permuted": {}}
    for seed in args.seeds:
        for kind, extra in (("plain", []), ("permuted", ["--permute-pixels", str(args.permutation)])):
            run = args.out / f"{kind}-{seed}"
            if not (run / "checkpoint").exists():
                tagger("train", "shapes", "--preset", args.preset, "--seed", str(seed), "--epochs", str(args.epochs),
                       "--valid-examples", "500", "--run-dir", str(run), "--no-progress", *extra, *args.train_flags)
            output = args.out / f"eval_{kind}-{seed}.json"
            tagger("eval", str(run), "--examples", str(args.test_examples), "--output", str(output))
            results[kind][seed] = json.loads(output.read_text())["ami"]
    tagger("show", str(args.out / f"permuted-{args.seeds[0]}"), "--order", "ami", "--examples", "4",
           "--output", str(args.out / "permuted_groupings.png"))
    summary = {"preset": args.preset, "train_flags": args.train_flags, "epochs": args.epochs, "seeds": args.seeds, "permutation": args.permutation,
               "test_examples": args.test_examples, "ami": results}
    lines = [f"Shapes `{args.preset}`, {args.epochs} epochs, seeds {args.seeds}, test AMI on the first "
             f"{args.test_examples} test images (mean +- std over seeds)", "",
             "| iteration | plain | permuted | difference / std |", "|---|---|---|---|"]
    sd = lambda values: statistics.stdev(values) if len(values) > 1 else 0.0  # noqa: E731
    for t in range(len(results["plain"][args.seeds[0]])):
        plain = [results["plain"][s][t] for s in args.seeds]
        permuted = [results["permuted"][s][t] for s in args.seeds]
        gap = (statistics.mean(permuted) - statistics.mean(plain)) / max(sd(plain), sd(permuted), 1e-9)
        lines.append(f"| {t + 1} | {statistics.mean(plain):.3f} +- {sd(plain):.3f} | "
                     f"{statistics.mean(permuted):.3f} +- {sd(permuted):.3f} | {gap:+.2f} |")
    (args.out / "permutation.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.out / "permutation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
