"""A toy for the continuous-grouping study (docs/continuous.md): 12x12 RGB scenes with two
flat-coloured 4x4 squares (two different colours of the six Tetrominoes colours) on black.
Small enough that one setting trains in a minute or two on one CPU thread, so settings can
be compared over seeds: prints FG-ARI (5 iterations, 300 held-out scenes) at the start and
after each third of the steps, the final v and cost.

    python scripts/toy_grouping.py '{"v_param": "fixed", "v_init": 0.2, "seed": 1}'
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from tagger.config import ModelConfig
from tagger.datasets.tetrominoes import COLORS
from tagger.metrics import ari
from tagger.model import Tagger

SIZE, BLOCK = 12, 4


def scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` scenes: features ``(n, 12*12*3)`` pixel-major and object ids ``(n, 144)``."""
    rng = np.random.default_rng(seed)
    palette = COLORS.astype(np.float32) / 255
    x = np.zeros((n, SIZE, SIZE, 3), np.float32)
    objects = np.zeros((n, SIZE, SIZE), np.int64)
    for i in range(n):
        colours = rng.choice(len(palette), 2, replace=False)
        for k in range(2):
            while True:  # redraw until the square does not overlap the first
                r, c = rng.integers(0, SIZE - BLOCK + 1, 2)
                if (objects[i, r:r + BLOCK, c:c + BLOCK] == 0).all():
                    break
            objects[i, r:r + BLOCK, c:c + BLOCK] = k + 1
            x[i, r:r + BLOCK, c:c + BLOCK] = palette[colours[k]]
    return torch.from_numpy(x.reshape(n, -1)), torch.from_numpy(objects.reshape(n, -1))


def run(steps=1500, lr=2e-3, norm="layer", v_init=0.3, v_param="fixed", widths=(64, 32, 16), batch=32,
        groups=3, iterations=3, seed=0, noise=0.2, figure=None) -> dict:
    torch.manual_seed(seed)
    config = ModelConfig(input_size=SIZE * SIZE * 3, channels=3, widths=tuple(widths), likelihood="continuous",
                         noise=noise, z0=0.15, norm=norm, v_init=v_init, v_param=v_param, groups=groups,
                         iterations=iterations)
    model = Tagger(config)
    optimizer = torch.optim.Adam(model.parameters(), lr)
    train_x, _ = scenes(5000, seed=1)
    test_x, test_objects = scenes(300, seed=2)

    def score() -> float:
        out = model.infer(test_x, iterations=5, generator=torch.Generator().manual_seed(0))
        return round(float(ari(test_objects, out.masks[-1]).mean()), 3)

    history, started = [score()], time.time()
    order = torch.Generator().manual_seed(seed)
    for step in range(steps):
        loss = model(train_x[torch.randint(0, len(train_x), (batch,), generator=order)]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % (steps // 3) == 0:
            history.append(score())
    if figure:  # the first four held-out scenes, as tagger show draws them
        from tagger.visualize import grouping_figure

        out = model.infer(test_x[:4], iterations=5, generator=torch.Generator().manual_seed(0))
        grouping_figure(test_x[:4], test_objects[:4], out.masks, out.reconstructions, (SIZE, SIZE, 3), figure)
    return {"ari": history, "v": round(float(model.likelihood.v.detach()), 4),
            "cost": round(float(loss.detach()), 3), "seconds": round(time.time() - started, 1)}


if __name__ == "__main__":
    torch.set_num_threads(1)
    settings = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    print(json.dumps({"settings": settings, **run(**settings)}), flush=True)
