"""The TAG framework (docs/design.md, "The TAG loop") wrapped around a parametric mapping.

Each iteration, every group k receives ``[z_k, dz_k, m_k, L(m_k)]`` (4D values), is
projected to H0 units (linear, normalise, bias, ReLU), passes through the mapping (a
Ladder by default; groups folded into the batch so all groups share it) and is read out
as a new reconstruction ``z_k`` and mask logits; the masks are a softmax over groups.
With ``config.mapping == "conv"`` (this project's extension, :mod:`tagger.conv_ladder`) the same
inputs are a ``(2C+2)``-channel image per group and the conv mapping owns projection and read-out.
Shapes: B batch, K groups, T iterations, D input elements, P pixels, C channels, H0 mapping width.

Masks belong to pixels: an object owns a pixel, not one of its colour channels. With
``config.channels == C > 1`` (colour images stored pixel-major, D = P * C) masks and the
likelihood ratio are ``(B, K, P)``, shared over a pixel's channels; reconstructions and the
modelling error stay ``(B, K, D)``. With C = 1 (Shapes, TextureMNIST) P = D and the loop is
exactly the reference's per-element one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .conv_ladder import ConvLadder
from .inputs import check_batch, check_count, check_values, group_indices
from .ladder import Ladder, init_weight, normalize
from .likelihood import make_likelihood, spread_channels, sum_channels

REMOVED_LOGIT = -1e4  # "a large negative number" (paper, section 3.2): exp() of it is 0 in fp32 and bf16


@dataclass
class Draws:
    """The random numbers of one run of the loop, drawn up front so a batch can be split
    across processes (DDP) and still see exactly the numbers one process would.

    Attributes:
        corruption: ``(B, D)`` standard draws for the likelihood's corruption, or None (clean).
        mask_logits: ``(B, K, P)`` standard normals; ``m0 = softmax_K(mask_logits)``.
    """

    corruption: torch.Tensor | None
    mask_logits: torch.Tensor

    def shard(self, start: int, stop: int) -> "Draws":
        corruption = None if self.corruption is None else self.corruption[start:stop]
        return Draws(corruption, self.mask_logits[start:stop])


@dataclass
class TaggerOutput:
    """What one run of the TAG loop returns.

    Attributes:
        costs: ``(T, B)`` denoising cost per iteration and example (mean over elements).
        masks: ``(T, B, K, P)`` group assignments after each iteration (sum to 1 over K; P = D
            unless the data has channels).
        reconstructions: ``(T, B, K, D)`` each group's reconstruction ``z`` after each iteration.
        top: ``(T, B, K, HL)`` the mapping's top-layer output (class predictions), if kept.
        last_top: ``(B, K, HL)`` the top-layer output of the last iteration (always kept; the
            class cost of :mod:`tagger.classify` reads it).
    """

    costs: torch.Tensor
    masks: torch.Tensor | None = None
    reconstructions: torch.Tensor | None = None
    top: torch.Tensor | None = None
    last_top: torch.Tensor | None = None

    @property
    def loss(self) -> torch.Tensor:
        """The training cost: denoising cost averaged over iterations and batch."""
        return self.costs.mean()


class Tagger(nn.Module):
    """Tagger: TAG with a Ladder mapping and a binary or Gaussian input likelihood."""

    def __init__(self, config: ModelConfig, mapping: nn.Module | None = None):
        super().__init__()
        config.validate()
        self.config = config
        size, width = config.input_size, config.widths[0]
        self.channels, self.pixels = config.channels, size // config.channels
        self.likelihood = make_likelihood(config.likelihood, config.noise, config.v_init, config.v_param)
        if config.mapping == "conv":  # owns its input conv and read-out (tagger/conv_ladder.py)
            self.mapping = mapping if mapping is not None else ConvLadder(
                config.image_shape, config.conv_channels, config.conv_strides, config.conv_kernel, config.norm,
                self.likelihood.combinator, config.conv_padding, config.conv_coords)
            return
        # the mapping sees [z_in, dz] per element and [m, L(m)] per pixel
        self.input_weight = init_weight(2 * size + 2 * self.pixels, width)
        self.input_bias = nn.Parameter(torch.zeros(width))
        self.mapping = mapping if mapping is not None else Ladder(
            config.widths, config.norm, self.likelihood.combinator)
        self.z_weight = init_weight(width, size)
        self.z_scale = nn.Parameter(torch.ones(size))
        self.z_bias = nn.Parameter(torch.zeros(size))
        self.m_weight = init_weight(width, self.pixels)
        self.m_scale = nn.Parameter(torch.ones(()))

    def draw(self, batch: int, groups: int, device, dtype=torch.float32, generator=None,
             corrupt: bool = True) -> Draws:
        """Draw the corruption (first) and the initial mask logits for a batch."""
        size = self.config.input_size
        corruption = self.likelihood.draw((batch, size), device, dtype, generator) if corrupt else None
        logits = torch.randn((batch, groups, self.pixels), device=device, dtype=dtype, generator=generator)
        return Draws(corruption, logits)

    def initial_state(self, mask_logits: torch.Tensor):
        """``z0 = config.z0`` ``(B, K, D)`` and ``m0 = softmax_K(mask_logits)`` ``(B, K, P)``."""
        batch, groups, _ = mask_logits.shape
        z0 = mask_logits.new_full((batch, groups, self.config.input_size), self.config.z0)
        return z0, torch.softmax(mask_logits, dim=1)

    def per_element(self, masks: torch.Tensor) -> torch.Tensor:
        """Pixel masks ``(..., P)`` spread over each pixel's channels: ``(..., D)``."""
        return spread_channels(masks, self.channels)

    def likelihood_ratio(self, x_noisy: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``L(m)`` ``(B, K, P)``: each group's likelihood of a whole pixel, normalised over K."""
        if self.channels == 1:
            return self.likelihood.likelihood_ratio(x_noisy, z)
        # (B, K, P): a pixel's channels are independent given the group
        loss = sum_channels(self.likelihood.loss(x_noisy, z), self.channels)
        return torch.softmax(-loss, dim=1)

    def cost(self, x: torch.Tensor, z: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Per-example denoising cost ``(B,)`` against the clean ``x``: Gaussian, the mixture's
        likelihood per pixel (channels summed); binary, the reference's cross-entropy of the
        mask-weighted mean per element (a pixel's mask weighs each of its channels)."""
        return self.likelihood.cost(x, z, masks, self.channels)

    def posterior(self, x: torch.Tensor, z: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``(B, K, P)`` posterior group probabilities of each pixel of the clean ``x`` (B, D) given one
        iteration's ``z`` (B, K, D) and ``masks`` (B, K, P): the masks reweighted by how well each group
        explains the pixel. ``tagger eval --assign posterior`` scores these instead of the masks."""
        return self.likelihood.posterior(x, z, masks, self.channels)

    def iterate(self, x_noisy, z, z_in, masks, removed: torch.Tensor | None = None):
        """One TAG iteration for all groups.

        Args:
            x_noisy: ``(B, 1, D)`` the (corrupted) input every bottom-up quantity uses.
            z, z_in: ``(B, K, D)`` current reconstructions and what the mapping sees of them.
            masks: ``(B, K, P)`` current masks.
            removed: optional ``(K,)`` bool: these groups' mask logits are set to a large
                negative number before the softmax over groups (the paper's Figure 4b, E2).

        Returns:
            ``(z, z_in, masks, top)`` for the next iteration; ``top`` is ``(B, K, HL)``.
        """
        ratio = self.likelihood_ratio(x_noisy, z)  # (B, K, P)
        error = self.likelihood.modelling_error(x_noisy, z, self.per_element(masks))  # (B, K, D)
        mapped = self.mapping if self.config.mapping == "conv" else self.fully_connected
        pre, logits, top = mapped(z_in, error, masks, ratio)  # (B, K, D), (B, K, P), (B, K, HL)
        if removed is not None:
            logits = logits.masked_fill(removed[None, :, None], REMOVED_LOGIT)
        masks = torch.softmax(logits, dim=1)
        z = self.likelihood.reconstruct(pre)
        return z, self.likelihood.mapping_input(pre, z), masks, top

    def fully_connected(self, z_in, error, masks, ratio):
        """The paper's path: ``[z_in, dz, m, L(m)]`` projected to H0 (linear, normalise, bias, ReLU),
        the Ladder, and linear read-outs; returns ``pre`` ``(B, K, D)``, ``logits`` ``(B, K, P)``, ``top``."""
        batch, groups, size = z_in.shape
        features = torch.cat([z_in, error, masks, ratio], dim=-1).reshape(batch * groups, -1)  # (BK, 2D+2P)
        norm = self.config.norm
        hidden = torch.relu(normalize(features @ self.input_weight, norm) + self.input_bias)  # (BK, H0)
        bottom, top = self.mapping(hidden)  # (BK, H0), (BK, HL)
        pre = self.z_scale * normalize(bottom @ self.z_weight, norm) + self.z_bias  # (BK, D)
        logits = self.m_scale * normalize(bottom @ self.m_weight, norm)  # (BK, P)
        return (pre.reshape(batch, groups, size), logits.reshape(batch, groups, self.pixels),
                top.reshape(batch, groups, -1))

    def forward(self, x: torch.Tensor, iterations: int | None = None, groups: int | None = None,
                corrupt: bool = True, keep: bool = False, generator: torch.Generator | None = None,
                draws: Draws | None = None, remove_groups: tuple[int, ...] = ()) -> TaggerOutput:
        """Run the TAG loop on a batch.

        Args:
            x: ``(B, D)`` clean inputs; the costs are always measured against them.
            iterations: T (default: the training value).
            groups: K (default: the training value); any K >= 1 works with the same weights.
            corrupt: corrupt ``x`` once (training, denoising cost); False runs on the clean input.
            keep: also return masks, reconstructions and top outputs of every iteration.
            generator: optional RNG for the corruption and the initial masks.
            draws: pre-drawn random numbers (see :class:`Draws`); drawn here if None.
            remove_groups: groups removed in the last iteration: their masks are set to 0 just
                before the final softmax, so the others explain the whole input (Figure 4b, E2).

        Returns:
            A :class:`TaggerOutput`.
        """
        iterations = self.config.iterations if iterations is None else iterations
        groups = self.config.groups if groups is None else groups
        self.check_input(x, iterations, groups)
        x = x.to(self.mapping_dtype)  # float64 / float16 inputs run in the model's dtype
        if not (self.training and torch.is_grad_enabled()):  # not in training steps: no host sync there
            check_values(x, self.config.likelihood)
        removed = self.removal(remove_groups, groups, x.device)
        if draws is None:
            draws = self.draw(x.shape[0], groups, x.device, x.dtype, generator, corrupt)
        x_noisy = self.likelihood.corrupt(x, draws.corruption) if corrupt else x
        x_noisy = x_noisy.unsqueeze(1)  # (B, 1, D)
        z, masks = self.initial_state(draws.mask_logits)
        z_in = z
        costs, kept = [], {"masks": [], "reconstructions": [], "top": []}
        for t in range(iterations):
            z, z_in, masks, top = self.iterate(x_noisy, z, z_in, masks, removed if t == iterations - 1 else None)
            costs.append(self.cost(x, z, masks))  # (B,)
            if keep:
                kept["masks"].append(masks)
                kept["reconstructions"].append(z)
                kept["top"].append(top)
        stacked = {key: torch.stack(value) if keep else None for key, value in kept.items()}
        return TaggerOutput(costs=torch.stack(costs), last_top=top, **stacked)

    @staticmethod
    def removal(remove_groups, groups: int, device) -> torch.Tensor | None:
        """``(K,)`` bool of the groups to remove, or None; one-line errors for impossible requests."""
        remove_groups = group_indices(remove_groups, groups)
        if not remove_groups:
            return None
        if len(set(remove_groups)) == groups:
            raise ValueError("cannot remove every group")
        removed = torch.zeros(groups, dtype=torch.bool, device=device)
        removed[list(remove_groups)] = True
        return removed

    def check_input(self, x: torch.Tensor, iterations: int, groups: int) -> None:
        """Raise ``ValueError`` with a one-line message for inputs the model cannot take."""
        check_batch(x, self.config.input_size)
        check_count("iterations", iterations)
        check_count("groups", groups)

    @torch.no_grad()
    def infer(self, x: torch.Tensor, iterations: int = 5, groups: int | None = None,
              corrupt: bool = False, generator: torch.Generator | None = None,
              remove_groups: tuple[int, ...] = ()) -> TaggerOutput:
        """Group a batch: masks ``(T, B, K, P)`` and reconstructions ``(T, B, K, D)`` of every iteration.

        Runs on the clean input unless ``corrupt`` (then ``costs`` are denoising costs). The initial
        masks (and the corruption) are random: without a ``generator`` two calls on the same input
        differ; pass ``torch.Generator().manual_seed(s)`` for repeatable output (``tagger eval``
        and ``show`` use ``--seed``, default 0). Inputs are checked (:mod:`tagger.inputs`): NaN/inf,
        binary-likelihood values outside [0, 1] and non-integer ``iterations``/``groups`` are
        refused; float64/float16 inputs are converted to the model's dtype.
        ``remove_groups`` drops those groups in the last iteration (see :meth:`forward`);
        ``(masks * reconstructions).sum(K)`` then shows the input without them.
        """
        return self.forward(x, iterations=iterations, groups=groups, corrupt=corrupt,
                            keep=True, generator=generator, remove_groups=remove_groups)

    @torch.no_grad()
    def segment(self, x: torch.Tensor, iterations: int = 5, groups: int | None = None,
                generator: torch.Generator | None = None, assign: str = "masks") -> torch.Tensor:
        """The last iteration's masks of a batch ``x`` (B, D) as images: ``(B, K, H, W)`` (``(B, K, P)``
        where the config records no image shape). ``assign="posterior"`` returns each pixel's
        posterior instead (:meth:`posterior`). Sum to 1 over K; ``argmax(dim=1)`` is the grouping."""
        out = self.infer(x, iterations=iterations, groups=groups, generator=generator)
        masks = out.masks[-1]  # (B, K, P)
        if assign == "posterior":
            masks = self.posterior(x.to(masks.dtype), out.reconstructions[-1], masks)
        elif assign != "masks":
            raise ValueError(f"assign must be masks or posterior, got {assign!r}")
        shape = self.config.image_shape  # (H, W[, C]), unless --input-size was changed beside a preset
        if shape and shape[0] * shape[1] == self.pixels:
            return masks.reshape(*masks.shape[:2], *shape[:2])
        return masks

    @property
    def mapping_dtype(self) -> torch.dtype:
        """The dtype the weights (and so the inputs) are in."""
        return next(self.parameters()).dtype

    def flops_per_example(self, iterations: int | None = None, groups: int | None = None) -> float:
        """Matmul (or conv) FLOPs of one forward pass per example (2 per multiply-add)."""
        count = (groups or self.config.groups) * (iterations or self.config.iterations)
        if self.config.mapping == "conv":
            return 2.0 * self.mapping.macs_per_group() * count
        widths = self.config.widths
        size, pixels = self.config.input_size, self.pixels
        per_group = (2 * size + 2 * pixels) * widths[0] + widths[0] * (size + pixels)
        per_group += 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        return 2.0 * per_group * count


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


