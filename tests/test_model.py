"""The TAG loop, the Ladder and the likelihoods: shapes, invariants, hand-computed values."""
import math

import pytest
import torch

from tagger import ConfigError, ModelConfig, Tagger
from tagger.ladder import GaussCombinator, Ladder, normalize
from tagger.likelihood import BinaryLikelihood, GaussianLikelihood, positive

SMALL = dict(input_size=16, widths=(12, 8, 6))


def perturbed(model):
    """Move the decoder off its all-zero start so outputs depend on the inputs."""
    torch.manual_seed(1)
    with torch.no_grad():
        for combinator in model.mapping.combinators:
            combinator.params.normal_()
    return model


def binary_batch(batch=5, size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, size, generator=generator) < 0.3).float()


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("likelihood", ["binary", "continuous"])
def test_infer_shapes_and_masks_sum_to_one(norm, likelihood):
    torch.manual_seed(0)
    model = Tagger(ModelConfig(norm=norm, likelihood=likelihood, z0=0.5, **SMALL))
    x = binary_batch()
    for groups, iterations in [(1, 1), (2, 3), (4, 5), (7, 2)]:
        out = model.infer(x, iterations=iterations, groups=groups)
        assert out.masks.shape == (iterations, 5, groups, 16)
        assert out.reconstructions.shape == (iterations, 5, groups, 16)
        assert out.costs.shape == (iterations, 5)
        assert torch.allclose(out.masks.sum(dim=2), torch.ones(iterations, 5, 16), atol=1e-5)
        assert torch.isfinite(out.costs).all()
        if likelihood == "binary":
            assert ((out.reconstructions >= 0) & (out.reconstructions <= 1)).all()


@pytest.mark.parametrize("likelihood", ["binary", "continuous"])
def test_removing_a_group_renormalises_the_others_in_the_last_iteration_only(likelihood):
    """Figure 4b, E2: a removed group's mask logits go to a large negative number before the last softmax."""
    model = perturbed(Tagger(ModelConfig(likelihood=likelihood, z0=0.5, **SMALL)))
    x = binary_batch()
    plain = model.infer(x, iterations=3, groups=4, generator=torch.Generator().manual_seed(2))
    removed = model.infer(x, iterations=3, groups=4, generator=torch.Generator().manual_seed(2), remove_groups=(1, 3))
    torch.testing.assert_close(removed.masks[:2], plain.masks[:2], rtol=0, atol=0)
    torch.testing.assert_close(removed.reconstructions, plain.reconstructions, rtol=0, atol=0)
    assert removed.masks[-1][:, [1, 3]].max() == 0.0
    kept = plain.masks[-1][:, [0, 2]]  # (B, 2, D)
    torch.testing.assert_close(removed.masks[-1][:, [0, 2]], kept / kept.sum(1, keepdim=True))
    for bad in [(4,), (-1,), (0, 1, 2, 3)]:
        with pytest.raises(ValueError):
            model.infer(x, iterations=2, groups=4, remove_groups=bad)


def test_forward_is_deterministic_given_seed():
    model = perturbed(Tagger(ModelConfig(**SMALL)))
    x = binary_batch()
    first = model(x, generator=torch.Generator().manual_seed(3)).costs
    second = model(x, generator=torch.Generator().manual_seed(3)).costs
    other = model(x, generator=torch.Generator().manual_seed(4)).costs
    assert torch.equal(first, second) and not torch.equal(first, other)


def test_layer_norm_output_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    model = perturbed(Tagger(ModelConfig(norm="layer", **SMALL)))
    x = binary_batch(6)
    # the same generator seed gives example 0 the same initial masks in both batches
    gen_a, gen_b = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    alone = model.infer(x[:1].repeat(6, 1), iterations=2, generator=gen_a).masks[:, :1]
    mixed = model.infer(x, iterations=2, generator=gen_b).masks[:, :1]
    assert torch.allclose(alone, mixed, atol=1e-5)
    assert not torch.allclose(mixed[:, 0], model.infer(x, iterations=2, generator=torch.Generator().manual_seed(9)).masks[:, 1])


def test_untrained_decoder_outputs_zero():
    """With the combinator's initial values every decoder estimate is exactly 0 (docs/design.md, "Known deviations and details")."""
    ladder = Ladder((10, 8, 6), "batch")
    bottom, top = ladder(torch.randn(7, 10))
    assert torch.equal(bottom, torch.zeros(7, 10))
    assert torch.allclose(top.sum(-1), torch.ones(7))


def test_gauss_combinator_formula():
    combinator = GaussCombinator(3)
    with torch.no_grad():
        combinator.params.copy_(torch.arange(30, dtype=torch.float32).reshape(10, 3) / 10)
    lateral, u = torch.randn(4, 3), torch.randn(4, 3)
    a = combinator.params
    mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    w = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    assert torch.allclose(combinator(lateral, u), (lateral - mu) * w + mu)


