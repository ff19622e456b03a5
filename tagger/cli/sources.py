"""Where ``tagger train``'s config comes from: a named preset of a built-in dataset, a preset sized
by your own images (``--data PATH``), or a file (``--config FILE``, JSON or TOML); flags given
beside any of them override it."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..config import USER, Config, ModelConfig, TrainConfig
from ..datasets import Split, open_data
from ..errors import ConfigError
from ..presets import for_data, preset
from .flags import apply_flags, given_flags


@dataclasses.dataclass
class Source:
    """A config, with the splits already read to size it (your own images), else None."""

    config: Config
    train: Split | None = None
    valid: Split | None = None


def source_from_args(args: argparse.Namespace) -> Source:
    """The config ``tagger train``'s arguments ask for, every given flag applied (unvalidated:
    :func:`tagger.train` validates it)."""
    if args.config is not None:
        if args.dataset or args.preset or args.digits is not None:
            raise ConfigError("--config gives the dataset and preset; drop DATASET, --preset and --digits (or the file)")
        source = Source(read_config_file(args.config))
        if getattr(args, "train.data", None):  # the file's settings, on these images
            source = _own_data(args, source.config)
    elif getattr(args, "train.data", None):
        if args.dataset or args.digits is not None:
            raise ConfigError("--data replaces the DATASET argument (and --digits); give one of them")
        source = _own_data(args)
    else:
        dataset = args.dataset or "shapes"
        if args.digits is not None and dataset != "texture-mnist":
            raise ConfigError(f"--digits applies to texture-mnist only, not {dataset}")
        source = Source(preset(args.preset or "quick", dataset, 2 if args.digits is None else args.digits))
    apply_flags(source.config.model, args, "model.")
    own = source.train is not None  # --data and --valid were read, resolved and recorded already
    apply_flags(source.config.train, args, "train.", skip=("data", "valid_data") if own else ())
    if source.train is not None:
        print(describe(source.config, source.train))
    return source


def _own_data(args: argparse.Namespace, config: Config | None = None) -> Source:
    """``--data PATH`` (and ``--valid PATH``): the files read once, ``config`` (default: a preset
    sized by them) set to train on them, their absolute paths and sha256 digests recorded."""
    given = given_flags(TrainConfig(), args, "train.")
    options = dict(format=given.get("data_format") or None, resize=given.get("resize") or None,
                   data_dir=args.data_dir, progress=not args.no_progress)
    train, digest = open_data(given["data"], **options)
    config = for_data(args.preset or "quick", train) if config is None else config
    config.train.dataset = USER
    config.train.data, config.train.data_sha256 = str(Path(given["data"]).resolve()), digest
    valid = None
    if given.get("valid_data"):
        valid, valid_digest = open_data(given["valid_data"], **options)
        config.train.valid_data, config.train.valid_sha256 = str(Path(given["valid_data"]).resolve()), valid_digest
    return Source(config, train, valid)


def describe(config: Config, split: Split) -> str:
    """One line: what the data is and what was chosen for it."""
    model, train = config.model, config.train
    shape = "x".join(map(str, split.image_shape))
    truth = "with objects" if split.objects.any() else "without objects (nothing scored)"
    return (f"data: {split.name}, {len(split)} images of {shape} {truth}; {model.likelihood} likelihood "
            f"({'every value 0 or 1' if split.binary else 'continuous values'}), z0 {model.z0}, K = {model.groups}; "
            f"preset {config.preset}: widths {'-'.join(map(str, model.widths))}, {train.epochs} "
            f"epoch{'s' if train.epochs != 1 else ''} of batch {train.batch_size}")


def read_config_file(path: Path) -> Config:
    """A config from a JSON or TOML file: a run's own ``config.json`` reproduces that run; a
    partial file (e.g. ``preset = "quick"`` and a ``[train]`` table with ``epochs = 3``) starts
    from the named preset of its dataset and sets what it gives."""
    try:
        text = Path(path).read_text()
        if Path(path).suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read ({error.strerror or error})") from None
    except ValueError as error:  # JSONDecodeError and TOMLDecodeError
        raise ConfigError(f"--config {path}: not valid {Path(path).suffix.lstrip('.').upper() or 'JSON'} "
                          f"({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict) or set(data) - {"preset", "model", "train"}:
        raise ConfigError(f"--config {path}: expected the keys preset, model and train (as a run's config.json)")
    return Config.from_dict(_over_preset(data))


def _over_preset(data: dict) -> dict:
    """``data`` laid over the preset it names (or the defaults), so a partial file is a whole config."""
    train = data.get("train", {})
    dataset, name = train.get("dataset", "shapes"), data.get("preset", "quick")
    try:
        base = preset(name, dataset, train.get("n_digits", 2)).to_dict()
    except ConfigError:  # "custom", or a run on your own images: the defaults
        base = Config(preset=name, model=ModelConfig(), train=TrainConfig(dataset=dataset)).to_dict()
    for section in ("model", "train"):
        given = data.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"--config: [{section}] must be a table of settings")
        base[section].update(given)
    base["preset"] = name
    return base


def print_config(config: Config) -> None:
    """``--print-config``: the resolved config as JSON (what ``--config`` reads back)."""
    print(json.dumps(config.to_dict(), indent=2))


__all__ = ["Source", "source_from_args", "read_config_file", "print_config", "describe", "USER"]
