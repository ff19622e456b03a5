"""Two processes with torchrun (gloo, CPU) follow the single-process run at the same global batch."""
import csv
import os
import subprocess
import sys

import pytest
import torch

from tagger.checkpoint import read_checkpoint

ARGS = ["shapes", "--widths", "24-12-12", "--train-examples", "400", "--batch-size", "40", "--epochs", "2",
        "--valid-examples", "40", "--norm", "layer", "--no-progress"]


def run(command, env):
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_two_gloo_processes_match_one(data_dir, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", TAGGER_DATA=str(data_dir))
    run([sys.executable, "-m", "tagger", "train", "--run-dir", str(tmp_path / "one"), *ARGS], env)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "tagger", "train", "--run-dir", str(tmp_path / "two"), *ARGS], env)
    curves = []
    for name in ("one", "two"):
        with open(tmp_path / name / "metrics.csv") as handle:
            curves.append([float(row["train_cost"]) for row in csv.DictReader(handle)])
    assert len(curves[0]) == len(curves[1]) == 2
    assert curves[1] == pytest.approx(curves[0], rel=1e-4)
    _, state_one, weights_one, _ = read_checkpoint(tmp_path / "one")
    _, state_two, weights_two, _ = read_checkpoint(tmp_path / "two")
    assert state_one["step"] == state_two["step"] == 20
    for name in weights_one:
        assert torch.allclose(weights_one[name], weights_two[name], rtol=1e-3, atol=1e-5), name
    # resume under torchrun: 1 epoch, then --resume to 2, ends where the straight run ends
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29534",
                "-m", "tagger", "train"]
    one_epoch = [arg if arg != "2" else "1" for arg in ARGS]  # --epochs 2 -> 1
    run([*torchrun, "--run-dir", str(tmp_path / "resumed"), *one_epoch], env)
    run([*torchrun, "--resume", str(tmp_path / "resumed"), "--epochs", "2", "--no-progress"], env)
    _, state_resumed, weights_resumed, _ = read_checkpoint(tmp_path / "resumed")
    assert state_resumed["step"] == 20
    for name in weights_two:
        assert torch.equal(weights_two[name], weights_resumed[name]), name
    # only rank 0 wrote: one checkpoint, one log
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["checkpoint", "config.json", "metrics.csv", "tb"]
