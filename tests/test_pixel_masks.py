"""Per-pixel masks for colour data (ModelConfig.channels > 1): shapes, invariants, the cost
against a hand computation, and C = 1 left as it was."""
import math

import numpy as np
import pytest
import torch

from tagger.config import ConfigError, ModelConfig
from tagger.model import Tagger

C, P = 3, 16  # channels, pixels: a 4x4 RGB image


def colour_model(**overrides) -> Tagger:
    torch.manual_seed(0)
    config = dict(input_size=P * C, channels=C, widths=(24, 12, 8), likelihood="continuous",
                  noise=0.2, z0=0.1, norm="layer", v_init=0.3)
    config.update(overrides)
    return Tagger(ModelConfig(**config))


def test_masks_are_per_pixel_and_sum_to_one():
    model = colour_model()
    x = torch.rand(5, P * C)
    out = model.infer(x, iterations=3, groups=4)
    assert out.masks.shape == (3, 5, 4, P)
    assert out.reconstructions.shape == (3, 5, 4, P * C)
    torch.testing.assert_close(out.masks.sum(dim=2), torch.ones(3, 5, P))
    assert (out.masks >= 0).all()


def test_likelihood_ratio_is_a_softmax_of_the_summed_channel_losses():
    model = colour_model()
    x_noisy, z = torch.rand(2, 1, P * C), torch.rand(2, 3, P * C)
    variance = 0.2 ** 2 + float(model.likelihood.v.detach()) ** 2
    loss = (0.5 * math.log(variance) + (z - x_noisy) ** 2 / (2 * variance)).view(2, 3, P, C).sum(-1)
    torch.testing.assert_close(model.likelihood_ratio(x_noisy, z), torch.softmax(-loss, dim=1))


def test_cost_is_the_per_pixel_mixture_likelihood_by_hand():
    model = colour_model().double()
    generator = np.random.default_rng(1)
    x, z = generator.random((2, P * C)), generator.random((2, 3, P * C))
    masks = generator.dirichlet(np.ones(3), size=(2, P)).transpose(0, 2, 1)  # (B, K, P)
    v = float(model.likelihood.v.detach())
    expected = np.zeros(2)
    for b in range(2):
        for p in range(P):
            total = 0.0
            for k in range(3):
                log_density = sum(-0.5 * (math.log(v) + (x[b, p * C + c] - z[b, k, p * C + c]) ** 2 / v) for c in range(C))
                total += math.exp(log_density + math.log(masks[b, k, p] + 1e-5))
            expected[b] -= math.log(total) / P
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    got = model.cost(as_tensor(x), as_tensor(z), as_tensor(masks))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-10)


def test_binary_colour_cost_and_posterior_by_hand():
    """Channels that are bits (saturated colours): the reference's cross-entropy of the mixture
    mean, each pixel's mask weighing its channels; the posterior multiplies a pixel's channels."""
    model = colour_model(likelihood="binary", noise=0.1).double()
    generator = np.random.default_rng(2)
    x = (generator.random((2, P * C)) < 0.5).astype(float)
    z = generator.random((2, 3, P * C))
    masks = generator.dirichlet(np.ones(3), size=(2, P)).transpose(0, 2, 1)  # (B, K, P)
    expected_cost, expected_posterior = np.zeros(2), np.zeros((2, 3, P))
    for b in range(2):
        for p in range(P):
            for c in range(C):
                mean = sum(masks[b, k, p] * z[b, k, p * C + c] for k in range(3)) * (1 - 2e-4) + 1e-4  # soft clip
                expected_cost[b] -= math.log(mean if x[b, p * C + c] else 1 - mean) / (P * C)
            clipped = z[b, :, p * C:(p + 1) * C] * (1 - 2e-4) + 1e-4  # (K, C)
            bits = x[b, p * C:(p + 1) * C]
            weights = [(masks[b, k, p] + 1e-5) * np.prod(np.where(bits == 1, clipped[k], 1 - clipped[k]))
                       for k in range(3)]
            expected_posterior[b, :, p] = np.array(weights) / sum(weights)
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    np.testing.assert_allclose(model.cost(as_tensor(x), as_tensor(z), as_tensor(masks)).numpy(), expected_cost,
                               rtol=1e-6)
    np.testing.assert_allclose(model.posterior(as_tensor(x), as_tensor(z), as_tensor(masks)).numpy(),
                               expected_posterior, rtol=1e-6)
    out = model.infer(as_tensor(x), iterations=2, groups=4)  # per-pixel masks, per-element reconstructions
    assert out.masks.shape == (2, 2, 4, P) and out.reconstructions.shape == (2, 2, 4, P * C)


def test_a_group_owns_all_channels_of_a_pixel():
    """The modelling error uses one mask per pixel for all of its channels."""
    model = colour_model()
    masks = torch.softmax(torch.randn(2, 4, P), dim=1)
    spread = model.per_element(masks).view(2, 4, P, C)
    for c in range(C):
        torch.testing.assert_close(spread[..., c], masks)


def test_group_removal_renormalises_pixel_masks():
    model = colour_model()
    out = model.infer(torch.rand(3, P * C), iterations=2, groups=4, remove_groups=(0,))
    assert (out.masks[-1, :, 0] == 0).all()
    torch.testing.assert_close(out.masks[-1].sum(dim=1), torch.ones(3, P))


def test_gradients_reach_every_parameter():
    model = colour_model()
    model(torch.rand(4, P * C)).loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("bad, message", [
    (dict(channels=5), "divide"),
    (dict(channels=0), "--channels"),
    (dict(v_param="sqrt"), "--v-param"),
])
def test_bad_channel_settings_are_refused(bad, message):
    with pytest.raises(ConfigError, match=message):
        colour_model(**bad)


def test_fixed_v_starts_where_asked_and_is_not_trained():
    model = colour_model(v_param="fixed", v_init=0.3)
    assert float(model.likelihood.v.detach()) == pytest.approx(0.3)
    assert not model.likelihood.v_raw.requires_grad
