"""The metrics on one thread where libgomp spins at its default.

``import tagger`` sets ``GOMP_SPINCOUNT=1000`` before torch loads libgomp (tagger/__init__.py); libgomp
reads it once, when it loads, and exports no way to change it later. When ``torch`` was imported
first, its OpenMP threads spin 300,000 times at every barrier: beside two busy processes on a 2-core
CPU, AMI of 10,000 TextureMNIST-sized examples then took 19.5 s against 1.1 s idle (and 1.6 s with the
spin setting in effect). Its ops are memory-bound elementwise work and sums, which one thread does
as fast as two on such a CPU (0.8-0.9 s idle against 1.1-1.7 s), so in that case :func:`few_threads`
runs them on one thread: 3.7 s beside two busy processes (benchmarks/contention.py, docs/performance.md).
"""
from __future__ import annotations

import contextlib
import functools
import sys

import torch


def spinning() -> bool:
    """Whether this process's libgomp was loaded before tagger could lower its spin count."""
    return bool(getattr(sys.modules.get("tagger"), "OPENMP_SPINS", False))


@contextlib.contextmanager
def few_threads():
    """One intra-op thread inside the block when :func:`spinning`; otherwise nothing changes."""
    threads = torch.get_num_threads()
    if not spinning() or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def on_few_threads(fn):
    """Decorator: run ``fn`` inside :func:`few_threads`."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with few_threads():
            return fn(*args, **kwargs)
    return wrapped
