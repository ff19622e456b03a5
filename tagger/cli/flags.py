"""Command-line flags derived from config dataclasses: every field is a flag (``--field-name``,
its help from the field's metadata) unless its metadata says ``flag=None``; a field added to a
config is a flag without further code. Given flags override a preset; absent ones keep it."""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from ..errors import ConfigError


def flag_name(field: dataclasses.Field) -> str | None:
    """``--name`` of a field's flag (None: not a flag)."""
    name = field.metadata.get("flag", field.name)
    return None if name is None else "--" + name.replace("_", "-")


def _sequence(item: type, separators: str, example: str, flag: str):
    """Parser of ``--widths 2000-1000-500``-style values into a tuple of ``item``."""

    def parse(text: str) -> tuple:
        parts = text
        for separator in separators[1:]:
            parts = parts.replace(separator, separators[0])
        try:
            return tuple(item(part) for part in parts.split(separators[0]))
        except ValueError:
            raise ConfigError(f"{flag} must look like {example}, got {text!r}") from None

    return parse


def _argument(field: dataclasses.Field, hint, flag: str) -> dict:
    """argparse keywords for a field of type ``hint``; every default is None (= the preset's)."""
    options = {"dest": field.name, "default": None, "help": field.metadata.get("help")}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # ``float | None`` -> float
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if hint is bool:
        return {**options, "action": "store_true"}
    # sequences are parsed in apply_flags, so that a bad one is a one-line ConfigError, not a usage text
    options["type"] = str if typing.get_origin(hint) is tuple else hint
    for key in ("choices", "metavar"):
        if key in field.metadata:
            options[key] = field.metadata[key]
    return options


def add_config_flags(parser, cls, title: str, prefix: str = "") -> None:
    """Add one flag per field of dataclass ``cls`` to an argument group of ``parser``; their values
    land in ``args.<prefix><field>``."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = flag_name(field)
        if flag is not None:
            options = _argument(field, hints[field.name], flag)
            options["dest"] = prefix + field.name
            if "action" not in options and "choices" not in options:
                options.setdefault("metavar", field.name.upper())
            group.add_argument(flag, **options)


def _value(field: dataclasses.Field, hint, text):
    """A given flag's value as the field's type (``--widths 2000-1000-500`` -> a tuple)."""
    if typing.get_origin(hint) is not tuple:
        return text
    item = typing.get_args(hint)[0]
    separators, example = ("-,x", "2000-1000-500 or 64x64") if item is int else (",", "2000,20,0.1")
    return _sequence(item, separators, example, flag_name(field))(text)


def given_flags(config, args: argparse.Namespace, prefix: str = "") -> dict:
    """``{field: value}`` for every field of ``config`` whose flag was given, parsed as the field's type."""
    hints = typing.get_type_hints(type(config))
    return {field.name: _value(field, hints[field.name], getattr(args, prefix + field.name))
            for field in dataclasses.fields(config) if getattr(args, prefix + field.name, None) is not None}


def apply_flags(config, args: argparse.Namespace, prefix: str = "", only: tuple[str, ...] | None = None,
                skip: tuple[str, ...] = ()):
    """Set every field of ``config`` whose flag was given (``only``: just these fields; ``skip``: not
    these); returns ``config``."""
    for name, value in given_flags(config, args, prefix).items():
        if (only is None or name in only) and name not in skip:
            setattr(config, name, value)
    return config
