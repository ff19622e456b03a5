"""What the Python API accepts: one-line ``ValueError`` s for inputs the model cannot take,
instead of a torch traceback or a silently wrong answer (NaN masks, 2.7 iterations run as 2).

Floating inputs of another dtype (float64 from numpy, float16) are converted to the model's
dtype without a warning: the values are the same numbers, only stored differently.
"""
from __future__ import annotations

import numbers

import torch


def check_count(name: str, value) -> int:
    """``value`` as an int >= 1; a float (2.7), a bool or a string is refused, not rounded."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_batch(x, size: int) -> None:
    """A ``(B, size)`` floating-point tensor with B >= 1."""
    if not torch.is_tensor(x) or x.dim() != 2 or x.shape[1] != size:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"input must be a (B, {size}) tensor, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"input must be floating point, got {x.dtype}")
    if x.shape[0] < 1:
        raise ValueError("input batch is empty")


def check_values(x: torch.Tensor, likelihood: str) -> None:
    """Finite values, and for the binary (bit-flip) likelihood values in [0, 1] (one host sync)."""
    finite, low, high = torch.stack([torch.isfinite(x).all().to(x.dtype), x.min(), x.max()]).tolist()
    if not finite:
        raise ValueError("input holds NaN or inf values")
    if likelihood == "binary" and (low < 0 or high > 1):
        raise ValueError(f"binary likelihood: input values must be in [0, 1], got {low:g}..{high:g}")


def group_indices(remove_groups, groups: int) -> tuple[int, ...]:
    """``remove_groups`` as a tuple of ints in 0..groups-1 (a string such as '12' is refused,
    not read as groups 1 and 2)."""
    if isinstance(remove_groups, (str, bytes)) or not hasattr(remove_groups, "__iter__"):
        raise ValueError(f"remove_groups must be a sequence of group indices, got {remove_groups!r}")
    indices = tuple(remove_groups)
    if any(isinstance(k, bool) or not isinstance(k, numbers.Integral) for k in indices):
        raise ValueError(f"remove_groups must hold integers, got {list(indices)}")
    if any(k < 0 or k >= groups for k in indices):
        raise ValueError(f"groups to remove must be in 0..{groups - 1}, got {list(indices)}")
    return tuple(int(k) for k in indices)
