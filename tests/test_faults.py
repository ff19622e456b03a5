"""No internal error for a user's value or a damaged side file: exit 2 and one line naming it.

Devices tagger does not run on, export piece sizes that are no size, and every side file
``tagger report`` reads (config.json, metrics.csv, eval_test*.json, probe.json), damaged in the
ways a crash, an editor or another tool leaves them. Runs in-process through ``tagger.cli.main``
on a saved (not trained) Shapes checkpoint.
"""
import json

import pytest
import torch

from tagger import Tagger, preset
from tagger.checkpoint import save_checkpoint
from tagger.cli import main
from tagger.errors import ConfigError
from tagger.training.device import resolve_device


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A Shapes run directory as training leaves it: checkpoint, config.json, metrics.csv."""
    config = preset("quick", "shapes")
    config.model.widths = (16, 8)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("faults") / "run"
    save_checkpoint(folder, config, Tagger(config.model), {"step": 2, "epoch": 1})
    (folder / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    (folder / "metrics.csv").write_text("epoch,step,train_cost,valid_ami_1\r\n1,2,0.5,0.1\r\n")
    return folder


def fails(args, capsys, needle):
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tagger: error:") and needle in err[0], err
    return err[0]


@pytest.mark.parametrize("name", ["mps", "meta", "xla", "cpu:3", "cuda:x", "vulkan"])
def test_devices_tagger_does_not_run_on_are_refused(name, run, capsys):
    with pytest.raises(ConfigError, match="--device"):
        resolve_device(name)
    fails(["eval", run, "--device", name], capsys, "--device")


@pytest.mark.parametrize("piece_mib", ["nan", "inf", "0", "-1"])
def test_export_refuses_a_piece_size_that_is_no_size(piece_mib, run, tmp_path, capsys):
    fails(["export", run, "--output", tmp_path / "export", "--piece-mib", piece_mib], capsys, "--piece-mib")
    assert not (tmp_path / "export").exists()


EVAL = {"iterations": [1], "denoising_cost": [0.1], "ami": [0.5], "ari": [0.4], "groups": 4, "examples": 5}
DAMAGED = {  # file -> ways it is found damaged
    "config.json": ['{"preset": "quick", "tra', "[1, 2]", '{"preset": "quick"}', '{"preset": 3, "train": {"dataset": 1}}',
                    b"\xff\xfe\x00"],
    "metrics.csv": ["epoch,train_cost\r\n1,abc\r\n", "epoch,step\r\n1,2,3,4\r\n", "step\r\n2\r\n", b"epoch\r\n\xff\r\n"],
    "eval_test.json": ["", "{", '{"ami": [0.5]}', json.dumps(dict(EVAL, ami="high")), json.dumps(dict(EVAL, groups=None))],
    "eval_test_n100.json": ["null"],
    "probe.json": ["{}", '{"cells": [', json.dumps({"trained": {"objects": 3}, "paper_examples": {}, "cells": []})],
}
CASES = [(name, text) for name, texts in DAMAGED.items() for text in texts]


@pytest.mark.parametrize("name, content", CASES, ids=[f"{n}-{i}" for n, t in DAMAGED.items() for i in range(len(t))])
def test_report_names_a_damaged_side_file(name, content, run, tmp_path, capsys, data_dir):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    if name in ("probe.json",):  # read after the figures: Table 1a from a saved result keeps it short
        (copy / "eval_test.json").write_text(json.dumps(EVAL))
    data = content if isinstance(content, bytes) else content.encode()
    (copy / name).write_bytes(data)
    line = fails(["report", copy, "--examples", "5", "--device", "cpu", "--data-dir", data_dir], capsys, str(copy / name))
    assert "damaged" in line and not (copy / "report.html").exists()


def test_probe_writes_its_files_atomically(monkeypatch, run, tmp_path, capsys):
    """probe.json and probe.md go through the atomic writer (an interrupted probe leaves no half file)."""
    import shutil

    from tagger.cli import probe

    written = []
    monkeypatch.setattr(probe, "write_text_atomically", lambda path, text: written.append(path.name))
    monkeypatch.setattr(probe, "probe", lambda options: {"seconds": 0})
    monkeypatch.setattr(probe, "format_probe", lambda result: "")
    monkeypatch.setattr("tagger.visualize.probe_figure", lambda result, path: None)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["probe", str(copy), "--device", "cpu"]) == 0
    assert written == ["probe.json", "probe.md"]


@pytest.mark.parametrize("flags, needle", [
    (["--seed", "18446744073709551616"], "--seed must be in 0.."),
    (["--seed", "-1"], "--seed must be in 0.."),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--noise", "nan"], "--noise must be a finite number"),
    (["--z0=-inf"], "--z0 must be a finite number"),
    (["--max-minutes", "nan"], "--max-minutes must be a finite number"),
    (["--lr-decay-from", "nan"], "--lr-decay-from must be a finite number"),
    (["--valid-fraction", "inf"], "--valid-fraction must be a finite number"),
])
def test_numbers_at_their_limits_are_one_line(flags, needle, capsys, tmp_path):
    fails(["train", "shapes", "--run-dir", tmp_path / "run", *flags], capsys, needle)
    assert not (tmp_path / "run").exists()
