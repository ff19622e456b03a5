"""The fast paths compute the same function as the eager step (CUDA graph: needs CUDA; inductor: CPU)."""
import pytest
import torch

from tagger import ModelConfig, Tagger
from tagger.training.steps import capture_train_step

needs_cuda = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def make(norm):
    torch.manual_seed(0)
    return Tagger(ModelConfig(input_size=64, widths=(48, 32, 16), norm=norm)).cuda()


def assert_steps_match_eager(step, eager, seed: int):
    """Four steps of ``step`` (a captured training step) against eager Adam steps from the
    same weights and the same CUDA RNG seed: equal losses and weights within float tolerance."""
    torch.backends.cuda.matmul.allow_tf32 = False
    batches = [(torch.rand(20, 64, device="cuda") < 0.3).float() for _ in range(4)]
    eager_opt = torch.optim.Adam(eager.parameters(), lr=1e-3, capturable=True)
    torch.cuda.manual_seed(seed)
    eager_losses = []
    for batch in batches:
        eager_opt.zero_grad(set_to_none=True)
        loss = eager(batch).loss
        loss.backward()
        eager_opt.step()
        eager_losses.append(loss.item())
    torch.cuda.manual_seed(seed)
    step_losses = [step(batch).item() for batch in batches]
    assert step_losses == pytest.approx(eager_losses, rel=1e-4, abs=1e-5)


