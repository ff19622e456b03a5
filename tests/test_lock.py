"""One writer per run directory: a second process is refused by name; a killed holder frees it."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tagger.errors import ConfigError
from tagger.training.lock import RunLock, hold_run_lock
from tagger.training.rundir import artefacts, check_new_run_dir, claim_run_dir

ROOT = Path(__file__).resolve().parents[1]
HOLD = """
import sys, time
from tagger.training.lock import hold_run_lock
hold_run_lock(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""
TRY = """
import sys
from tagger.errors import UserError
from tagger.training.lock import RunLock
try:
    with RunLock(sys.argv[1]):
        print("acquired")
except UserError as error:
    print("refused:", error)
"""


def _python(code, *args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, **kw)


def _try(run):
    return _python(TRY, run).communicate(timeout=60)[0].strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock semantics checked on Linux")
def test_a_second_writer_is_refused_and_a_killed_holder_frees_the_lock(tmp_path):
    run = tmp_path / "run"
    holder = _python(HOLD, run)
    try:
        assert holder.stdout.readline().strip() == "held"
        answer = _try(run)
        assert answer.startswith("refused:") and f"PID {holder.pid} on " in answer, answer
        assert "(started " in answer and "choose another --run-dir" in answer and "\n" not in answer
        with pytest.raises(ConfigError, match=f"PID {holder.pid}"):  # in this process too
            RunLock(run).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    assert _try(run) == "acquired"  # the kernel dropped the dead holder's lock
    assert (run / ".lock").exists() and artefacts(run) == []  # the lock file is not a run artefact
    check_new_run_dir(run)  # a folder holding only the lock is new


def test_the_lock_is_reentrant_in_one_process_and_released_at_the_end(tmp_path):
    run = tmp_path / "run"
    with RunLock(run) as outer:
        with RunLock(run) as inner:
            assert inner.held and outer.held
        assert outer.held
        assert "pid" in (run / ".lock").read_text()
    assert not outer.held and (run / ".lock").read_text() == ""  # released: the file stays, empty
    assert _try(run) == "acquired"
    held = hold_run_lock(run)  # for the rest of the process, even past a with-block sharing it
    with RunLock(run):
        pass
    assert held.held and _try(run).startswith("refused:")
    held.release()
    assert _try(run) == "acquired"


def test_claim_run_dir_locks_then_checks_a_new_run(tmp_path, monkeypatch):
    run = tmp_path / "run"
    lock = claim_run_dir(run)
    try:
        assert lock.held and _try(run).startswith("refused:")
        (run / "metrics.csv").write_text("epoch\n1\n")
        with pytest.raises(ConfigError, match="holds run files"):
            claim_run_dir(run)
        again = claim_run_dir(run, resume=True)  # shares the lock this process holds
        assert again.held
        again.release()
    finally:
        lock.release()
    assert _try(run) == "acquired"  # the refused claim left no count behind
    monkeypatch.setenv("RANK", "1")  # torchrun's other ranks write nothing and take no lock
    assert claim_run_dir(tmp_path / "other") is None and not (tmp_path / "other" / ".lock").exists()
