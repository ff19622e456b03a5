"""Training and evaluation of Table 2's baselines on TextureMNIST (``tagger baseline``).

The paper names the models (FC MLP 2000-2000-2000 with 50k labels / 1000-1000 with 1k, FC
Ladder 3000-2000-1000-500-250, ConvNet after Model C) and the task (softmax, categorical
cross-entropy, 0.5 / 0.5 targets for two digits, top-2 partial-credit error), not their
training. The baselines were run with the Ladder code base (CuriousAI/ladder ``run.py``), so
its defaults fill the gaps: Adam 0.002 decaying linearly to 0 over the last third of 150
epochs, batches of 100 labelled (+ 100 unlabelled for the Ladder) examples, an epoch being one
pass over the unlabelled set (Ladder) or the labelled set (supervised models). The Ladder's
noise and denoising-cost weights are that repository's MNIST settings with 1,000 labels
(``mnist_1000_full``) and with all labels (``mnist_all_full``); the paper does not give the
TextureMNIST ones. Labelled examples are chosen as for Tagger (:func:`tagger.classify.labeled_subset`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import save_weights
from ..classify import class_error, cross_entropy
from ..config import option
from ..errors import ConfigError, TrainingError
from ..evaluate import write_json
from ..training.labeled import choose_labeled
from ..training.runlog import RunLog
from .models import ConvNet, FCLadder

MODELS = ("mlp", "ladder", "convnet")
DATASETS = ("texture-mnist", "mnist")
CLASSES = 10


@dataclass
class BaselineConfig:
    """One baseline run (saved as ``config.json`` in the run directory).

    Attributes:
        model: ``mlp``, ``ladder`` or ``convnet``.
        dataset: ``texture-mnist`` (Table 2) or ``mnist`` (plain MNIST: a check of the baselines
            against the Ladder paper's own numbers).
        digits: TextureMNIST1 or 2 (1 for plain MNIST).
        labeled: labelled training examples, 100 per class (0 = all 50k).
        widths: hidden layer sizes (FC models).
        noise, input_noise: the Ladder's corruption of every layer and of the input.
        denoising: the Ladder's denoising-cost weight per layer, input first (``len(widths) + 2``).
        decay_start: fraction of the epochs after which the learning rate decays linearly to 0.
        valid_examples: validation images scored per epoch (0 = all 10k).
    """

    model: str = option("mlp", "the classifier (chosen by --model)", flag=None)
    dataset: str = option("texture-mnist", "the dataset (chosen by --dataset)", flag=None)
    digits: int = option(2, "TextureMNIST1 or 2 (chosen by --digits)", flag=None)
    labeled: int = option(1000, "labelled examples (chosen by --labeled)", flag=None)
    widths: tuple[int, ...] = option((1000, 1000), "hidden layer sizes of the FC models, e.g. 1000-1000")
    noise: float = option(0.0, "Ladder: noise std on every layer")
    input_noise: float = option(0.0, "Ladder: noise std on the input")
    denoising: tuple[float, ...] = option((), "Ladder: denoising weights, input first, e.g. 2000,20,0.1,...")
    epochs: int = option(150, "passes over the labelled (supervised) or unlabelled (Ladder) set")
    batch_size: int = option(100, "examples per step")
    lr: float = option(0.002, "Adam learning rate (default 0.002)")
    decay_start: float = option(0.67, "fraction of epochs before the linear lr decay (0.67)")
    seed: int = option(1, "seeds weights, labelled subset and batch order")
    valid_examples: int = option(2000, "validation images per epoch (0 = all; default 2000)")
    max_minutes: float = option(0.0, "stop training after this long, then test")

    def validate(self) -> "BaselineConfig":
        if self.model not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.dataset not in DATASETS:
            raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.digits not in ((1,) if self.dataset == "mnist" else (1, 2)):
            raise ConfigError(f"--digits must be 1 or 2, got {self.digits}")
        if self.labeled < 0 or self.labeled % CLASSES:
            raise ConfigError(f"--labeled must be 0 (all) or a positive multiple of {CLASSES}, got {self.labeled}")
        if self.model == "ladder" and len(self.denoising) != len(self.widths) + 2:
            raise ConfigError(f"--denoising needs {len(self.widths) + 2} weights (input, each layer, top), "
                              f"got {len(self.denoising)}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError("--epochs, --batch-size and --lr must be positive")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ConfigError(f"--decay-start must be in [0, 1], got {self.decay_start}")
        return self


def baseline_preset(model: str, labeled: int = 1000, digits: int = 2, dataset: str = "texture-mnist") -> BaselineConfig:
    """The paper's baseline ``model`` for ``labeled`` labels (0 = all) on TextureMNIST``digits``.

    On plain MNIST the Ladder is the Ladder paper's (1000-500-250-250-250) with the same settings.
    """
    everything = labeled == 0
    digits = 1 if dataset == "mnist" else digits
    config = BaselineConfig(model=model, dataset=dataset, digits=digits, labeled=labeled)
    if model == "mlp":
        config.widths = (2000, 2000, 2000) if everything else (1000, 1000)
    elif model == "ladder":
        config.widths = (1000, 500, 250, 250, 250) if dataset == "mnist" else (3000, 2000, 1000, 500, 250)
        config.input_noise = 0.3
        config.noise = 0.3 if everything else 0.2
        config.denoising = (1000.0, 1.0) + (0.01,) * 5 if everything else (2000.0, 20.0) + (0.1,) * 5
    elif model == "convnet":
        config.widths = ()
    return config.validate()


def build_model(config: BaselineConfig, input_size: int, image_shape: tuple[int, int]) -> torch.nn.Module:
    if config.model == "convnet":
        return ConvNet(image_shape, CLASSES)
    widths = (input_size, *config.widths, CLASSES)
    if config.model == "ladder":
        return FCLadder(widths, noise=config.noise, input_noise=config.input_noise, decoder=True)
    return FCLadder(widths, decoder=False)


def learning_rate(config: BaselineConfig, epoch: int) -> float:
    """Adam's rate in (0-based) ``epoch``: constant, then linear decay to 0 (``run.py``'s LRDecay)."""
    start = config.epochs * config.decay_start
    if epoch < start:
        return config.lr
    return config.lr * max(0.0, (config.epochs - epoch) / max(config.epochs - start, 1e-9))


@torch.no_grad()
def classification_error(model: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor,
                         batch_size: int = 500) -> float:
    """Mean Table 2 error in % over the examples (evaluation mode)."""
    model.eval()
    errors = [class_error(model(features[i:i + batch_size]), labels[i:i + batch_size])
              for i in range(0, len(features), batch_size)]
    return float(torch.cat(errors).mean()) * 100.0


class BaselineTrainer:
    """Trains one baseline; writes ``config.json``, ``metrics.csv`` + ``tb/``, ``model.safetensors``, ``result.json``."""

    def __init__(self, config: BaselineConfig, run_dir: Path, splits: dict, device: torch.device,
                 progress: bool = True):
        self.config, self.run_dir, self.device, self.progress = config, Path(run_dir), device, progress
        torch.manual_seed(config.seed)
        train = splits["train"]
        chosen = choose_labeled(train, config.labeled, config.seed)
        self.data = {name: (torch.as_tensor(split.features).to(device), torch.as_tensor(split.labels).to(device))
                     for name, split in splits.items()}
        self.labeled = torch.as_tensor(chosen, device=device)
        self.model = build_model(config, train.input_size, train.image_shape).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.order = torch.Generator().manual_seed(config.seed + 1)
        weights = config.denoising if config.model == "ladder" else ()
        self.denoising = torch.tensor(weights, device=device)

    def steps_per_epoch(self) -> int:
        count = len(self.data["train"][0]) if self.config.model == "ladder" else len(self.labeled)
        return max(1, count // self.config.batch_size)

    def batches(self, count: int, pool: torch.Tensor):
        """``count`` index batches drawn from ``pool``, reshuffled whenever it is used up."""
        size, position, permutation = self.config.batch_size, len(pool), None
        for _ in range(count):
            if position + size > len(pool):
                permutation, position = pool[torch.randperm(len(pool), generator=self.order).to(pool.device)], 0
            yield permutation[position:position + size]
            position += size

    def step(self, labeled_index: torch.Tensor, unlabeled_index: torch.Tensor | None) -> tuple[float, float]:
        features, labels = self.data["train"]
        self.model.train()
        class_cost = cross_entropy(self.model(features[labeled_index]), labels[labeled_index])
        denoising = torch.zeros((), device=self.device)
        if unlabeled_index is not None:
            costs, _ = self.model.denoising_costs(features[unlabeled_index])
            denoising = (costs * self.denoising).sum()
        self.optimizer.zero_grad(set_to_none=True)
        (class_cost + denoising).backward()
        self.optimizer.step()
        return class_cost.detach(), denoising.detach()

    def train_epoch(self, epoch: int, deadline: float) -> dict | None:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, epoch)
        steps = self.steps_per_epoch()
        all_indices = torch.arange(len(self.data["train"][0]), device=self.device)
        unlabeled = self.batches(steps, all_indices) if self.config.model == "ladder" else None
        totals = torch.zeros(2, device=self.device)
        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{self.config.epochs}", leave=False,
                   disable=not self.progress)
        for done, labeled_index in enumerate(self.batches(steps, self.labeled), start=1):
            totals += torch.stack(self.step(labeled_index, next(unlabeled) if unlabeled else None))
            bar.update()
            if time.time() > deadline:
                break
        bar.close()
        if not torch.isfinite(totals).all():
            raise TrainingError(f"the training cost became non-finite in epoch {epoch + 1}; lower --lr")
        class_cost, denoising = (totals / done).tolist()
        return {"epoch": epoch + 1, "steps": done, "lr": learning_rate(self.config, epoch),
                "class_cost": class_cost, "denoising_cost": denoising}

    def calibrate(self) -> None:
        """Population statistics for the FC models' evaluation, from the labelled examples (at most 10k)."""
        if isinstance(self.model, FCLadder):
            features = self.data["train"][0][self.labeled[:10_000]]
            self.model.calibrate(features[i:i + self.config.batch_size]
                                 for i in range(0, len(features), self.config.batch_size))

    def run(self) -> dict:
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(dataclasses.asdict(config), self.run_dir / "config.json")
        deadline = time.time() + config.max_minutes * 60 if config.max_minutes > 0 else math.inf
        history, started = [], time.time()
        with RunLog(self.run_dir) as log:
            for epoch in range(config.epochs):
                row = self.train_epoch(epoch, deadline)
                self.calibrate()
                valid_x, valid_y = self.data["valid"]
                limit = config.valid_examples or len(valid_x)
                row["valid_class_error"] = classification_error(self.model, valid_x[:limit], valid_y[:limit])
                row["seconds"] = round(time.time() - started, 1)
                history.append(row)
                log(row)
                save_weights(self.model, self.run_dir / "model.safetensors",
                             {"config": json.dumps(dataclasses.asdict(config))})
                if time.time() > deadline:
                    break
        result = {"config": dataclasses.asdict(config), "epochs_run": len(history),
                  "train_seconds": round(time.time() - started, 1), "device": str(self.device),
                  "labeled_examples": len(self.labeled)}
        for name in ("valid", "test"):
            result[f"{name}_class_error"] = classification_error(self.model, *self.data[name])
        write_json(result, self.run_dir / "result.json")
        return result


def load_baseline_splits(config: BaselineConfig, data_dir=None) -> dict:
    """The train, valid and test splits of the config's dataset."""
    from .. import datasets

    extra = {} if config.dataset == "mnist" else {"n_digits": config.digits}
    return {name: datasets.load(config.dataset, name, data_dir, **extra) for name in ("train", "valid", "test")}


__all__ = ["BaselineConfig", "BaselineTrainer", "baseline_preset", "build_model", "learning_rate",
           "classification_error", "load_baseline_splits", "MODELS"]
