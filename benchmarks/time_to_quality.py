"""Time-to-quality of training runs, from their own metrics.csv: epochs and training seconds until
the validation AMI (last iteration) first reaches each target.

    python benchmarks/time_to_quality.py runs/demo runs/other --ami 0.8 0.85 0.9 [--output FILE.md]

`elapsed_s` counts training steps only (not validation or checkpoints), so runs on one machine
compare as ratios; state the machine next to the numbers, and compare presets by running them
in the same sitting (this shared 2-core machine's speed drifts by up to 20 % between sittings).
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def reached(rows: list[dict], target: float) -> dict | None:
    """The first epoch row whose last-iteration validation AMI is >= target."""
    for row in rows:
        last = max(int(key.rsplit("_", 1)[1]) for key in row if key.startswith("valid_ami_"))
        if float(row[f"valid_ami_{last}"]) >= target:
            return row
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--ami", type=float, nargs="+", default=[0.8, 0.85, 0.9])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    head = "| run | preset | " + " | ".join(f"to AMI {t}" for t in args.ami) + " | last epoch: AMI, training s |"
    lines = [head, "|---" * (3 + len(args.ami)) + "|"]
    for run in args.runs:
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        config = json.loads((run / "config.json").read_text())
        cells = []
        for target in args.ami:
            row = reached(rows, target)
            cells.append(f"epoch {row['epoch']}, {float(row['elapsed_s']):.0f} s" if row else "not reached")
        last = rows[-1]
        final = max(int(key.rsplit("_", 1)[1]) for key in last if key.startswith("valid_ami_"))
        lines.append(f"| {run.name} | {config.get('preset', '?')} | " + " | ".join(cells)
                     + f" | {last['epoch']}: {float(last[f'valid_ami_{final}']):.3f}, {float(last['elapsed_s']):.0f} s |")
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
