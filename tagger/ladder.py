"""The Ladder network as Tagger's parametric mapping (CuriousAI/ladder ``LadderAE``, docs/design.md, "The Ladder mapping").

A fully connected encoder (linear -> normalise -> +bias -> ReLU; softmax with a learned
per-unit scale on top) and a top-down decoder whose ``gauss`` combinator merges each
layer's lateral (normalised, pre-bias) encoder value with the normalised projection of the
layer above. No noise and no Ladder costs: Tagger does all corruption. Rows are N = B * K
(groups folded into the batch), so every layer is one matmul.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EPSILON = 1e-10  # the reference's normalisation epsilon (docs/design.md, "Known deviations and details")


def normalize(values: torch.Tensor, mode: str) -> torch.Tensor:
    """Standardise without learned parameters.

    Args:
        values: ``(N, H)``.
        mode: ``"batch"``: per unit over the N rows (groups and batch together, the
            reference; batch statistics also at evaluation). ``"layer"``: per row over its H units.
    """
    if values.dtype in (torch.bfloat16, torch.float16):  # autocast: statistics and all after in fp32
        values = values.float()
    # PyTorch's fused kernels compute exactly (x - mean) / sqrt(biased var + eps): one kernel
    # each way instead of ~5 forward and ~8 backward (measured: a ~15 % faster CPU step at
    # `quick` size; docs/performance.md). batch_norm refuses a single row, which the formula maps to 0.
    if mode == "layer":
        return F.layer_norm(values, values.shape[-1:], eps=EPSILON)
    if values.shape[0] > 1:
        return F.batch_norm(values, None, None, training=True, eps=EPSILON)
    variance, mean = torch.var_mean(values, dim=0, keepdim=True, correction=0)
    return (values - mean) * torch.rsqrt(variance + EPSILON)


def init_weight(fan_in: int, fan_out: int) -> nn.Parameter:
    """``randn(in, out) / sqrt(in)``, the reference's initialisation."""
    return nn.Parameter(torch.randn(fan_in, fan_out) / math.sqrt(fan_in))


class GaussCombinator(nn.Module):
    """``z_est = (z_lat - mu) w + mu`` with ``mu, w`` sigmoid-plus-linear functions of ``u``.

    ``mu = a1 sigmoid(a2 u + a3) + a4 u + a5``, ``w = a6 sigmoid(a7 u + a8) + a9 u + a10``
    (a2 = a7 = 1, the rest 0 at the start). ``stable_v`` (continuous data,
    ``gauss_stable_v``) passes ``w`` through a sigmoid.
    """

    def __init__(self, width: int, stable_v: bool = False):
        super().__init__()
        start = torch.zeros(10, width)
        start[1] = 1.0  # a2
        start[6] = 1.0  # a7
        self.params = nn.Parameter(start)  # rows a1..a10, (10, H)
        self.stable_v = stable_v

    def forward(self, lateral: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        # unbind, not a[0] .. a[9]: its backward is one stack of the ten rows' gradients, where ten
        # indexings cost ten zero-filled (10, H) copies and their sum (~30 small kernels a call)
        a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = self.params.unbind(0)  # each (H,)
        mu = a1 * torch.sigmoid(a2 * u + a3) + a4 * u + a5
        weight = a6 * torch.sigmoid(a7 * u + a8) + a9 * u + a10
        if self.stable_v:
            weight = torch.sigmoid(weight)
        return (lateral - mu) * weight + mu


class Ladder(nn.Module):
    """Fully connected Ladder: ``forward(h0) -> (bottom decoder estimate, top encoder output)``.

    Args:
        widths: ``(H0, H1, ..., HL)``; H0 is the input width.
        norm: ``"batch"`` or ``"layer"``, see :func:`normalize`.
        combinator: ``"gauss"`` or ``"gauss_stable_v"``.
    """

    def __init__(self, widths: tuple[int, ...], norm: str, combinator: str = "gauss"):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.norm = norm
        pairs = list(zip(self.widths[:-1], self.widths[1:]))
        self.encoder_weights = nn.ParameterList([init_weight(a, b) for a, b in pairs])
        self.encoder_biases = nn.ParameterList([nn.Parameter(torch.zeros(b)) for _, b in pairs])
        self.top_scale = nn.Parameter(torch.ones(self.widths[-1]))
        # decoder_weights[i] maps layer i+1 down to layer i
        self.decoder_weights = nn.ParameterList([init_weight(b, a) for a, b in pairs])
        stable = combinator == "gauss_stable_v"
        self.combinators = nn.ModuleList([GaussCombinator(w, stable) for w in self.widths])

    def encode(self, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Returns the laterals ``[h0, z1, ..., zL]`` and the top output ``(N, HL)`` (softmax)."""
        laterals = [h]
        top = len(self.encoder_weights) - 1
        for index, (weight, bias) in enumerate(zip(self.encoder_weights, self.encoder_biases)):
            lateral = normalize(h @ weight, self.norm)  # (N, H_{i+1})
            laterals.append(lateral)
            if index == top:
                h = torch.softmax((lateral + bias) * self.top_scale, dim=-1)
            else:
                h = torch.relu(lateral + bias)
        return laterals, h

    def decode(self, laterals: list[torch.Tensor], top: torch.Tensor) -> torch.Tensor:
        """Top-down pass; returns the bottom estimate ``(N, H0)``."""
        estimate = self.combinators[-1](laterals[-1], normalize(top, self.norm))
        for index in range(len(self.decoder_weights) - 1, -1, -1):
            u = normalize(estimate @ self.decoder_weights[index], self.norm)  # (N, H_index)
            estimate = self.combinators[index](laterals[index], u)
        return estimate

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        laterals, top = self.encode(h)
        return self.decode(laterals, top), top
