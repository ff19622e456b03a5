"""Table 2's baselines: the Ladder's costs by hand, the models' outputs, and that training learns."""
import json
import math

import numpy as np
import pytest
import torch

from tagger import datasets
from tagger.baselines.models import ConvNet, FCLadder
from tagger.baselines.train import (BaselineConfig, BaselineTrainer, baseline_preset,
                                   learning_rate)
from tagger.classify import cross_entropy
from tagger.cli import main
from tagger.config import ConfigError
from tagger.datasets.common import Split
from tagger.ladder import EPSILON


def _identity_combinator(model: FCLadder, layer: int) -> None:
    """Make layer ``layer``'s combinator return its lateral input: mu = 0, w = 1."""
    with torch.no_grad():
        model.combinators[layer].params.zero_()
        model.combinators[layer].params[9] = 1.0  # a10


def test_fc_ladder_outputs_and_costs_have_the_right_shapes():
    torch.manual_seed(0)
    model = FCLadder((20, 16, 8, 10), noise=0.3, input_noise=0.3)
    x = torch.rand(32, 20)
    probabilities = model(x)
    assert probabilities.shape == (32, 10)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(32))
    costs, output = model.denoising_costs(x)
    assert costs.shape == (4,) and (costs >= 0).all() and output.shape == (32, 10)


def test_noise_free_corrupted_pass_is_the_clean_pass():
    torch.manual_seed(0)
    model = FCLadder((20, 16, 10), noise=0.0, input_noise=0.0)
    x = torch.rand(16, 20)
    clean = model.encode(x, noisy=False, batch_stats=True)
    noisy = model.encode(x, noisy=True, batch_stats=True)
    for a, b in zip(clean[0], noisy[0]):
        torch.testing.assert_close(a, b)


def test_input_denoising_cost_is_the_mean_squared_corruption():
    torch.manual_seed(0)
    model = FCLadder((400, 16, 10), noise=0.0, input_noise=0.3)
    _identity_combinator(model, 0)  # the estimate of the input is the corrupted input itself
    costs, _ = model.denoising_costs(torch.rand(200, 400))
    assert costs[0].item() == pytest.approx(0.09, rel=0.03)


def test_hidden_denoising_cost_by_hand():
    """Layer 1: the estimate is standardised with the clean batch's statistics of ``x W``
    (the reference's ``zestbn='bugfix'``) and compared with the clean normalised value."""
    torch.manual_seed(0)
    model = FCLadder((12, 6, 10), noise=0.0, input_noise=0.0)
    _identity_combinator(model, 1)  # estimate = lateral = clean normalised z (no noise)
    x = torch.rand(50, 12)
    pre = (x @ model.encoder_weights[0]).double()
    mean, var = pre.mean(0), pre.var(0, unbiased=False)
    z = (pre - mean) / torch.sqrt(var + EPSILON)
    expected = (((z - mean) / torch.sqrt(var + EPSILON) - z) ** 2).mean()
    costs, _ = model.denoising_costs(x)
    assert costs[1].item() == pytest.approx(expected.item(), rel=1e-4)


def test_calibrate_stores_the_mean_batch_statistics():
    torch.manual_seed(0)
    model = FCLadder((12, 6, 10), decoder=False)
    batches = [torch.rand(20, 12), torch.rand(20, 12)]
    model.calibrate(batches)
    pres = [b @ model.encoder_weights[0] for b in batches]
    torch.testing.assert_close(model.mean_0, sum(p.mean(0) for p in pres) / 2)
    torch.testing.assert_close(model.var_0, sum(p.var(0, unbiased=True) for p in pres) / 2)
    model.eval()
    assert model(batches[0]).shape == (20, 10)


def test_convnet_maps_images_to_class_probabilities():
    torch.manual_seed(0)
    probabilities = ConvNet((28, 28), 10)(torch.rand(3, 784))
    assert probabilities.shape == (3, 10)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(3))


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    config = BaselineConfig(epochs=150, lr=0.002, decay_start=0.67)
    rates = [learning_rate(config, epoch) for epoch in range(150)]
    assert rates[0] == rates[100] == 0.002
    assert rates[101] < 0.002 and rates[149] == pytest.approx(0.002 / 49.5)
    assert all(a >= b >= 0 for a, b in zip(rates, rates[1:]))


