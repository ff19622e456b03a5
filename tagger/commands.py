"""What each CLI command does (argument parsing lives in :mod:`tagger.cli`)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from . import datasets
from .checkpoint import CheckpointError, find_checkpoint, load_model, read_checkpoint
from .config import Config, ConfigError, preset
from .datasets import DataError
from .train import TrainingError

USER_ERRORS = (ConfigError, DataError, CheckpointError, OSError, TrainingError)

_OVERRIDES = {  # CLI flag -> (section, field)
    "epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"), "lr": ("train", "lr"),
    "seed": ("train", "seed"), "valid_examples": ("train", "valid_examples"),
    "train_examples": ("train", "train_examples"), "eval_iterations": ("train", "eval_iterations"),
    "checkpoint_every": ("train", "checkpoint_every"), "max_minutes": ("train", "max_minutes"),
    "groups": ("model", "groups"), "iterations": ("model", "iterations"), "norm": ("model", "norm"),
    "noise": ("model", "noise"), "deterministic": ("train", "deterministic"),
    "precision": ("train", "precision"), "class_cost": ("train", "class_cost"),
    "labeled": ("train", "labeled"), "init": ("train", "init_from"), "likelihood": ("model", "likelihood"), "v_init": ("model", "v_init"),
}


def parse_widths(text: str) -> tuple[int, ...]:
    """``"2000-1000-500"`` (or comma-separated) -> layer sizes; a :class:`ConfigError` otherwise."""
    try:
        return tuple(int(w) for w in text.replace(",", "-").split("-"))
    except ValueError:
        raise ConfigError(f"--widths must look like 2000-1000-500, got {text!r}") from None


def config_from_args(args) -> Config:
    """The preset named by ``--preset`` with every given flag applied; validated."""
    config = preset(args.preset, args.dataset, args.digits)
    for flag, (section, name) in _OVERRIDES.items():
        value = getattr(args, flag, None)
        if value is not None:
            setattr(getattr(config, section), name, value)
    if args.widths:
        config.model.widths = parse_widths(args.widths)
    return config.validate()


def run_train(args) -> int:
    from .train import Trainer

    if args.resume is not None:
        config, _, _, _ = read_checkpoint(args.resume)
        run_dir = Path(args.resume)
        for flag in ("epochs", "max_minutes", "checkpoint_every"):  # what may change on resume
            if getattr(args, flag, None) is not None:
                setattr(config.train, flag, getattr(args, flag))
        config.validate()
    else:
        config = config_from_args(args)
        if config.train.init_from:
            find_checkpoint(Path(config.train.init_from))  # fail before loading any data
        run_dir = args.run_dir or Path("runs") / f"{args.dataset}-{args.preset}"
        if (run_dir / "checkpoint").exists():
            raise ConfigError(f"--run-dir {run_dir} already holds a run; use --resume {run_dir} or another --run-dir")
    from .distributed import teardown

    trainer = Trainer(config, run_dir, device=args.device, data_dir=args.data_dir, progress=not args.no_progress)
    try:
        if args.compile in ("graph", "fused"):
            if trainer.ranks.world > 1:
                raise ConfigError(f"--compile {args.compile} is single-process only (drop it under torchrun)")
            from .fast import use_cuda_graph

            use_cuda_graph(trainer, compiled=args.compile == "fused")
        elif args.compile == "inductor":
            from .fast import use_inductor

            use_inductor(trainer)
        if trainer.ranks.main:
            print(f"training {config.preset} ({config.train.dataset}, {config.model.norm} norm) on "
                  f"{trainer.device} x {trainer.ranks.world} -> {run_dir}")
        last = trainer.run(resume=args.resume is not None)
    finally:
        teardown()
    if not trainer.ranks.main:
        return 0
    if not last:
        print(f"stopped before the first epoch ended; checkpoint in {run_dir} (--resume {run_dir} continues)")
        return 0
    print(f"done: epoch {last['epoch']}, valid AMI (last iteration) "
          f"{last[f'valid_ami_{config.train.eval_iterations}']:.3f}; checkpoint in {run_dir}")
    return 0


def _check_eval_flags(args) -> None:
    for flag in ("iterations", "groups", "batch_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if args.examples < 0:
        raise ConfigError(f"--examples must be >= 0, got {args.examples}")


def _load_for_eval(args):
    from .train import resolve_device

    _check_eval_flags(args)
    device = resolve_device(args.device)
    config, _, _, _ = read_checkpoint(args.run_dir)
    model = load_model(args.run_dir, device=device)
    train = config.train
    extra = {} if train.dataset == "shapes" else {"n_digits": train.n_digits}
    if getattr(args, "objects", None) is not None:
        if train.dataset != "shapes":
            raise ConfigError("--objects applies to Shapes runs only")
        extra["n_objects"] = args.objects
    split = datasets.load(train.dataset, args.split, args.data_dir, **extra)
    count = args.examples or len(split)
    features = torch.as_tensor(split.features[:count]).to(device)
    objects = torch.as_tensor(split.objects[:count].astype("int64"))
    return config, model, split, features, objects


def _run_dir_of(path: Path) -> Path:
    folder = find_checkpoint(path)
    return folder.parent if folder.name.startswith("checkpoint") else folder


def run_eval(args) -> int:
    from .evaluate import evaluate, format_table, write_json

    config, model, split, features, objects = _load_for_eval(args)
    labels = None
    if config.train.class_cost > 0:  # a semi-supervised run: also the classification error
        labels = torch.as_tensor(split.labels[:features.shape[0]].astype("int64"))
    started = time.time()
    result = evaluate(model, features, objects, iterations=args.iterations, groups=args.groups,
                      batch_size=args.batch_size, seed=args.seed, progress=True, labels=labels)
    result.update(split=split.name, preset=config.preset, norm=config.model.norm,
                  seconds=round(time.time() - started, 2))
    suffix = f"_{args.objects}obj" if getattr(args, "objects", None) is not None else ""
    output = args.output or _run_dir_of(args.run_dir) / f"eval_{args.split}{suffix}.json"
    write_json(result, output)
    print(format_table(result, f"{split.name}: {result['examples']} examples, K={result['groups']}"))
    print(f"written {output}")
    return 0


def _infer_in_batches(model, features, args, generator, remove):
    """Masks, reconstructions and top outputs ``(T, N, ...)`` of ``features`` in evaluation batches
    (a BatchNorm model normalises over its batch, so a figure must use the evaluation's batches)."""
    outputs = [model.infer(features[start:start + args.batch_size], iterations=args.iterations, groups=args.groups,
                           generator=generator, remove_groups=tuple(remove))
               for start in range(0, features.shape[0], args.batch_size)]
    return (torch.cat([out.masks for out in outputs], 1), torch.cat([out.reconstructions for out in outputs], 1),
            torch.cat([out.top for out in outputs], 1))


def _chosen_examples(args, masks, objects) -> tuple[list[int], list[str] | None]:
    """``--order first``: the first N; ``--order ami``: N spread over the pool's AMI ranking, best first."""
    if args.order == "first":
        return list(range(args.examples)), None
    from . import metrics

    scores = metrics.ami(objects, masks[-1].cpu())  # (pool,)
    ranked = scores.argsort(descending=True)
    positions = torch.linspace(0, len(ranked) - 1, args.examples).round().long()
    chosen = ranked[positions].tolist()
    return chosen, [f"AMI {scores[i]:.2f}" for i in chosen]


def run_show(args) -> int:
    import argparse

    from .visualize import grouping_figure

    shown = args.examples
    pool = args.pool if args.order == "ami" else shown
    if shown < 1 or pool < shown:
        raise ConfigError(f"--examples must be >= 1 and --pool >= --examples, got {shown} and {pool}")
    loading = argparse.Namespace(**{**vars(args), "examples": max(pool, args.batch_size)})
    config, model, split, features, objects = _load_for_eval(loading)
    generator = torch.Generator(device=features.device).manual_seed(args.seed)
    remove = list(getattr(args, "remove_group", None) or [])
    try:
        model.removal(remove, args.groups or config.model.groups, features.device)
    except ValueError as error:
        raise ConfigError(f"--remove-group: {error}") from None
    masks, reconstructions, top = _infer_in_batches(model, features, args, generator, remove)  # (T, N, K, D)
    chosen, captions = _chosen_examples(args, masks[:, :pool], objects[:pool])
    if config.train.class_cost > 0:  # semi-supervised run: true and predicted classes (last iteration)
        from .classify import class_probabilities

        ranked = class_probabilities(top[-1, chosen]).argsort(dim=-1, descending=True).cpu()
        labels = split.labels[chosen]
        captions = [(captions[b] + "\n" if captions else "") + f"true {','.join(map(str, row))}\n"
                    f"pred {','.join(map(str, ranked[b, :len(row)].tolist()))}" for b, row in enumerate(labels.tolist())]
    removed = "_without" + "-".join(map(str, remove)) if remove else ""
    output = args.output or _run_dir_of(args.run_dir) / f"groupings_{args.split}{removed}.png"
    grouping_figure(features[chosen], objects[chosen], masks[:, chosen], reconstructions[:, chosen],
                    split.image_shape, output, title=f"{split.name} ({config.preset}, {config.model.norm} norm)"
                    + (f", group {', '.join(map(str, remove))} removed in the last iteration" if remove else ""),
                    captions=captions)
    print(f"written {output}")
    return 0


def run_bench(args) -> int:
    from .bench import run_benchmark

    run_benchmark(args)
    return 0


def baseline_config_from_args(args):
    """The baseline preset for ``--model``/``--labeled``/``--digits`` with the given overrides."""
    from .baseline_train import baseline_preset

    config = baseline_preset(args.model, args.labeled, args.digits, getattr(args, "dataset", "texture-mnist"))
    for name in ("epochs", "batch_size", "lr", "decay_start", "seed", "noise", "input_noise",
                 "valid_examples", "max_minutes"):
        if getattr(args, name, None) is not None:
            setattr(config, name, getattr(args, name))
    if args.widths:
        config.widths = parse_widths(args.widths)
    if args.denoising:
        try:
            config.denoising = tuple(float(w) for w in args.denoising.split(","))
        except ValueError:
            raise ConfigError(f"--denoising must look like 2000,20,0.1, got {args.denoising!r}") from None
    return config.validate()


def run_baseline(args) -> int:
    from .baseline_train import BaselineTrainer, load_baseline_splits
    from .train import resolve_device

    config = baseline_config_from_args(args)
    data = "mnist" if config.dataset == "mnist" else f"t{config.digits}"
    run_dir = args.run_dir or Path("runs") / f"baseline-{config.model}-{data}-{config.labeled or 'all'}"
    if (run_dir / "result.json").exists():
        raise ConfigError(f"--run-dir {run_dir} already holds a finished baseline; choose another --run-dir")
    trainer = BaselineTrainer(config, run_dir, load_baseline_splits(config, args.data_dir),
                              resolve_device(args.device), progress=not args.no_progress)
    result = trainer.run()
    name = "MNIST" if config.dataset == "mnist" else f"TextureMNIST{config.digits}"
    print(f"{config.model} on {name}, {result['labeled_examples']} labels, "
          f"{result['epochs_run']} epochs: valid error {result['valid_class_error']:.2f} %, "
          f"test error {result['test_class_error']:.2f} % (result in {run_dir}/result.json)")
    return 0


def rc_config_from_args(args):
    """The RC preset for ``--train-set`` with the given overrides."""
    from .reconstruction_clustering import rc_preset

    config = rc_preset(args.train_set)
    for name in ("hidden", "activation", "noise", "lr", "max_epochs", "patience", "groups", "iterations",
                 "e_step", "seed", "test_examples"):
        if getattr(args, name, None) is not None:
            setattr(config, name, getattr(args, name))
    return config.validate()


def run_rc(args) -> int:
    import dataclasses
    import json

    from .rc_train import run_rc as train_and_test, summarise
    from .train import resolve_device

    config = rc_config_from_args(args)
    run_dir = Path(args.run_dir or Path("runs") / f"rc-{config.train_set}")
    device = resolve_device(args.device)
    seeds = seed_list(args.seeds) if args.seeds else [config.seed]
    results = {}
    for seed in seeds:
        directory = run_dir / f"seed{seed}" if args.seeds else run_dir
        if (directory / "result.json").exists():
            if not args.seeds:
                raise ConfigError(f"--run-dir {directory} already holds a finished RC run; choose another --run-dir")
            results[seed] = json.loads((directory / "result.json").read_text())  # an interrupted sweep continues
        else:
            results[seed] = train_and_test(dataclasses.replace(config, seed=seed), directory, device,
                                           args.data_dir, progress=not args.no_progress)
        ami = results[seed]["ami"]
        print(f"RC (DAE on '{config.train_set}', K={config.groups}), seed {seed}: test AMI after iteration "
              f"1/2/5/{config.iterations}: " + " / ".join(f"{ami[t]:.3f}" for t in sorted({1, 2, 5, len(ami) - 1})
                                                          if t < len(ami)) + f" ({directory})")
    if args.seeds:
        summary = summarise(results)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"RC over seeds {args.seeds}: test AMI {summary['ami_mean']:.3f} +- {summary['ami_std']:.3f} "
              f"(paper, Table 1b: 0.61 +- 0.005); {run_dir}/summary.json")
    return 0


