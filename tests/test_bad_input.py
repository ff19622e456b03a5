"""Bad input everywhere: each case exits 2 (CLI) or raises a typed error (API) with a message
that names the problem, and never prints a traceback."""
import json
import pickle

import numpy as np
import pytest
import torch

import tagger
from tagger import Config, ConfigError, ModelConfig, Tagger
from tagger.checkpoint import CheckpointError, save_checkpoint
from tagger.cli import main
from tagger.datasets import DataError, shapes
from tagger.metrics import ami

SMALL = ModelConfig(input_size=400, widths=(12, 8, 6))


@pytest.fixture()
def run_dir(tmp_path):
    save_checkpoint(tmp_path / "run", Config(model=SMALL), Tagger(SMALL), {"step": 0})
    return tmp_path / "run"


def breakers():
    """(name, how to break a saved run) pairs."""
    def pickled(run):
        (run / "checkpoint" / "model.safetensors").write_bytes(pickle.dumps({"a": 1}))

    def truncated(run):
        path = run / "checkpoint" / "model.safetensors"
        path.write_bytes(path.read_bytes()[:50])

    def garbage_json(run):
        (run / "checkpoint" / "state.json").write_text("{not json")

    def foreign_json(run):
        (run / "checkpoint" / "state.json").write_text(json.dumps({"format": "other"}))

    def edit_state(change):
        """A breaker that loads state.json, applies ``change`` to the document and writes it back."""
        def breaker(run):
            path = run / "checkpoint" / "state.json"
            document = json.loads(path.read_text())
            change(document)
            document.pop("document_sha256", None)  # as before the self-digest: the content is checked
            path.write_text(json.dumps(document))
        return breaker

    bad_config = edit_state(lambda d: d["config"]["model"].update(groups=0))
    wrong_shape = edit_state(lambda d: d["config"]["model"].update(widths=[12, 8, 9]))
    old_version = edit_state(lambda d: d.update(version=99))

    def missing_weights(run):
        (run / "checkpoint" / "model.safetensors").unlink()

    return [("pickle", pickled), ("safetensors", truncated), ("unreadable", garbage_json),
            ("not a tagger checkpoint", foreign_json), ("bad config", bad_config), ("shape", wrong_shape),
            ("missing", missing_weights), ("version", old_version)]


CLI_FLAG_CASES = [
    (["train", "--groups", "0"], "--groups"),
    (["train", "--iterations", "0"], "--iterations"),
    (["train", "--iterations", "-3"], "--iterations"),
    (["train", "--noise", "0.5"], "--noise"),
    (["train", "--noise", "-0.1"], "--noise"),
    (["train", "texture-mnist", "--noise", "0"], "--noise"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr=-1e-3"], "--lr"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--widths", "abc"], "--widths"),
    (["train", "--widths", "100"], "--widths"),
    (["train", "--widths", "100-0-5"], "--widths"),
    (["train", "--preset", "huge"], "--preset"),
    (["train", "texture-mnist", "--digits", "3"], "--digits"),
    (["train", "--valid-examples", "-1"], "--valid-examples"),
    (["train", "--train-examples", "-5"], "--train-examples"),
    (["train", "--eval-iterations", "0"], "--eval-iterations"),
    (["train", "--checkpoint-every", "-1"], "--checkpoint-every"),
    (["train", "--max-minutes", "-2"], "--max-minutes"),
    (["train", "--device", "bogus"], "--device"),
    (["train", "--device", "cuda:7"], "--device"),
    (["train", "--resume", "/nonexistent/run"], "no such"),
    (["train", "--class-cost", "0.1"], "labels"),
    (["train", "texture-mnist", "--class-cost", "0.1"], "11 units"),
    (["train", "texture-mnist", "--class-cost", "-1"], "--class-cost"),
    (["train", "texture-mnist", "--preset", "paper-semi", "--labeled", "-10"], "--labeled"),
    (["train", "texture-mnist", "--preset", "quick-semi", "--init", "/nonexistent/run"], "no such"),
    (["eval", "/nonexistent/run"], "no such"),
    (["show", "/nonexistent/run"], "no such"),
    (["probe", "/nonexistent/run"], "no such"),
    (["report", "/nonexistent/run"], "no such"),
    (["report", "/nonexistent/run", "--examples", "2"], "--examples"),
]


