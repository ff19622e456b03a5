"""Semi-supervised classification (Table 2): the collapsed prediction, cost, error metric,
labelled subset, warm start from a pretrained run, and a small run that learns classes."""
import json
import math

import numpy as np
import pytest
import torch

from tagger import ModelConfig, Tagger, datasets
from tagger.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from tagger.classify import class_cost, class_error, class_probabilities, class_targets, labeled_subset
from tagger.config import Config, ConfigError, TrainConfig
from tagger.presets import preset
from tagger.datasets.common import Split
from tagger.training.labeled import initialise_from


def test_probabilities_drop_no_class_and_sum_over_groups():
    top = torch.tensor([[[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]]])  # (B=1, K=2, C+1=3)
    expected = torch.tensor([[0.6, 0.3]]) / 0.9
    assert torch.allclose(class_probabilities(top), expected)
    top = torch.softmax(torch.randn(5, 4, 11), dim=-1)
    assert torch.allclose(class_probabilities(top).sum(-1), torch.ones(5))


def test_cost_is_cross_entropy_with_half_targets():
    top = torch.tensor([[[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]]])
    p = [0.6 / 0.9, 0.3 / 0.9]
    two_different = torch.tensor([[0, 1]])
    assert class_cost(top, two_different).item() == pytest.approx(-(0.5 * math.log(p[0]) + 0.5 * math.log(p[1])))
    assert class_cost(top, torch.tensor([[1, 1]])).item() == pytest.approx(-math.log(p[1]))
    assert class_cost(top, torch.tensor([[0]])).item() == pytest.approx(-math.log(p[0]))
    assert class_targets(torch.tensor([[3, 3], [1, 2]]), 4).tolist() == [[0, 0, 0, 1], [0, 0.5, 0.5, 0]]


def test_error_gives_partial_credit_over_the_top_two():
    probabilities = torch.tensor([[0.5, 0.3, 0.2, 0.0]] * 5)  # ranking 0, 1, 2, 3
    labels = torch.tensor([[0, 1], [1, 0], [0, 2], [3, 2], [0, 0]])
    assert class_error(probabilities, labels).tolist() == [0.0, 0.0, 0.5, 1.0, 0.0]
    assert class_error(probabilities[:1], torch.tensor([[1, 1]])).tolist() == [1.0]  # same digit: top-1
    assert class_error(probabilities[:2], torch.tensor([[0], [2]])).tolist() == [0.0, 1.0]


def test_labeled_subset_is_balanced_in_the_reference_order():
    first = np.random.RandomState(3).randint(0, 10, 5000)
    chosen = labeled_subset(first, 1000, seed=1)
    assert len(chosen) == 1000 and len(set(chosen.tolist())) == 1000
    assert np.bincount(first[chosen], minlength=10).tolist() == [100] * 10
    order = np.arange(5000)
    np.random.RandomState(1).shuffle(order)
    np.testing.assert_array_equal(chosen[:100], order[first[order] == 0][:100])
    assert sorted(labeled_subset(first, 0, seed=1).tolist()) == list(range(5000))
    with pytest.raises(ValueError):
        labeled_subset(first, 1005, seed=1)


def test_warm_start_copies_matching_weights(tmp_path):
    torch.manual_seed(0)
    shallow = ModelConfig(input_size=64, widths=(32, 24, 16), likelihood="continuous")
    pretrained = Tagger(shallow)
    config = Config(preset="custom", model=shallow, train=TrainConfig(dataset="texture-mnist"))
    save_checkpoint(tmp_path / "pre", config, pretrained, {"step": 0}, {})
    deep = Tagger(ModelConfig(input_size=64, widths=(32, 24, 16, 8, 11), likelihood="continuous"))
    loaded, fresh = initialise_from(deep, tmp_path / "pre")
    assert "input_weight" in loaded and "mapping.encoder_weights.1" in loaded
    assert "mapping.combinators.2.params" in loaded  # the old top combinator keeps its values
    assert {"mapping.top_scale", "mapping.encoder_weights.2", "mapping.decoder_weights.3"} <= set(fresh)
    for name in loaded:
        assert torch.equal(deep.state_dict()[name], pretrained.state_dict()[name]), name
    assert "likelihood.v_raw" in loaded
    fresh_v = Tagger(ModelConfig(input_size=64, widths=(32, 24, 16), likelihood="continuous", v_init=0.05))
    loaded, _ = initialise_from(fresh_v, tmp_path / "pre", keep_v=True)
    assert "likelihood.v_raw" not in loaded and fresh_v.likelihood.v.item() == pytest.approx(0.05, rel=1e-5)


def test_warm_start_from_other_data_is_refused(tmp_path):
    """A run on other data shares a few shapes by chance (e.g. biases); that is not a warm start."""
    torch.manual_seed(0)
    other = ModelConfig(input_size=36, widths=(32, 24, 16), likelihood="continuous")
    config = Config(preset="custom", model=other, train=TrainConfig(dataset="texture-mnist"))
    save_checkpoint(tmp_path / "pre", config, Tagger(other), {"step": 0}, {})
    model = Tagger(ModelConfig(input_size=64, widths=(32, 24, 16), likelihood="continuous"))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="input layer does not fit"):
        initialise_from(model, tmp_path / "pre")
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())


