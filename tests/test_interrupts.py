"""Ctrl-C, SIGTERM and SIGUSR1 save: a real training subprocess gets the signal after its first
checkpoint, finishes the step, writes a checkpoint and exits 128 + the signal's number (130 for
Ctrl-C); resumed, it ends bit-identical to an uninterrupted run (CPU, one thread). A second Ctrl-C
exits at once. SIGHUP and SIGUSR2: tests/test_scheduler.py."""
import signal
import time

import pytest
import torch
from test_resume import checkpoint_step, environment, start

from tagger.checkpoint import read_checkpoint

ARGS = ["--widths", "32-16-8", "--train-examples", "200", "--batch-size", "20", "--epochs", "2",
        "--valid-examples", "20", "--checkpoint-every", "2", "--no-progress"]


def signal_after_first_checkpoint(process, run_dir, number, count=1, timeout=120):
    started = time.time()
    while process.poll() is None and checkpoint_step(run_dir) < 2 and time.time() - started < timeout:
        time.sleep(0.01)
    for _ in range(count):
        process.send_signal(number)
        time.sleep(0.05)
    return process.wait(timeout=timeout)


def same_checkpoint(a, b):
    _, state_a, weights_a, training_a = read_checkpoint(a)
    _, state_b, weights_b, training_b = read_checkpoint(b)
    assert state_a["step"] == state_b["step"] and state_a["epoch"] == state_b["epoch"]
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name
    for name in training_a:
        assert torch.equal(training_a[name], training_b[name]), name


@pytest.mark.slow
def test_sigint_sigterm_and_sigusr1_checkpoint_and_resume_bit_identically(data_dir, tmp_path):
    env = environment(data_dir)
    straight = tmp_path / "straight"
    assert start(["shapes", "--run-dir", str(straight), *ARGS], env).wait() == 0
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        run = tmp_path / number.name
        process = start(["shapes", "--run-dir", str(run), *ARGS], env)
        assert signal_after_first_checkpoint(process, run, number) == 128 + number
        err = process.stderr.read().strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"tagger: interrupted: {number.name}") and "--resume" in err[0], err
        stopped = checkpoint_step(run)
        assert 2 <= stopped < 20  # saved on the signal, mid-run (not only at checkpoint-every)
        final = start(["--resume", str(run)], env)
        assert final.wait() == 0, final.stderr.read()
        same_checkpoint(straight, run)


@pytest.mark.slow
def test_a_second_ctrl_c_exits_at_once(data_dir, tmp_path):
    run = tmp_path / "run"
    process = start(["shapes", "--run-dir", str(run), *ARGS], environment(data_dir))
    code = signal_after_first_checkpoint(process, run, signal.SIGINT, count=2)
    # 130 from our handler; or, when the second Ctrl-C lands after the handler is gone (the
    # process already on its way out), death by SIGINT itself, which a shell also reports as 130
    assert code in (130, -signal.SIGINT), code
    if code == 130:
        assert "tagger: interrupted" in process.stderr.read()
    read_checkpoint(run)  # whatever was interrupted, a whole checkpoint is there
