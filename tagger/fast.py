"""Fast paths. ``graph`` (GPU): the whole training step (forward, backward, Adam) captured once
in a CUDA graph and replayed, so one step is one launch instead of ~1,000 kernel launches.
``inductor`` (CPU or GPU): the loss function compiled with ``torch.compile``, which fuses the
elementwise work around the matmuls (``tagger bench`` on the 2-core CPU: 1.7x for the ``quick`` step, after ~45 s
of compilation; docs/performance.md). ``fused`` (GPU): the compiled loss inside the CUDA graph,
fewer and fused kernels in one launch.

The model is unchanged (same function, same RNG stream kind: the default CUDA generator's
Philox counter advances on every replay); ``tests/test_fast.py`` checks on CUDA that a graph
step gives the eager step's loss and weights.
"""
from __future__ import annotations

import torch

from .config import ConfigError


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
    then ``loss_of(batch, draws)`` (a :class:`tagger.distributed.LossOf`, compiled or not)."""

    def loss_fn(batch: torch.Tensor, labeled_x=None, labels=None) -> torch.Tensor:
        draws = model.draw(batch.shape[0], groups, batch.device, batch.dtype)
        labeled = None
        if labeled_x is not None:  # semi-supervised: the labelled batch's draws come second
            labeled = (labeled_x, labels, model.draw(labeled_x.shape[0], groups, batch.device, batch.dtype))
        return loss_of(batch, draws, labeled)

    return loss_fn


def use_cuda_graph(trainer, compiled: bool = False) -> None:
    """Switch a :class:`tagger.train.Trainer` to graph-captured steps (``--compile graph``).

    ``compiled`` (``--compile fused``): the loss is ``torch.compile``-d first, so the graph
    replays inductor's fused kernels instead of ~1,000 small eager ones.
    """
    name = "fused" if compiled else "graph"
    if trainer.device.type != "cuda":
        raise ConfigError(f"--compile {name} needs a CUDA device (use --device cuda, or --compile off)")
    lr = trainer.config.train.lr
    trainer.optimizer = torch.optim.Adam(trainer.model.parameters(), lr=lr, capturable=True)
    trainer.capturable = True
    loss_of = torch.compile(trainer.loss_of) if compiled else trainer.loss_of
    loss_fn = graph_loss(trainer.model, loss_of, trainer.config.model.groups)
    labeled = trainer.labeled
    extra = (labeled.x[:trainer.config.train.batch_size], labeled.labels[:trainer.config.train.batch_size]) \
        if labeled is not None else ()
    step = capture_train_step(trainer.model, trainer.optimizer, trainer.config.train.batch_size,
                              trainer.config.model.input_size, trainer.device, loss_fn=loss_fn,
                              extra_inputs=extra)
    trainer.step_fn = (lambda batch: step(batch, *labeled.next())) if labeled is not None else step


def use_inductor(trainer) -> None:
    """Compile a :class:`tagger.train.Trainer`'s loss with ``torch.compile`` (same function,
    fused kernels; ``tests/test_fast.py::test_inductor_matches_eager_on_cpu`` checks it)."""
    trainer.loss_of = torch.compile(trainer.loss_of)
