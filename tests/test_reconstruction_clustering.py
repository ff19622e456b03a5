"""Reconstruction Clustering (Table 1b's earlier work): noise, cost and E-step by hand, invariants, learning, CLI."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from tagger import datasets, metrics
from tagger.cli import main
from tagger.baselines.reconstruction_clustering import (DenoisingAutoencoder, RCConfig, cluster, denoising_loss, fixed_batches,
                                              rc_preset, salt_and_pepper)
from tagger.baselines.rc_train import evaluate_rc, summarise, train_denoiser


def test_salt_and_pepper_hits_the_requested_share_half_salt_half_pepper():
    x = torch.full((200, 500), 0.5)
    generator = torch.Generator().manual_seed(0)
    corrupted = salt_and_pepper(x, 0.4, generator)
    assert (corrupted == 1.0).float().mean().item() == pytest.approx(0.2, abs=0.005)
    assert (corrupted == 0.0).float().mean().item() == pytest.approx(0.2, abs=0.005)
    assert (corrupted == 0.5).float().mean().item() == pytest.approx(0.6, abs=0.005)
    assert torch.equal(salt_and_pepper(x, 0.0, generator), x)
    everything = salt_and_pepper(x, 1.0, generator)
    assert ((everything == 0) | (everything == 1)).all()


def test_denoising_loss_is_summed_cross_entropy_averaged_over_the_batch():
    torch.manual_seed(0)
    model = DenoisingAutoencoder(6, 4, "tanh")
    clean = (torch.rand(3, 6) > 0.5).float()
    corrupted = salt_and_pepper(clean, 0.5, torch.Generator().manual_seed(1))
    y = torch.sigmoid(model(corrupted)).detach().numpy().astype(np.float64)
    t = clean.numpy().astype(np.float64)
    by_hand = -(t * np.log(y) + (1 - t) * np.log(1 - y)).sum() / 3
    assert denoising_loss(model, clean, corrupted).item() == pytest.approx(by_hand, rel=1e-5)


def test_initialisation_follows_brainstorm():
    torch.manual_seed(0)
    model = DenoisingAutoencoder(400, 500, "tanh")
    assert model.encoder.weight.abs().max() <= np.sqrt(6) / np.sqrt(900)
    assert model.decoder.weight.abs().max() <= 1 / np.sqrt(900)
    assert model.encoder.bias.std().item() == pytest.approx(0.1, rel=0.2)


class _Lookup(nn.Module):
    """A stand-in denoiser: logits are a fixed function of the masked input."""

    def forward(self, inputs):
        return 3.0 * inputs - 1.0 + 0.5 * torch.cos(7.0 * inputs)


def test_e_step_equals_the_rc_codes_formula():
    """masks[t+1] = (x y + (1 - x)(1 - y)) / sum over groups, y = the denoiser's output for gamma_k * x."""
    x = (torch.rand(5, 12, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    masks, reconstructions = cluster(_Lookup(), x, groups=4, iterations=3, generator=torch.Generator().manual_seed(2))
    assert masks.shape == (4, 5, 4, 12) and reconstructions.shape == (3, 5, 4, 12)
    for t in range(3):
        gamma = masks[t].numpy().astype(np.float64)
        inputs = gamma * x.numpy()[:, None, :]
        y = 1 / (1 + np.exp(-(3.0 * inputs - 1.0 + 0.5 * np.cos(7.0 * inputs))))
        target = x.numpy()[:, None, :]
        likelihood = target * y + (1 - target) * (1 - y)
        np.testing.assert_allclose(masks[t + 1].numpy(), likelihood / likelihood.sum(1, keepdims=True), atol=1e-6)
        np.testing.assert_allclose(reconstructions[t].numpy(), y, atol=1e-6)


def test_masks_sum_to_one_start_random_and_the_hard_e_step_is_one_hot():
    torch.manual_seed(0)
    model = DenoisingAutoencoder(16, 8).eval()
    x = (torch.rand(6, 16) > 0.5).float()
    masks, _ = cluster(model, x, groups=3, iterations=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(masks.sum(2), torch.ones(3, 6, 16))
    assert masks[0].std() > 0.1  # |N(0, 1)| normalised, not uniform
    hard, _ = cluster(model, x, groups=3, iterations=2, e_step="max", generator=torch.Generator().manual_seed(0))
    assert set(hard[1:].unique().tolist()) <= {0.0, 1.0}
    assert (hard[1].sum(1) >= 1).all()  # at least the best group; ties (identical inputs) all get 1
    torch.testing.assert_close(hard[1].argmax(1), masks[1].argmax(1))  # the soft E-step's best group
    again, _ = cluster(model, x, groups=3, iterations=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(masks, again)


class _Constant(nn.Module):
    """A denoiser that ignores its input: every group predicts the same, so all groups tie."""

    def forward(self, inputs):
        return torch.full_like(inputs, 0.3)


def test_hard_e_step_gives_every_tied_group_the_pixel():
    x = (torch.rand(2, 10, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    hard, _ = cluster(_Constant(), x, groups=3, iterations=1, e_step="max", generator=torch.Generator().manual_seed(0))
    assert torch.equal(hard[1], torch.ones(2, 3, 10))


def test_fixed_batches_cover_every_index_once():
    batches = fixed_batches(250, 100)
    assert [len(b) for b in batches] == [100, 100, 50]
    assert np.array_equal(np.concatenate(batches), np.arange(250))


def test_presets_are_the_rc_codes_tuned_shapes_settings():
    single, multi = rc_preset("single"), rc_preset("multi")
    assert (single.hidden, single.activation, single.noise, single.e_step) == (500, "tanh", 0.4, "expectation")
    assert (multi.hidden, multi.activation, multi.noise, multi.e_step) == (100, "sigmoid", 0.9, "max")
    assert single.lr == pytest.approx(0.0831, abs=1e-4) and multi.lr == pytest.approx(0.0494, abs=1e-4)


def test_a_short_training_learns_to_group_shapes(data_dir):
    """Two epochs on 2,000 one-shape images: RC's AMI far above its random start, and runs repeat exactly."""
    config = RCConfig(max_epochs=2, test_examples=300)
    single = datasets.shapes("single").features[:2000]
    model, history = train_denoiser(config, single, torch.device("cpu"), progress=False)
    assert len(history) == 2 and history[1]["train_loss"] < history[0]["train_loss"]
    result = evaluate_rc(model, datasets.shapes("test"), config, torch.device("cpu"))
    assert result["ami"][0] < 0.05 and result["ami"][-1] > 0.5, result["ami"]
    again, _ = train_denoiser(config, single, torch.device("cpu"), progress=False)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_evaluation_is_the_mean_of_per_example_ami(data_dir):
    config = RCConfig(test_examples=40, iterations=2)
    torch.manual_seed(0)
    model = DenoisingAutoencoder(400, 20).eval()
    test = datasets.shapes("test")
    result = evaluate_rc(model, test, config, torch.device("cpu"), batch_size=15)  # batches of 15, 15, 10
    masks, _ = cluster(model, torch.as_tensor(test.features[:15]), 3, 2, generator=torch.Generator().manual_seed(1))
    first = metrics.ami(test.objects[:15], masks[-1])
    assert len(result["ami"]) == 3 and result["examples"] == 40
    assert 0.0 <= result["ami_sem"] < result["ami_std"]
    single_batch = evaluate_rc(model, test, RCConfig(test_examples=15, iterations=2), torch.device("cpu"))
    assert single_batch["ami"][-1] == pytest.approx(first.mean().item(), abs=1e-9)


def test_summary_over_seeds():
    summary = summarise({1: {"ami": [0.0, 0.5, 0.6]}, 2: {"ami": [0.0, 0.7, 0.8]}})
    assert summary["ami_mean"] == pytest.approx(0.7)
    assert summary["ami_std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert summary["ami_per_iteration"] == pytest.approx([0.0, 0.6, 0.7])


def test_cli_runs_seeds_writes_the_run_and_continues(tmp_path, data_dir, capsys):
    args = ["rc", "--max-epochs", "1", "--test-examples", "30", "--iterations", "2", "--hidden", "20",
            "--seeds", "1-2", "--run-dir", str(tmp_path / "rc"), "--no-progress"]
    assert main(args) == 0
    for seed in (1, 2):
        run = tmp_path / "rc" / f"seed{seed}"
        assert {"config.json", "metrics.csv", "dae.safetensors", "result.json", "groupings.png"} <= {
            p.name for p in run.iterdir()}
        assert json.loads((run / "config.json").read_text())["seed"] == seed
    summary = json.loads((tmp_path / "rc" / "summary.json").read_text())
    assert summary["seeds"] == [1, 2]
    (tmp_path / "rc" / "seed2" / "dae.safetensors").unlink()
    assert main(args) == 0  # finished seeds are read back, not retrained
    assert not (tmp_path / "rc" / "seed2" / "dae.safetensors").exists()
    capsys.readouterr()


@pytest.mark.parametrize("flags, message", [
    (["--noise", "1.5"], "--noise"),
    (["--groups", "0"], "--groups"),
    (["--seeds", "a-b"], "--seeds"),
    (["--lr", "-1"], "--lr"),
])
def test_cli_bad_flags_get_one_line(flags, message, capsys, tmp_path):
    assert main(["rc", "--run-dir", str(tmp_path / "x"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
