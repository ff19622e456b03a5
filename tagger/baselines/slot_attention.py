"""Slot Attention (Locatello et al. 2020): this project's object-discovery autoencoder baseline for the
grouping datasets (``tagger baseline --model slot-attention --dataset tetrominoes``), not a baseline of the paper.

A CNN encoder (four 5x5 convs of 32 channels, ReLU) plus a soft position embedding gives one feature
per pixel; K slots drawn from a learned Gaussian attend to them for 3 iterations (attention softmax
over *slots*, so slots compete for pixels; each slot's update is the attention-weighted *mean* of the
inputs; GRU then residual MLP); a spatial broadcast decoder (3x3 convs) turns every slot into RGB and
an alpha logit per pixel; masks = softmax over slots of alpha, the image = sum of masks x RGB; the
loss is the MSE of the reconstruction. Adam 4e-4 with a linear warm-up. FG-ARI of the masks against
the split's objects (:func:`tagger.metrics.ari`, what ``tagger eval`` scores).
Shapes: B batch, K slots, P = H * W pixels, C image channels, F feature width, S slot size.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import save_weights
from ..config import option
from ..errors import ConfigError, TrainingError
from ..evaluate import write_json
from ..metrics import ari
from ..training.runlog import RunLog

DATASETS = ("tetrominoes", "shapes")


@dataclass
class SlotConfig:
    """One Slot Attention run (``config.json`` in the run directory)."""

    dataset: str = option("tetrominoes", "the dataset", flag=None)
    slots: int = option(4, "K, slots (objects + background)")
    iterations: int = option(3, "slot attention iterations")
    features: int = option(32, "F, encoder and decoder channels")
    slot_size: int = option(64, "S, slot width")
    epochs: int = option(10, "passes over the training split")
    batch_size: int = option(32, "examples per step")
    lr: float = option(4e-4, "Adam learning rate, after the warm-up")
    warmup_steps: int = option(1000, "linear learning-rate warm-up")
    seed: int = option(1, "seeds weights, slots and batch order")
    valid_examples: int = option(1000, "validation examples per epoch (0 = all)")
    max_minutes: float = option(0.0, "stop training after this long, then test")

    def validate(self) -> "SlotConfig":
        if self.dataset not in DATASETS:
            raise ConfigError(f"slot attention runs on {', '.join(DATASETS)}, got --dataset {self.dataset!r}")
        if min(self.slots, self.iterations, self.features, self.slot_size, self.epochs, self.batch_size) < 1 \
                or not self.lr > 0 or self.warmup_steps < 0:
            raise ConfigError("--slots, --iterations, --features, --slot-size, --epochs, --batch-size and --lr must be "
                              "positive")
        return self


def position_grid(height: int, width: int, device=None) -> torch.Tensor:
    """``(H, W, 4)``: x, y, 1 - x, 1 - y in [0, 1], what the soft position embedding projects."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, height, device=device), torch.linspace(0, 1, width, device=device),
                            indexing="ij")
    return torch.stack([xs, ys, 1 - xs, 1 - ys], dim=-1)


class SlotAttention(nn.Module):
    """``forward(inputs (B, P, F), generator) -> (slots (B, K, S), attention (B, K, P))``."""

    def __init__(self, slots: int, iterations: int, features: int, slot_size: int, hidden: int = 128):
        super().__init__()
        self.slots, self.iterations, self.scale = slots, iterations, slot_size ** -0.5
        self.mu = nn.Parameter(torch.randn(slot_size) * 0.1)
        self.log_sigma = nn.Parameter(torch.zeros(slot_size))
        self.norm_inputs, self.norm_slots, self.norm_mlp = (nn.LayerNorm(n) for n in (features, slot_size, slot_size))
        self.key, self.value = nn.Linear(features, slot_size, bias=False), nn.Linear(features, slot_size, bias=False)
        self.query = nn.Linear(slot_size, slot_size, bias=False)
        self.gru = nn.GRUCell(slot_size, slot_size)
        self.mlp = nn.Sequential(nn.Linear(slot_size, hidden), nn.ReLU(), nn.Linear(hidden, slot_size))

    def forward(self, inputs: torch.Tensor, generator: torch.Generator | None = None):
        batch = inputs.shape[0]
        inputs = self.norm_inputs(inputs)
        keys, values = self.key(inputs), self.value(inputs)  # (B, P, S)
        noise = torch.randn(batch, self.slots, self.mu.shape[0], device=inputs.device, generator=generator)
        slots = self.mu + self.log_sigma.exp() * noise  # (B, K, S): exchangeable, so any K works
        for _ in range(self.iterations):
            previous = slots
            logits = torch.einsum("bks,bps->bkp", self.query(self.norm_slots(slots)), keys) * self.scale
            attention = logits.softmax(dim=1)  # (B, K, P): slots compete for every input
            weights = attention + 1e-8
            weights = weights / weights.sum(dim=-1, keepdim=True)  # weighted mean over the inputs
            updates = torch.einsum("bkp,bps->bks", weights, values)
            slots = self.gru(updates.reshape(-1, updates.shape[-1]), previous.reshape(-1, previous.shape[-1]))
            slots = slots.reshape(previous.shape)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return slots, attention


