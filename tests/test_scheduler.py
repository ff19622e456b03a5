"""What a job scheduler does to a run, with real `tagger train` subprocesses: a double launch (one
writer, the other refused by PID), a kill before the first checkpoint (the same command, or
`--resume`, starts it again), a closed output pipe (training goes on to its last checkpoint), every
termination signal (checkpoint, conventional exit code), and `--resume` with fewer epochs."""
import signal
import subprocess
import sys
import time

import pytest
from test_resume import checkpoint_step, environment, start

from tagger.checkpoint import read_checkpoint
from tagger.cli import main

ARGS = ["--widths", "24-12-12", "--train-examples", "400", "--batch-size", "20", "--epochs", "2",
        "--valid-examples", "20", "--checkpoint-every", "2", "--no-progress"]
LONG = ["--widths", "24-12-12", "--train-examples", "2000", "--batch-size", "20", "--epochs", "50",
        "--valid-examples", "20", "--no-progress"]


def wait_for(condition, timeout=120):
    started = time.time()
    while not condition() and time.time() - started < timeout:
        time.sleep(0.01)
    assert condition(), "timed out"


@pytest.mark.slow
def test_a_second_writer_is_refused_by_pid(data_dir, tmp_path):
    env = environment(data_dir)
    run = tmp_path / "run"
    first = start(["shapes", "--run-dir", str(run), *LONG, "--checkpoint-every", "5"], env)
    try:
        wait_for(lambda: checkpoint_step(run) >= 5)
        for args in (["--resume", str(run)], ["shapes", "--run-dir", str(run), *LONG]):
            second = start(args, env)
            assert second.wait(timeout=120) == 2
            err = second.stderr.read().strip().splitlines()
            assert len(err) == 1 and f"being written by PID {first.pid}" in err[0], err
    finally:
        first.kill()
        first.wait()
    restarted = start(["--resume", str(run), "--max-minutes", "0.05"], env)  # the lock died with its holder
    assert restarted.wait(timeout=300) == 0, restarted.stderr.read()
    epochs = [int(row.split(",")[0]) for row in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == list(range(1, len(epochs) + 1))  # no epoch logged twice


@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_starts_again(data_dir, tmp_path):
    env = environment(data_dir)
    for how in (["shapes", "--run-dir", "{run}", *ARGS], ["--resume", "{run}", "--max-minutes", "0.02"]):
        run = tmp_path / how[0].strip("-")
        process = start(["shapes", "--run-dir", str(run), *LONG], env)
        wait_for(lambda: (run / "config.json").exists())
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert checkpoint_step(run) == -1 and (run / "config.json").exists()
        args = [a.format(run=run) for a in how]
        if how[0] == "shapes":  # the same command: LONG's settings, but one epoch would differ
            refused = start(args, env)
            assert refused.wait(timeout=120) == 2 and "other settings" in refused.stderr.read()
            args = ["shapes", "--run-dir", str(run), *LONG, "--max-minutes", "0.02"]
        done = start(args, env)
        assert done.wait(timeout=300) == 0, done.stderr.read()
        assert checkpoint_step(run) >= 1


@pytest.mark.slow
def test_a_closed_output_pipe_does_not_stop_training(data_dir, tmp_path):
    run = tmp_path / "run"
    env = dict(environment(data_dir), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "tagger", "train", "shapes", "--run-dir", str(run), *ARGS],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()  # like `| head -1`: one line, then the reader is gone
    process.stdout.close()
    assert process.wait(timeout=300) == 0, process.stderr.read()
    state = read_checkpoint(run)[1]
    assert state["epoch"] == 2 and [row["epoch"] for row in state["history"]] == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("number", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2])
def test_every_scheduler_signal_checkpoints_with_its_exit_code(number, data_dir, tmp_path):
    run = tmp_path / "run"
    process = start(["shapes", "--run-dir", str(run), *LONG, "--checkpoint-every", "2"], environment(data_dir))
    wait_for(lambda: checkpoint_step(run) >= 2)
    process.send_signal(number)
    assert process.wait(timeout=120) == 128 + number
    err = process.stderr.read().strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tagger: interrupted: {number.name}"), err
    assert checkpoint_step(run) >= 2


def test_resume_with_fewer_epochs_than_done_is_refused(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "shapes", "--run-dir", str(run), *ARGS, "--device", "cpu"]) == 0
    config = (run / "config.json").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fewer than the 2 epochs" in err[0], err
    assert (run / "config.json").read_text() == config
