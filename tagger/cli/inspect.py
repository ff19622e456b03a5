"""``tagger eval`` (Table 1a for a run) and ``tagger show`` (a figure like the paper's Figure 4)."""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import datasets
from ..checkpoint import find_checkpoint, load_run
from ..config import USER
from ..errors import ConfigError, DataError

MAX_OBJECTS = 10  # more shapes than this hardly fit a 20x20 Shapes image (and take minutes to place)


@dataclass
class EvalOptions:
    """What ``tagger eval`` and ``tagger show`` do (see their ``--help``)."""

    run_dir: Path
    split: str = "test"
    iterations: int = 5
    groups: int | None = None
    examples: int = 0
    batch_size: int = 100
    objects: int | None = None
    seed: int = 0
    device: str = "auto"
    data_dir: Path | None = None
    output: Path | None = None
    order: str = "first"  # show: first examples, or spread over the AMI ranking of ``pool``
    pool: int = 1000
    remove_group: list[int] = field(default_factory=list)
    assign: str = "masks"  # score and draw the masks, or the per-pixel posterior (Tagger.posterior)
    progress: bool = True  # a progress bar while evaluating (on stderr)
    data: Path | None = None  # your own images instead of the run's data
    format: str | None = None  # the TFRecord schema of ``data``

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "EvalOptions":
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})

    def replace(self, **changes) -> "EvalOptions":
        return dataclasses.replace(self, **changes)

    def check(self) -> "EvalOptions":
        for flag in ("iterations", "groups", "batch_size"):
            value = getattr(self, flag)
            if value is not None and value < 1:
                raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
        if self.examples < 0:
            raise ConfigError(f"--examples must be >= 0, got {self.examples}")
        if self.objects is not None and not 1 <= self.objects <= MAX_OBJECTS:
            raise ConfigError(f"--objects must be in 1..{MAX_OBJECTS} (Shapes on 20x20 pixels), got {self.objects}")
        return self

    def check_output(self, suffixes: tuple[str, ...]) -> "EvalOptions":
        """Refuse an ``--output`` that could not be written, before any compute."""
        if self.output is None:
            return self
        if self.output.suffix.lower() not in suffixes:
            raise ConfigError(f"--output {self.output} must end in {' or '.join(suffixes)}")
        folder = self.output.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # the nearest existing folder: the missing ones are created
        if self.output.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ConfigError(f"--output {self.output} cannot be written (a folder, or no write access)")
        return self


def _load(options: EvalOptions, at_least: int = 0):
    """The run's config and model, and the split's first ``examples`` inputs and objects (at least
    ``at_least`` of them where the split has them)."""
    from ..training.device import resolve_device

    device = resolve_device(options.device)
    config, model = load_run(options.run_dir, device=device)
    return (config, model) + _load_split(options, config, device, at_least)


def _load_split(options: EvalOptions, config, device, at_least: int = 0):
    """The split a run of ``config`` is scored on: (split, features (N, D) on ``device``, objects (N, P))."""
    train = config.train
    if options.data is not None or train.dataset == USER:
        from .segment import own_split

        split = own_split(config, options.data, options.split, options.data_dir, options.format, options.progress)
        return _first(options, split, device, at_least)
    extra = train.data_kwargs()
    if options.objects is not None:
        if train.dataset != "shapes":
            raise ConfigError("--objects applies to Shapes runs only")
        extra["n_objects"] = options.objects
    split = datasets.load(train.dataset, options.split, options.data_dir, **extra)
    return _first(options, split, device, at_least)


def _first(options: EvalOptions, split, device, at_least: int):
    """(split, features (N, D) on ``device``, objects (N, P)) of the examples asked for."""
    if options.examples > len(split):
        raise ConfigError(f"--examples {options.examples} exceeds the {len(split)} examples of {split.name}")
    count = min(max(options.examples, at_least), len(split)) if options.examples else len(split)
    features = torch.as_tensor(split.features[:count]).to(device)  # (N, D)
    objects = torch.as_tensor(split.objects[:count].astype("int64"))  # (N, P): per pixel
    return split, features, objects


def _run_dir_of(path: Path) -> Path:
    folder = find_checkpoint(path)
    return folder.parent if folder.name.startswith("checkpoint") else folder


def evaluate_run(options: EvalOptions) -> dict:
    """Table 1a for a run (with FG-ARI, mBO and mIoU beside AMI): written as JSON next to it, printed
    as a table."""
    from ..evaluate import evaluate, format_table, write_json

    config, model, split, features, objects = _load(options.check().check_output((".json",)))
    if not bool(objects.any()):
        raise DataError(f"{split.name} has no objects (ground-truth ids): nothing to score; "
                        "tagger show draws its groupings, tagger segment writes its masks")
    labels = None
    if config.train.class_cost > 0:  # a semi-supervised run: also the classification error
        labels = torch.as_tensor(split.labels[:features.shape[0]].astype("int64"))
    started = time.time()
    subsets = None
    if split.colors is not None:  # Tetrominoes: pieces of distinct colours vs a repeated colour
        from ..baselines.colour import distinct_colours

        distinct = distinct_colours(split.colors[:features.shape[0]])
        subsets = {"distinct colours": distinct, "repeated colour": ~distinct}
    result = evaluate(model, features, objects, iterations=options.iterations, groups=options.groups,
                      batch_size=options.batch_size, seed=options.seed, progress=options.progress, labels=labels,
                      subsets=subsets, assign=options.assign, overlap=True)  # + mBO and mIoU
    result.update(split=split.name, preset=config.preset, norm=config.model.norm,
                  seconds=round(time.time() - started, 2))
    suffix = f"_{options.objects}obj" if options.objects is not None else ""
    suffix += f"_n{options.examples}" if options.examples else ""  # a subset never overwrites the full result
    suffix += "_posterior" if options.assign == "posterior" else ""
    output = options.output or _run_dir_of(options.run_dir) / f"eval_{options.split}{suffix}.json"
    write_json(result, output)
    scored = ", posterior" if options.assign == "posterior" else ""
    print(format_table(result, f"{split.name}: {result['examples']} examples, K={result['groups']}{scored}"))
    print(f"written {output}")
    return result


