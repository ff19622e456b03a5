"""What a checkpoint holds besides the weights: the typed training state (``state.json``) and
the optimiser moments and RNG states (``training.safetensors``), enough for an exact resume."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch


@dataclass
class TrainState:
    """Where a run stands.

    Attributes:
        step: optimiser steps taken.
        epoch: epochs finished.
        position: batches done in the current epoch (resume continues from there).
        elapsed: training seconds so far (validation excluded).
        history: one row per finished epoch (what ``metrics.csv`` holds).
        last_loss: the latest logged training cost (mean of up to 20 steps).
        cost_sum, cost_steps: the sum (float64, step by step) of the current epoch's training
            costs and their count: its row's ``train_cost`` is their ratio, the same whether or
            not the epoch was interrupted and resumed.
        labeled_position: semi-supervised runs: batches used of the labelled stream's permutation.
    """

    step: int = 0
    epoch: int = 0
    position: int = 0
    elapsed: float = 0.0
    history: list[dict] = field(default_factory=list)
    last_loss: float | None = None
    cost_sum: float = 0.0
    cost_steps: int = 0
    labeled_position: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainState":
        """From ``state.json``; keys this version does not know (older files) are ignored; a value
        of the wrong type is a ``ValueError`` naming the key (a hand-edited or foreign file)."""
        names = {f.name for f in dataclasses.fields(cls)}
        data = dict(data)
        if isinstance(data.get("train_costs"), list) and data["train_costs"]:  # older files: means of 20 steps
            data.setdefault("cost_sum", 20.0 * sum(data["train_costs"]))
            data.setdefault("cost_steps", 20 * len(data["train_costs"]))
        known = {key: value for key, value in data.items() if key in names}
        for key, value in known.items():
            if not _CHECKS[key](value):
                raise ValueError(f"state.json: {key!r} must be {_KINDS[key]}, got {value!r:.40}")
        return cls(**known)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_CHECKS = {"step": _count, "epoch": _count, "position": _count, "labeled_position": _count,
           "elapsed": _number, "last_loss": lambda v: v is None or _number(v),
           "history": lambda v: isinstance(v, list) and all(isinstance(row, dict) for row in v),
           "cost_sum": _number, "cost_steps": _count}
_KINDS = {"step": "an integer >= 0", "epoch": "an integer >= 0", "position": "an integer >= 0",
          "labeled_position": "an integer >= 0", "elapsed": "a number", "last_loss": "a number or null",
          "history": "a list of rows", "cost_sum": "a number",
          "cost_steps": "an integer >= 0"}


def optimizer_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam's moments and step counts as ``adam.PARAMETER.KEY`` tensors."""
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                tensors[f"adam.{names[id(param)]}.{key}"] = torch.as_tensor(value)
    return tensors


def restore_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                      capturable: bool = False) -> None:
    """Adam's moments from a checkpoint; copied in place where state exists (a CUDA graph holds
    its addresses). ``capturable``: Adam keeps its step counts on the device (CUDA-graph steps)."""
    for name, param in model.named_parameters():
        prefix = f"adam.{name}."
        moments = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not moments:
            continue
        state = optimizer.state.get(param)
        if state:
            for key, value in moments.items():
                state[key].copy_(value)
        else:
            on_device = lambda key: capturable or key != "step"  # noqa: E731
            optimizer.state[param] = {k: v.to(param.device if on_device(k) else "cpu") for k, v in moments.items()}


def rng_tensors(device: torch.device, epoch_order: torch.Tensor) -> dict[str, torch.Tensor]:
    """The global torch RNG (noise, masks), the CUDA one on a GPU, and the data-order RNG's
    state at the start of the current epoch (resume redraws that epoch's permutation)."""
    tensors = {"rng.torch": torch.get_rng_state(), "rng.order_epoch_start": epoch_order}
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    return tensors


def restore_rng(device: torch.device, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Set the global RNGs from a checkpoint; returns the data-order RNG's epoch-start state."""
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    return tensors["rng.order_epoch_start"]
