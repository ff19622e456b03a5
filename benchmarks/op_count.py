"""Count the operators one training step runs: what bounds the CUDA-graph step at batch 100.

Run from the repository root::

    python benchmarks/op_count.py [--dataset shapes] [--preset paper] [--batch-size 100] [--output FILE]

A CUDA graph removes the CPU's launch overhead but still runs every kernel in turn, each
costing a few microseconds however small. This profiles one eager training step on the CPU
(forward, backward, Adam) and counts the innermost operators that do work, grouped by name:
about one GPU kernel each (views, reshapes and allocations launch none; scalar conversions and
the zero fill of CPU reductions are CPU-only and not counted). An estimate, not a GPU trace:
divide a measured graph step time by it for the cost per kernel.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tagger import Tagger  # noqa: E402
from tagger.presets import preset  # noqa: E402

# operators that only make views or allocate: no kernel on a GPU
NO_KERNEL = {"aten::view", "aten::reshape", "aten::_reshape_alias", "aten::t", "aten::transpose",
             "aten::expand", "aten::as_strided", "aten::permute", "aten::unsqueeze", "aten::squeeze",
             "aten::slice", "aten::select", "aten::detach", "aten::alias", "aten::empty", "aten::empty_like",
             "aten::empty_strided", "aten::lift_fresh", "aten::resolve_conj", "aten::resolve_neg",
             "aten::split", "aten::unbind", "aten::chunk", "aten::narrow", "aten::_unsafe_view", "aten::numpy_T",
             "aten::result_type", "aten::set_", "aten::is_nonzero", "aten::item", "aten::_local_scalar_dense",
             "detach", "aten::unflatten", "aten::flatten", "aten::contiguous"}


def _cpu_only(event) -> bool:
    """CPU-side work a GPU does without a kernel: converting a 0-dim (scalar) tensor, and the zero
    fill a CPU reduction starts with."""
    parent = event.cpu_parent.name if event.cpu_parent is not None else ""
    if event.name in ("aten::to", "aten::_to_copy", "aten::copy_"):
        shapes = event.input_shapes or [[1]]
        return len(shapes[0]) == 0 or (parent == "aten::_to_copy" and len(shapes[-1]) == 0)
    return event.name == "aten::fill_" and parent in ("aten::sum", "aten::mean")


def leaf_operators(events) -> collections.Counter:
    """Names of the innermost ``aten::`` operators (no working ``aten::`` children) that would
    launch a kernel on a GPU."""
    counts = collections.Counter()
    for event in events:
        if not event.name.startswith("aten::") or event.name in NO_KERNEL or _cpu_only(event):
            continue
        if any(child.name.startswith("aten::") and child.name not in NO_KERNEL and not _cpu_only(child)
               for child in event.cpu_children):
            continue
        counts[event.name] += 1
    return counts


def count_step(dataset: str, preset_name: str, batch_size: int) -> dict:
    """Operators of forward+backward and of the Adam step, for one training step."""
    torch.manual_seed(0)
    config = preset(preset_name, dataset)
    model = Tagger(config.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    x = (torch.rand(batch_size, config.model.input_size) < 0.3).float()  # (B, D)
    model(x).loss.backward()  # warm-up: Adam's state and lazy inits outside the profile
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    result = {"dataset": dataset, "preset": preset_name, "batch": batch_size,
              "groups": config.model.groups, "iterations": config.model.iterations, "torch": torch.__version__}
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as forward_backward:
        model(x).loss.backward()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as adam:
        optimizer.step()
    for name, prof in (("forward_backward", forward_backward), ("adam", adam)):
        counts = leaf_operators(prof.events())
        result[name] = {"operators": sum(counts.values()), "by_name": dict(counts.most_common(15))}
    result["operators_per_step"] = result["forward_backward"]["operators"] + result["adam"]["operators"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes", choices=["shapes", "texture-mnist"])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--output", type=Path, help="JSON file for the counts")
    args = parser.parse_args()
    result = count_step(args.dataset, args.preset, args.batch_size)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.dataset} {args.preset}, batch {args.batch_size}: {result['operators_per_step']} operators a step "
          f"({result['forward_backward']['operators']} forward+backward, {result['adam']['operators']} Adam)")
    for name, count in result["forward_backward"]["by_name"].items():
        print(f"  {count:5d}  {name}")


if __name__ == "__main__":
    main()