def test_normalize_modes():
    values = torch.randn(32, 5) * 3 + 2
    batch = normalize(values, "batch")
    layer = normalize(values, "layer")
    assert torch.allclose(batch.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(batch.var(0, correction=0), torch.ones(5), atol=1e-4)
    assert torch.allclose(layer.mean(1), torch.zeros(32), atol=1e-5)


def test_binary_cost_matches_hand_computation():
    likelihood = BinaryLikelihood(0.2)
    x = torch.tensor([[1.0, 0.0]])
    z = torch.tensor([[[0.9, 0.2], [0.1, 0.6]]])  # (B=1, K=2, D=2)
    m = torch.tensor([[[0.75, 0.5], [0.25, 0.5]]])
    # prediction = sum_k m z = [0.7, 0.4]; soft clip p*(1-2e-4)+1e-4
    p1, p2 = 0.7 * (1 - 2e-4) + 1e-4, 0.4 * (1 - 2e-4) + 1e-4
    expected = (-math.log(p1) - math.log(1 - p2)) / 2
    assert likelihood.cost(x, z, m).item() == pytest.approx(expected, rel=1e-6)


def test_binary_ratio_and_modelling_error_by_hand():
    likelihood = BinaryLikelihood(0.2)
    x_noisy = torch.tensor([[[1.0]]])  # (B=1, 1, D=1)
    z = torch.tensor([[[0.9], [0.1]]])
    m = torch.tensor([[[0.6], [0.4]]])
    noisy_means = [0.9 * 0.6 + 0.2, 0.1 * 0.6 + 0.2]  # 0.74, 0.26
    clipped = [q * (1 - 2e-4) + 1e-4 for q in noisy_means]
    ratio = torch.tensor(clipped) / sum(clipped)  # likelihood of x~=1 is the clipped mean
    assert torch.allclose(likelihood.likelihood_ratio(x_noisy, z)[0, :, 0], ratio, atol=1e-6)
    xi = 0.6 * 0.74 + 0.4 * 0.26
    expected = torch.tensor([0.6, 0.4]) * 0.6 / (xi - 1 + 1)
    assert torch.allclose(likelihood.modelling_error(x_noisy, z, m)[0, :, 0], expected, atol=1e-6)


def test_binary_corruption_flips_at_the_right_rate():
    likelihood = BinaryLikelihood(0.2)
    x = torch.zeros(200, 500)
    flipped = likelihood.corrupt(x, likelihood.draw(x.shape, "cpu", x.dtype, torch.Generator().manual_seed(0)))
    assert set(flipped.unique().tolist()) <= {0.0, 1.0}
    assert flipped.mean().item() == pytest.approx(0.2, abs=0.005)


def test_gaussian_cost_matches_hand_computation():
    likelihood = GaussianLikelihood(0.2)
    v = positive(torch.tensor(1.0)).item()  # 1 + sqrt(2)
    assert v == pytest.approx(1 + math.sqrt(2))
    x = torch.tensor([[0.3]])
    z = torch.tensor([[[0.1], [0.8]]])
    m = torch.tensor([[[0.7], [0.3]]])
    terms = [math.exp(-0.5 * (math.log(v) + (0.3 - zk) ** 2 / v)) * (mk + 1e-5) for zk, mk in [(0.1, 0.7), (0.8, 0.3)]]
    assert likelihood.cost(x, z, m).item() == pytest.approx(-math.log(sum(terms)), rel=1e-6)
    # ratio uses noise^2 + v^2 as the variance (reference)
    var = 0.04 + v * v
    logs = [-0.5 * math.log(var) - (zk - 0.3) ** 2 / (2 * var) for zk in (0.1, 0.8)]
    expected = torch.softmax(torch.tensor(logs), 0)
    assert torch.allclose(likelihood.likelihood_ratio(x.unsqueeze(1), z)[0, :, 0], expected, atol=1e-6)


def test_positive_is_continuous_and_positive():
    a = torch.linspace(-5, 5, 101)
    values = positive(a)
    assert (values > 0).all() and (values[1:] > values[:-1]).all()
    assert positive(torch.tensor(0.0)).item() == pytest.approx(1.0)
    from tagger.likelihood import positive_inverse

    for v in (0.003, 0.5, 1.0, 1 + math.sqrt(2), 9.0):
        assert positive(torch.tensor(positive_inverse(v), dtype=torch.float64)).item() == pytest.approx(v, rel=1e-9)
    assert GaussianLikelihood(0.2, v_init=0.02).v.item() == pytest.approx(0.02, rel=1e-5)
    assert GaussianLikelihood(0.2).v_raw.item() == 1.0  # the reference's start
    with pytest.raises(ConfigError, match="--v-init"):
        ModelConfig(likelihood="continuous", v_init=0.0).validate()


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = Tagger(ModelConfig(**SMALL))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):  # after one step the decoder is no longer all-zero
        optimizer.zero_grad()
        model(binary_batch()).loss.backward()
        optimizer.step()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_flops_per_example_counts_the_forward_matmuls():
    """By hand for D=4, widths 3-2, K=2, T=5, in multiply-adds per group and iteration: the TAG
    input projection (4 inputs of D -> 3: 4*4*3 = 48), two projections back to D (2*3*4 = 24) and
    the Ladder's 3 -> 2 layer up and down (2*3*2 = 12): 84, i.e. 168 FLOPs; times K*T = 10."""
    model = Tagger(ModelConfig(input_size=4, widths=(3, 2), groups=2, iterations=5, norm="layer"))
    assert model.flops_per_example() == 1680.0
    assert model.flops_per_example(iterations=1, groups=1) == 168.0
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:  # and it is what the forward pass does
        model.infer(torch.rand(8, 4), iterations=5, groups=2)
    assert counter.get_total_flops() / 8 == 1680.0
