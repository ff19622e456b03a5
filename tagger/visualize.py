"""Figures of groupings, like the paper's Figure 4: input, ground truth, and per iteration
the argmax grouping, each group's mask and reconstruction."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .files import write_atomically

PALETTE = np.array([[0.89, 0.10, 0.11], [0.22, 0.49, 0.72], [0.30, 0.69, 0.29], [0.60, 0.31, 0.64],
                    [1.00, 0.50, 0.00], [0.65, 0.34, 0.16], [0.97, 0.51, 0.75], [0.60, 0.60, 0.60]])


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed; imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def colour_groups(labels: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """RGB image ``(H, W, 3)``: each element in its group's colour, scaled by ``intensity``."""
    colours = PALETTE[labels % len(PALETTE)]
    return colours * (0.25 + 0.75 * intensity[..., None])


def grouping_figure(features: torch.Tensor, objects: torch.Tensor, masks: torch.Tensor,
                    reconstructions: torch.Tensor, image_shape: tuple[int, int], path,
                    title: str = "", captions: list[str] | None = None,
                    iteration_names: list[str] | None = None) -> Path:
    """Write a PNG grid: one block of K+1 rows per example.

    Args:
        features: ``(B, D)`` inputs.
        objects: ``(B, P)`` true object ids per pixel (0 = unscored).
        masks: ``(T, B, K, P)`` and reconstructions ``(T, B, K, D)`` from :meth:`tagger.Tagger.infer`.
        image_shape: ``(H, W)`` with ``H * W == D``, or ``(H, W, C)`` for colour images
            (pixel-major, ``P = H * W``, masks per pixel).
        path: output PNG, or a binary buffer (e.g. ``io.BytesIO``: TensorBoard images, report pages).
        captions: optional text per example, written under its ground truth (e.g. classes).
        iteration_names: column titles per iteration (default ``iter 1`` .. ``iter T``).
    """
    plt = pyplot()
    iterations, batch, groups, _ = masks.shape
    names = iteration_names or [f"iter {t + 1}" for t in range(iterations)]
    shape, pixels = tuple(image_shape), tuple(image_shape[:2])  # image and mask shapes
    channels = shape[2] if len(shape) == 3 else 1
    rows, cols = batch * (groups + 1), 1 + 2 * iterations
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.1), squeeze=False)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
        axis.axis("off")
    x = features.cpu().numpy()
    for b in range(batch):
        top = b * (groups + 1)
        image = x[b].reshape(shape)
        brightness = image.mean(-1) if channels > 1 else image  # (H, W)
        _show(axes[top, 0], image, "input" if b == 0 else None)
        truth = objects[b].cpu().numpy().reshape(pixels).astype(int)
        _show(axes[top + 1, 0], np.where(truth[..., None] > 0, PALETTE[(truth - 1) % 8], 0.0),
              "truth" if b == 0 else None)
        if captions:
            axes[top + 1, 0].set_xlabel(captions[b], fontsize=6)
        for t in range(iterations):
            m = masks[t, b].cpu().numpy()  # (K, P)
            z = reconstructions[t, b].cpu().numpy()  # (K, D)
            labels = m.argmax(0).reshape(pixels)
            _show(axes[top, 1 + 2 * t], colour_groups(labels, brightness), names[t] if b == 0 else None)
            mixed = (np.repeat(m, channels, axis=-1) * z).sum(0)  # (D,): masks spread over channels
            _show(axes[top, 2 + 2 * t], np.clip(mixed.reshape(shape), 0, 1), "recon." if b == 0 else None)
            for k in range(groups):
                _show(axes[top + 1 + k, 1 + 2 * t], m[k].reshape(pixels), None, PALETTE[k % 8])
                _show(axes[top + 1 + k, 2 + 2 * t], np.clip(z[k].reshape(shape), 0, 1), None)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / rows) if title else None)
    if title:
        fig.suptitle(title, y=1.0 - 0.1 / rows)
    if hasattr(path, "write"):  # a buffer: the caller embeds the PNG, no file is written
        fig.savefig(path, dpi=80, format="png")
    else:
        path = Path(path)  # written atomically: an interrupted save leaves the old figure, if any
        fmt = path.suffix[1:].lower() or "png"
        write_atomically(path, lambda target: fig.savefig(target, dpi=80, format=fmt))
    plt.close(fig)
    return path


def _show(axis, image: np.ndarray, label: str | None, tint=None) -> None:
    if tint is not None:
        image = image[..., None] * np.asarray(tint)[None, None, :]
    axis.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axis.axis("on")
    axis.set_xticks([])
    axis.set_yticks([])
    if label:
        axis.set_title(label, fontsize=8)


def probe_figure(result: dict, path) -> Path:
    """The generalisation grid of ``tagger probe`` as a picture: AMI over objects x groups at the
    reported iteration (left) and AMI per iteration at the trained K, one line per object count."""
    plt = pyplot()
    cells = {(c["objects"], c["groups"]): c["ami"] for c in result["cells"]}
    shown, trained_k = result["trained"]["reported_iteration"], result["trained"]["groups"]
    grid = np.array([[cells[n, k][shown - 1] for k in result["groups"]] for n in result["objects"]])  # (objects, K)
    figure, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.4))
    left.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    for (row, col), value in np.ndenumerate(grid):
        left.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                  color="black" if value > 0.6 else "white")
    left.set(xticks=range(len(result["groups"])), xticklabels=result["groups"], xlabel="groups K",
             yticks=range(len(result["objects"])), yticklabels=result["objects"], ylabel="objects per image",
             title=f"AMI after {shown} iterations")
    for n in result["objects"]:
        if (n, trained_k) in cells:
            right.plot(result["iterations"], cells[n, trained_k], marker=".", label=f"{n} object{'s' * (n > 1)}")
    right.set(xlabel="iteration", ylabel="AMI", ylim=(0, 1), title=f"K = {trained_k} (as trained)")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    figure.tight_layout()
    path = Path(path)
    write_atomically(path, lambda target: figure.savefig(target, dpi=90, format="png"))
    plt.close(figure)
    return path