def test_class_cost_needs_labels_and_eleven_units():
    config = preset("paper-semi", "texture-mnist")
    assert config.model.widths == (3000, 2000, 1000, 500, 250, 11) and config.model.iterations == 4
    assert (config.model.noise, config.train.lr, config.train.epochs) == (0.18, 2e-4, 50)
    config.model.widths = (3000, 2000, 1000)
    with pytest.raises(ConfigError, match="11"):
        config.validate()
    shapes = preset("quick", "shapes")
    shapes.train.class_cost = 0.1
    with pytest.raises(ConfigError, match="labels"):
        shapes.validate()


def _class_patterns(count, seed):
    """Continuous 8x8 images: a class-specific pattern (10 classes) plus noise; one label each."""
    rng = np.random.RandomState(seed)
    patterns = np.random.RandomState(99).rand(10, 64)
    labels = rng.randint(0, 10, count)
    features = np.clip(patterns[labels] * 0.8 + 0.2 * rng.rand(count, 64), 0, 1).astype(np.float32)
    objects = np.ones((count, 64), dtype=np.uint8)
    return Split("fake", features, objects, (8, 8), False, labels=labels[:, None].astype(np.int64))


@pytest.mark.slow
def test_semi_supervised_run_learns_classes_and_resumes(tmp_path, monkeypatch):
    import tagger
    from tagger.training import Trainer, apply_process_settings

    splits = {"train": _class_patterns(400, 0), "valid": _class_patterns(100, 1), "test": _class_patterns(100, 2)}
    monkeypatch.setattr(datasets, "load", lambda name, split, *a, **k: splits[split])
    model = ModelConfig(input_size=64, widths=(32, 16, 11), iterations=2, likelihood="continuous",
                        noise=0.2, z0=0.5, norm="batch")
    train = TrainConfig(dataset="texture-mnist", n_digits=1, epochs=6, batch_size=20, lr=3e-3, seed=1,
                        eval_iterations=2, valid_examples=100, class_cost=1.0, labeled=100)
    config = Config(preset="custom", model=model, train=train)
    apply_process_settings(config.train, torch.device("cpu"))
    untrained = Trainer(config, tmp_path / "untrained", splits["train"], splits["valid"], progress=False)
    first = untrained.validate()["class_error"][-1]
    tagger.train(config, splits["train"], splits["valid"], tmp_path / "run", progress=False, quiet=True)
    last = read_checkpoint(tmp_path / "run")[1]["history"][-1]
    assert first > 60 and last["valid_class_error_2"] < 30  # chance is 90 %
    # resume: the labelled stream continues where the checkpoint left it, as it would have gone on
    config.train.epochs = 7
    going_on = Trainer(config, tmp_path / "untrained", splits["train"], splits["valid"], progress=False)
    for _ in range(config.train.epochs - 1):  # the stream of six epochs of 20 steps
        for _ in range(400 // 20):
            going_on.labeled.next()
    resumed = Trainer(config, tmp_path / "run", splits["train"], splits["valid"], progress=False)
    resumed.restore()
    expected = going_on.labeled.next()
    got = resumed.labeled.next()
    assert torch.equal(expected[1], got[1]) and torch.equal(expected[0], got[0])
    # the CLI reports the class error and captions the figure with classes
    from tagger.cli import main

    assert main(["eval", str(tmp_path / "run"), "--iterations", "2", "--output", str(tmp_path / "e.json")]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert len(result["class_error"]) == 2 and result["class_error"][-1] < 30
    assert main(["show", str(tmp_path / "run"), "--examples", "2", "--output", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_labelled_stream_picks_by_the_original_first_label():
    from tagger.datasets.texture_mnist import original_label_order
    from tagger.training.labeled import LabeledStream

    rng = np.random.RandomState(0)
    labels = np.stack([np.arange(200) % 10, rng.randint(0, 10, 200)], axis=1).astype(np.int64)
    original = original_label_order(labels, 240)
    split = Split("fake", rng.rand(200, 64).astype(np.float32), np.ones((200, 64), np.uint8), (8, 8), False,
                  labels=labels, original_labels=original)
    config = Config(model=ModelConfig(input_size=64, widths=(16, 11), likelihood="continuous"),
                    train=TrainConfig(dataset="texture-mnist", n_digits=2, batch_size=10, labeled=20,
                                      class_cost=0.1, seed=3))
    stream = LabeledStream(config, split)
    chosen = labeled_subset(original[:, 0], 20, seed=3)
    assert not np.array_equal(chosen, labeled_subset(labels[:, 0], 20, seed=3))  # the orders really differ
    assert torch.equal(stream.labels, torch.as_tensor(labels[chosen]))  # labels stay in depth order
    x, batch_labels = stream.next()
    assert x.shape == (10, 64) and batch_labels.shape == (10, 2)
