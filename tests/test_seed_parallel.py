"""Seeds trained together as one stacked model (tagger/training/seeds.py) against single runs.

Why float64 for the long comparison: the stacked step equals a single step to rounding (max weight
difference ~1e-9 after one fp32 step: vmap's bmm sums in another order), but training on Shapes
amplifies rounding by ~1e4-1e5 where the groups break their symmetry (measured on `quick` with
widths 64-32-32, batch 20: fp32 1e-4 after 60 steps, 2e-2 to 5e-2 after 100, with lr 4e-3, 1e-3
or 4e-4 alike; float64 3e-13 after 60, 1e-10 to 1e-8 after 100). That is the training's own sensitivity, not
a difference between the two paths, so the 100-step check runs in float64 (where it is 1e-8 at most) and the
fp32 check is one of a few steps.
"""
import json

import pytest
import torch

import tagger
from tagger.cli import main as cli
from tagger.errors import ConfigError
from tagger.training.seeds import parse_seeds, train_seeds


def tiny(examples=2000, epochs=1, seed=10, widths=(64, 32, 32)):
    config = tagger.preset("quick")
    config.model.widths = widths
    train = config.train
    train.train_examples, train.valid_examples, train.batch_size, train.epochs = examples, 200, 20, epochs
    train.precision, train.seed = "fp32", seed  # narrower widths amplify rounding more (32-16-16: 1.6e-6 in float64)
    return config


def weights_gap(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def last_ami(run_dir, t=5) -> float:
    from tagger.checkpoint import read_checkpoint

    return read_checkpoint(run_dir)[1]["history"][-1][f"valid_ami_{t}"]


@pytest.mark.slow
def test_members_match_their_single_runs(tmp_path, data_dir):
    seeds = [1, 2, 3]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # see the module docstring
    try:
        members = train_seeds(tiny(), seeds, run_dir=tmp_path / "group", data_dir=data_dir, progress=False, quiet=True)
        singles = [tagger.train(tiny(seed=s), run_dir=tmp_path / f"single{s}", data_dir=data_dir, progress=False,
                                quiet=True) for s in seeds]
    finally:
        torch.set_default_dtype(previous)
    for seed, member, single in zip(seeds, members, singles):
        assert weights_gap(member, single) < 1e-6  # observed 1.3e-8 after 100 Adam steps (64-32-32, batch 20)
        group_ami, single_ami = last_ami(tmp_path / "group" / f"seed{seed}"), last_ami(tmp_path / f"single{seed}")
        assert round(group_ami, 3) == round(single_ami, 3)
    assert weights_gap(members[0], members[1]) > 0.1 and weights_gap(members[1], members[2]) > 0.1
    summary = json.loads((tmp_path / "group" / "summary.json").read_text())
    assert summary["seeds"] == seeds and summary["runs"] == 3 and len(summary["ami"]) == 5
    assert summary["ami_min"][-1] <= summary["ami"][-1] <= summary["ami_max"][-1]


def test_fp32_steps_match_single_steps(data_dir):
    from tagger.model import Tagger
    from tagger.training.seeds import SeedGroup
    from tagger.training.steps import make_step
    from tagger.training.trainer import load_splits

    configs = [tiny(examples=200, seed=s) for s in (4, 5)]
    train, valid = load_splits(configs[0], data_dir)
    group = SeedGroup(configs, "/nonexistent", train, valid, torch.device("cpu"))
    group.stack()
    singles = []
    for config in configs:
        torch.manual_seed(config.train.seed)
        model = Tagger(config.model)
        singles.append((model, make_step("off", model, config, torch.device("cpu")), torch.get_rng_state()))
    x = group.members[0].train_x
    for k in range(5):
        batch = x[20 * k:20 * (k + 1)]
        losses = group.step([batch, batch])
        for index, (model, step, rng) in enumerate(singles):
            torch.set_rng_state(rng)
            assert step.fn(batch).item() == pytest.approx(losses[index].item(), abs=1e-6)
            singles[index] = (model, step, torch.get_rng_state())
            gap = max((p - group.params[name][index]).abs().max().item() for name, p in model.named_parameters())
            assert gap < (1e-7 if k == 0 else 1e-4)  # observed 1e-9 after one step, 1.5e-5 after five (Adam on gradients near 0)


@pytest.mark.slow
def test_group_resumes_exactly_and_members_stand_alone(tmp_path, data_dir):
    flags = ["shapes", "--widths", "24-12-12", "--train-examples", "200", "--valid-examples", "50", "--batch-size", "20",
             "--precision", "fp32", "--lr-decay-from", "1", "--no-progress", "--device", "cpu", "--data-dir", data_dir]  # a constant rate: --epochs does not change it
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert cli(["train", *flags, "--seeds", "4,5", "--epochs", "2", "--run-dir", str(whole)]) == 0
    assert cli(["train", *flags, "--seeds", "4,5", "--epochs", "1", "--run-dir", str(parts)]) == 0
    assert cli(["train", "--resume", str(parts), "--epochs", "2", "--no-progress", "--data-dir", data_dir]) == 0
    for seed in (4, 5):
        a, b = tagger.load(whole / f"seed{seed}"), tagger.load(parts / f"seed{seed}")
        assert weights_gap(a, b) == 0.0  # the group's resume is exact
        assert json.loads((whole / f"seed{seed}" / "config.json").read_text())["train"]["seed"] == seed
    assert json.loads((whole / "summary.json").read_text())["seeds"] == [4, 5]
    # a member is an ordinary run: it resumes alone, and evaluates
    assert cli(["train", "--resume", str(parts / "seed4"), "--epochs", "3", "--no-progress", "--data-dir", data_dir]) == 0
    assert cli(["eval", str(parts / "seed5"), "--examples", "40", "--iterations", "2", "--no-progress",
                "--device", "cpu", "--data-dir", data_dir]) == 0
    # a new group is refused where one is
    assert cli(["train", *flags, "--seeds", "4,5", "--run-dir", str(whole)]) == 2


@pytest.mark.parametrize("text, seeds", [("10-13", [10, 11, 12, 13]), ("1,2,3", [1, 2, 3]), ("7", [7])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "3-1", "a-b", "1,1", "-2", "1,,2", "1-2-3"])
def test_bad_seed_specs_are_one_line_errors(text):
    with pytest.raises(ConfigError, match="--seeds must look like"):
        parse_seeds(text)


def test_refused_settings(tmp_path, data_dir):
    with pytest.raises(ConfigError, match="--compile graph"):
        train_seeds(tiny(examples=200), [1, 2], run_dir=tmp_path / "g", compile="graph", data_dir=data_dir, quiet=True)
    semi = tiny(examples=200)
    semi.train.class_cost = 0.1
    with pytest.raises(ConfigError, match="semi-supervised"):
        train_seeds(semi, [1, 2], run_dir=tmp_path / "s", data_dir=data_dir, quiet=True)
