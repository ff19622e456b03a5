"""The shipped pretrained models load, and still score what their cards say."""
import json
import os
import subprocess
import sys

import pytest
import torch

import tagger
from tagger import datasets
from tagger.evaluate import evaluate
from tagger.pretrained import card, pretrained_path


def test_the_shapes_model_is_shipped_with_a_complete_card():
    assert "shapes-quick" in tagger.pretrained_names()
    info = card("shapes-quick")
    for key in ("command", "machine", "date", "epochs", "seed", "test", "check"):
        assert key in info, key
    assert info["test"]["examples"] == 10000 and info["test"]["ami"][-1] >= 0.9
    assert sum(path.stat().st_size for path in pretrained_path("shapes-quick").iterdir()) < 8 * 2**20


@pytest.mark.parametrize("name", tagger.pretrained_names())
def test_each_shipped_model_scores_what_its_card_says(name, data_dir):
    info, model = card(name), tagger.load_pretrained(name)
    assert not model.training and list(model.config.widths) == info["model"]["widths"]
    check = info["check"]
    split = datasets.load(info["dataset"], "test", data_dir, **info.get("data", {}))
    x = torch.as_tensor(split.features[:check["examples"]])
    objects = torch.as_tensor(split.objects[:check["examples"]].astype("int64"))
    result = evaluate(model, x, objects, iterations=check["iterations"], batch_size=check["batch_size"],
                      seed=check["seed"])
    assert result["ami"] == pytest.approx(check["ami"], abs=5e-3)
    assert result["denoising_cost"] == pytest.approx(check["denoising_cost"], abs=1e-3)


def test_pretrained_flag_runs_eval_and_show_without_writing_into_the_package(tmp_path, data_dir):
    env = dict(os.environ, TAGGER_DATA=str(data_dir))
    run = lambda *args: subprocess.run([sys.executable, "-m", "tagger", *args], cwd=tmp_path,  # noqa: E731
                                       capture_output=True, text=True, env=env)
    done = run("eval", "--pretrained", "shapes-quick", "--examples", "200", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    written = tmp_path / "runs" / "pretrained-shapes-quick" / "eval_test_n200.json"
    assert json.loads(written.read_text())["examples"] == 200
    done = run("show", "--pretrained", "shapes-quick", "--examples", "2", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs" / "pretrained-shapes-quick" / "groupings_test.png").stat().st_size > 0
    assert not any(path.suffix in (".json", ".png") and path.name != "card.json"
                   for path in pretrained_path("shapes-quick").iterdir())
    done = run("eval", str(tmp_path), "--pretrained", "shapes-quick")
    assert done.returncode == 2 and "not both" in done.stderr
    done = run("show", "--pretrained", "no-such-model")
    assert done.returncode == 2 and "shapes-quick" in done.stderr


def test_init_takes_a_shipped_model_name_and_hands_on_its_grouping_layers(tmp_path):
    from tagger.model import Tagger
    from tagger.presets import preset
    from tagger.training.labeled import init_source, initialise_from

    assert init_source("texture-mnist2-quick-narrow") == pretrained_path("texture-mnist2-quick-narrow")
    assert init_source(str(tmp_path)) == tmp_path  # a folder of that name would win over the shipped model
    config = preset("quick-narrow-semi", "texture-mnist")
    model = Tagger(config.model)
    loaded, fresh = initialise_from(model, "texture-mnist2-quick-narrow")  # the name, as --init passes it
    shipped = tagger.load_pretrained("texture-mnist2-quick-narrow").state_dict()
    assert "input_weight" in loaded and "likelihood.v_raw" in loaded  # v is handed on (v_init unset)
    assert fresh and all(name not in shipped or shipped[name].shape != model.state_dict()[name].shape
                         for name in fresh)
    for name in loaded:
        torch.testing.assert_close(model.state_dict()[name], shipped[name])
