"""A convolutional Ladder as Tagger's mapping (``ModelConfig.mapping == "conv"``): this project's
extension, not the paper's (the paper's Tagger uses the fully connected Ladder of :mod:`.ladder`).

After Rasmus et al. (2015)'s Conv Ladder (CuriousAI/ladder ``f_conv`` / ``g_deconv``): every encoder
level is conv -> normalise (the lateral ``z``) -> +bias per channel -> ReLU; the decoder maps the
estimate of the level above down to this level's size, normalises it (``u``) and merges it with the
lateral by the same ``gauss`` combinator as the FC Ladder, with one set of ten parameters per
channel, shared by every pixel (the reference's ``for_conv`` broadcast). Deviations from the
reference, and why:

- upsampling is nearest-neighbour followed by a stride-1 conv, where the reference inserts zeros and
  runs a full conv (a transposed conv): the same receptive field without checkerboard artefacts,
  and with circular padding the whole mapping is exactly equivariant to shifts by the total stride
  (tests/test_conv_ladder.py checks it);
- "same" padding (zeros or circular) at every conv, where the reference used valid/full borders,
  so level 0 keeps the image size and the read-out is one value per pixel;
- no noise and no Ladder costs: Tagger does all corruption, as with the FC mapping.

Groups are folded into the batch (N = B * K), so all groups share the weights, as in the FC path.
Shapes: B batch, K groups, N = B * K, P = H * W pixels, C image channels, c_i channels of level i.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .ladder import EPSILON, GaussCombinator


def normalize_map(values: torch.Tensor, mode: str) -> torch.Tensor:
    """Standardise a feature map ``(N, c, H, W)`` without learned parameters.

    ``"batch"``: per channel over the N * H * W rows (a conv layer's batch normalisation, the
    reference's ``norm_ax = (0, -2, -1)``; batch statistics also at evaluation, as the FC path).
    ``"layer"``: per example over its c * H * W values, so a group's output never depends on the
    rest of the batch and a circular shift of the input leaves the statistics unchanged.
    """
    if values.dtype in (torch.bfloat16, torch.float16):  # autocast: statistics in fp32, as normalize()
        values = values.float()
    if mode == "layer":
        return F.layer_norm(values, values.shape[1:], eps=EPSILON)
    return F.batch_norm(values, None, None, training=True, eps=EPSILON)


class MapCombinator(GaussCombinator):
    """The FC Ladder's ``gauss`` combinator with params ``(10, c, 1, 1)``: per channel, broadcast over pixels."""

    def __init__(self, channels: int, stable_v: bool = False):
        super().__init__(channels, stable_v)
        self.params = nn.Parameter(self.params.detach()[:, :, None, None].clone())


def conv_weight(fan_out: int, fan_in: int, kernel: int) -> nn.Parameter:
    """``randn(out, in, k, k) / sqrt(in k k)``: the FC path's ``init_weight`` variance for a conv."""
    return nn.Parameter(torch.randn(fan_out, fan_in, kernel, kernel) / math.sqrt(fan_in * kernel * kernel))


class ConvLadder(nn.Module):
    """Tagger's convolutional mapping: ``forward(z_in, error, masks, ratio) -> (pre, logits, top)``.

    Owns its input projection and read-out (the FC path's ``input_weight`` / ``z_weight`` /
    ``m_weight`` do not exist in a conv model): a stride-1 conv from the group's image to level 0
    (normalise, bias, ReLU: the FC path's input layer), the Ladder's levels 1..L, and a 1x1 conv
    from the decoder's level-0 estimate to C reconstruction channels and one mask-logit channel.

    Args:
        image_shape: ``(H, W)`` or ``(H, W, C)`` of one example (inputs stored pixel-major, D = H W C).
        channels: ``(c0, c1, ..., cL)`` channels of each level; level 0 is at full resolution.
        strides: ``(s1, ..., sL)`` stride of the conv into each level 1..L (1 or 2).
        kernel: odd kernel size of every conv but the read-out.
        norm: ``"batch"`` or ``"layer"``, see :func:`normalize_map`.
        combinator: ``"gauss"`` or ``"gauss_stable_v"``.
        padding: ``"zeros"`` or ``"circular"`` (exact shift equivariance; a torus, not an image).
        coords: add two coordinate channels (x, y ramps in [-1, 1]) to every group's input, a soft
            position embedding: convs alone see only the zero border, so without them a group cannot
            prefer a place in the image except through its mask and the input (off by default; it
            breaks the shift equivariance, on purpose).
    """

    def __init__(self, image_shape: tuple[int, ...], channels: tuple[int, ...], strides: tuple[int, ...],
                 kernel: int = 3, norm: str = "layer", combinator: str = "gauss", padding: str = "zeros",
                 coords: bool = False):
        super().__init__()
        self.height, self.width = int(image_shape[0]), int(image_shape[1])
        self.colours = int(image_shape[2]) if len(image_shape) > 2 else 1
        self.channels, self.strides = tuple(int(c) for c in channels), tuple(int(s) for s in strides)
        assert len(self.strides) == len(self.channels) - 1, "one stride per level above level 0"
        self.kernel, self.norm, self.padding, self.coords = int(kernel), norm, padding, bool(coords)
        inputs = 2 * self.colours + 2 + (2 if coords else 0)  # [z_in, dz] per channel, [m, L(m)] per pixel
        self.input_weight = conv_weight(self.channels[0], inputs, self.kernel)
        self.input_bias = nn.Parameter(torch.zeros(self.channels[0]))
        pairs = list(zip(self.channels[:-1], self.channels[1:]))
        self.encoder_weights = nn.ParameterList([conv_weight(b, a, self.kernel) for a, b in pairs])
        self.encoder_biases = nn.ParameterList([nn.Parameter(torch.zeros(b)) for _, b in pairs])
        # decoder_weights[i] maps (the upsampled) level i+1 down to level i's channels
        self.decoder_weights = nn.ParameterList([conv_weight(a, b, self.kernel) for a, b in pairs])
        stable = combinator == "gauss_stable_v"
        self.combinators = nn.ModuleList([MapCombinator(c, stable) for c in self.channels])
        self.readout_weight = conv_weight(self.colours + 1, self.channels[0], 1)  # 1x1: C recon + 1 mask
        self.z_scale = nn.Parameter(torch.ones(self.colours, 1, 1))
        self.z_bias = nn.Parameter(torch.zeros(self.colours, 1, 1))
        self.m_scale = nn.Parameter(torch.ones(()))

    def conv(self, h: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """``(N, a, H, W) -> (N, b, ceil(H / stride), ceil(W / stride))``, "same" padding of the chosen kind."""
        pad = weight.shape[-1] // 2
        if self.padding == "circular" and pad:
            return F.conv2d(F.pad(h, (pad,) * 4, mode="circular"), weight, stride=stride)
        return F.conv2d(h, weight, stride=stride, padding=pad)

    def sizes(self) -> list[tuple[int, int]]:
        """``(H_i, W_i)`` of every level."""
        sizes = [(self.height, self.width)]
        for stride in self.strides:
            height, width = sizes[-1]
            sizes.append((-(-height // stride), -(-width // stride)))
        return sizes

    def image(self, z_in, error, masks, ratio) -> torch.Tensor:
        """The FC path's per-group input ``[z_in, dz, m, L(m)]`` as an image ``(N, 2C+2[+2], H, W)``."""
        batch, groups, _ = z_in.shape
        per_pixel = (batch, groups, self.height, self.width, self.colours)
        image = torch.cat([z_in.reshape(per_pixel), error.reshape(per_pixel),
                           masks.reshape(*per_pixel[:-1], 1), ratio.reshape(*per_pixel[:-1], 1)], dim=-1)
        image = image.reshape(batch * groups, self.height, self.width, -1).permute(0, 3, 1, 2)  # (N, 2C+2, H, W)
        if self.coords:
            ys = torch.linspace(-1, 1, self.height, device=image.device, dtype=image.dtype)
            xs = torch.linspace(-1, 1, self.width, device=image.device, dtype=image.dtype)
            grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # (2, H, W)
            image = torch.cat([image, grid.expand(image.shape[0], -1, -1, -1)], dim=1)
        return image

    def encode(self, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Laterals ``[h0, z1, ..., zL]`` (``(N, c_i, H_i, W_i)``) and the top map ``(N, cL, HL, WL)``.

        As in the FC Ladder, level 0's lateral is the input layer's output and level i's is the
        normalised, pre-bias conv; unlike it, the top is a ReLU map, not a softmax (no classes here)."""
        h = torch.relu(normalize_map(self.conv(h, self.input_weight), self.norm) + self.input_bias[:, None, None])
        laterals = [h]
        for weight, bias, stride in zip(self.encoder_weights, self.encoder_biases, self.strides):
            lateral = normalize_map(self.conv(h, weight, stride), self.norm)
            laterals.append(lateral)
            h = torch.relu(lateral + bias[:, None, None])
        return laterals, h

    def decode(self, laterals: list[torch.Tensor], top: torch.Tensor) -> torch.Tensor:
        """Top-down pass; the estimate of level 0 ``(N, c0, H, W)``."""
        estimate = self.combinators[-1](laterals[-1], normalize_map(top, self.norm))
        for index in range(len(self.decoder_weights) - 1, -1, -1):
            height, width = laterals[index].shape[-2:]
            if self.strides[index] > 1:  # nearest upsampling, cropped where the size was odd (35 -> 18 -> 36)
                estimate = F.interpolate(estimate, scale_factor=self.strides[index], mode="nearest")
                estimate = estimate[..., :height, :width]
            u = normalize_map(self.conv(estimate, self.decoder_weights[index]), self.norm)  # (N, c_i, H_i, W_i)
            estimate = self.combinators[index](laterals[index], u)
        return estimate

    def forward(self, z_in, error, masks, ratio):
        """One TAG iteration's mapping for all groups.

        Args:
            z_in, error: ``(B, K, D)`` what the mapping sees of the reconstructions, and the modelling error.
            masks, ratio: ``(B, K, P)`` the masks and the likelihood ratio ``L(m)``.

        Returns:
            ``pre`` ``(B, K, D)`` the reconstructions' pre-activation (pixel-major, channels last),
            ``logits`` ``(B, K, P)`` the mask logits and ``top`` ``(B, K, cL)`` the top map's mean
            over pixels (what the FC path's class read-out would see).
        """
        batch, groups, _ = z_in.shape
        laterals, top = self.encode(self.image(z_in, error, masks, ratio))
        out = self.conv(self.decode(laterals, top), self.readout_weight)  # (N, C+1, H, W)
        # read-out as the FC path: normalise, then a scale and bias per reconstruction channel, one
        # scale for the mask logits (per channel, not per pixel: a conv knows no absolute place)
        pre = self.z_scale * normalize_map(out[:, :self.colours], self.norm) + self.z_bias  # (N, C, H, W)
        logits = self.m_scale * normalize_map(out[:, self.colours:], self.norm)  # (N, 1, H, W)
        pre = pre.permute(0, 2, 3, 1).reshape(batch, groups, -1)  # pixel-major, channels last: (B, K, D)
        return pre, logits.reshape(batch, groups, -1), top.mean(dim=(2, 3)).reshape(batch, groups, -1)

    def macs_per_group(self) -> int:
        """Multiply-adds of the convs of one group and iteration (the read-out included)."""
        sizes = self.sizes()
        inputs = self.input_weight.shape[1]
        total = inputs * self.channels[0] * self.kernel ** 2 * sizes[0][0] * sizes[0][1]
        for (a, b), (height, width), below in zip(zip(self.channels[:-1], self.channels[1:]), sizes[1:], sizes[:-1]):
            total += a * b * self.kernel ** 2 * height * width  # encoder conv into level i+1
            total += b * a * self.kernel ** 2 * below[0] * below[1]  # decoder conv down to level i
        return total + self.channels[0] * (self.colours + 1) * sizes[0][0] * sizes[0][1]