@needs_cuda[0]
@needs_cuda[1]
@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_graph_steps_match_eager_steps(norm):
    eager, graphed = make(norm), make(norm)
    graph_opt = torch.optim.Adam(graphed.parameters(), lr=1e-3, capturable=True)
    step = capture_train_step(graphed, graph_opt, 20, 64, torch.device("cuda"))
    # the warm-up inside capture left the weights as they were
    for a, b in zip(eager.parameters(), graphed.parameters()):
        assert torch.equal(a, b)
    assert_steps_match_eager(step, eager, 123)
    for (name, a), b in zip(eager.named_parameters(), graphed.parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name


@pytest.mark.slow
def test_inductor_matches_eager_on_cpu():
    """``--compile inductor``: same loss and gradients as eager (CPU, float tolerance)."""
    from tagger.training.steps import LossOf

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


@needs_cuda[0]
@needs_cuda[1]
def test_fused_steps_match_eager_steps():
    """``--compile fused`` (compiled loss inside the CUDA graph): the eager step's losses and weights."""
    from tagger.training.steps import LossOf
    from tagger.training.steps import graph_loss

    eager, fused = make("layer"), make("layer")
    fused_opt = torch.optim.Adam(fused.parameters(), lr=1e-3, capturable=True)
    step = capture_train_step(fused, fused_opt, 20, 64, torch.device("cuda"),
                              loss_fn=graph_loss(fused, torch.compile(LossOf(fused)), 4))
    assert_steps_match_eager(step, eager, 7)
    for (name, a), b in zip(eager.named_parameters(), fused.parameters()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name


@needs_cuda[0]
@needs_cuda[1]
def test_graph_semi_supervised_step_matches_eager():
    """The semi-supervised step (labelled batch and labels as extra static inputs) as a CUDA graph."""
    from tagger.training.steps import LossOf
    from tagger.training.steps import graph_loss

    torch.backends.cuda.matmul.allow_tf32 = False
    config = ModelConfig(input_size=64, widths=(48, 32, 11), likelihood="continuous", z0=0.5, norm="batch")
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(Tagger(config).cuda())
    eager, graphed = models
    x = torch.rand(4, 20, 64, device="cuda")
    labeled_x, labels = torch.rand(4, 20, 64, device="cuda"), torch.randint(0, 10, (4, 20, 2), device="cuda")
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3, capturable=True) for m in models]
    step = capture_train_step(graphed, optimizers[1], 20, 64, torch.device("cuda"),
                              loss_fn=graph_loss(graphed, LossOf(graphed, "fp32", 0.5), 4),
                              extra_inputs=(labeled_x[0], labels[0]))
    eager_step = graph_loss(eager, LossOf(eager, "fp32", 0.5), 4)
    torch.cuda.manual_seed(5)
    eager_losses = []
    for i in range(4):
        optimizers[0].zero_grad(set_to_none=True)
        loss = eager_step(x[i], labeled_x[i], labels[i])
        loss.backward()
        optimizers[0].step()
        eager_losses.append(loss.item())
    torch.cuda.manual_seed(5)
    graph_losses = [step(x[i], labeled_x[i], labels[i]).item() for i in range(4)]
    assert graph_losses == pytest.approx(eager_losses, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("likelihood", ["binary", "continuous"])
def test_bf16_autocast_stays_close_to_fp32(likelihood):
    """``--precision bf16``: matmuls in bfloat16, the rest in float32; loss and gradients near fp32."""
    from tagger.training.steps import LossOf

    torch.manual_seed(0)
    model = Tagger(ModelConfig(input_size=64, widths=(48, 32, 16), iterations=2, norm="layer",
                               likelihood=likelihood, z0=0.3))
    with torch.no_grad():  # away from the start, where every decoder output is exactly 0
        for combinator in model.mapping.combinators:
            combinator.params.normal_()
    x = (torch.rand(16, 64) < 0.3).float()
    draws = model.draw(16, 4, "cpu", generator=torch.Generator().manual_seed(1))
    losses, grads = [], []
    for precision in ("fp32", "bf16"):
        model.zero_grad(set_to_none=True)
        loss = LossOf(model, precision)(x, draws)
        assert loss.dtype == torch.float32
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert losses[1] == pytest.approx(losses[0], rel=2e-2, abs=2e-2)
    assert losses[1] != losses[0]  # bf16 really was used
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.95


@pytest.mark.parametrize("mode", ["graph", "fused"])
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_graph_mode_resumes_like_an_uninterrupted_run(mode, data_dir, tmp_path):
    """CUDA-graph steps: stop after one epoch, resume to two; the same weights as two epochs in one
    go (Adam's state is restored in place into the captured addresses)."""
    from tagger import preset
    from tagger.checkpoint import read_checkpoint
    import tagger

    device = torch.device("cuda")

    def run(run_dir, epochs, resume=False):
        config = preset("quick")
        config.model.widths = (64, 32, 32)
        config.train.epochs, config.train.batch_size = epochs, 50
        config.train.train_examples, config.train.valid_examples = 500, 100
        tagger.train(config, run_dir=run_dir, device=device, resume=resume, compile=mode, progress=False, quiet=True)
        return read_checkpoint(run_dir)

    _, state_a, weights_a, tensors_a = run(tmp_path / "straight", 2)
    run(tmp_path / "split", 1)
    _, state_b, weights_b, tensors_b = run(tmp_path / "split", 2, resume=True)
    assert state_a["step"] == state_b["step"] == 20
    for name in weights_a:
        torch.testing.assert_close(weights_a[name], weights_b[name], rtol=0, atol=1e-4, msg=name)
    for name in (key for key in tensors_a if key.startswith("adam.")):
        torch.testing.assert_close(tensors_a[name], tensors_b[name], rtol=0, atol=1e-4, msg=name)


def test_auto_precision_and_compile_resolve_per_device(monkeypatch):
    """``auto``: bf16 only on a CPU with native bf16 matmuls, inductor only on a CPU with a C++
    compiler; GPUs keep fp32 (TF32) and eager; explicit choices pass through unchanged."""
    from tagger.training import device as dev

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(dev, "native_bf16_cpu", lambda: True)
    assert dev.resolve_precision("auto", cpu) == "bf16"
    assert dev.resolve_precision("auto", cuda) == "fp32"
    monkeypatch.setattr(dev, "native_bf16_cpu", lambda: False)
    assert dev.resolve_precision("auto", cpu) == "fp32"
    assert [dev.resolve_precision(p, cpu) for p in ("fp32", "bf16")] == ["fp32", "bf16"]
    monkeypatch.setattr(dev.shutil, "which", lambda name: "/usr/bin/" + name)
    assert (dev.resolve_compile("auto", cpu), dev.resolve_compile("auto", cuda)) == ("inductor", "off")
    monkeypatch.setattr(dev.shutil, "which", lambda name: None)
    assert dev.resolve_compile("auto", cpu) == "off"
    assert dev.resolve_compile("graph", cuda) == "graph"


def test_cpu_flags_decide_bf16_and_the_cpu_kind(monkeypatch):
    """One reader of /proc/cpuinfo serves both: bf16 is native with AMX or AVX-512 BF16 only, and
    the kind (which keys the recorded training checksum) names the vendor and AMX."""
    from tagger.training import device as dev

    def machine(vendor, flags):
        monkeypatch.setattr(dev, "cpu_info", lambda: {"vendor_id": vendor, "flags": flags})

    machine("GenuineIntel", "fpu avx2 avx512f amx_bf16 amx_tile")
    assert dev.native_bf16_cpu() and dev.cpu_kind().endswith(" GenuineIntel amx")
    machine("AuthenticAMD", "fpu avx2 avx512f avx512_bf16")
    assert dev.native_bf16_cpu() and dev.cpu_kind().endswith(" AuthenticAMD")
    machine("AuthenticAMD", "fpu avx2 fma")
    assert not dev.native_bf16_cpu()
    monkeypatch.setattr(dev, "cpu_info", lambda: {})  # not Linux
    assert not dev.native_bf16_cpu() and dev.cpu_kind().endswith(" ?")


def test_step_records_what_auto_chose(monkeypatch):
    """The step strategy says which precision and mode it runs, so the run log can print them."""
    from tagger import preset
    from tagger.training import device as dev
    from tagger.training.steps import make_step

    monkeypatch.setattr(dev, "native_bf16_cpu", lambda: True)
    config = preset("quick")
    config.model.widths = (16, 8, 8)
    config.train.precision = "auto"
    step = make_step("off", Tagger(config.model), config, torch.device("cpu"))
    assert (step.mode, step.precision) == ("off", "bf16")
    assert torch.isfinite(step.fn((torch.rand(config.train.batch_size, config.model.input_size) < 0.3).float()))
