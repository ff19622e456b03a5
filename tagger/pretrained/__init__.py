"""Pretrained models shipped with the package: small fp16 exports (:mod:`tagger.export`) with a card.

Each model is a folder ``tagger/pretrained/NAME/`` holding its export pieces and ``card.json``:
the command that trained it, the machine, date, epochs and seed, and its measured scores (the whole
test split, and the first ``check.examples`` test images that ``tests/test_pretrained.py`` re-scores).
Commands that read a run directory take ``--pretrained NAME``: the folder is copied to
``runs/pretrained-NAME`` so that what they write (evaluation JSON, figures) lands beside it,
never inside the installed package.
"""
from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

from ..errors import ConfigError

HERE = Path(__file__).parent


def pretrained_names() -> list[str]:
    """Names of the shipped models, e.g. ``["shapes-quick"]``."""
    return sorted(path.parent.name for path in HERE.glob("*/card.json"))


def pretrained_path(name: str) -> Path:
    """The installed folder of model ``name`` (one-line error listing the names if unknown)."""
    if name not in pretrained_names():
        raise ConfigError(f"no pretrained model {name!r}; shipped: {', '.join(pretrained_names()) or 'none'}")
    return HERE / name


def card(name: str) -> dict:
    """The model's card: how it was trained and what it scores."""
    return json.loads((pretrained_path(name) / "card.json").read_text())


def load_pretrained(name: str, device="cpu"):
    """The shipped model ``name`` as a :class:`tagger.Tagger` in eval mode (weights in float32)."""
    from ..checkpoint import load_model

    return load_model(pretrained_path(name), device=device)


def working_copy(name: str, root: Path = Path("runs")) -> Path:
    """``root/pretrained-NAME``: a copy of the shipped folder that commands may write beside."""
    source, target = pretrained_path(name), Path(root) / f"pretrained-{name}"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and not path.name.startswith(".") and not ((target / path.name).exists()
                                   and filecmp.cmp(path, target / path.name, shallow=False)):
            shutil.copyfile(path, target / path.name)
    return target
