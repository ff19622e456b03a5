"""Checkpoints: safetensors tensors + JSON, written atomically, never pickles.

A checkpoint is a directory ``RUN/checkpoint`` holding ``model.safetensors`` (weights),
``training.safetensors`` (optimiser moments, RNG states) and ``state.json`` (config, step,
epoch, data position, optimiser hyperparameters, and the sha256 digest of each tensor file).
A new one is written to a temporary directory, fsynced, and swapped in by renames; the previous
one is kept as ``checkpoint.old`` until the swap is complete, so a crash at any moment leaves one
whole checkpoint behind. Loading verifies the digests: a damaged or replaced file is refused by
name, and a run directory whose current checkpoint is damaged falls back to an intact
``checkpoint.old`` with a warning.

Readers take no lock and may read while a training process swaps checkpoints. A read opens the
checkpoint folder and then its three files through that folder's descriptor before reading any
of them, so the bytes it reads are those of one save even if the folder is renamed meanwhile
(files are never changed in place, only renamed as a folder or deleted). If the folder was
deleted before all three were opened, the read fails; :func:`read_checkpoint` then compares the
run directory before and after (the inode and mtime of the run folder and both checkpoint folders)
and reads again when it changed. An error is reported only when the checkpoint did not change
during the failed read and a second read fails the same way.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes, save_file

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


def _candidates(path: Path) -> list[Path]:
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


def _generation(path: Path) -> tuple:
    """What changes whenever a checkpoint is swapped in or out around ``path``: inode and mtime of
    the folder it names (or holds it), and of the checkpoint folders in it and beside it."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    seen = []
    for item in (folder, folder / CURRENT, folder / PREVIOUS, folder.parent / CURRENT, folder.parent / PREVIOUS):
        try:
            stat = os.stat(item)
            seen.append((stat.st_ino, stat.st_mtime_ns))
        except OSError:
            seen.append(None)
    return tuple(seen)


READ_ATTEMPTS = 8  # reads of a checkpoint that changed under them, before giving up


def _consistent(read, path: Path):
    """``read()``, again when it fails while the checkpoint at ``path`` is being replaced (the run
    directory changed during the failed read); an error is raised only when the checkpoint did not
    change and a second read fails the same way (or after :data:`READ_ATTEMPTS` changing reads)."""
    last = None
    for attempt in range(READ_ATTEMPTS):
        before = _generation(path)
        try:
            return read()
        except CheckpointError as error:
            unchanged = _generation(path) == before
            if attempt + 1 == READ_ATTEMPTS or (unchanged and last is not None and str(error) == str(last)):
                raise
            last = error if unchanged else None
            time.sleep(0.002 * (attempt + 1))  # let a save that is between its renames finish


def checkpoint_candidates(path: Path) -> list[Path]:
    """The checkpoint directories ``path`` names, best first: a checkpoint directory (or a file
    in one) is itself; a run directory is its current checkpoint, then its ``checkpoint.old``."""
    return _consistent(lambda: _candidates(path), path)


def find_checkpoint(path: Path) -> Path:
    """Resolve a run directory, checkpoint directory/file or export to the folder read."""
    return checkpoint_candidates(path)[0]


def _is_pickle(data: bytes) -> bool:
    return data[:1] == b"\x80" or data[:2] == b"PK"  # pickle protocol >= 2, or torch.save's zip


def _parse_tensors(path: Path, data: bytes | None) -> dict[str, torch.Tensor]:
    if data is None:
        raise CheckpointError(f"{path}: missing")
    try:
        return load_bytes(data)  # parses a JSON header and raw bytes only: no code runs
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        if _is_pickle(data):
            raise CheckpointError(f"{path}: looks like a pickle/zip (torch.save) file; tagger loads only safetensors") from None
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from None