class SlotAutoEncoder(nn.Module):
    """``forward(x (B, D) pixel-major) -> dict(recon (B, D), masks (B, K, P), rgb (B, K, D), attention)``."""

    def __init__(self, image_shape: tuple[int, ...], slots: int = 4, iterations: int = 3, features: int = 32,
                 slot_size: int = 64):
        super().__init__()
        self.height, self.width = int(image_shape[0]), int(image_shape[1])
        self.channels = int(image_shape[2]) if len(image_shape) > 2 else 1
        convs = [nn.Conv2d(self.channels if i == 0 else features, features, 5, padding=2) for i in range(4)]
        self.encoder = nn.Sequential(*[layer for conv in convs for layer in (conv, nn.ReLU())])
        self.encoder_position = nn.Linear(4, features)  # soft position embedding: added to the feature map
        self.encoder_mlp = nn.Sequential(nn.LayerNorm(features), nn.Linear(features, features), nn.ReLU(),
                                         nn.Linear(features, features))
        self.attention = SlotAttention(slots, iterations, features, slot_size)
        self.decoder_position = nn.Linear(4, slot_size)
        self.decoder = nn.Sequential(nn.Conv2d(slot_size, features, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(features, features, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(features, features, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(features, self.channels + 1, 3, padding=1))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        batch = x.shape[0]
        grid = position_grid(self.height, self.width, x.device)  # (H, W, 4)
        image = x.reshape(batch, self.height, self.width, self.channels).permute(0, 3, 1, 2)
        features = self.encoder(image).permute(0, 2, 3, 1) + self.encoder_position(grid)  # (B, H, W, F)
        features = self.encoder_mlp(features.reshape(batch, self.height * self.width, -1))  # (B, P, F)
        slots, attention = self.attention(features, generator)  # (B, K, S), (B, K, P)
        groups = slots.shape[1]
        # spatial broadcast: every slot tiled over the image, plus the position embedding
        tiled = slots.reshape(batch * groups, 1, 1, -1) + self.decoder_position(grid)  # (BK, H, W, S)
        out = self.decoder(tiled.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (BK, H, W, C+1)
        out = out.reshape(batch, groups, self.height * self.width, self.channels + 1)
        rgb, alpha = out[..., :self.channels], out[..., self.channels]
        masks = alpha.softmax(dim=1)  # (B, K, P): sum to 1 over slots
        recon = (masks[..., None] * rgb).sum(dim=1).reshape(batch, -1)  # (B, D) pixel-major
        return {"recon": recon, "masks": masks, "rgb": rgb.reshape(batch, groups, -1), "attention": attention}


@torch.no_grad()
def fg_ari(model: SlotAutoEncoder, features: torch.Tensor, objects: torch.Tensor, batch_size: int = 100,
           seed: int = 0) -> float:
    """Mean FG-ARI of the masks (objects id 0 not scored), slots drawn from ``seed``."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=features.device).manual_seed(seed)
    scores = [ari(objects[i:i + batch_size], model(features[i:i + batch_size], generator)["masks"])
              for i in range(0, len(features), batch_size)]
    model.train(was_training)
    return float(torch.cat(scores).mean())


def train_slot_attention(config: SlotConfig, splits: dict, run_dir: Path, device: torch.device,
                         progress: bool = False) -> dict:
    """Train on ``splits["train"]``, score ``valid`` each epoch and ``valid``/``test`` at the end;
    writes ``config.json``, ``metrics.csv`` + ``tb/``, ``model.safetensors``, ``result.json``."""
    config.validate()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(dataclasses.asdict(config), run_dir / "config.json")
    torch.manual_seed(config.seed)
    train = splits["train"]
    model = SlotAutoEncoder(train.image_shape, config.slots, config.iterations, config.features,
                            config.slot_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    data = {name: (torch.as_tensor(split.features, device=device),
                   torch.as_tensor(np.asarray(split.objects, np.int64), device=device)) for name, split in splits.items()}
    x = data["train"][0]
    steps = max(1, len(x) // config.batch_size)
    order = torch.Generator().manual_seed(config.seed + 1)
    deadline = time.time() + config.max_minutes * 60 if config.max_minutes > 0 else math.inf
    started, done, epochs_run = time.time(), 0, 0
    with RunLog(run_dir, echo=progress) as log:
        for epoch in range(config.epochs):
            permutation, total = torch.randperm(len(x), generator=order).to(device), 0.0
            for step in range(steps):
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * min(1.0, (done + 1) / max(1, config.warmup_steps))
                batch = x[permutation[step * config.batch_size:(step + 1) * config.batch_size]]
                loss = F.mse_loss(model(batch)["recon"], batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, done = total + float(loss.detach()), done + 1
                if time.time() > deadline:
                    break
            if not math.isfinite(total):
                raise TrainingError(f"the reconstruction loss became non-finite in epoch {epoch + 1}; lower --lr")
            valid_x, valid_objects = data["valid"]
            limit = config.valid_examples or len(valid_x)
            epochs_run = epoch + 1
            log({"epoch": epochs_run, "steps": done, "loss": total / (step + 1),
                 "valid_ari": fg_ari(model, valid_x[:limit], valid_objects[:limit]),
                 "seconds": round(time.time() - started, 1)})
            save_weights(model, run_dir / "model.safetensors", {"config": json.dumps(dataclasses.asdict(config))})
            if time.time() > deadline:
                break
    result = {"config": dataclasses.asdict(config), "epochs_run": epochs_run, "steps": done,
              "train_seconds": round(time.time() - started, 1), "device": str(device)}
    for name in ("valid", "test"):
        if name in data:
            result[f"{name}_ari"] = fg_ari(model, *data[name])
    write_json(result, run_dir / "result.json")
    return result


def load_slot_splits(config: SlotConfig, data_dir=None) -> dict:
    from .. import datasets

    return {name: datasets.load(config.dataset, name, data_dir) for name in ("train", "valid", "test")}
