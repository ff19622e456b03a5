"""Fast paths. ``graph`` (GPU): the whole training step (forward, backward, Adam) captured once
in a CUDA graph and replayed, so one step is one launch instead of ~1,000 kernel launches.
``inductor`` (CPU or GPU): the loss function compiled with ``torch.compile``, which fuses the
elementwise work around the matmuls (``tagger bench`` on the 2-core CPU: 1.7x for the ``quick`` step, after ~45 s
of compilation; docs/performance.md).

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
                       input_size: int, device: torch.device, warmup: int = 3):
    """Capture one training step on a static ``(batch_size, input_size)`` input.

    The optimiser must be built with ``capturable=True``. Warm-up steps run on a side
    stream (needed before capture); the weights and Adam state they touch are restored.

    Returns:
        ``step(batch) -> loss``: copies ``batch`` into the static input, replays the graph
        and returns a copy of the loss (no host synchronisation).
    """
    static_input = torch.zeros(batch_size, input_size, device=device)
    saved = {name: value.detach().clone() for name, value in model.state_dict().items()}
    had_state = bool(optimizer.state)
    saved_optimizer = {id(p): {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            optimizer.zero_grad(set_to_none=True)
            model(static_input).loss.backward()
            optimizer.step()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = model(static_input).loss
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

    def step(batch: torch.Tensor) -> torch.Tensor:
        static_input.copy_(batch)
        graph.replay()
        return static_loss.detach().clone()

    return step


def use_cuda_graph(trainer) -> None:
    """Switch a :class:`tagger.train.Trainer` to graph-captured steps (restoring a checkpoint first if resuming)."""
    if trainer.device.type != "cuda":
        raise ConfigError("--compile graph needs a CUDA device (use --device cuda, or --compile off)")
    lr = trainer.config.train.lr
    trainer.optimizer = torch.optim.Adam(trainer.model.parameters(), lr=lr, capturable=True)
    trainer.capturable = True
    trainer.step_fn = capture_train_step(trainer.model, trainer.optimizer, trainer.config.train.batch_size,
                                         trainer.config.model.input_size, trainer.device)


def use_inductor(trainer) -> None:
    """Compile a :class:`tagger.train.Trainer`'s loss with ``torch.compile`` (same function,
    fused kernels; ``tests/test_fast.py::test_inductor_matches_eager_on_cpu`` checks it)."""
    trainer.loss_of = torch.compile(trainer.loss_of)
