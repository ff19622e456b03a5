"""The training loop: Adam on the denoising cost averaged over iterations, validation each
epoch, CSV + TensorBoard logs, atomic checkpoints and exact resume."""
from __future__ import annotations

import csv
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import datasets, distributed
from .checkpoint import load_weights, read_checkpoint, save_checkpoint
from .config import Config, ConfigError
from .evaluate import evaluate
from .model import Tagger
from .semisupervised import LabeledStream, initialise_from


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. NaN loss); the last good checkpoint is kept."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA if available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device (try auto, cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def load_splits(config: Config, data_dir=None):
    """The training and validation :class:`~tagger.datasets.common.Split` s, checked against the model."""
    train = config.train
    extra = {"n_digits": train.n_digits} if train.dataset == "texture-mnist" else {}
    train_split = datasets.load(train.dataset, "train", data_dir, **extra)
    valid_split = datasets.load(train.dataset, "valid", data_dir, **extra)
    if train_split.input_size != config.model.input_size:
        raise ConfigError(f"the model's input_size {config.model.input_size} does not match the data "
                          f"({train_split.input_size} elements per example)")
    return train_split, valid_split


class Trainer:
    """Owns model, optimiser, data, RNG streams and the run directory."""

    def __init__(self, config: Config, run_dir: Path, device="auto", data_dir=None, progress=True):
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        self.ranks, device = distributed.setup(device) if isinstance(device, str) else (distributed.Ranks(), device)
        self.shard = self.ranks.shard(config.train.batch_size)
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.progress = progress and self.ranks.main
        torch.manual_seed(config.train.seed)
        if config.train.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        if self.device.type == "cuda":  # TF32 matmuls on GPU (fp32 storage); see docs/performance.md
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.model = Tagger(config.model).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr)
        self.order = torch.Generator().manual_seed(config.train.seed + 1)  # data order (CPU)
        self.load_data(data_dir)
        self.state = {"step": 0, "epoch": 0, "position": 0, "elapsed": 0.0, "history": []}
        self.epoch_order_state = self.order.get_state()
        self.step_fn = self.model_step  # replaced by the fast paths (tagger.fast)
        self.capturable = False  # True once Adam keeps its state on the device for a CUDA graph
        self.loss_of = distributed.LossOf(self.model, config.train.precision, config.train.class_cost)
        if self.ranks.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.loss_of = DistributedDataParallel(self.loss_of)

    def load_data(self, data_dir) -> None:
        """The training inputs, validation inputs, objects (and labels) on the device, once."""
        train = self.config.train
        train_split, valid_split = load_splits(self.config, data_dir)
        count = train.train_examples or len(train_split)
        valid_count = train.valid_examples or len(valid_split)
        on_device = lambda array: torch.as_tensor(array).to(self.device)  # noqa: E731
        self.train_x = on_device(train_split.features[:count])
        self.valid_x = on_device(valid_split.features[:valid_count])
        self.valid_objects = on_device(valid_split.objects[:valid_count].astype("int64"))
        self.labeled, self.valid_labels = None, None  # semi-supervised runs (class_cost > 0)
        if train.class_cost > 0:
            self.labeled = LabeledStream(self.config, train_split, self.device)
            self.valid_labels = on_device(valid_split.labels[:valid_count].astype("int64"))

    # -- state ------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """Optimiser moments and RNG states, for ``training.safetensors``."""
        tensors = {"rng.torch": torch.get_rng_state(), "rng.order_epoch_start": self.epoch_order_state}
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        names = {id(p): n for n, p in self.model.named_parameters()}
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                for key, value in self.optimizer.state.get(param, {}).items():
                    tensors[f"adam.{names[id(param)]}.{key}"] = torch.as_tensor(value)
        if self.labeled is not None:
            tensors.update(self.labeled.state()[1])
        return tensors

    def save(self) -> None:
        """Checkpoint (rank 0 writes; every rank waits for it)."""
        self.state["lr"] = self.config.train.lr
        if self.labeled is not None:
            self.state.update(self.labeled.state()[0])
        if self.ranks.main:
            save_checkpoint(self.run_dir, self.config, self.model, dict(self.state), self.tensors())
        self.ranks.barrier()

    def restore(self) -> None:
        """Continue from ``run_dir``'s checkpoint: weights, Adam, RNG, position."""
        config, state, weights, tensors = read_checkpoint(self.run_dir)
        load_weights(self.model, weights, self.run_dir)
        self.restore_optimizer(tensors)
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.epoch_order_state = tensors["rng.order_epoch_start"]
        self.state.update(state)
        if self.labeled is not None:
            self.labeled.restore(state, tensors)

    def restore_optimizer(self, tensors: dict[str, torch.Tensor]) -> None:
        """Adam moments from a checkpoint; copied in place where state exists (CUDA graphs hold its addresses)."""
        capturable = self.capturable
        for name, param in self.model.named_parameters():
            moments = {k[len(f"adam.{name}."):]: v for k, v in tensors.items() if k.startswith(f"adam.{name}.")}
            if not moments:
                continue
            state = self.optimizer.state.get(param)
            if state:
                for key, value in moments.items():
                    state[key].copy_(value)
            else:
                on_device = lambda key: capturable or key != "step"  # noqa: E731
                self.optimizer.state[param] = {k: v.to(param.device if on_device(k) else "cpu")
                                               for k, v in moments.items()}

    # -- steps ------------------------------------------------------------------------
    def model_step(self, batch: torch.Tensor) -> torch.Tensor:
        """One eager Adam step on the global ``batch`` (B, D) (this rank's slice of it under
        DDP, with the global batch's random numbers); returns the loss (no host sync)."""
        self.optimizer.zero_grad(set_to_none=True)
        groups = self.config.model.groups
        draws = self.model.draw(batch.shape[0], groups, batch.device, batch.dtype)
        start, stop = self.shard
        labeled = None
        if self.labeled is not None:  # a labelled batch beside every unlabelled one
            labeled_x, labels = self.labeled.next()
            labeled_draws = self.model.draw(labeled_x.shape[0], groups, batch.device, batch.dtype)
            labeled = (labeled_x[start:stop], labels[start:stop], labeled_draws.shard(start, stop))
        loss = self.loss_of(batch[start:stop], draws.shard(start, stop), labeled)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def epoch_batches(self):
        """Yield ``(position, indices)`` for the rest of the current epoch."""
        self.order.set_state(self.epoch_order_state)
        permutation = torch.randperm(self.train_x.shape[0], generator=self.order)
        size = self.config.train.batch_size
        steps = self.train_x.shape[0] // size  # drop the last partial batch (fixed shapes)
        for position in range(self.state["position"], steps):
            yield position, permutation[position * size:(position + 1) * size].to(self.device)

    def train_epoch(self, deadline: float) -> bool:
        """Run the rest of one epoch; False if stopped early by the time limit."""
        train = self.config.train
        steps = self.train_x.shape[0] // train.batch_size
        bar = tqdm(total=steps, initial=self.state["position"], disable=not self.progress,
                   mininterval=0.1 if sys.stderr.isatty() else 30.0,
                   desc=f"epoch {self.state['epoch'] + 1}/{train.epochs}", leave=False)
        started, running = time.time(), []
        for position, indices in self.epoch_batches():
            running.append(self.step_fn(self.train_x[indices]))
            self.state["step"] += 1
            self.state["position"] = position + 1
            bar.update(1)
            if len(running) == 20 or position + 1 == steps:
                self.check_loss(self.ranks.mean(torch.stack(running).mean()).item(), bar)
                self.state.setdefault("train_costs", []).append(self.state["last_loss"])
                running = []
            if train.checkpoint_every and self.state["step"] % train.checkpoint_every == 0:
                self.state["elapsed"] += time.time() - started
                started = time.time()
                self.save()
            if time.time() > deadline:
                break
        bar.close()
        self.state["elapsed"] += time.time() - started
        return self.state["position"] == steps

    def check_loss(self, value: float, bar) -> None:
        if not math.isfinite(value):
            raise TrainingError(f"loss became {value} at step {self.state['step']}; "
                                f"stopped, last good checkpoint kept in {self.run_dir}")
        self.state["last_loss"] = value
        bar.set_postfix(cost=f"{value:.4f}")

    # -- epochs -----------------------------------------------------------------------
    def validate(self) -> dict:
        train = self.config.train
        return evaluate(self.model, self.valid_x, self.valid_objects, iterations=train.eval_iterations,
                        batch_size=train.eval_batch_size, seed=train.seed, labels=self.valid_labels)

    def end_epoch(self, log) -> None:
        result = self.validate()
        train_costs = self.state.pop("train_costs", [])
        row = {"epoch": self.state["epoch"] + 1, "step": self.state["step"],
               "elapsed_s": round(self.state["elapsed"], 2),
               "train_cost": sum(train_costs) / max(len(train_costs), 1)}
        for index, (cost, score, ari) in enumerate(zip(result["denoising_cost"], result["ami"], result["ari"]), start=1):
            row[f"valid_cost_{index}"], row[f"valid_ami_{index}"], row[f"valid_ari_{index}"] = cost, score, ari
        for index, error in enumerate(result.get("class_error", []), start=1):
            row[f"valid_class_error_{index}"] = error
        if hasattr(self.model.likelihood, "v"):  # continuous data: the learned variance (docs/results.md)
            row["v"] = float(self.model.likelihood.v.detach())
        log(row)
        self.state["history"].append(row)
        self.state["epoch"] += 1
        self.state["position"] = 0
        self.epoch_order_state = self.order.get_state()
        self.save()

    def run(self, resume: bool = False) -> dict:
        """Train to ``epochs`` (or ``max_minutes``); returns the last validation row."""
        if resume:
            self.restore()
        elif self.config.train.init_from:
            loaded, fresh = initialise_from(self.model, self.config.train.init_from,
                                            keep_v=self.config.model.v_init is not None)
            if self.ranks.main:
                rest = f"{len(fresh)} start fresh: {', '.join(fresh[:6])}{' ...' if len(fresh) > 6 else ''}" \
                    if fresh else "none start fresh"
                print(f"initialised {len(loaded)} weights from {self.config.train.init_from}; {rest}")
        if self.ranks.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.config.save(self.run_dir / "config.json")
        train = self.config.train
        deadline = time.time() + (train.max_minutes * 60 if train.max_minutes else float("inf"))
        with RunLog(self.run_dir, self.state["history"], enabled=self.ranks.main) as log:
            while self.state["epoch"] < train.epochs:
                if not self.train_epoch(deadline):
                    self.save()
                    break
                self.end_epoch(log)
        return self.state["history"][-1] if self.state["history"] else {}


class RunLog:
    """Appends epoch rows to ``metrics.csv`` and TensorBoard (``tb/``)."""

    def __init__(self, run_dir: Path, history: list[dict] = (), enabled: bool = True, echo: bool = True):
        self.path = Path(run_dir) / "metrics.csv"
        self.echo = echo  # print a summary line per epoch
        self.run_dir = Path(run_dir)
        self.writer = None
        self.enabled = enabled
        if not enabled:
            return
        self.path.unlink(missing_ok=True)  # rewritten from the checkpoint's history (exact on resume)
        for row in history:
            self.write_row(row)

    def __enter__(self):
        if not self.enabled:
            return self
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tb"))
        except Exception:  # tensorboard missing or broken: CSV is enough
            self.writer = None
        return self

    def write_row(self, row: dict) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def __call__(self, row: dict) -> None:
        if not self.enabled:
            return
        self.write_row(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "step"):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()
        if not self.echo:
            return
        summary = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                           if k in ("epoch", "train_cost", "class_cost", "valid_class_error") or k.startswith("valid_ami"))
        tqdm.write(summary)

    def __exit__(self, *exc):
        if self.writer is not None:
            self.writer.close()
