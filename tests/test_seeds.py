"""Table 1's statistic: the median over seeds, and the sweep script that produces it."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tagger.evaluate import median_over_runs

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "seeds.py"


def test_median_over_runs_by_hand():
    runs = [{"iterations": [1, 2], "ami": [0.5, 0.9], "denoising_cost": [0.2, 0.1]},
            {"iterations": [1, 2], "ami": [0.7, 0.6], "denoising_cost": [0.3, 0.3]},
            {"iterations": [1, 2], "ami": [0.6, 0.8], "denoising_cost": [0.1, 0.2]}]
    summary = median_over_runs(runs)
    assert summary["ami"] == [0.6, 0.8] and summary["denoising_cost"] == [0.2, 0.2]
    assert summary["ami_min"] == [0.5, 0.6] and summary["ami_max"] == [0.7, 0.9]
    assert summary["runs"] == 3 and "class_error" not in summary
    with pytest.raises(ValueError):
        median_over_runs([runs[0], {"iterations": [1], "ami": [0.1], "denoising_cost": [0.1]}])


@pytest.mark.slow
def test_sweep_trains_evaluates_and_summarises(tmp_path, data_dir):
    tiny = ["--widths", "24-12-12", "--epochs", "1", "--train-examples", "200", "--valid-examples", "50",
            "--batch-size", "50", "--no-progress"]
    command = [sys.executable, str(SCRIPT), "--seeds", "3,4", "--out", str(tmp_path),
               "--eval", "--examples 60 --iterations 2", "--", "shapes", *tiny]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "median over 2 seeds" in result.stdout
    runs = [json.loads((tmp_path / f"seed{s}" / "eval_test.json").read_text()) for s in (3, 4)]
    assert runs[0]["ami"] != runs[1]["ami"]  # different seeds, different runs
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"] == [3, 4] and summary["runs"] == 2
    assert summary["ami"] == pytest.approx([(a + b) / 2 for a, b in zip(runs[0]["ami"], runs[1]["ami"])])
    again = subprocess.run(command, capture_output=True, text=True)  # evaluated seeds are not retrained
    assert again.returncode == 0 and "training" not in again.stdout
