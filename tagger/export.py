"""Exports: a run's weights as safetensors pieces of bounded size, fp16 by default.

A paper-size TextureMNIST model has 30 M parameters (115 MiB in fp32, 58 MiB in fp16). Some
channels only take small files (file transfers capped at 16 MiB, shared drives, mail), and
shipped pretrained models should be small, so an export splits the weights into pieces
``model-00001-of-00004.safetensors``, ... each under ``piece_mib``. A tensor larger than a piece
is cut along its first dimension into chunks ``NAME#0``, ``NAME#1``, ... (of at most an eighth of
a piece, so that the pieces can be packed nearly full). Every piece carries, in
its safetensors metadata, the run's config, the source step, its index and count, the sha256
of its tensors (verified at load) and the export's id: the sha256 of the source, step, dtype and
every piece's digest. Loading refuses a piece whose id differs from the others' (a piece of
another export copied in) by name; exports from before ids were recorded load as they are.
A folder of pieces needs nothing else.

An export holds weights only: ``tagger eval``, ``show``, ``probe``, ``report`` and ``train --init``
read it wherever they read a run directory; ``--resume`` refuses it (no optimiser state).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import Config
from .errors import CheckpointError, ConfigError
from .files import write_atomically

FORMAT = "tagger-export"
PIECE = re.compile(r"model-(\d{5})-of-(\d{5})\.safetensors")
HEADER_ROOM = 64 * 1024  # bytes kept free in each piece for the safetensors header and metadata
DTYPES = {"fp16": torch.float16, "fp32": torch.float32}


def is_export(path: Path) -> bool:
    path = Path(path)
    return path.is_dir() and any(PIECE.fullmatch(p.name) for p in path.iterdir())


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _chunks(weights: dict[str, torch.Tensor], budget: int):
    """``(name, tensor)`` in model order; tensors over ``budget`` bytes cut along dim 0."""
    for name, value in weights.items():
        if value.nbytes <= budget or value.dim() == 0:
            yield name, value
            continue
        rows = max(1, budget // max(1, value[0].nbytes))
        if value[0].nbytes > budget:
            raise ConfigError(f"{name}: one row is {value[0].nbytes} bytes, more than a piece holds; "
                              "use a larger --piece-mib")
        for index, start in enumerate(range(0, value.shape[0], rows)):
            yield f"{name}#{index}", value[start:start + rows].clone()


def _export_id(metadata: dict, digests: list[str]) -> str:
    """The id of one export: sha256 of its source, step, dtype and pieces' digests in order."""
    content = {key: metadata.get(key, "") for key in ("source", "step", "epoch", "dtype")}
    return hashlib.sha256(json.dumps([content, digests], sort_keys=True).encode()).hexdigest()


def _check_one_set(path: Path, pieces: list[tuple[Path, dict]]) -> None:
    """Refuse pieces of different exports by name (exports without ids are not checked)."""
    ids = [metadata.get("export_id") for _, metadata in pieces]
    if not any(ids):
        return
    ranked = sorted(set(ids), key=lambda i: (-ids.count(i), ids.index(i)))  # the most pieces, then piece 1
    reference = next(metadata for _, metadata in pieces if metadata.get("export_id") == ranked[0])

    def which(metadata: dict) -> str:
        if not metadata.get("export_id"):
            return "an export without an id"
        return f"export {metadata['export_id'][:12]}"

    for piece, metadata in pieces:
        if metadata.get("export_id") != ranked[0]:
            step, expected = metadata.get("step", "?"), reference.get("step", "?")
            differs = f"step {step}, not {expected}" if step != expected else f"{which(metadata)}, not {which(reference)}"
            raise CheckpointError(f"{path}: piece {piece.name} belongs to another export ({differs})")
    if _export_id(reference, [metadata.get("sha256", "") for _, metadata in pieces]) != ranked[0]:
        raise CheckpointError(f"{path}: the pieces' digests do not add up to the export's id (a piece was replaced)")