@pytest.mark.parametrize("args, needle", CLI_FLAG_CASES, ids=[" ".join(a) for a, _ in CLI_FLAG_CASES])
def test_cli_flags(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tagger: error:") and needle in err[0], err


RUN_FLAG_CASES = [
    (["--iterations", "0"], "--iterations"), (["--groups", "0"], "--groups"),
    (["--batch-size", "0"], "--batch-size"), (["--examples", "-1"], "--examples"),
    (["--split", "bogus"], "split"), (["--device", "nope"], "--device"),
]


@pytest.mark.parametrize("command", ["eval", "show"])
@pytest.mark.parametrize("flags, needle", RUN_FLAG_CASES)
def test_eval_and_show_flags(run_dir, data_dir, command, flags, needle, capsys):
    assert main([command, str(run_dir), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


@pytest.mark.parametrize("flags", [["--remove-group", "7"], ["--groups", "2", "--remove-group", "0", "--remove-group", "1"]])
def test_show_refuses_impossible_removals(run_dir, data_dir, flags, capsys):
    assert main(["show", str(run_dir), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--remove-group" in err[0], err


@pytest.mark.parametrize("needle, breaker", breakers(), ids=[n for n, _ in breakers()])
def test_broken_checkpoints(run_dir, needle, breaker, capsys):
    breaker(run_dir)
    assert main(["eval", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    with pytest.raises(CheckpointError):
        tagger.load(run_dir)


def test_resume_of_a_directory_without_checkpoint(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "no tagger checkpoint" in capsys.readouterr().err


def test_data_dir_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["data", "shapes", "--data-dir", str(blocker)]) == 2
    assert "tagger: error:" in capsys.readouterr().err


API_CASES = [
    ("config groups", lambda: ModelConfig(groups=0).validate(), ConfigError),
    ("config norm", lambda: ModelConfig(norm="group").validate(), ConfigError),
    ("config likelihood", lambda: ModelConfig(likelihood="poisson").validate(), ConfigError),
    ("model wrong width", lambda: Tagger(SMALL).infer(torch.zeros(2, 399)), ValueError),
    ("model 1-D input", lambda: Tagger(SMALL).infer(torch.zeros(400)), ValueError),
    ("model int input", lambda: Tagger(SMALL).infer(torch.zeros(2, 400, dtype=torch.long)), ValueError),
    ("model empty batch", lambda: Tagger(SMALL).infer(torch.zeros(0, 400)), ValueError),
    ("model zero iterations", lambda: Tagger(SMALL).infer(torch.zeros(2, 400), iterations=0), ValueError),
    ("model zero groups", lambda: Tagger(SMALL).infer(torch.zeros(2, 400), groups=0), ValueError),
    ("model numpy input", lambda: Tagger(SMALL).infer(np.zeros((2, 400), np.float32)), ValueError),
    ("shapes split", lambda: shapes("bogus"), DataError),
    ("shapes size", lambda: shapes("test", size=5), DataError),
    ("ami shapes", lambda: ami(torch.zeros(2, 10, dtype=torch.long), torch.rand(2, 3, 11)), ValueError),
    ("ami float ids", lambda: ami(torch.zeros(2, 10), torch.rand(2, 3, 10)), ValueError),
    ("ami negative ids", lambda: ami(-torch.ones(2, 10, dtype=torch.long), torch.rand(2, 3, 10)), ValueError),
    ("load missing", lambda: tagger.load("/nonexistent/x"), CheckpointError),
]


@pytest.mark.parametrize("name, call, error", API_CASES, ids=[c[0] for c in API_CASES])
def test_api(name, call, error, data_dir):
    with pytest.raises(error):
        call()


@pytest.mark.parametrize("error", [tagger.ConfigError("bad --x"), tagger.DataError("bad data"),
                                   tagger.CheckpointError("bad checkpoint"), tagger.TrainingError("loss became nan"),
                                   FileNotFoundError("no such file")], ids=lambda e: type(e).__name__)
def test_every_user_error_is_one_line_and_exit_2(error, monkeypatch, capsys):
    """Whatever command raises it, a user error is ``tagger: error: ...`` and exit code 2."""
    from tagger import cli

    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_command", lambda name: fail)
    assert isinstance(error, (tagger.UserError, OSError))
    assert main(["data", "shapes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tagger: error: {error}"]


def test_a_bug_is_an_internal_error_exit_1(monkeypatch, capsys):
    from tagger import cli

    def fail(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "_command", lambda name: fail)
    assert main(["data", "shapes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tagger: internal error (ZeroDivisionError)")


def test_missing_mnist_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TAGGER_MNIST", "")  # restored after the test (the CLI sets it from --mnist-dir)
    assert main(["data", "texture-mnist", "--data-dir", str(tmp_path), "--mnist-dir", "/nonexistent/mnist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and "--mnist-dir" in err[0]
