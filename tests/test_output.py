"""Output can't kill training: a pipe whose reader is gone, or a full disk, costs messages only."""
import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tqdm import tqdm

from tagger.training.output import SafeStream, guarded_output, progress_stream, safe_print, safe_stream

ROOT = Path(__file__).resolve().parents[1]
PRINTER = """
import sys
from pathlib import Path
from tqdm import tqdm
from tagger.training.output import progress_stream, safe_print
for i in range(20000):
    safe_print(f"line {i} " + "x" * 60)
for i in tqdm(range(2000), file=progress_stream(), mininterval=0):
    pass
Path(sys.argv[1]).write_text("done")
"""


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def test_printing_into_a_pipe_whose_reader_left_finishes_the_work(tmp_path):
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", PRINTER, str(marker)], env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout.readline().startswith(b"line 0 ")
    child.stdout.close()  # the log collector dies
    child.stderr.close()  # and so does the one reading the progress bar
    assert child.wait(timeout=120) == 0
    assert marker.read_text() == "done"


def test_the_command_line_exits_cleanly_into_a_closed_pipe(tmp_path, data_dir):
    """``tagger eval ... | head -0``: no traceback, exit 0, the result file written."""
    command = [sys.executable, "-m", "tagger", "eval", "--pretrained", "shapes-quick", "--examples", "20",
               "--device", "cpu", "--no-progress"]
    child = subprocess.Popen(command, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # nothing reads what it prints
    err = child.stderr.read().decode()
    assert child.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err, err
    assert list((tmp_path / "runs" / "pretrained-shapes-quick").glob("eval_test*.json"))


class Full(io.StringIO):
    """A stream on a full disk."""

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_or_closed_stream_is_given_up_once_and_never_raises():
    full = Full()
    stream = safe_stream(full)
    assert safe_stream(full) is stream and safe_stream(stream) is stream
    safe_print("lost", file=full)
    assert stream.broken
    closed = io.StringIO()
    closed.close()
    safe_print("lost too", file=closed)  # ValueError: I/O operation on closed file
    assert SafeStream(None).write("gone") == 4  # a process started with stdout closed
    for _ in tqdm(range(3), file=safe_stream(Full()), mininterval=0):
        pass


def test_guarded_output_swaps_the_streams_for_the_block_only(capsys):
    before = sys.stdout
    with guarded_output():
        assert isinstance(sys.stdout, SafeStream) and progress_stream() is sys.stderr
        print("kept")
    assert sys.stdout is before and capsys.readouterr().out == "kept\n"


@pytest.mark.skipif(not hasattr(os, "dup2"), reason="POSIX descriptors")
def test_no_traceback_at_exit_when_only_the_buffer_fails(tmp_path):
    """Text still buffered when the reader left: the interpreter's own flush at exit must not fail."""
    code = ("from tagger.training.output import guarded_output\n"
            "import time\n"
            "with guarded_output():\n"
            "    time.sleep(0.5)\n"
            "    print('a' * 100)\n")
    child = subprocess.Popen([sys.executable, "-c", code], env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 0 and err == "", err
