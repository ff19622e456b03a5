"""One training step: the objective, and the strategies that run it, chosen by :func:`make_step`.

``off`` (eager): draws, forward, backward and Adam as ordinary PyTorch ops. ``graph`` (GPU): the
whole step (forward, backward, Adam) captured once in a CUDA graph and replayed, so one step is
one launch instead of ~1,000 kernel launches. ``inductor`` (CPU or GPU): the objective compiled
with ``torch.compile``, which fuses the elementwise work around the matmuls (about 1.1x for the
``quick`` step on a 2-core CPU, after ~45 s of compilation; docs/performance.md). ``fused`` (GPU):
the compiled objective inside the CUDA graph, fewer and fused kernels in one launch.

The model is the same in every mode (same function, same RNG stream kind: the default CUDA
generator's Philox counter advances on every replay); ``tests/test_fast.py`` checks on CUDA that
a graph step gives the eager step's loss and weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..classify import class_cost
from ..config import Config
from ..errors import ConfigError
from .device import resolve_compile, resolve_precision
from .distributed import Ranks

MODES = ("off", "graph", "inductor", "fused", "auto")  # auto: inductor on a CPU with a C++ compiler, else off


class LossOf(torch.nn.Module):
    """``forward(x, draws, labeled=None) -> loss``: the training objective, as a module DDP can wrap.

    The model's denoising cost averaged over iterations. ``precision="bf16"`` runs it under
    bfloat16 autocast: matmul inputs in bf16, everything after each matmul (normalisation,
    combinators, likelihood, cost) in float32, because :func:`tagger.ladder.normalize` upcasts.
    Opt-in; float32 (TF32 on GPU) is the default.

    ``labeled = (x, labels, draws)`` adds ``class_weight`` times the classification cost of
    that batch at the last iteration (:mod:`tagger.training.labeled`).
    """

    def __init__(self, model: torch.nn.Module, precision: str = "fp32", class_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.precision = precision
        self.class_weight = class_weight

    def forward(self, x: torch.Tensor, draws, labeled=None) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            loss = self.model(x, draws=draws).loss
            if labeled is not None:
                labeled_x, labels, labeled_draws = labeled
                top = self.model(labeled_x, draws=labeled_draws).last_top  # (B, K, C + 1)
                loss = loss + self.class_weight * class_cost(top, labels)
            return loss


@dataclass
class Step:
    """A training step strategy: ``fn(batch) -> loss`` (no host sync) and the optimiser it steps.

    ``capturable``: Adam keeps its state on the device (a CUDA graph holds its addresses).
    ``mode`` and ``precision``: what ``auto`` resolved to on this machine.
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    capturable: bool = False
    mode: str = "off"
    precision: str = "fp32"

    def set_lr(self, value: float) -> None:
        """The learning rate of the next steps (in place where a CUDA graph captured it as a tensor)."""
        for group in self.optimizer.param_groups:
            if torch.is_tensor(group["lr"]):
                group["lr"].fill_(value)
            else:
                group["lr"] = value


def learning_rate(lr: float, decay_from: float, step: int, total_steps: int) -> float:
    """Adam's rate for optimiser step ``step`` (0-based) of ``total_steps``: ``lr`` until
    ``decay_from * total_steps``, then falling linearly to reach 0 after the last step."""
    start = decay_from * total_steps
    if step < start or total_steps <= start:
        return lr
    return lr * (total_steps - step) / (total_steps - start)