FILES = ("state.json",) + TENSOR_FILES


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """The bytes of ``folder``'s checkpoint files (``None``: absent), all from one save: the folder
    is opened once and every file is opened through it before any is read, so a rename of the
    folder or a new checkpoint swapped in meanwhile cannot mix two saves."""
    if os.open not in os.supports_dir_fd:  # no openat here: plain paths (a race is retried)
        opened = {}
        for name in FILES:
            try:
                opened[name] = open(folder / name, "rb")
            except FileNotFoundError:
                opened[name] = None
    else:
        try:
            folder_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            raise CheckpointError(f"{folder / 'state.json'}: missing") from None
        except OSError as error:
            raise CheckpointError(f"{folder}: unreadable ({error})") from None
        opened = {}
        try:
            for name in FILES:
                try:
                    opened[name] = os.fdopen(os.open(name, os.O_RDONLY, dir_fd=folder_fd), "rb")
                except FileNotFoundError:
                    opened[name] = None
        except OSError as error:
            for handle in opened.values():
                if handle is not None:
                    handle.close()
            raise CheckpointError(f"{folder}: unreadable ({error})") from None
        finally:
            os.close(folder_fd)
    try:
        return {name: handle.read() if handle is not None else None for name, handle in opened.items()}
    except OSError as error:
        raise CheckpointError(f"{folder}: unreadable ({error})") from None
    finally:
        for handle in opened.values():
            if handle is not None:
                handle.close()


def _verify_digests(folder: Path, digests, files: dict[str, bytes | None]) -> None:
    """Each tensor file against the sha256 recorded at save (checkpoints from before digests
    were recorded have none, and are read as they are)."""
    if not isinstance(digests, dict):
        raise CheckpointError(f"{folder / 'state.json'}: sha256 digests are not a mapping")
    for name, expected in digests.items():
        if name not in TENSOR_FILES:
            raise CheckpointError(f"{folder / 'state.json'}: digest of an unknown file {name!r}")
        if files.get(name) is None:
            raise CheckpointError(f"{folder / name}: missing")
        if hashlib.sha256(files[name]).hexdigest() != expected:
            raise CheckpointError(f"{folder / name}: sha256 differs from the digest recorded at save "
                                  "(corrupted or replaced file)")


def _read_folder(folder: Path) -> tuple[Config, dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    if is_export(folder):  # weights only, in pieces (tagger.export)
        return read_export(folder)
    files = _snapshot(folder)
    if files["state.json"] is None:
        raise CheckpointError(f"{folder / 'state.json'}: missing")
    try:
        document = json.loads(files["state.json"].decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
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
    weights = _parse_tensors(folder / "model.safetensors", files["model.safetensors"])
    training = _parse_tensors(folder / "training.safetensors", files["training.safetensors"]) \
        if files["training.safetensors"] is not None else {}
    _verify_digests(folder, document.get("sha256", {}), files)
    state = document.get("state", {})
    if not isinstance(state, dict):
        raise CheckpointError(f"{folder / 'state.json'}: 'state' is not a mapping")
    return config, state, weights, training


def _read_best(path: Path):
    """``(folder, (config, state, weights, training))`` from the best intact candidate; the
    fallback to ``checkpoint.old`` only when the current checkpoint failed without being replaced
    meanwhile (else the error, which :func:`_consistent` answers with another read)."""
    before = _generation(path)
    candidates = _candidates(path)
    for index, folder in enumerate(candidates):
        try:
            result = _read_folder(folder)
        except CheckpointError as error:
            if index + 1 == len(candidates):
                raise first_error if index else error
            first_error = error
            if _generation(path) != before:
                raise
            continue
        if index:
            print(f"tagger: warning: {first_error}; using the previous checkpoint {folder}", file=sys.stderr)
        return folder, result


def read_checkpoint(path: Path) -> tuple[Config, dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Read ``(config, state, model_weights, training_tensors)``, validating everything; a run
    directory whose current checkpoint is damaged falls back to an intact ``checkpoint.old``
    (one warning line on stderr), else the current one's error is raised. Safe while another
    process saves checkpoints there (see the module's docstring)."""
    return _consistent(lambda: _read_best(Path(path)), path)[1]


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

    folder, (config, _, weights, _) = _consistent(lambda: _read_best(Path(path)), path)
    model = Tagger(config.model)
    load_weights(model, weights, folder)
    return config, model.to(device).eval()


def load_model(path, device="cpu"):
    """Build the model a checkpoint describes and load its weights; eval mode."""
    return load_run(path, device)[1]
