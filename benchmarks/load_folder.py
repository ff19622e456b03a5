"""How fast `tagger train --data FOLDER` reads a folder of PNGs: the first read (decode every file,
then cache) and the second (the cache, keyed by the folder's sha256).

    python benchmarks/load_folder.py --images 60000 --folder /tmp/pngs

writes Tetrominoes scenes (35x35 RGB, with masks/) as PNGs once, then times
`tagger.datasets.from_path` twice in a fresh cache folder and prints one Markdown row.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tagger.datasets import from_path
from tagger.datasets.tetrominoes import generate, render
from tagger.training.device import machine_name


def write_pngs(folder: Path, count: int) -> None:
    """``count`` Tetrominoes scenes and their id maps as PNGs (skipped if already there)."""
    if len(list(folder.glob("*.png"))) == count:
        return
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    arrays = generate(count, seed=123)
    images = (render(arrays["objects"], arrays["colors"]) * 255).round().astype(np.uint8).reshape(count, 35, 35, 3)
    objects = arrays["objects"].reshape(count, 35, 35).astype(np.uint8)
    for index in range(count):
        Image.fromarray(images[index]).save(folder / f"{index:06d}.png")
        Image.fromarray(objects[index]).save(folder / "masks" / f"{index:06d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/tagger-pngs"))
    args = parser.parse_args()
    write_pngs(args.folder, args.images)
    with tempfile.TemporaryDirectory() as cache:
        times = []
        for _ in range(2):
            started = time.perf_counter()
            split = from_path(args.folder, data_dir=cache, progress=False)
            times.append(time.perf_counter() - started)
    import torch

    print(f"| {len(split)} PNGs of {'x'.join(map(str, split.image_shape))} with masks | first read {times[0]:.1f} s "
          f"({len(split) / times[0]:,.0f} images/s) | cached {times[1]:.2f} s | {machine_name(torch.device('cpu'))} |")


if __name__ == "__main__":
    main()