def test_cross_entropy_with_two_digit_targets():
    probabilities = torch.full((1, 10), 0.0) + torch.tensor([[0.5, 0.5] + [0.0] * 8])
    assert cross_entropy(probabilities, torch.tensor([[0, 1]])).item() == pytest.approx(math.log(2))
    assert cross_entropy(probabilities, torch.tensor([[0]])).item() == pytest.approx(math.log(2))


def test_presets_follow_the_paper():
    assert baseline_preset("mlp", 0).widths == (2000, 2000, 2000)
    assert baseline_preset("mlp", 1000).widths == (1000, 1000)
    ladder = baseline_preset("ladder", 1000)
    assert ladder.widths == (3000, 2000, 1000, 500, 250) and len(ladder.denoising) == 7
    with pytest.raises(ConfigError, match="--denoising"):
        BaselineConfig(model="ladder", widths=(10,), denoising=(1.0,)).validate()
    mnist = baseline_preset("ladder", 1000, dataset="mnist")  # the Ladder paper's own MNIST network
    assert mnist.widths == (1000, 500, 250, 250, 250) and mnist.digits == 1 and mnist.denoising == ladder.denoising
    with pytest.raises(ConfigError, match="--dataset"):
        BaselineConfig(dataset="cifar").validate()


def test_plain_mnist_split(data_dir):
    test = datasets.mnist("test")
    assert test.features.shape == (10000, 784) and test.labels.shape == (10000, 1)
    assert test.features.dtype == np.float32 and test.features.max() == 1.0 and test.features.min() == 0.0
    assert set(np.unique(test.labels)) == set(range(10))
    assert np.array_equal(test.objects, test.features > 0.5)
    assert datasets.load("mnist", "valid").name == "mnist/valid"


def _toy_splits(seed: int = 0) -> dict:
    """Ten noisy prototypes in 64 dimensions: a task a small classifier learns in seconds."""
    rng = np.random.RandomState(seed)
    prototypes = rng.rand(10, 64)

    def split(name, count):
        labels = rng.randint(0, 10, size=(count, 1))
        features = np.clip(prototypes[labels[:, 0]] + 0.15 * rng.randn(count, 64), 0, 1).astype(np.float32)
        return Split(name, features, np.zeros((count, 64), np.uint8), (8, 8), False, labels=labels.astype(np.int64))

    return {"train": split("train", 600), "valid": split("valid", 200), "test": split("test", 200)}


@pytest.mark.parametrize("model", ["mlp", "ladder"])
def test_a_short_training_run_learns_and_is_deterministic(tmp_path, model):
    config = BaselineConfig(model=model, labeled=100, widths=(32, 16), epochs=30, batch_size=20,
                            valid_examples=0, noise=0.2, input_noise=0.2, denoising=(1.0, 0.1, 0.1, 0.1))
    results = [BaselineTrainer(config.validate(), tmp_path / f"run{i}", _toy_splits(), torch.device("cpu"),
                               progress=False).run() for i in range(2)]
    assert results[0]["test_class_error"] < 30.0  # chance: 90 %
    assert results[0]["test_class_error"] == results[1]["test_class_error"]
    saved = json.loads((tmp_path / "run0" / "result.json").read_text())
    assert saved["labeled_examples"] == 100 and (tmp_path / "run0" / "model.safetensors").exists()


def test_baseline_cli_rejects_bad_flags_in_one_line(capsys):
    assert main(["baseline", "--model", "ladder", "--denoising", "1,2"]) == 2
    assert main(["baseline", "--model", "mlp", "--labeled", "15"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "--denoising" in lines[0] and "--labeled" in lines[1]


def test_a_non_finite_cost_is_a_user_error(tmp_path, monkeypatch, capsys):
    """A diverging baseline stops with a :class:`TrainingError` (CLI: one line, exit 2), not a bug."""
    from tagger.errors import TrainingError, UserError

    config = BaselineConfig(model="mlp", labeled=100, widths=(8,), epochs=2, batch_size=20, valid_examples=0)
    trainer = BaselineTrainer(config.validate(), tmp_path / "run", _toy_splits(), torch.device("cpu"), progress=False)
    monkeypatch.setattr(trainer, "step", lambda *a: (torch.tensor(float("nan")), torch.tensor(0.0)))
    with pytest.raises(TrainingError, match="non-finite") as raised:
        trainer.run()
    assert isinstance(raised.value, UserError)