def seed_list(text: str) -> list[int]:
    """``"1-5"`` or ``"1,3,7"`` -> seeds."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds:
        raise ConfigError(f"--seeds must look like 1-5 or 1,3,7, got {text!r}")
    return seeds


def run_demo(args) -> int:
    import argparse

    run_dir = Path(args.run_dir)
    common = dict(debug=False, data_dir=args.data_dir, device=args.device)
    if (run_dir / "checkpoint").exists():
        print(f"{run_dir} holds a run already; resuming it")
        run_train(argparse.Namespace(resume=run_dir, compile="off", no_progress=False, **common))
    else:
        overrides = {flag: None for flag in _OVERRIDES} | {"widths": None}
        overrides["max_minutes"] = args.max_minutes or None
        run_train(argparse.Namespace(dataset="shapes", preset="quick", digits=2, run_dir=run_dir, resume=None,
                                     compile="off", no_progress=False, **overrides, **common))
    evaluation = dict(split="test", iterations=5, groups=None, batch_size=100, seed=0, output=None, objects=None,
                      **common)
    run_eval(argparse.Namespace(run_dir=run_dir, examples=0, **evaluation))
    return run_show(argparse.Namespace(run_dir=run_dir, examples=4, order="first", pool=0, **evaluation))


def run_data(args) -> int:
    started = time.time()
    if args.dataset == "shapes":
        split = datasets.shapes("train", data_dir_override=args.data_dir)
    else:
        split = datasets.texture_mnist("train", n_digits=args.digits, data_dir=args.data_dir)
    print(f"{split.name}: {len(split)} examples of {split.input_size} elements, "
          f"cached in {datasets.data_dir(args.data_dir)} ({time.time() - started:.1f} s)")
    return 0
