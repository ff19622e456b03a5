"""``tagger bench``: training-step, inference and AMI throughput, with model FLOP utilisation
against the device's own measured dense matmul rate (same dtype, same process)."""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch

from ..presets import preset
from ..errors import ConfigError
from ..files import write_text_atomically
from ..metrics import ami
from ..model import Tagger
from .device import apply_process_settings, machine_name, resolve_device
from .steps import make_step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, steps: int, repeats: int) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` runs of ``steps`` calls (after one warm run)."""
    fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        synchronize(device)
        samples.append((time.perf_counter() - start) / steps)
    return statistics.median(samples)


def matmul_peak(device: torch.device, repeats: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """Measured dense matmul rate in FLOP/s (float32: TF32 on GPU; or bfloat16)."""
    size = 8192 if device.type == "cuda" else 2048
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, steps=5 if device.type == "cuda" else 2, repeats=repeats)
    return 2.0 * size ** 3 / seconds


@dataclass
class BenchOptions:
    """What ``tagger bench`` measures (see its ``--help``)."""

    dataset: str = "shapes"
    preset: str = "paper"
    device: str = "auto"
    batch_size: int | None = None  # default: the preset's
    steps: int = 20
    repeats: int = 3
    compile: str = "off"
    precision: str = "fp32"
    output: Path | None = None

    def check(self) -> "BenchOptions":
        """One-line errors for settings that would time nothing (or fall back to the preset)."""
        for flag in ("steps", "repeats", "batch_size"):
            value = getattr(self, flag)
            if value is not None and value < 1:
                raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
        if self.output is not None and self.output.suffix.lower() != ".json":
            raise ConfigError(f"--output {self.output} must end in .json")
        return self


def run_benchmark(options: BenchOptions) -> dict:
    """Time the preset's training step (the strategy ``compile`` picks), inference and AMI; print a
    table, write JSON."""
    options.check()
    device = resolve_device(options.device)
    config = preset(options.preset, options.dataset)
    batch = options.batch_size or config.train.batch_size
    config.train.batch_size, config.train.precision, config.train.seed = batch, options.precision, 0
    apply_process_settings(config.train, device)
    model = Tagger(config.model).to(device)
    x = (torch.rand(batch, config.model.input_size, device=device) < 0.3).float()
    step = make_step(options.compile, model, config, device)
    train_step = lambda: step.fn(x)  # noqa: E731
    step_s = timed(train_step, device, options.steps, options.repeats)
    infer_s = timed(lambda: model.infer(x, iterations=5), device, max(2, options.steps // 4), options.repeats)
    objects = torch.randint(0, 4, (10_000, config.model.input_size), device=device)
    masks = torch.rand(10_000, config.model.groups, config.model.input_size, device=device)
    ami_s = timed(lambda: ami(objects, masks), device, 1, options.repeats)
    peak = matmul_peak(device, dtype=torch.bfloat16 if step.precision == "bf16" else torch.float32)
    flops_step = 3.0 * model.flops_per_example() * batch  # forward + backward (2x)
    steps_per_epoch = 50_000 // batch
    result = {
        "date": date.today().isoformat(), "torch": torch.__version__, "device": machine_name(device),
        "preset": options.preset, "dataset": options.dataset, "batch": batch,
        "compile": step.mode, "precision": step.precision, "ms_per_step": 1e3 * step_s, "samples_per_s": batch / step_s,
        "epoch_s": steps_per_epoch * step_s, "full_run_min": config.train.epochs * steps_per_epoch * step_s / 60,
        "epochs": config.train.epochs, "gflop_per_step": flops_step / 1e9, "achieved_tflops": flops_step / step_s / 1e12,
        "matmul_peak_tflops": peak / 1e12, "utilisation": flops_step / step_s / peak,
        "infer_samples_per_s": batch / infer_s, "ami_examples_per_s": 10_000 / ami_s,
    }
    print(markdown_row(result, header=True))
    if options.output:
        write_text_atomically(options.output, json.dumps(result, indent=2) + "\n")
    return result


def markdown_row(r: dict, header: bool = False) -> str:
    mode = r["compile"] + (" bf16" if r.get("precision") == "bf16" else "")
    row = (f"| {r['device']} | {r['preset']} | {mode} | {r['batch']} | {r['samples_per_s']:,.0f} | "
           f"{r['ms_per_step']:.2f} | {r['achieved_tflops']:.3f} | {r['matmul_peak_tflops']:.2f} | "
           f"{100 * r['utilisation']:.1f} % | {r['full_run_min']:.1f} min ({r['epochs']} ep) | "
           f"{r['infer_samples_per_s']:,.0f} | {r['ami_examples_per_s']:,.0f} |")
    if not header:
        return row
    head = ("| device | preset | compile | batch | train samples/s | ms/step | TFLOP/s | matmul peak TFLOP/s | "
            "utilisation | full run | infer samples/s (T=5) | AMI examples/s |")
    return head + "\n" + "|---" * 12 + "|\n" + row
