"""The command line, as a user runs it: help, a tiny train/eval/show cycle, and clear errors."""
import json
import subprocess
import sys

import pytest
import torch

from tagger.cli import main

TINY = ["--widths", "24-12-12", "--epochs", "1", "--train-examples", "300", "--valid-examples", "50",
        "--batch-size", "50", "--no-progress"]


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tagger", *args], capture_output=True, text=True, env=env)


def test_help_explains_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("train", "eval", "show", "bench", "demo"):
        assert command in result.stdout
    assert "--preset" in run_cli("train", "--help").stdout


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "shapes", "--run-dir", str(run_dir), *TINY]) == 0
    return run_dir


def test_train_writes_run_directory(tiny_run):
    for name in ("config.json", "metrics.csv", "checkpoint/model.safetensors", "checkpoint/state.json"):
        assert (tiny_run / name).exists(), name
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["model"]["widths"] == [24, 12, 12] and config["preset"] == "quick"
    header = (tiny_run / "metrics.csv").read_text().splitlines()[0]
    assert "valid_ami_5" in header and "valid_cost_1" in header


def test_eval_and_show(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--examples", "100", "--iterations", "3", "--groups", "3"]) == 0
    result = json.loads((tiny_run / "eval_test_n100.json").read_text())
    assert len(result["ami"]) == 3 and result["examples"] == 100 and result["groups"] == 3
    assert len(result["mbo"]) == len(result["miou"]) == 3 and result["overlap_examples"] == 100
    assert all(0 <= v <= 1 for v in result["mbo"] + result["miou"])
    out = capsys.readouterr().out
    assert "| AMI |" in out and "| FG-ARI |" in out and "| mBO |" in out and "| mIoU |" in out
    assert main(["show", str(tiny_run), "--examples", "2", "--iterations", "2"]) == 0
    png = tiny_run / "groupings_test.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["show", str(tiny_run), "--examples", "2", "--iterations", "2", "--remove-group", "1"]) == 0
    assert (tiny_run / "groupings_test_without1.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["show", str(tiny_run), "--examples", "3", "--order", "ami", "--pool", "150",
                 "--output", str(tiny_run / "ranked.png")]) == 0
    assert (tiny_run / "ranked.png").read_bytes()[:4] == b"\x89PNG"


def test_show_picks_examples_best_first_from_the_evaluation_batches():
    """--order ami spreads the picks over the pool's ranking; a figure uses evaluation-sized batches."""
    import argparse

    from tagger.cli.inspect import _chosen_examples

    masks = torch.zeros(1, 5, 2, 4)
    objects = torch.tensor([[1, 1, 2, 2]] * 5)
    good, bad = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]]), torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1]])
    for index, pattern in enumerate([bad, good, bad, good, bad]):
        masks[0, index] = pattern
    chosen, captions = _chosen_examples(argparse.Namespace(order="ami", examples=2), masks, objects)
    assert chosen[0] in (1, 3) and chosen[1] in (0, 2, 4)
    assert captions[0] == "AMI 1.00"
    first, none = _chosen_examples(argparse.Namespace(order="first", examples=3), masks, objects)
    assert first == [0, 1, 2] and none is None


def test_eval_on_other_object_counts(tiny_run):
    assert main(["eval", str(tiny_run), "--examples", "50", "--iterations", "2", "--objects", "2"]) == 0
    result = json.loads((tiny_run / "eval_test_2obj_n50.json").read_text())
    assert result["split"] == "shapes-2obj-20px/test" and len(result["ami"]) == 2


def test_eval_progress_bar_can_be_switched_off(tiny_run, tmp_path, capsys):
    assert main(["eval", str(tiny_run), "--examples", "50", "--iterations", "2", "--output", str(tmp_path / "a.json")]) == 0
    assert "eval:" in capsys.readouterr().err
    assert main(["eval", str(tiny_run), "--examples", "50", "--iterations", "2", "--output", str(tmp_path / "b.json"),
                 "--no-progress"]) == 0
    assert "eval:" not in capsys.readouterr().err


def test_eval_scores_the_posterior_into_its_own_file(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--examples", "50", "--iterations", "2", "--assign", "posterior"]) == 0
    result = json.loads((tiny_run / "eval_test_n50_posterior.json").read_text())
    assert result["assign"] == "posterior" and len(result["ari"]) == 2
    assert "posterior" in capsys.readouterr().out
    assert main(["show", str(tiny_run), "--examples", "2", "--iterations", "2", "--assign", "posterior"]) == 0
    assert (tiny_run / "groupings_test_posterior.png").read_bytes()[:4] == b"\x89PNG"


def test_refuses_to_overwrite_a_run(tiny_run, capsys):
    assert main(["train", "shapes", "--run-dir", str(tiny_run), *TINY]) == 2
    assert "--resume" in capsys.readouterr().err


def test_unknown_flag_is_an_argparse_error():
    result = run_cli("train", "--bogus")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_demo_end_to_end_on_a_small_budget(data_dir, tmp_path):
    """``tagger demo``: trains (one epoch on 200 examples), evaluates and draws a figure."""
    run_dir = tmp_path / "demo"
    assert main(["demo", "--run-dir", str(run_dir), "--epochs", "1", "--train-examples", "200",
                 "--eval-examples", "100", "--device", "cpu", "--compile", "off", "--no-progress"]) == 0
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[0].startswith("epoch,step")
    result = json.loads((run_dir / "eval_test_n100.json").read_text())
    assert result["examples"] == 100 and len(result["ami"]) == 5 and result["split"] == "shapes/test"
    assert (run_dir / "groupings_test.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "quick" and config["train"]["epochs"] == 1


def test_every_config_field_is_a_flag_and_overrides_the_preset():
    """One source for every flag: each field of the configs is a ``tagger train`` flag, with the
    field's help, and a given flag lands in the config; a new field needs no CLI code."""
    import dataclasses

    from tagger.cli.flags import add_config_flags, apply_flags, flag_name
    from tagger.cli.parser import build_parser
    from tagger.cli.train import config_from_args
    from tagger.config import ModelConfig, TrainConfig

    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for cls in (ModelConfig, TrainConfig):
        for field in dataclasses.fields(cls):
            if flag_name(field) is not None:
                assert flag_name(field) in help_text, field.name
    args = build_parser().parse_args(["train", "--z0", "0.3", "--widths", "30-20-10", "--init", "x",
                                      "--deterministic", "--eval-batch-size", "50"])
    config = config_from_args(args)
    assert (config.model.z0, config.model.widths) == (0.3, (30, 20, 10))
    assert (config.train.init_from, config.train.deterministic, config.train.eval_batch_size) == ("x", True, 50)
    assert config.train.lr == 4e-3  # not given: the quick preset's

    @dataclasses.dataclass
    class Extended:
        channels: int = dataclasses.field(default=1, metadata={"help": "colour channels"})

    import argparse

    parser = argparse.ArgumentParser()
    add_config_flags(parser, Extended, "extra")
    assert apply_flags(Extended(), parser.parse_args(["--channels", "3"])).channels == 3
    assert apply_flags(Extended(), parser.parse_args([])).channels == 1
