"""Gather training runs' validation curves into one CSV row per validation (stdout): the run's
name, the settings that differ between study runs, and FG-ARI at iterations 1 / 3 / 5.

    python scripts/collect_runs.py runs/study/* > docs/results/.../sweep.csv
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

COLUMNS = ["run", "widths", "norm", "noise", "pixel_noise", "v", "v_param", "seed", "lr", "train_examples",
           "epoch", "step", "elapsed_s", "train_cost", "valid_fg_ari_1", "valid_fg_ari_3", "valid_fg_ari_5",
           "valid_ami_5", "v_end"]


def rows(run: Path):
    config = json.loads((run / "config.json").read_text())
    model, train = config["model"], config["train"]
    settings = {"run": run.name, "widths": "-".join(map(str, model["widths"])), "norm": model["norm"],
                "noise": model["noise"], "pixel_noise": model.get("pixel_noise", 0.0), "v": model["v_init"],
                "v_param": model["v_param"], "seed": train["seed"], "lr": train["lr"],
                "train_examples": train.get("train_examples", 0)}
    with open(run / "metrics.csv") as f:
        for row in csv.DictReader(f):
            yield {**settings, "epoch": row["epoch"], "step": row["step"], "elapsed_s": row["elapsed_s"],
                   "train_cost": round(float(row["train_cost"]), 4), "v_end": round(float(row["v"]), 4),
                   **{f"valid_fg_ari_{t}": round(float(row[f"valid_ari_{t}"]), 4) for t in (1, 3, 5)},
                   "valid_ami_5": round(float(row["valid_ami_5"]), 4)}


if __name__ == "__main__":
    writer = csv.DictWriter(sys.stdout, COLUMNS)
    writer.writeheader()
    for path in sys.argv[1:]:
        if (Path(path) / "metrics.csv").exists():
            writer.writerows(rows(Path(path)))