def export_run(source: Path, out_dir: Path, dtype: str = "fp16", piece_mib: float = 15.0) -> list[Path]:
    """Write ``source``'s weights (a run directory or checkpoint) into ``out_dir`` as pieces.

    Returns the piece paths. Refuses an ``out_dir`` that already holds files (nothing is overwritten),
    and an fp16 export of weights outside fp16's range.
    """
    from .checkpoint import read_checkpoint

    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if not isinstance(piece_mib, (int, float)) or not math.isfinite(piece_mib) or piece_mib <= 0:
        raise ConfigError(f"--piece-mib must be a positive number of MiB, got {piece_mib}")
    budget = int(piece_mib * 2**20) - HEADER_ROOM
    if budget <= 0:
        raise ConfigError(f"--piece-mib must be above {HEADER_ROOM / 2**20:.2f}, got {piece_mib}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(p.name != ".lock" for p in out_dir.iterdir()):  # a run's lock file is no content
        raise ConfigError(f"{out_dir}: not empty; an export goes into a new or empty folder")
    config, state, weights, _ = read_checkpoint(Path(source))
    cast = {name: value.to(DTYPES[dtype]) if value.is_floating_point() else value for name, value in weights.items()}
    for name, value in cast.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ConfigError(f"{name} overflows {dtype}; export with --dtype fp32")
    # chunks of at most an eighth of a piece, packed first-fit decreasing: pieces end up >= 7/8
    # full, so 58 MiB go into 4-5 pieces of 15 MiB (a device returns at most 8 files)
    pieces, sizes = [], []
    for name, value in sorted(_chunks(cast, budget // 8), key=lambda item: -item[1].nbytes):
        slot = next((i for i, used in enumerate(sizes) if used + value.nbytes <= budget), None)
        if slot is None:
            pieces.append({})
            sizes.append(0)
            slot = len(pieces) - 1
        pieces[slot][name] = value.contiguous()
        sizes[slot] += value.nbytes
    out_dir.mkdir(parents=True, exist_ok=True)
    common = {"format": FORMAT, "config": json.dumps(config.to_dict()), "dtype": dtype,
              "source": str(source), "step": str(state.get("step", "")), "epoch": str(state.get("epoch", ""))}
    digests = [_digest(tensors) for tensors in pieces]
    common["export_id"] = _export_id(common, digests)
    paths = []
    for index, (tensors, digest) in enumerate(zip(pieces, digests), start=1):
        path = out_dir / f"model-{index:05d}-of-{len(pieces):05d}.safetensors"
        metadata = dict(common, piece=str(index), pieces=str(len(pieces)), sha256=digest)
        write_atomically(path, lambda target, t=tensors, m=metadata: save_file(t, str(target), metadata=m))
        paths.append(path)
    return paths


def _read_piece(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for damaged headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(error).splitlines()[0]})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tagger export piece")
    if _digest(tensors) != metadata.get("sha256"):
        raise CheckpointError(f"{path}: sha256 differs from the digest recorded at export (corrupted file)")
    return metadata, tensors


def read_export(path: Path) -> tuple[Config, dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(config, state, weights, {})`` like :func:`tagger.checkpoint.read_checkpoint`; weights in
    float32, chunks joined; a missing, extra or damaged piece is a one-line error naming it."""
    path = Path(path)
    found = sorted(p for p in path.iterdir() if PIECE.fullmatch(p.name))
    counts = {PIECE.fullmatch(p.name).group(2) for p in found}
    if len(counts) != 1:
        raise CheckpointError(f"{path}: pieces of different exports mixed ({', '.join(sorted(counts))} pieces)")
    total = int(counts.pop())
    names = {f"model-{i:05d}-of-{total:05d}.safetensors" for i in range(1, total + 1)}
    missing = sorted(names - {p.name for p in found})
    if missing:
        raise CheckpointError(f"{path}: export incomplete, {missing[0]} missing ({len(missing)} of {total})")
    parts, metadata, read = {}, {}, []
    for piece in found:
        metadata, tensors = _read_piece(piece)
        read.append((piece, metadata))
        parts.update(tensors)
    _check_one_set(path, read)
    weights = {}
    for name in sorted({key.split("#")[0] for key in parts}):
        if name not in parts:
            count = sum(1 for key in parts if key.split("#")[0] == name)
            parts[name] = torch.cat([parts[f"{name}#{i}"] for i in range(count)])
        weights[name] = parts[name].float() if parts[name].is_floating_point() else parts[name]
    try:
        config = Config.from_dict(json.loads(metadata["config"])).validate()
    except (KeyError, ValueError, ConfigError) as error:
        raise CheckpointError(f"{path}: bad config in the export ({error})") from None
    state = {"exported_from": metadata.get("source", ""), "step": metadata.get("step", ""),
             "epoch": metadata.get("epoch", ""), "dtype": metadata.get("dtype", "")}
    if metadata.get("export_id"):
        state["export_id"] = metadata["export_id"]
    return config, state, weights, {}
