"""Input likelihoods: how inputs are corrupted, how groups explain them, and the cost.

A likelihood is the small swappable piece of TAG that knows the data type. Shapes are
binary (bit-flip noise, Bernoulli groups); TextureMNIST is continuous (Gaussian noise,
Gaussian groups with a learned variance ``v``). Shapes: B batch, K groups, D elements.
"""
from __future__ import annotations

import math

import torch
from torch import nn

CLIP = 1e-4  # the reference's soft clip of probabilities before a log


def soft_clip(probability: torch.Tensor, epsilon: float = CLIP) -> torch.Tensor:
    """Squeeze [0, 1] into [eps, 1 - eps] affinely (the reference's ``soft_clip``)."""
    return probability * (1.0 - 2.0 * epsilon) + epsilon


def sum_channels(values: torch.Tensor, channels: int) -> torch.Tensor:
    """Per-element ``(..., D)`` -> per-pixel ``(..., D / channels)``: a pixel's channels summed
    (pixel-major layout). One channel: unchanged."""
    return values if channels == 1 else values.unflatten(-1, (-1, channels)).sum(dim=-1)


def spread_channels(masks: torch.Tensor, channels: int) -> torch.Tensor:
    """Per-pixel ``(..., P)`` -> per-element ``(..., P * channels)``: each pixel's value on all its
    channels. One channel: unchanged."""
    return masks if channels == 1 else masks.repeat_interleave(channels, dim=-1)


