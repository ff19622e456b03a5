"""The fast paths compute the same function as the eager step (CUDA graph: needs CUDA; inductor: CPU)."""
import pytest
import torch

from tagger import ModelConfig, Tagger
from tagger.fast import capture_train_step

needs_cuda = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def make(norm):
    torch.manual_seed(0)
    return Tagger(ModelConfig(input_size=64, widths=(48, 32, 16), norm=norm)).cuda()


@needs_cuda[0]
@needs_cuda[1]
@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_graph_steps_match_eager_steps(norm):
    torch.backends.cuda.matmul.allow_tf32 = False
    batches = [(torch.rand(20, 64, device="cuda") < 0.3).float() for _ in range(4)]
    eager, graphed = make(norm), make(norm)
    eager_opt = torch.optim.Adam(eager.parameters(), lr=1e-3, capturable=True)
    graph_opt = torch.optim.Adam(graphed.parameters(), lr=1e-3, capturable=True)
    step = capture_train_step(graphed, graph_opt, 20, 64, torch.device("cuda"))
    # the warm-up inside capture left the weights as they were
    for a, b in zip(eager.parameters(), graphed.parameters()):
        assert torch.equal(a, b)
    torch.cuda.manual_seed(123)
    eager_losses = []
    for batch in batches:
        eager_opt.zero_grad(set_to_none=True)
        loss = eager(batch).loss
        loss.backward()
        eager_opt.step()
        eager_losses.append(loss.item())
    torch.cuda.manual_seed(123)
    graph_losses = [step(batch).item() for batch in batches]
    assert graph_losses == pytest.approx(eager_losses, rel=1e-4, abs=1e-5)
    for (name, a), b in zip(eager.named_parameters(), graphed.parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name


@pytest.mark.slow
def test_inductor_matches_eager_on_cpu():
    """``--compile inductor``: same loss and gradients as eager (CPU, float tolerance)."""
    from tagger.distributed import LossOf

    torch.manual_seed(0)
    model = Tagger(ModelConfig(input_size=64, widths=(32, 16, 8), iterations=2, norm="layer"))
    with torch.no_grad():
        for combinator in model.mapping.combinators:
            combinator.params.normal_()
    x = (torch.rand(10, 64) < 0.3).float()
    draws = model.draw(10, 4, "cpu", generator=torch.Generator().manual_seed(1))
    losses, grads = [], []
    for loss_of in (LossOf(model), torch.compile(LossOf(model))):
        model.zero_grad(set_to_none=True)
        loss = loss_of(x, draws)
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    for eager, compiled in zip(*grads):
        assert torch.allclose(eager, compiled, rtol=1e-3, atol=1e-5)
