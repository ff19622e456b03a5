"""Nothing silent, nothing lost (issue 13): distinct bad inputs through every command and the API.

Each CLI case exits 2 with exactly one line on stderr and leaves every run directory it touches
byte for byte as it was (a digest of the whole tree before and after); each API case raises a
one-line ``ValueError``. Runs in-process through ``tagger.cli.main``.
"""
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from tagger import Config, ModelConfig, Tagger
from tagger.cli import main
from tagger.metrics import ami, ari

TINY = ["--widths", "8-8", "--epochs", "1", "--train-examples", "40", "--batch-size", "20",
        "--valid-examples", "20", "--no-progress", "--device", "cpu"]


def tree(path: Path) -> dict:
    """Every file under ``path`` (relative name -> sha256) and every folder (-> None)."""
    path = Path(path)
    if not path.exists():
        return {}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(path.rglob("*"))}


def fails_cleanly(args, capsys, *watched, needle=""):
    """``main(args)`` exits 2 with one stderr line (containing ``needle``), and nothing in
    ``watched`` changed."""
    before = [tree(path) for path in watched]
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tagger: error:") and needle in err[0], err
    assert [tree(path) for path in watched] == before
    return err[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """A finished one-epoch run (shared: tests that damage it work on a copy)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "shapes", "--run-dir", str(run), *TINY]) == 0
    return run


@pytest.fixture()
def copy(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


# -- 1. run directories are resumed or refused, never cleaned ------------------------------------
def _artefact(name):
    def make(run: Path, trained: Path):
        if name in ("checkpoint", "checkpoint.old"):
            shutil.copytree(trained / "checkpoint", run / name)
        elif name == "checkpoint-file":
            (run / "checkpoint").write_text("not a folder")
        elif name == "tb":
            (run / "tb").mkdir()
            (run / "tb" / "events").write_text("x")
        else:
            (run / name).write_text("epoch,step\n1,2\n")
    return make


ARTEFACTS = ["checkpoint", "checkpoint.old", "metrics.csv", "config.json", "tb", "eval_test.json",
             "groupings_test.png", ".checkpoint-abc", "checkpoint-file"]


@pytest.mark.parametrize("name", ARTEFACTS)
def test_train_refuses_a_directory_with_run_files(name, trained, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    _artefact(name)(run, trained)
    message = fails_cleanly(["train", "--run-dir", run, *TINY], capsys, run, needle="--run-dir")
    resumable = name in ("checkpoint", "checkpoint.old")
    assert ("--resume" in message) == resumable, message


@pytest.mark.parametrize("name", [n for n in ARTEFACTS if not n.startswith("checkpoint")])
def test_demo_refuses_a_directory_with_run_files_but_no_checkpoint(name, trained, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    _artefact(name)(run, trained)
    fails_cleanly(["demo", "--run-dir", run, "--epochs", "1", "--train-examples", "40", "--no-progress"],
                  capsys, run, needle="no checkpoint")


def test_train_refuses_a_run_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    fails_cleanly(["train", "--run-dir", tmp_path / "f", *TINY], capsys, tmp_path, needle="is a file")


# -- 2. silent no-training --------------------------------------------------------------------------
@pytest.mark.parametrize("flags, needle", [
    (["--train-examples", "10", "--batch-size", "20"], "no step"),
    (["--train-examples", "19", "--batch-size", "20"], "no step"),
    (["--train-examples", "40", "--batch-size", "41"], "no step"),
    (["--train-examples", "1000000000"], "exceeds"),
])
def test_zero_steps_per_epoch_is_a_config_error(flags, needle, tmp_path, data_dir, capsys):
    args = ["train", "--run-dir", tmp_path / "run", "--widths", "8-8", "--valid-examples", "20", "--no-progress",
            "--device", "cpu", *flags]
    fails_cleanly(args, capsys, tmp_path, needle=needle)
    assert not (tmp_path / "run").exists()


def test_demo_zero_steps(tmp_path, data_dir, capsys):
    fails_cleanly(["demo", "--run-dir", tmp_path / "d", "--train-examples", "10", "--no-progress", "--device", "cpu"],
                  capsys, tmp_path, needle="no step")


# -- 5. flags on --resume ----------------------------------------------------------------------------
RESUME_CONFLICTS = [
    ["--lr", "0.5"], ["--widths", "9-9"], ["--groups", "3"], ["--iterations", "2"], ["--norm", "batch"],
    ["--noise", "0.1"], ["--batch-size", "7"], ["--seed", "3"], ["texture-mnist"], ["tetrominoes"],
    ["--preset", "paper"], ["--digits", "1"], ["--train-examples", "30"], ["--valid-examples", "3"],
    ["--init", "/some/run"], ["--deterministic"], ["--precision", "bf16"], ["--class-cost", "0.1"],
    ["--likelihood", "continuous"], ["--z0", "0.5"], ["--eval-iterations", "2"], ["--v-init", "0.3"],
    ["--eval-batch-size", "7"], ["--labeled", "5"], ["--v-param", "fixed"], ["--input-size", "100"],
]


@pytest.mark.parametrize("flags", RESUME_CONFLICTS, ids=" ".join)
def test_resume_refuses_a_conflicting_flag(flags, trained, capsys):
    message = fails_cleanly(["train", "--resume", trained, *flags], capsys, trained, needle="conflicts")
    assert "--epochs, --max-minutes, --checkpoint-every and --checkpoint-minutes" in message


def test_resume_refuses_another_run_dir(trained, tmp_path, capsys):
    fails_cleanly(["train", "--resume", trained, "--run-dir", tmp_path / "x"], capsys, trained, tmp_path,
                  needle="--run-dir")


def test_resume_accepts_flags_equal_to_the_run(trained, capsys):
    """The same values are no conflict; the run is complete, so nothing trains."""
    assert main(["train", "--resume", str(trained), "--widths", "8-8", "--batch-size", "20", "shapes"]) == 0
    assert "done: epoch 1 of 1" in capsys.readouterr().out


# -- 3, 6. damaged checkpoints -----------------------------------------------------------------------
def _edit_state(run, **changes):
    path = run / "checkpoint" / "state.json"
    document = json.loads(path.read_text())
    document["state"].update(changes)
    document.pop("document_sha256")  # as a checkpoint from before the self-digest: the types are checked
    path.write_text(json.dumps(document))


STATE_TYPES = [{"step": "3"}, {"epoch": -1}, {"position": 1.5}, {"history": "x"}, {"elapsed": "fast"},
               {"last_loss": [1]}, {"cost_sum": ["a"]}, {"cost_steps": -1}, {"labeled_position": True}]


@pytest.mark.parametrize("change", STATE_TYPES, ids=str)
def test_resume_refuses_wrong_types_in_state_json(change, copy, capsys):
    _edit_state(copy, **change)
    fails_cleanly(["train", "--resume", copy, "--epochs", "2"], capsys, copy, needle="state.json")


def test_resume_refuses_a_checkpoint_without_training_state(copy, capsys):
    path = copy / "checkpoint" / "state.json"
    document = json.loads(path.read_text())
    del document["sha256"]["training.safetensors"]
    document.pop("document_sha256")
    path.write_text(json.dumps(document))
    (copy / "checkpoint" / "training.safetensors").unlink()
    fails_cleanly(["train", "--resume", copy, "--epochs", "2"], capsys, copy, needle="--init")


def _damage(kind):
    def damage(run, other):
        model, training = run / "checkpoint" / "model.safetensors", run / "checkpoint" / "training.safetensors"
        if kind == "overwritten":  # finite values, only the bytes changed: only the digest can tell
            data = bytearray(model.read_bytes())
            data[-64:] = bytes(reversed(data[-64:]))
            model.write_bytes(bytes(data))
        elif kind == "truncated":
            model.write_bytes(model.read_bytes()[:-8])
        elif kind == "swapped":
            a, b = model.read_bytes(), training.read_bytes()
            model.write_bytes(b)
            training.write_bytes(a)
        elif kind == "other run's":
            model.write_bytes((other / "checkpoint" / "model.safetensors").read_bytes())
        elif kind == "training overwritten":
            data = bytearray(training.read_bytes())
            data[-4:] = b"\x00\x00\x80\x3f"
            training.write_bytes(bytes(data))
    return damage


DAMAGE = ["overwritten", "truncated", "swapped", "other run's", "training overwritten"]


@pytest.fixture(scope="module")
def other_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("other") / "run"
    config = Config(model=ModelConfig(input_size=400, widths=(8, 8)))
    from tagger.checkpoint import save_checkpoint
    save_checkpoint(run, config, Tagger(config.model), {"step": 0})
    return run


@pytest.mark.parametrize("command", [["eval"], ["show"], ["train", "--epochs", "2", "--resume"]], ids=lambda c: c[0])
@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_weights_are_refused_by_name(kind, command, copy, other_run, capsys):
    _damage(kind)(copy, other_run)
    message = fails_cleanly([*command, copy], capsys, copy, needle=".safetensors")
    assert "checkpoint" in message


# -- 6. eval, show and bench: checked before compute -------------------------------------------------
INSPECT_CASES = [
    (["show", "--output", "x.txt"], "--output"), (["show", "--output", "noext"], "--output"),
    (["eval", "--output", "y.png"], "--output"), (["eval", "--output", "noext"], "--output"),
    (["show", "--examples", "20000"], "exceeds"), (["eval", "--examples", "20000"], "exceeds"),
    (["eval", "--objects", "250"], "--objects"), (["eval", "--objects", "0"], "--objects"),
    (["show", "--objects", "-2"], "--objects"), (["show", "--order", "ami", "--pool", "2", "--examples", "4"], "--pool"),
    (["show", "--examples", "0"], "--examples"), (["eval", "--batch-size", "-1"], "--batch-size"),
    (["show", "--groups", "-1"], "--groups"), (["show", "--remove-group", "-1"], "--remove-group"),
    (["eval", "--iterations", "-2"], "--iterations"), (["show", "--split", "nope"], "split"),
]


@pytest.mark.parametrize("flags, needle", INSPECT_CASES, ids=[" ".join(f) for f, _ in INSPECT_CASES])
def test_eval_and_show_check_their_flags(flags, needle, trained, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative --output names land here
    command, rest = flags[0], flags[1:]
    fails_cleanly([command, trained, *rest], capsys, trained, tmp_path, needle=needle)


def test_output_into_a_folder_is_refused(trained, tmp_path, capsys):
    (tmp_path / "fig.png").mkdir()
    fails_cleanly(["show", trained, "--output", tmp_path / "fig.png"], capsys, trained, tmp_path, needle="cannot be written")


BENCH_CASES = [["--steps", "0"], ["--steps", "-3"], ["--repeats", "0"], ["--batch-size", "0"],
               ["--batch-size", "-5"], ["--output", "bench.txt"], ["--preset", "nope"]]


@pytest.mark.parametrize("flags", BENCH_CASES, ids=" ".join)
def test_bench_checks_its_flags(flags, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails_cleanly(["bench", "--device", "cpu", "--preset", "quick", *flags], capsys, tmp_path)


TRAIN_CASES = [["shapes", "--digits", "5"], ["tetrominoes", "--digits", "1"], ["--digits", "2"],
               ["demo-epochs-zero"]]


@pytest.mark.parametrize("flags", TRAIN_CASES, ids=" ".join)
def test_train_and_demo_flags(flags, tmp_path, capsys):
    if flags == ["demo-epochs-zero"]:
        args = ["demo", "--run-dir", tmp_path / "d", "--epochs", "0"]
    else:
        args = ["train", *flags, "--run-dir", tmp_path / "r"]
    fails_cleanly(args, capsys, tmp_path)


def test_full_disk_during_save_is_one_line_and_keeps_the_run(copy, capsys, monkeypatch):
    """safetensors' own error for ENOSPC becomes ``[Errno 28]``; the previous checkpoint stays."""
    from safetensors import SafetensorError

    from tagger import checkpoint

    def no_space(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    monkeypatch.setattr(checkpoint, "save_file", no_space)
    before = tree(copy / "checkpoint")
    assert main(["train", "--resume", str(copy), "--epochs", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[Errno 28] No space left on device" in err[0], err
    assert tree(copy / "checkpoint") == before
    assert not list(copy.glob(".checkpoint-*"))


# -- 7. the Python API -------------------------------------------------------------------------------
SMALL = ModelConfig(input_size=400, widths=(8, 8))
X = torch.rand(2, 400).round()


def _with(value, index=(0, 0)):
    x = X.clone()
    x[index] = value
    return x


API_CASES = [
    ("nan", lambda m: m.infer(_with(float("nan")))), ("inf", lambda m: m.infer(_with(float("inf")))),
    ("-inf", lambda m: m.infer(_with(float("-inf")))), ("above 1", lambda m: m.infer(_with(1.5))),
    ("below 0", lambda m: m.infer(_with(-0.1))), ("nan in eval forward", lambda m: m.eval()(_with(float("nan")))),
    ("iterations 2.7", lambda m: m.infer(X, iterations=2.7)), ("groups 2.5", lambda m: m.infer(X, groups=2.5)),
    ("iterations '3'", lambda m: m.infer(X, iterations="3")), ("iterations True", lambda m: m.infer(X, iterations=True)),
    ("groups -2", lambda m: m.infer(X, groups=-2)), ("remove '12'", lambda m: m.infer(X, remove_groups="12")),
    ("remove [1.5]", lambda m: m.infer(X, remove_groups=[1.5])), ("remove 1", lambda m: m.infer(X, remove_groups=1)),
    ("remove [4]", lambda m: m.infer(X, remove_groups=[4])), ("remove all", lambda m: m.infer(X, remove_groups=[0, 1, 2, 3])),
    ("ami nan masks", lambda m: ami(torch.ones(2, 10, dtype=torch.long), torch.full((2, 3, 10), float("nan")))),
    ("ari inf masks", lambda m: ari(torch.ones(2, 10, dtype=torch.long), torch.full((2, 3, 10), float("inf")))),
    ("bool input", lambda m: m.infer(X.bool())), ("3-D input", lambda m: m.infer(X[None])),
]


@pytest.mark.parametrize("name, call", API_CASES, ids=[name for name, _ in API_CASES])
def test_api_refuses_bad_input_with_one_line(name, call):
    with pytest.raises(ValueError) as raised:
        call(Tagger(SMALL))
    assert len(str(raised.value).splitlines()) == 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_api_converts_other_float_dtypes(dtype):
    model = Tagger(SMALL)
    expected = model.infer(X, generator=torch.Generator().manual_seed(0)).masks
    masks = model.infer(X.to(dtype), generator=torch.Generator().manual_seed(0)).masks
    assert masks.dtype == torch.float32
    if dtype == torch.float64:  # 0/1 inputs are exact in every dtype
        assert torch.equal(masks, expected)


def test_infer_without_a_generator_differs_call_to_call(trained):
    """Documented (README, ``infer``'s docstring): the initial masks are random."""
    import tagger

    model = tagger.load(trained)
    assert not torch.equal(model.infer(X).masks, model.infer(X).masks)
    seeded = [model.infer(X, generator=torch.Generator().manual_seed(1)).masks for _ in range(2)]
    assert torch.equal(*seeded)


def test_distinct_bad_inputs_count():
    """The issue asks for at least 100 distinct bad inputs in this file."""
    count = (len(ARTEFACTS) + len(ARTEFACTS) - 3 + 1 + 4 + 1 + len(RESUME_CONFLICTS) + 1 + len(STATE_TYPES) + 1
             + 3 * len(DAMAGE) + len(INSPECT_CASES) + 1 + len(BENCH_CASES) + len(TRAIN_CASES) + 1 + len(API_CASES))
    assert count >= 100, count


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80 GiB"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory"),
                                   MemoryError()], ids=lambda e: type(e).__name__)
def test_out_of_memory_is_a_user_error(error, monkeypatch, capsys):
    """Widths too large for the machine: one line that says what to shrink, exit 2."""
    from tagger import cli

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_command", lambda name: fail)
    assert main(["data", "shapes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of memory" in err[0] and "--widths" in err[0], err
