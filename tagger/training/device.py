"""Where training runs, and the process-wide settings a run needs; applied once by the entry
point (the command line, a script or a test), never by a constructor."""
from __future__ import annotations

import functools
import os
import platform
import shutil
from pathlib import Path

import torch

from ..config import TrainConfig
from ..errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA if available, else CPU; a :class:`ConfigError` for a device this machine
    lacks or one tagger does not run on (anything but ``cpu`` and ``cuda[:N]``: mps, meta, xla ...)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device (try auto, cpu, cuda, cuda:1)") from None
    if device.type not in ("cpu", "cuda") or (device.type == "cpu" and device.index not in (None, 0)):
        raise ConfigError(f"--device {name}: tagger runs on cpu or cuda[:N] (or auto), not {name}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def apply_process_settings(train: TrainConfig, device: torch.device) -> None:
    """Seed torch's global RNG (weights, noise, masks), and switch on deterministic algorithms
    and TF32 matmuls as the config and the device ask. Call before building the model."""
    torch.manual_seed(train.seed)
    if train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":  # TF32 matmuls on GPU (fp32 storage); see docs/performance.md
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@functools.lru_cache(maxsize=None)
def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (``"model name"``, ``"vendor_id"``,
    ``"flags"`` ...); empty off Linux. The one place the package reads that file."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_kind() -> str:
    """ATen's vector capability, the CPU vendor and whether it has AMX, e.g. ``"AVX512 GenuineIntel
    amx"``: what decides which kernels run, hence the float bits a training produces."""
    info = cpu_info()
    kind = f"{torch.backends.cpu.get_cpu_capability()} {info.get('vendor_id', '?')}"
    return kind + " amx" if "amx_tile" in info.get("flags", "").split() else kind


def machine_name(device: torch.device) -> str:
    """What a timing was measured on, for logs and benchmark files: the GPU's name, or the CPU's
    model, kind (:func:`cpu_kind`) and the threads torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type != "cpu":
        return str(device)
    model = cpu_info().get("model name") or platform.processor() or platform.machine()
    return f"{model} ({cpu_kind()}, {torch.get_num_threads()} threads)"


def native_bf16_cpu() -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX or AVX-512 BF16, read from /proc/cpuinfo;
    False off Linux): only there was bf16 autocast measured faster than fp32 (1.1-1.6x for the
    `quick` step, 2.0-2.5x with inductor: docs/performance.md); without them oneDNN emulates bf16."""
    return bool(set(cpu_info().get("flags", "").split()) & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with native bf16 matmuls, else ``fp32`` (GPUs keep TF32, the
    faithful setting); ``fp32`` and ``bf16`` are returned as given."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and native_bf16_cpu() else "fp32"


def resolve_compile(mode: str, device: torch.device) -> str:
    """``auto`` -> ``inductor`` on a CPU with a C++ compiler (torch.compile needs one there), else
    ``off`` (eager); other modes are returned as given."""
    if mode != "auto":
        return mode
    has_compiler = any(shutil.which(name) for name in (os.environ.get("CXX", "g++"), "g++", "clang++"))
    return "inductor" if device.type == "cpu" and has_compiler else "off"