def eager_step(model, loss_of, optimizer, groups: int, shard: tuple[int, int], labeled=None):
    """``batch -> loss``: one eager Adam step on the global ``batch`` (B, D) (this rank's slice of
    it under DDP, with the global batch's random numbers)."""
    start, stop = shard

    def step(batch: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        draws = model.draw(batch.shape[0], groups, batch.device, batch.dtype)
        labeled_part = None
        if labeled is not None:  # a labelled batch beside every unlabelled one
            labeled_x, labels = labeled.next()
            labeled_draws = model.draw(labeled_x.shape[0], groups, batch.device, batch.dtype)
            labeled_part = (labeled_x[start:stop], labels[start:stop], labeled_draws.shard(start, stop))
        loss = loss_of(batch[start:stop], draws.shard(start, stop), labeled_part)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def _fresh_adam_state(optimizer: torch.optim.Optimizer) -> None:
    """Zero Adam's moments and step counters in place (their addresses are captured)."""
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                value.zero_()


def capture_train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch_size: int,
                       input_size: int, device: torch.device, warmup: int = 3, loss_fn=None,
                       extra_inputs: tuple[torch.Tensor, ...] = ()):
    """Capture one training step on a static ``(batch_size, input_size)`` input.

    The optimiser must be built with ``capturable=True``. Warm-up steps run on a side
    stream (needed before capture, and they compile ``loss_fn`` if it is compiled); the
    weights and Adam state they touch are restored.

    Args:
        loss_fn: ``loss_fn(batch, *extra) -> loss``; default ``model(batch).loss``. The random
            draws must be made inside it by eager CUDA ops, which advance the graph's RNG on replay.
        extra_inputs: examples of further per-step inputs (e.g. a labelled batch and its
            labels); static copies of their shapes and dtypes are captured too.

    Returns:
        ``step(batch) -> loss``: copies ``batch`` into the static input, replays the graph
        and returns a copy of the loss (no host synchronisation).
    """
    loss_fn = loss_fn or (lambda batch: model(batch).loss)
    static_input = torch.zeros(batch_size, input_size, device=device)
    static_extra = tuple(torch.zeros_like(value, device=device) for value in extra_inputs)
    saved = {name: value.detach().clone() for name, value in model.state_dict().items()}
    had_state = bool(optimizer.state)
    saved_optimizer = {id(p): {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(static_input, *static_extra).backward()
            optimizer.step()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = loss_fn(static_input, *static_extra)
        static_loss.backward()
        optimizer.step()
    with torch.no_grad():  # undo the warm-up: weights and Adam state back, in place
        for name, value in model.state_dict().items():
            value.copy_(saved[name])
        if had_state:
            for param, state in optimizer.state.items():
                for key, value in state.items():
                    value.copy_(saved_optimizer[id(param)][key])
        else:
            _fresh_adam_state(optimizer)

    def step(batch: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        static_input.copy_(batch)
        for target, value in zip(static_extra, extra):
            target.copy_(value)
        graph.replay()
        return static_loss.detach().clone()

    return step


def graph_loss(model: torch.nn.Module, loss_of, groups: int):
    """``batch -> loss`` for :func:`capture_train_step`: draws (eager, on the device's RNG),
    then ``loss_of(batch, draws)`` (a :class:`LossOf`, compiled or not)."""

    def loss_fn(batch: torch.Tensor, labeled_x=None, labels=None) -> torch.Tensor:
        draws = model.draw(batch.shape[0], groups, batch.device, batch.dtype)
        labeled = None
        if labeled_x is not None:  # semi-supervised: the labelled batch's draws come second
            labeled = (labeled_x, labels, model.draw(labeled_x.shape[0], groups, batch.device, batch.dtype))
        return loss_of(batch, draws, labeled)

    return loss_fn


def make_step(mode: str, model: torch.nn.Module, config: Config, device: torch.device,
              ranks: Ranks = Ranks(), labeled=None) -> Step:
    """The step strategy ``mode`` (one of :data:`MODES`) for ``model``, with a fresh Adam; ``auto``
    (mode or ``config.train.precision``) is resolved here, for this device.

    Args:
        labeled: a :class:`~tagger.training.labeled.LabeledStream` (semi-supervised runs) or None.
    """
    if mode not in MODES:
        raise ConfigError(f"--compile must be one of {', '.join(MODES)}, got {mode!r}")
    train = config.train
    mode, precision = resolve_compile(mode, device), resolve_precision(train.precision, device)
    loss_of = LossOf(model, precision, train.class_cost)
    if ranks.world > 1:
        if mode in ("graph", "fused"):
            raise ConfigError(f"--compile {mode} is single-process only (drop it under torchrun)")
        from torch.nn.parallel import DistributedDataParallel

        loss_of = DistributedDataParallel(loss_of)
    if mode in ("inductor", "fused"):
        loss_of = torch.compile(loss_of)
    if mode in ("off", "inductor"):
        optimizer = torch.optim.Adam(model.parameters(), lr=train.lr)
        return Step(eager_step(model, loss_of, optimizer, config.model.groups, ranks.shard(train.batch_size),
                               labeled), optimizer, mode=mode, precision=precision)
    if device.type != "cuda":
        raise ConfigError(f"--compile {mode} needs a CUDA device (use --device cuda, or --compile off)")
    # A decaying rate must be a tensor the graph reads on every replay (a float is baked in).
    lr = torch.tensor(train.lr, device=device) if train.lr_decays else train.lr
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, capturable=True)
    extra = (labeled.x[:train.batch_size], labeled.labels[:train.batch_size]) if labeled is not None else ()
    step = capture_train_step(model, optimizer, train.batch_size, config.model.input_size, device,
                              loss_fn=graph_loss(model, loss_of, config.model.groups), extra_inputs=extra)
    fn = (lambda batch: step(batch, *labeled.next())) if labeled is not None else step
    return Step(fn, optimizer, capturable=True, mode=mode, precision=precision)
