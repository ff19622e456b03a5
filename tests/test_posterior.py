"""Tagger.posterior: each pixel's group probabilities given one iteration's reconstructions and
masks (the mixture's E-step), against hand computation, for both likelihoods."""
import math

import pytest
import torch

from tagger import ModelConfig, Tagger
from tagger.evaluate import evaluate


def test_continuous_posterior_by_hand_per_pixel_over_channels():
    model = Tagger(ModelConfig(input_size=2 * 3, channels=3, likelihood="continuous", noise=0.2, v_init=0.5,
                               v_param="fixed", widths=(8, 4), groups=2))
    v = model.likelihood.v.item()
    x = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.5, 0.0]])  # (B, D): two RGB pixels
    z = torch.tensor([[[0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                       [1.0, 0.5, 0.0, 1.0, 0.5, 0.0]]])  # (B, K, D)
    masks = torch.tensor([[[0.7, 0.4], [0.3, 0.6]]])  # (B, K, P)
    posterior = model.posterior(x, z, masks)  # (B, K, P)
    assert posterior.shape == (1, 2, 2)
    assert torch.allclose(posterior.sum(dim=1), torch.ones(1, 2))
    for pixel in range(2):
        pixels = x[0].view(2, 3)[pixel]
        weights = [(masks[0, k, pixel].item() + 1e-5)
                   * math.exp(-((pixels - z[0, k].view(2, 3)[pixel]) ** 2).sum().item() / (2 * v))
                   for k in range(2)]  # plain floats
        assert posterior[0, 0, pixel].item() == pytest.approx(weights[0] / sum(weights), rel=1e-5)


def test_binary_posterior_by_hand():
    model = Tagger(ModelConfig(input_size=3, widths=(8, 4), groups=2))
    x = torch.tensor([[1.0, 0.0, 1.0]])
    z = torch.tensor([[[0.9, 0.9, 0.5], [0.2, 0.2, 0.5]]])
    masks = torch.tensor([[[0.5, 0.5, 0.8], [0.5, 0.5, 0.2]]])
    posterior = model.posterior(x, z, masks)
    assert posterior[0, 0, 0].item() == pytest.approx(0.9 / (0.9 + 0.2), rel=1e-3)
    assert posterior[0, 0, 1].item() == pytest.approx(0.1 / (0.1 + 0.8), rel=1e-3)
    assert posterior[0, 0, 2].item() == pytest.approx(0.8, rel=1e-3)  # equal likelihoods: the masks decide


def test_evaluate_scores_the_posterior_on_request():
    from tagger.metrics import ari

    torch.manual_seed(0)
    model = Tagger(ModelConfig(input_size=16, widths=(8, 4), groups=2, likelihood="continuous", noise=0.2,
                               v_param="fixed", v_init=0.05)).eval()
    features = (torch.rand(20, 16) < 0.5).float()
    objects = features.long() + 1
    by_masks = evaluate(model, features, objects, iterations=2)
    by_posterior = evaluate(model, features, objects, iterations=2, assign="posterior")
    assert by_masks["assign"] == "masks" and by_posterior["assign"] == "posterior"
    assert by_masks["denoising_cost"] == by_posterior["denoising_cost"]  # the same inference underneath
    assert by_masks["ari"] != by_posterior["ari"]
    # by hand: evaluate draws the corruption pass, then the clean pass, from one generator seeded 0
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model(features, iterations=2, corrupt=True, generator=generator)
        clean = model.infer(features, iterations=2, generator=generator)
        posterior = model.posterior(features, clean.reconstructions[-1], clean.masks[-1])
    assert by_posterior["ari"][-1] == pytest.approx(ari(objects, posterior).mean().item(), abs=1e-6)
    with pytest.raises(ValueError):
        evaluate(model, features, objects, iterations=2, assign="argmax")
