"""Checkpoints: safetensors tensors + JSON, written atomically, never pickles.

A checkpoint is a directory ``RUN/checkpoint`` holding ``model.safetensors`` (weights),
``training.safetensors`` (optimiser moments, RNG states) and ``state.json`` (config, step,
epoch, data position, optimiser hyperparameters, and the sha256 digest of each tensor file).
A new one is written to a temporary directory, fsynced, and swapped in by renames; the previous
one is kept as ``checkpoint.old`` until the swap is complete, so a crash at any moment leaves one
whole checkpoint behind. Loading verifies the digests: a damaged or replaced file is refused by
name, and a run directory whose current checkpoint is damaged falls back to an intact
``checkpoint.old`` with a warning.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import Config
from .errors import CheckpointError, ConfigError
from .export import is_export, read_export
from .files import fsync_dir, write_atomically, write_file_durably

FORMAT = "tagger-checkpoint"
VERSION = 1
CURRENT, PREVIOUS = "checkpoint", "checkpoint.old"


def save_weights(model: torch.nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """A model's weights as one safetensors file, written atomically (temporary file, fsync,
    rename), with string ``metadata``: the baselines' and RC's weights (Tagger runs use
    :func:`save_checkpoint`)."""
    weights = {name: value.detach().contiguous().cpu() for name, value in model.state_dict().items()}
    write_atomically(Path(path), lambda target: save_file(weights, str(target), metadata=metadata))


TENSOR_FILES = ("model.safetensors", "training.safetensors")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _document_digest(document: dict) -> str:
    """sha256 of state.json's content (all but this digest), in a canonical JSON form."""
    content = {key: value for key, value in document.items() if key != "document_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def save_checkpoint(run_dir: Path, config: Config, model: torch.nn.Module, state: dict,
                    tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Atomically write a checkpoint into ``run_dir/checkpoint``.

    Args:
        run_dir: the run directory.
        config: saved in ``state.json`` (and as ``run_dir/config.json`` by the trainer).
        model: its ``state_dict`` goes to ``model.safetensors``.
        state: JSON-serialisable training state (step, epoch, position, ...).
        tensors: extra tensors (optimiser moments, RNG states) for ``training.safetensors``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    try:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        write_file_durably(staging / "model.safetensors", lambda p: save_file(weights, str(p), metadata={"format": FORMAT}))
        extra = {k: v.detach().contiguous().cpu() for k, v in (tensors or {}).items()}
        write_file_durably(staging / "training.safetensors", lambda p: save_file(extra, str(p), metadata={"format": FORMAT}))
        digests = {name: sha256(staging / name) for name in TENSOR_FILES}  # verified at load
        document = {"format": FORMAT, "version": VERSION, "config": config.to_dict(), "state": state,
                    "sha256": digests}
        document["document_sha256"] = _document_digest(document)  # state.json checks itself too
        write_file_durably(staging / "state.json", lambda p: p.write_text(json.dumps(document, indent=1)))
        fsync_dir(staging)
        os.chmod(staging, 0o755)  # mkdtemp makes 0700
        current, previous = run_dir / CURRENT, run_dir / PREVIOUS
        if current.exists():  # current is whole, so an older previous can go
            if previous.exists():
                shutil.rmtree(previous)
            os.replace(current, previous)
        os.replace(staging, current)  # a crash before this leaves previous as the checkpoint
        fsync_dir(run_dir)
        if previous.exists():
            shutil.rmtree(previous)
        for stale in run_dir.glob(".checkpoint-*"):  # left by a process killed mid-write
            shutil.rmtree(stale, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_dir / CURRENT


def checkpoint_candidates(path: Path) -> list[Path]:
    """The checkpoint directories ``path`` names, best first: a checkpoint directory (or a file
    in one) is itself; a run directory is its current checkpoint, then its ``checkpoint.old``."""
    given = path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run directory or checkpoint")
    if path.is_file():
        path = path.parent
    if (path / "state.json").exists() or is_export(path):
        return [path]
    found = [path / name for name in (CURRENT, PREVIOUS) if (path / name / "state.json").exists()]
    if not found:
        raise CheckpointError(f"{given}: no tagger checkpoint here (expected {CURRENT}/state.json "
                              f"in a run directory)")
    return found


def find_checkpoint(path: Path) -> Path:
    """Resolve a run directory, checkpoint directory/file or export to the folder read."""
    return checkpoint_candidates(path)[0]


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise CheckpointError(f"{path}: missing")
    try:
        return load_file(str(path))  # parses a JSON header and raw bytes only: no code runs
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        with open(path, "rb") as handle:
            head = handle.read(2)
        if head[:1] == b"\x80" or head == b"PK":  # pickle protocol >= 2, or torch.save's zip
            raise CheckpointError(f"{path}: looks like a pickle/zip (torch.save) file; tagger loads only safetensors") from None
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from None


def _verify_digests(folder: Path, digests) -> None:
    """Each tensor file against the sha256 recorded at save (checkpoints from before digests
    were recorded have none, and are read as they are)."""
    if not isinstance(digests, dict):
        raise CheckpointError(f"{folder / 'state.json'}: sha256 digests are not a mapping")
    for name, expected in digests.items():
        if name not in TENSOR_FILES:
            raise CheckpointError(f"{folder / 'state.json'}: digest of an unknown file {name!r}")
        if not (folder / name).exists():
            raise CheckpointError(f"{folder / name}: missing")
        if sha256(folder / name) != expected:
            raise CheckpointError(f"{folder / name}: sha256 differs from the digest recorded at save "
                                  "(corrupted or replaced file)")


def _read_folder(folder: Path) -> tuple[Config, dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    if is_export(folder):  # weights only, in pieces (tagger.export)
        return read_export(folder)
    try:
        document = json.loads((folder / "state.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{folder / 'state.json'}: unreadable ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{folder / 'state.json'}: not a tagger checkpoint")
    if "document_sha256" in document and document["document_sha256"] != _document_digest(document):
        raise CheckpointError(f"{folder / 'state.json'}: content differs from the digest recorded at save "
                              "(edited or corrupted)")
    if document.get("version") != VERSION:
        raise CheckpointError(f"{folder / 'state.json'}: checkpoint version {document.get('version')} unsupported")
    try:
        config = Config.from_dict(document["config"]).validate()
    except (ConfigError, KeyError) as error:
        raise CheckpointError(f"{folder / 'state.json'}: bad config ({error})") from None
    weights = _read_tensors(folder / "model.safetensors")
    training = _read_tensors(folder / "training.safetensors") if (folder / "training.safetensors").exists() else {}
    _verify_digests(folder, document.get("sha256", {}))
    state = document.get("state", {})
    if not isinstance(state, dict):
        raise CheckpointError(f"{folder / 'state.json'}: 'state' is not a mapping")
    return config, state, weights, training


def read_checkpoint(path: Path) -> tuple[Config, dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Read ``(config, state, model_weights, training_tensors)``, validating everything; a run
    directory whose current checkpoint is damaged falls back to an intact ``checkpoint.old``
    (one warning line on stderr), else the current one's error is raised."""
    candidates = checkpoint_candidates(path)
    for index, folder in enumerate(candidates):
        try:
            result = _read_folder(folder)
        except CheckpointError as error:
            if index + 1 == len(candidates):
                raise first_error if index else error
            first_error = error
            continue
        if index:
            print(f"tagger: warning: {first_error}; using the previous checkpoint {folder}", file=sys.stderr)
        return result


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``weights`` into ``model`` all-or-nothing, with one-line errors on mismatch."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not match the config's model "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, value in expected.items():
        if tuple(weights[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{source}: {name} has shape {tuple(weights[name].shape)}, "
                                  f"the config's model needs {tuple(value.shape)}")
        if not torch.isfinite(weights[name]).all():
            raise CheckpointError(f"{source}: {name} holds NaN or inf")
    model.load_state_dict(weights)


def load_run(path, device="cpu") -> tuple[Config, torch.nn.Module]:
    """The config a checkpoint holds and the model it describes, weights loaded, in eval mode
    (the checkpoint is read and verified once)."""
    from .model import Tagger

    config, _, weights, _ = read_checkpoint(Path(path))
    model = Tagger(config.model)
    load_weights(model, weights, find_checkpoint(Path(path)))
    return config, model.to(device).eval()


def load_model(path, device="cpu"):
    """Build the model a checkpoint describes and load its weights; eval mode."""
    return load_run(path, device)[1]
