"""``tagger probe``: how a trained Shapes model generalises beyond its training setting.

One command evaluates the model on images with 1..5 shapes, with K = 2..6 groups, and reads
every iteration 1..T of one T = 10 run (:func:`tagger.evaluate.evaluate` reports them all), so
the grid costs objects x groups evaluations, not x iterations too. It writes ``probe.json``
(the grid), ``probe.md`` (its tables) and ``probe.png`` (the grid as a picture) into the run directory; ``tagger report`` shows them.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..files import write_text_atomically
from .inspect import EvalOptions, _load_split, _run_dir_of

# The paper's Figure 4 shows three hand-picked generalisation examples (its caption): A, a
# 2-group model on 3-object data; B, a model trained with K=4 on 3 objects tested on 4
# objects; C, the same model on 2 objects. Here A is the trained model run with K=2 (the paper
# trained a separate 2-group model). Cells are (objects, groups); None = the run's trained K.
PAPER_EXAMPLES = {
    "A": (3, 2, "2 groups, 3 objects (the paper: a model trained with K=2)"),
    "B": (4, None, "4 objects, trained K (trained on 3)"),
    "C": (2, None, "2 objects, trained K (trained on 3)"),
}


@dataclass
class ProbeOptions:
    """What ``tagger probe`` does (see its ``--help``)."""

    run_dir: Path
    objects: tuple[int, ...] = (1, 2, 3, 4, 5)
    groups: tuple[int, ...] = (2, 3, 4, 5, 6)
    iterations: int = 10
    examples: int = 1000
    batch_size: int = 100
    seed: int = 0
    device: str = "auto"
    data_dir: Path | None = None


def probe(options: ProbeOptions) -> dict:
    """The grid: per (objects, groups) cell, AMI, FG-ARI and denoising cost per iteration 1..T."""
    from ..evaluate import evaluate

    if options.iterations < 1 or min(options.groups) < 1 or min(options.objects) < 1:
        raise ConfigError("--iterations, --groups and --objects must be >= 1")
    from ..checkpoint import load_run
    from ..training.device import resolve_device

    device = resolve_device(options.device)
    config, model = load_run(options.run_dir, device=device)  # once: only the data changes per row
    if config.train.dataset != "shapes":
        raise ConfigError(f"tagger probe needs a Shapes run (its grid varies the shapes per image); "
                          f"this run is {config.train.dataset}")
    cells, started = [], time.time()
    for count in options.objects:
        eval_options = EvalOptions(options.run_dir, examples=options.examples, objects=count, seed=options.seed,
                                   device=options.device, data_dir=options.data_dir, batch_size=options.batch_size)
        _, features, objects = _load_split(eval_options.check(), config, device)
        for groups in options.groups:
            result = evaluate(model, features, objects, iterations=options.iterations, groups=groups,
                              batch_size=options.batch_size, seed=options.seed)
            cells.append({"objects": count, "groups": groups, "ami": result["ami"], "ari": result["ari"],
                          "denoising_cost": result["denoising_cost"]})
            print(f"{count} objects, K={groups}: AMI after {options.iterations} iterations {result['ami'][-1]:.3f}")
    trained = {"objects": 3, "groups": config.model.groups, "iterations": config.model.iterations,
               "reported_iteration": min(config.train.eval_iterations, options.iterations)}
    examples = {name: {"objects": n, "groups": k or trained["groups"], "what": what}
                for name, (n, k, what) in PAPER_EXAMPLES.items()}
    return {"run": str(options.run_dir), "split": "test", "examples": features.shape[0], "seed": options.seed,
            "objects": list(options.objects), "groups": list(options.groups),
            "iterations": list(range(1, options.iterations + 1)), "trained": trained,
            "paper_examples": examples, "cells": cells, "seconds": round(time.time() - started, 1)}


def _marks(result: dict) -> dict[tuple[int, int], str]:
    """``(objects, groups) -> "A"`` for the paper's examples that are cells of this grid."""
    return {(e["objects"], e["groups"]): name for name, e in result["paper_examples"].items()}


def format_probe(result: dict) -> str:
    """Markdown: AMI at the reported iteration over objects x groups (paper examples marked in
    bold with their letter), then per object count AMI over groups x iterations."""
    marks, cells = _marks(result), {(c["objects"], c["groups"]): c for c in result["cells"]}
    shown = result["trained"]["reported_iteration"]
    trained = result["trained"]

    def cell(n, k, t):
        text = f"{cells[n, k]['ami'][t - 1]:.3f}"
        return f"**{text} ({marks[n, k]})**" if (n, k) in marks else text

    lines = [f"AMI on {result['examples']} test images per cell after {shown} iterations; trained on "
             f"{trained['objects']} objects with K={trained['groups']}, T={trained['iterations']}.", "",
             "| objects \\ K | " + " | ".join(map(str, result["groups"])) + " |",
             "|---" * (len(result["groups"]) + 1) + "|"]
    lines += [f"| {n} | " + " | ".join(cell(n, k, shown) for k in result["groups"]) + " |" for n in result["objects"]]
    lines += ["", "Paper's Figure 4 examples: " + "; ".join(
        f"{name} = {e['what']}" + ("" if (e["objects"], e["groups"]) in cells else " (not in this grid)")
        for name, e in result["paper_examples"].items()) + "."]
    for n in result["objects"]:
        lines += ["", f"{n} object{'s' if n > 1 else ''}: AMI per iteration", "",
                  "| K | " + " | ".join(f"Iter {t}" for t in result["iterations"]) + " |",
                  "|---" * (len(result["iterations"]) + 1) + "|"]
        lines += [f"| {k}{f' ({marks[n, k]})' if (n, k) in marks else ''} | "
                  + " | ".join(f"{v:.3f}" for v in cells[n, k]["ami"]) + " |" for k in result["groups"]]
    return "\n".join(lines) + "\n"


def run_probe(args: argparse.Namespace) -> int:
    options = ProbeOptions(args.run_dir, tuple(args.objects), tuple(args.groups), args.iterations, args.examples,
                           args.batch_size, args.seed, args.device, args.data_dir)
    result = probe(options)
    folder = _run_dir_of(options.run_dir)
    write_text_atomically(folder / "probe.json", json.dumps(result, indent=2) + "\n")
    write_text_atomically(folder / "probe.md", format_probe(result))
    from ..visualize import probe_figure

    probe_figure(result, folder / "probe.png")
    print(format_probe(result))
    print(f"written {folder / 'probe.json'}, probe.md and probe.png ({result['seconds']} s)")
    return 0
