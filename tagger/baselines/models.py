"""Table 2's baselines: the classifiers Tagger is compared with (paper section 4.2).

- **FC MLP**: fully connected, ReLU, batch normalisation after every layer, softmax output.
- **FC Ladder**: the semi-supervised Ladder network (Rasmus et al. 2015, CuriousAI/ladder
  ``LadderAE``): a corrupted and a clean pass through one encoder, a top-down decoder with
  the ``gauss`` combinator, and a weighted denoising cost per layer. The FC MLP is this
  model with no noise and no decoder, so both are :class:`FCLadder`.
- **ConvNet**: Springenberg et al.'s Model C (3x3 convolutions, 96 then 192 channels, two
  max-poolings) with batch normalisation after every convolution, no dropout, and the final
  global pooling replaced by a fully connected layer, as the paper describes.

Shapes: B batch, D input elements, C classes, H a layer's width.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ladder import EPSILON, GaussCombinator, init_weight, normalize


class FCLadder(nn.Module):
    """Fully connected Ladder classifier (with ``decoder=False``, the FC MLP baseline).

    Encoder layer ``i``: ``z = BN(h W_i) (+ noise)``, kept as the lateral ``z``; then
    ``relu(z + b_i)``, or at the top ``softmax(c * (z + b))``. BN uses the batch's statistics
    in training and the statistics stored by :meth:`calibrate` at evaluation (the reference
    averages the training batches' statistics after training).

    Args:
        widths: ``(D, H1, ..., C)``, input to classes.
        noise: std of the Gaussian noise added to every normalised layer of the corrupted pass.
        input_noise: std of the noise added to the input of the corrupted pass.
        decoder: build the top-down decoder (needed for the denoising costs).
    """

    def __init__(self, widths: tuple[int, ...], noise: float = 0.0, input_noise: float = 0.0,
                 decoder: bool = True):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.noise, self.input_noise = float(noise), float(input_noise)
        pairs = list(zip(self.widths[:-1], self.widths[1:]))
        self.encoder_weights = nn.ParameterList([init_weight(a, b) for a, b in pairs])
        self.encoder_biases = nn.ParameterList([nn.Parameter(torch.zeros(b)) for _, b in pairs])
        self.top_scale = nn.Parameter(torch.ones(self.widths[-1]))
        if decoder:  # decoder_weights[i] maps layer i+1 down to layer i
            self.decoder_weights = nn.ParameterList([init_weight(b, a) for a, b in pairs])
            self.combinators = nn.ModuleList([GaussCombinator(w) for w in self.widths])
        for index, (_, width) in enumerate(pairs):  # population statistics for evaluation
            self.register_buffer(f"mean_{index}", torch.zeros(width))
            self.register_buffer(f"var_{index}", torch.ones(width))

    def encode(self, inputs: torch.Tensor, noisy: bool, batch_stats: bool):
        """One encoder pass.

        Returns:
            ``(laterals, stats, output)``: laterals ``[x, z_1, ..., z_L]`` (``(B, H_i)``), the
            pre-normalisation batch ``(mean, var)`` of layers 1..L, and the class
            probabilities ``(B, C)``.
        """
        h = inputs + torch.randn_like(inputs) * self.input_noise if noisy and self.input_noise else inputs
        laterals, stats = [h], []
        top = len(self.encoder_weights) - 1
        for index, (weight, bias) in enumerate(zip(self.encoder_weights, self.encoder_biases)):
            pre = h @ weight  # (B, H)
            if batch_stats:
                var, mean = torch.var_mean(pre, dim=0, correction=0)
            else:
                mean, var = getattr(self, f"mean_{index}"), getattr(self, f"var_{index}")
            stats.append((mean, var))
            z = (pre - mean) * torch.rsqrt(var + EPSILON)
            if noisy and self.noise:
                z = z + torch.randn_like(z) * self.noise
            laterals.append(z)
            h = torch.softmax((z + bias) * self.top_scale, dim=-1) if index == top else torch.relu(z + bias)
        return laterals, stats, h

    def decode(self, laterals: list[torch.Tensor], top: torch.Tensor) -> list[torch.Tensor]:
        """Top-down estimates ``[x_est, z_est_1, ..., z_est_L]`` of the clean laterals."""
        estimates = [self.combinators[-1](laterals[-1], normalize(top, "batch"))]
        for index in range(len(self.decoder_weights) - 1, -1, -1):
            u = normalize(estimates[0] @ self.decoder_weights[index], "batch")  # (B, H_index)
            estimates.insert(0, self.combinators[index](laterals[index], u))
        return estimates

    def denoising_costs(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-layer denoising costs of an (unlabelled) batch -> ``(L + 1,)``, and the corrupted output.

        Layer ``i``'s cost is ``mean over the batch of |BN_clean(z_est_i) - z_i|^2 / H_i``: the
        estimate is standardised with the clean pass's batch statistics and compared with the
        clean normalised value; at the input it is compared with the clean input directly.
        """
        clean, clean_stats, _ = self.encode(inputs, noisy=False, batch_stats=True)
        corrupted, _, output = self.encode(inputs, noisy=True, batch_stats=True)
        estimates = self.decode(corrupted, output)
        costs = [((estimates[0] - clean[0]) ** 2).mean()]
        for estimate, target, (mean, var) in zip(estimates[1:], clean[1:], clean_stats):
            normalised = (estimate - mean) * torch.rsqrt(var + EPSILON)
            costs.append(((normalised - target) ** 2).mean())
        return torch.stack(costs), output

    def forward(self, inputs: torch.Tensor, noisy: bool | None = None) -> torch.Tensor:
        """Class probabilities ``(B, C)``: corrupted pass with batch statistics in training,
        clean pass with the calibrated statistics at evaluation (``noisy`` overrides)."""
        noisy = self.training if noisy is None else noisy
        return self.encode(inputs, noisy=noisy, batch_stats=self.training)[2]

    @torch.no_grad()
    def calibrate(self, batches) -> None:
        """Store the mean of the clean pass's batch means and (unbiased) variances over ``batches``."""
        sums, count = None, 0
        for batch in batches:
            _, stats, _ = self.encode(batch, noisy=False, batch_stats=True)
            n = batch.shape[0]
            values = [(mean, var * n / max(n - 1, 1)) for mean, var in stats]
            sums = values if sums is None else [(a + m, b + v) for (a, b), (m, v) in zip(sums, values)]
            count += 1
        for index, (mean, var) in enumerate(sums or []):
            getattr(self, f"mean_{index}").copy_(mean / count)
            getattr(self, f"var_{index}").copy_(var / count)


def _conv(channels_in: int, channels_out: int, size: int, padding: int) -> list[nn.Module]:
    return [nn.Conv2d(channels_in, channels_out, size, padding=padding, bias=False),
            nn.BatchNorm2d(channels_out), nn.ReLU()]


class ConvNet(nn.Module):
    """Model C (Springenberg et al. 2015) as the paper adapted it: BN after every layer, no
    dropout, a fully connected layer in place of the final global pooling.

    ``28x28 -> 3 x conv3x3(96) -> maxpool 2 -> 3 x conv3x3(192) -> maxpool 2 -> conv3x3(192,
    valid) -> conv1x1(192) -> conv1x1(C) -> FC(C)``, i.e. 28 -> 14 -> 7 -> 5 pixels.

    Args:
        image_shape: ``(H, W)`` of the flat ``(B, D)`` input.
        classes: C.
    """

    def __init__(self, image_shape: tuple[int, int] = (28, 28), classes: int = 10):
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers = _conv(1, 96, 3, 1) + _conv(96, 96, 3, 1) + _conv(96, 96, 3, 1) + [nn.MaxPool2d(2)]
        layers += _conv(96, 192, 3, 1) + _conv(192, 192, 3, 1) + _conv(192, 192, 3, 1) + [nn.MaxPool2d(2)]
        layers += _conv(192, 192, 3, 0) + _conv(192, 192, 1, 0) + _conv(192, classes, 1, 0)
        self.features = nn.Sequential(*layers)
        side = [((s // 2) // 2) - 2 for s in self.image_shape]
        self.classifier = nn.Linear(classes * side[0] * side[1], classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` -> class probabilities ``(B, C)``."""
        images = inputs.view(-1, 1, *self.image_shape)  # (B, 1, H, W)
        return torch.softmax(self.classifier(self.features(images).flatten(1)), dim=-1)
