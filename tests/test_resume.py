"""Exact resume after `kill -9`: a real training subprocess is killed at several points and
resumed; the final weights equal an uninterrupted run's bit for bit (CPU, one thread), with a
learning rate that decays over the run (a function of the step, so resumes follow it)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tagger.checkpoint import read_checkpoint

ARGS = ["--widths", "24-12-12", "--train-examples", "400", "--batch-size", "40", "--epochs", "3",
        "--valid-examples", "40", "--checkpoint-every", "2", "--lr-decay-from", "0.3", "--no-progress"]


def environment(data_dir):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TAGGER_DATA=str(data_dir))
    return env


def start(args, env):
    return subprocess.Popen([sys.executable, "-m", "tagger", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def checkpoint_step(run_dir):
    try:
        return json.loads((run_dir / "checkpoint" / "state.json").read_text())["state"]["step"]
    except (OSError, ValueError, KeyError):
        return -1


def kill_when(process, run_dir, step=None, delay=None, timeout=120):
    """SIGKILL the process once its checkpoint reaches ``step`` (or after ``delay`` seconds)."""
    started = time.time()
    while process.poll() is None and time.time() - started < timeout:
        if (step is not None and checkpoint_step(run_dir) >= step) or \
                (delay is not None and time.time() - started >= delay):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()


@pytest.mark.slow
def test_kill_and_resume_is_bit_identical(data_dir, tmp_path):
    env = environment(data_dir)
    straight = tmp_path / "straight"
    result = start(["shapes", "--run-dir", str(straight), *ARGS], env)
    assert result.wait() == 0, result.stderr.read()

    run = tmp_path / "killed"
    kill_when(start(["shapes", "--run-dir", str(run), *ARGS], env), run, step=4)  # mid-epoch 1
    kills = 1
    for point in ({"step": 13}, {"delay": 3.5}, {"step": 25}):  # epoch 2, a random moment, epoch 3
        process = start(["--resume", str(run)], env)
        kill_when(process, run, **point)
        kills += process.returncode == -signal.SIGKILL
    final = start(["--resume", str(run)], env)
    assert final.wait() == 0, final.stderr.read()
    assert kills >= 2  # at least two kills landed before the run could finish

    _, state_a, weights_a, training_a = read_checkpoint(straight)
    _, state_b, weights_b, training_b = read_checkpoint(run)
    assert state_a["step"] == state_b["step"] == 30 and state_b["epoch"] == 3
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name
    for name in training_a:
        assert torch.equal(training_a[name], training_b[name]), name
    # the log holds each epoch once
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3"]
