"""Reconstruction Clustering (RC), the earlier-work row of the paper's Table 1b.

RC (Greff, Srivastava & Schmidhuber, "Binding by Reconstruction Clustering", 2015) groups a
binary image with a plain denoising autoencoder (DAE) and an EM-like loop: each of K groups
shows the DAE its share of the image, ``gamma_k * x``; the K reconstructions then reassign
every pixel to the groups in proportion to how well they predict it. The paper reports RC on
Shapes at AMI 0.61 +- 0.005 (Tagger: 0.79 with BatchNorm, 0.97 with LayerNorm).

This follows the RC authors' code (Qwlouse/Binding, ``dae.py`` and ``run_best_nets.py``):
one hidden layer, sigmoid outputs and summed binary cross-entropy, trained with plain SGD on
salt-and-pepper-corrupted images, early stopping on the validation loss (patience 10, at
most 500 epochs, the best weights kept); at test time uniform mixing weights, an
``expectation`` E-step, masks started at ``|N(0, 1)|`` normalised over groups, 10
iterations, K = 3. Its tuned settings for Shapes are the two presets: ``single`` (trained on
one-shape images: 500 tanh units, 40 % salt and pepper, lr 0.0831) and ``multi`` (trained on
three-shape images, as Tagger is: 100 sigmoid units, 90 %, lr 0.0494, and the hard ``max``
E-step that ``run_evaluation.py`` uses for such denoisers). They were tuned on the RC code's
28x28 Shapes; here the data is the paper's 20x20 Shapes (its ``single`` and ``train`` splits).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import option
from ..errors import ConfigError

ACTIVATIONS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}
# brainstorm's DenseSqrtFanInOut: weights uniform in +-scale / sqrt(fan_in + fan_out)
INIT_SCALE = {"tanh": math.sqrt(6), "sigmoid": 4 * math.sqrt(6), "relu": math.sqrt(12), "linear": 1.0}
E_STEPS = ("expectation", "max")
TRAIN_SPLITS = {"single": "single", "multi": "train"}  # preset -> Shapes split the DAE learns from


@dataclass
class RCConfig:
    """One RC run (saved as ``config.json``).

    Attributes:
        train_set: ``single`` (one shape per image) or ``multi`` (three, the Tagger's training split).
        hidden, activation: the DAE's one hidden layer.
        noise: salt-and-pepper probability (half of the hit pixels set to 1, half to 0).
        lr: SGD step on the per-image summed cross-entropy, averaged over the batch.
        max_epochs, patience: early stopping on the validation loss (last 10 % of the split).
        groups, iterations: K and the number of RC iterations at test time.
        e_step: ``expectation`` (soft masks) or ``max`` (each pixel to its best group; the RC
            code's evaluation of the DAEs trained on multi-shape images).
        test_examples: test images scored (0 = all 10,000; the RC code scored the first 1,000).
    """

    train_set: str = option("single", "images the DAE learns from (chosen by --train-set)", flag=None)
    hidden: int = option(500, "hidden units of the denoising autoencoder")
    activation: str = option("tanh", "the hidden layer's nonlinearity", choices=tuple(ACTIVATIONS))
    noise: float = option(0.4, "salt-and-pepper probability")
    lr: float = option(0.08314720669724956, "SGD learning rate")
    batch_size: int = option(100, "images per SGD step")
    max_epochs: int = option(500, "most epochs of DAE training")
    patience: int = option(10, "early-stopping patience in epochs")
    groups: int = option(3, "K (default 3)")
    iterations: int = option(10, "RC iterations (default 10)")
    e_step: str = option("expectation", "soft or hard reassignment", choices=E_STEPS)
    seed: int = option(1, "seeds the DAE's weights, noise and batch order")
    test_examples: int = option(0, "test images scored (0 = all 10,000)")

    def validate(self) -> "RCConfig":
        if self.train_set not in TRAIN_SPLITS:
            raise ConfigError(f"--train-set must be single or multi, got {self.train_set!r}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"--activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.e_step not in E_STEPS:
            raise ConfigError(f"--e-step must be expectation or max, got {self.e_step!r}")
        if not 0.0 <= self.noise <= 1.0:
            raise ConfigError(f"--noise is a probability in [0, 1], got {self.noise}")
        for name in ("hidden", "batch_size", "max_epochs", "patience", "groups", "iterations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.test_examples < 0:
            raise ConfigError("--lr must be positive and --test-examples >= 0")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def rc_preset(train_set: str) -> RCConfig:
    """The RC code's tuned Shapes settings (``run_best_nets.py``) for one training set."""
    if train_set == "multi":
        return RCConfig(train_set="multi", hidden=100, activation="sigmoid", noise=0.9,
                        lr=0.049401835193689486, e_step="max").validate()
    return RCConfig(train_set=train_set).validate()


class DenoisingAutoencoder(nn.Module):
    """``D -> hidden -> D`` with sigmoid outputs; ``forward`` returns the logits ``(N, D)``."""

    def __init__(self, size: int, hidden: int, activation: str = "tanh"):
        super().__init__()
        self.activation = activation
        self.encoder = nn.Linear(size, hidden)
        self.decoder = nn.Linear(hidden, size)
        with torch.no_grad():  # brainstorm's initialisation: uniform weights, N(0, 0.1) biases
            for layer, kind in ((self.encoder, activation), (self.decoder, "linear")):
                bound = INIT_SCALE[kind] / math.sqrt(layer.in_features + layer.out_features)
                layer.weight.uniform_(-bound, bound)
                layer.bias.normal_(0.0, 0.1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(ACTIVATIONS[self.activation](self.encoder(inputs)))


def salt_and_pepper(x: torch.Tensor, probability: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Set a ``probability`` share of the elements to 1 or 0 (half each), as brainstorm's AddSaltNPepper."""
    draws = torch.rand(x.shape, generator=generator, device=x.device)  # (N, D)
    x = torch.where(draws >= 1.0 - probability / 2, 1.0, x)
    return torch.where(draws <= probability / 2, 0.0, x)


def denoising_loss(model: DenoisingAutoencoder, clean: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy summed over elements, averaged over the batch (nats per image)."""
    logits = model(corrupted)  # (N, D)
    return F.binary_cross_entropy_with_logits(logits, clean, reduction="sum") / clean.shape[0]


@torch.no_grad()
def cluster(model: DenoisingAutoencoder, x: torch.Tensor, groups: int = 3, iterations: int = 10,
            e_step: str = "expectation", generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run RC on a batch of binary images.

    Args:
        model: a trained denoising autoencoder.
        x: ``(B, D)`` binary images.
        groups: K.
        iterations: EM iterations.
        e_step: ``expectation`` (posterior masks) or ``max`` (1 for the best group, 0 elsewhere;
            groups that tie all get 1, as in the RC code, so such masks can sum to more than 1).
        generator: for the random start of the masks.

    Returns:
        ``(masks, reconstructions)``: masks ``(T + 1, B, K, D)`` (index 0 = the random start,
        t = after t iterations), reconstructions ``(T, B, K, D)`` (the DAE's outputs at
        iteration t + 1, from which masks[t + 1] is computed).
    """
    batch, size = x.shape
    start = torch.randn((batch, groups, size), generator=generator, device=x.device).abs()  # (B, K, D)
    masks = [start / start.sum(1, keepdim=True)]
    reconstructions = []
    target = x.unsqueeze(1)  # (B, 1, D)
    for _ in range(iterations):
        logits = model((masks[-1] * target).reshape(batch * groups, size)).reshape(batch, groups, size)  # (B, K, D)
        # log p(x | group k) = x log y + (1 - x) log (1 - y); uniform mixing weights cancel
        log_likelihood = target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)  # (B, K, D)
        if e_step == "max":  # as the RC code: every group that ties for the best gets 1 (e.g. two empty groups)
            posterior = (log_likelihood == log_likelihood.amax(1, keepdim=True)).to(logits.dtype)  # (B, K, D)
        else:
            posterior = torch.softmax(log_likelihood, dim=1)  # (B, K, D)
        masks.append(posterior)
        reconstructions.append(torch.sigmoid(logits))
    return torch.stack(masks), torch.stack(reconstructions)


def fixed_batches(count: int, batch_size: int) -> list[np.ndarray]:
    """Consecutive index batches; brainstorm's Minibatches shuffles their order, not their content."""
    return [np.arange(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]
