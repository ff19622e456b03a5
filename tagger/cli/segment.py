"""``tagger segment`` (a run's masks for your images, as an ``.npz``), and the data that ``eval``,
``show`` and ``segment`` read for a run on your own images or for ``--data PATH``."""
from __future__ import annotations

import argparse
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import USER, Config
from ..datasets import Split, from_path, user_splits
from ..errors import ConfigError, DataError


def own_split(config: Config, data: Path | None, split: str, data_dir=None, data_format: str | None = None,
              progress: bool = True) -> Split:
    """The images a run is scored or segmented on: the file ``data`` (whole), else the run's own
    data: its validation images for ``split`` "valid" or "test" (your data has no test split), its
    training images for "train". Refused in one line where the images do not fit the model."""
    train = config.train
    if data is not None:
        images = from_path(data, format=data_format or None, resize=train.resize or None, data_dir=data_dir,
                           progress=progress)
    elif train.dataset == USER:
        parts = dict(zip(("train", "valid"), user_splits(train, data_dir, progress)))
        if split not in ("train", "valid", "test"):
            raise ConfigError(f"--split for a run on your own images is train, valid or test, got {split!r}")
        images = parts["train" if split == "train" else "valid"]
    else:
        raise ConfigError("give --data PATH: the images to segment")
    if images.input_size != config.model.input_size:
        raise DataError(f"{images.name}: images of {'x'.join(map(str, images.image_shape))} "
                        f"({images.input_size} values) do not fit this model ({config.model.input_size} values; "
                        f"image shape {config.model.image_shape or 'not recorded'})")
    return images


def segment_run(args: argparse.Namespace) -> Path:
    """Write ``masks`` ``(N, K, H, W)`` float16 and ``groups`` ``(N, H, W)`` uint8 for every image,
    batch by batch into memory-mapped files packed into one ``.npz``: memory stays one batch."""
    from ..checkpoint import load_run
    from ..evaluate import assigned
    from ..training.device import resolve_device

    if args.output.suffix.lower() != ".npz":
        raise ConfigError(f"--output {args.output} must end in .npz")
    for flag in ("iterations", "groups", "batch_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    device = resolve_device(args.device)
    config, model = load_run(args.run_dir, device=device)
    split = own_split(config, args.data, args.split, args.data_dir, args.format, args.progress)
    groups = args.groups or config.model.groups
    height, width = split.image_shape[:2]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.output.parent, prefix=".segment-") as folder:
        masks = np.lib.format.open_memmap(Path(folder) / "masks.npy", mode="w+", dtype=np.float16,
                                          shape=(len(split), groups, height, width))  # (N, K, H, W)
        ids = np.lib.format.open_memmap(Path(folder) / "groups.npy", mode="w+", dtype=np.uint8,
                                        shape=(len(split), height, width))  # (N, H, W)
        generator = torch.Generator(device=device).manual_seed(args.seed)
        starts = range(0, len(split), args.batch_size)
        for start in tqdm(starts, desc="segment", disable=not args.progress, leave=False):
            x = torch.as_tensor(split.features[start:start + args.batch_size]).to(device)  # (B, D)
            out = model.infer(x, iterations=args.iterations, groups=groups, generator=generator)
            last = assigned(model, x, out.masks[-1:], out.reconstructions[-1:], args.assign)[0]  # (B, K, P)
            last = last.reshape(len(x), groups, height, width).float().cpu()
            masks[start:start + len(x)] = last.numpy().astype(np.float16)
            ids[start:start + len(x)] = last.argmax(dim=1).numpy().astype(np.uint8)
        masks.flush(), ids.flush()
        staged = Path(folder) / "out.npz"
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name in ("masks", "groups"):
                archive.write(Path(folder) / f"{name}.npy", f"{name}.npy")
        os.replace(staged, args.output)
    print(f"{split.name}: masks ({len(split)}, {groups}, {height}, {width}) and groups written to {args.output}")
    return args.output


def run_segment(args: argparse.Namespace) -> int:
    segment_run(args)
    return 0