def _chosen_examples(options: EvalOptions, masks, objects) -> tuple[list[int], list[str] | None]:
    """``--order first``: the first N; ``--order ami``: N spread over the pool's AMI ranking, best first."""
    if options.order == "first":
        return list(range(options.examples)), None
    from .. import metrics

    scores = metrics.ami(objects, masks[-1].cpu())  # (pool,)
    ranked = scores.argsort(descending=True)
    positions = torch.linspace(0, len(ranked) - 1, options.examples).round().long()
    chosen = ranked[positions].tolist()
    return chosen, [f"AMI {scores[i]:.2f}" for i in chosen]


def _class_captions(top, split, chosen, captions) -> list[str]:
    """Semi-supervised runs: true and predicted classes (last iteration) under each example."""
    from ..classify import class_probabilities

    ranked = class_probabilities(top[-1, chosen]).argsort(dim=-1, descending=True).cpu()
    labels = split.labels[chosen]
    return [(captions[b] + "\n" if captions else "") + f"true {','.join(map(str, row))}\n"
            f"pred {','.join(map(str, ranked[b, :len(row)].tolist()))}" for b, row in enumerate(labels.tolist())]


def show_run(options: EvalOptions) -> int:
    """A PNG of groupings like the paper's Figure 4, written next to the run."""
    from ..evaluate import assigned, infer_in_batches
    from ..visualize import grouping_figure

    shown = options.examples
    pool = options.pool if options.order == "ami" else shown
    if shown < 1:
        raise ConfigError(f"--examples must be >= 1, got {shown}")
    if pool < shown:
        raise ConfigError(f"--pool must be >= --examples with --order ami, got {pool} and {shown}")
    options.check().check_output((".png", ".pdf", ".svg"))
    config, model, split, features, objects = _load(options.replace(examples=pool), at_least=options.batch_size)
    generator = torch.Generator(device=features.device).manual_seed(options.seed)
    remove = list(options.remove_group)
    try:
        model.removal(remove, options.groups or config.model.groups, features.device)
    except ValueError as error:
        raise ConfigError(f"--remove-group: {error}") from None
    out = infer_in_batches(model, features, options.batch_size, iterations=options.iterations, groups=options.groups,
                           generator=generator, remove_groups=tuple(remove))  # eval's batches
    masks, reconstructions, top = out.masks, out.reconstructions, out.top  # (T, N, K, P), (T, N, K, D), (T, N, K, HL)
    if options.assign == "posterior" and remove:
        raise ConfigError("--remove-group draws the masks; drop --assign posterior")
    masks = assigned(model, features, masks, reconstructions, options.assign)  # (T, N, K, P)
    chosen, captions = _chosen_examples(options, masks[:, :pool], objects[:pool])
    if config.train.class_cost > 0:
        captions = _class_captions(top, split, chosen, captions)
    if config.train.permute_pixels >= 0:  # a model trained on shuffled pixels, drawn in image space
        undo = lambda a: datasets.unpermute(a, config.train.permute_pixels, split.image_shape)  # noqa: E731
        features, objects, masks, reconstructions = undo(features), undo(objects), undo(masks), undo(reconstructions)
    removed = ("_ami" if options.order == "ami" else "") + ("_without" + "-".join(map(str, remove)) if remove else "")
    removed += "_posterior" if options.assign == "posterior" else ""
    output = options.output or _run_dir_of(options.run_dir) / f"groupings_{options.split}{removed}.png"
    grouping_figure(features[chosen], objects[chosen], masks[:, chosen], reconstructions[:, chosen],
                    split.image_shape, output, title=f"{split.name} ({config.preset}, {config.model.norm} norm)"
                    + (", posterior" if options.assign == "posterior" else "")
                    + (f", group {', '.join(map(str, remove))} removed in the last iteration" if remove else ""),
                    captions=captions)
    print(f"written {output}")
    if config.train.dataset == "spectrograms":  # sound: each group's share of the mixture, as WAV files
        from ..audio import write_separated

        folder = output.parent / f"audio_{options.split}"
        files = write_separated(folder, options.split, chosen, masks[-1, chosen].cpu().numpy(), options.data_dir)
        print(f"written {len(files)} WAV files (mixture, true sources, groups) into {folder}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    evaluate_run(EvalOptions.from_args(args))
    return 0


def run_show(args: argparse.Namespace) -> int:
    return show_run(EvalOptions.from_args(args))


def run_export(args) -> None:
    from ..export import export_run

    paths = export_run(args.run_dir, args.output, dtype=args.dtype, piece_mib=args.piece_mib)
    total = sum(path.stat().st_size for path in paths)
    print(f"exported {args.run_dir} as {len(paths)} {args.dtype} piece(s), {total / 2**20:.1f} MiB, into {args.output}")