def binary_cross_entropy(probability: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise ``-(t log p + (1 - t) log(1 - p))`` with ``p`` soft-clipped."""
    probability = soft_clip(probability)
    return -(target * torch.log(probability) + (1.0 - target) * torch.log1p(-probability))


class BinaryLikelihood(nn.Module):
    """Bit-flip corruption with probability ``noise``; groups are Bernoulli means ``z``."""

    binary = True
    combinator = "gauss"

    def __init__(self, noise: float):
        super().__init__()
        self.noise = float(noise)

    def draw(self, shape, device, dtype, generator=None) -> torch.Tensor:
        """The random numbers one corruption needs: standard uniforms."""
        return torch.rand(shape, device=device, dtype=dtype, generator=generator)

    def corrupt(self, x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """Flip each element of ``x`` (B, D) in {0, 1} where its uniform draw is below ``noise``."""
        return torch.where(draws < self.noise, 1.0 - x, x)

    def _noisy_mean(self, z: torch.Tensor) -> torch.Tensor:
        # P(x~ = 1 | group k): z seen through the bit-flip channel. (B, K, D)
        return z * (1.0 - 2.0 * self.noise) + self.noise

    def loss(self, x_noisy: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``-log p(x_noisy | group k)`` per element: ``x_noisy`` (B, 1, D), ``z`` (B, K, D). -> (B, K, D)"""
        return binary_cross_entropy(self._noisy_mean(z), x_noisy)

    def likelihood_ratio(self, x_noisy: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``L(m)``: per-element likelihood of ``x_noisy`` (B, 1, D) under each group, normalised over K."""
        return torch.softmax(-self.loss(x_noisy, z), dim=1)

    def modelling_error(self, x_noisy: torch.Tensor, z: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``dz``: the gradient of the noisy-input log-likelihood w.r.t. each group's ``z``. (B, K, D)"""
        xi = (self._noisy_mean(z) * masks).sum(dim=1, keepdim=True)  # (B, 1, D)
        return masks * (1.0 - 2.0 * self.noise) / (xi - 1.0 + x_noisy)

    def reconstruct(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """Group means from the mapping's output: a sigmoid."""
        return torch.sigmoid(pre_activation)

    def mapping_input(self, pre_activation: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """What the mapping sees of ``z`` next iteration: the pre-sigmoid values (reference)."""
        return pre_activation

    def posterior(self, x: torch.Tensor, z: torch.Tensor, masks: torch.Tensor, channels: int = 1) -> torch.Tensor:
        """``p(group k | x_p) ∝ m_k prod_c z_kc^x_c (1 - z_kc)^(1 - x_c)`` per pixel: ``x`` (B, D), ``z``
        (B, K, D), ``masks`` (B, K, D / channels). -> (B, K, D / channels)"""
        # a group explains a whole pixel: its channels' bits are independent given the group
        log_likelihood = sum_channels(-binary_cross_entropy(z, x.unsqueeze(1)), channels)  # (B, K, P)
        return torch.softmax(torch.log(masks + 1e-5) + log_likelihood, dim=1)

    def cost(self, x: torch.Tensor, z: torch.Tensor, masks: torch.Tensor, channels: int = 1) -> torch.Tensor:
        """Per-example cross-entropy of ``sum_k m_k z_k`` against the clean ``x`` (B, D), mean over
        elements (the reference's). -> (B,)

        ``masks`` (B, K, D / channels): with ``channels > 1`` (colour images whose channels are
        bits, e.g. Tetrominoes' saturated colours) a pixel's mask weighs all its channels."""
        prediction = (spread_channels(masks, channels) * z).sum(dim=1)  # (B, D)
        return binary_cross_entropy(prediction, x).mean(dim=-1)


def positive(raw: torch.Tensor) -> torch.Tensor:
    """The reference's ``exp_inv_sinh``: ``a + sqrt(a^2+1)`` for a > 0 else ``1 / (sqrt(a^2+1) - a)``."""
    root = torch.sqrt(raw * raw + 1.0)
    return torch.where(raw > 0, raw + root, 1.0 / (root - raw))


def positive_inverse(value: float) -> float:
    """The raw ``a`` with ``positive(a) == value`` (> 0): ``a = (v^2 - 1) / (2 v)``."""
    return (value * value - 1.0) / (2.0 * value)


class GaussianLikelihood(nn.Module):
    """Additive N(0, noise^2) corruption; groups are Gaussians N(z_k, v) with a learned scalar v.

    As in the reference, ``v`` enters the cost as a variance and the likelihood ratio as a
    standard deviation (``noise^2 + v^2``); the reference keeps that (docs/design.md, "The TAG loop"). Its raw parameter
    starts at 1 (v = 2.41); Adam moves it by about the learning rate per step, so v falls
    roughly as ``1 / (2 lr steps)`` over a run (docs/notebook.md). ``v_init`` starts it elsewhere.
    """

    binary = False
    combinator = "gauss_stable_v"

    def __init__(self, noise: float, v_init: float | None = None, v_param: str = "reference"):
        super().__init__()
        self.noise = float(noise)
        self.v_param = v_param
        if v_param == "fixed":  # v = exp(raw), never trained
            start = math.log(positive(torch.tensor(1.0)).item() if v_init is None else float(v_init))
        else:
            start = 1.0 if v_init is None else positive_inverse(float(v_init))
        # "fixed": v stays at its start (still saved with the weights)
        self.v_raw = nn.Parameter(torch.tensor(start), requires_grad=v_param != "fixed")

    @property
    def v(self) -> torch.Tensor:
        return positive(self.v_raw) if self.v_param == "reference" else torch.exp(self.v_raw)

    def draw(self, shape, device, dtype, generator=None) -> torch.Tensor:
        """The random numbers one corruption needs: standard normals."""
        return torch.randn(shape, device=device, dtype=dtype, generator=generator)

    def corrupt(self, x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        return x + self.noise * draws

    def loss(self, x_noisy: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``-log N(x_noisy; z_k, noise^2 + v^2)`` per element (v as a std here, as the reference). -> (B, K, D)"""
        variance = self.noise ** 2 + self.v ** 2
        return 0.5 * torch.log(variance) + (z - x_noisy) ** 2 / (2.0 * variance)

    def likelihood_ratio(self, x_noisy: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``L(m)``: per-element likelihood of ``x_noisy`` (B, 1, D) under each group, normalised over K."""
        return torch.softmax(-self.loss(x_noisy, z), dim=1)

    def modelling_error(self, x_noisy: torch.Tensor, z: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return masks * (x_noisy - z)

    def reconstruct(self, pre_activation: torch.Tensor) -> torch.Tensor:
        return pre_activation

    def mapping_input(self, pre_activation: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return z

    def cost(self, x: torch.Tensor, z: torch.Tensor, masks: torch.Tensor, channels: int = 1) -> torch.Tensor:
        """Per-example ``-log sum_k m_k N(x; z_k, v)`` (without the 0.5 log 2pi constant, as the reference). -> (B,)

        ``x`` (B, D), ``z`` (B, K, D), ``masks`` (B, K, D / channels): with ``channels > 1`` a
        group explains a whole pixel (the product of its channels' densities), and the cost
        is the mean over pixels of the per-pixel negative log-likelihood.
        """
        log_terms = self._log_density(x, z, channels) + torch.log(masks + 1e-5)  # (B, K, P)
        return -torch.logsumexp(log_terms, dim=1).mean(dim=-1)

    def posterior(self, x: torch.Tensor, z: torch.Tensor, masks: torch.Tensor, channels: int = 1) -> torch.Tensor:
        """``p(group k | x_p) ∝ m_k N(x_p; z_k, v)`` per pixel (the E-step of the cost's mixture, with the
        model's own v): ``x`` (B, D), ``z`` (B, K, D), ``masks`` (B, K, D / channels). -> (B, K, D / channels)"""
        return torch.softmax(self._log_density(x, z, channels) + torch.log(masks + 1e-5), dim=1)

    def _log_density(self, x: torch.Tensor, z: torch.Tensor, channels: int) -> torch.Tensor:
        """``log N(x; z_k, v)`` without the 0.5 log 2pi constant, per pixel (channels summed). -> (B, K, D / channels)"""
        v = self.v
        log_density = -0.5 * (torch.log(v) + (x.unsqueeze(1) - z) ** 2 / v)  # (B, K, D)
        return sum_channels(log_density, channels)  # (B, K, P)


def make_likelihood(kind: str, noise: float, v_init: float | None = None, v_param: str = "reference") -> nn.Module:
    """``"binary"`` -> :class:`BinaryLikelihood`, ``"continuous"`` -> :class:`GaussianLikelihood`."""
    if kind == "binary":
        return BinaryLikelihood(noise)
    if kind == "continuous":
        return GaussianLikelihood(noise, v_init, v_param)
    raise ValueError(f"unknown likelihood {kind!r}")



