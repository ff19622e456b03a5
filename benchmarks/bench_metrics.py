"""Time ``tagger.metrics.ami`` / ``ari`` against scikit-learn's per-example loop.

Run from the repository root::

    python benchmarks/bench_metrics.py [--n 10000] [--n-sklearn 1000] [--threads T] [--device cpu]

Synthetic data: Shapes-like (20x20, up to 3 square/triangle objects, overlaps and
background unscored) and TextureMNIST-like (28x28, a ~550-element background
scored as object 1 plus two ~100-element "digits"), with noisy K=4 masks.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tagger  # noqa: E402,F401  before torch: tagger's OpenMP spin setting applies only if torch is not loaded yet

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import adjusted_mutual_info_score  # noqa: E402

from tagger.metrics import ami, ari  # noqa: E402


def _paint(rng: np.random.Generator, canvas: np.ndarray, shape_id: int, obj_id: int) -> None:
    """Draw a random square (0) or triangle (1, 2) with id ``obj_id``; overlaps become -1."""
    side = int(rng.integers(5, 10))
    h, w = canvas.shape
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    yy, xx = np.mgrid[:side, :side]
    inside = np.ones((side, side), bool) if shape_id == 0 else (
        np.abs(xx - side // 2) <= (yy if shape_id == 1 else side - 1 - yy) // 2)
    patch = canvas[y:y + side, x:x + side]
    patch[inside & (patch != 0)] = -1
    patch[inside & (patch == 0)] = obj_id


def _noisy_masks(rng: np.random.Generator, objects: np.ndarray, k: int,
                 acc: tuple[float, float] = (0.5, 0.95)) -> np.ndarray:
    """``(B, K, D)`` softmax masks whose argmax is a permutation of the object id w.p. ~U(acc)."""
    b, d = objects.shape
    perm = np.argsort(rng.random((b, objects.max() + 1)), axis=1) % k  # (B, n_ids)
    target = np.take_along_axis(perm, objects.astype(np.int64), axis=1)  # (B, D)
    logits = rng.normal(size=(b, k, d))  # (B, K, D)
    good = rng.random((b, d)) < rng.uniform(*acc, size=(b, 1))  # (B, D)
    np.put_along_axis(logits, target[:, None, :], np.where(good, 4.0, 0.0)[:, None, :], axis=1)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def shapes_like(n: int, seed: int = 0, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 400)`` uint8 objects and ``(n, k, 400)`` masks, Shapes-like."""
    rng = np.random.default_rng(seed)
    objects = np.zeros((n, 400), np.uint8)
    for i in range(n):
        canvas = np.zeros((20, 20), np.int64)
        for obj_id in range(1, int(rng.integers(1, 4)) + 1):
            _paint(rng, canvas, int(rng.integers(0, 3)), obj_id)
        objects[i] = np.maximum(canvas, 0).ravel()
    return objects, _noisy_masks(rng, objects, k)


def texture_mnist_like(n: int, seed: int = 0, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 784)`` uint8 objects (background = 1, digits 2, 3) and ``(n, k, 784)`` masks."""
    rng = np.random.default_rng(seed)
    objects = np.zeros((n, 784), np.uint8)
    for i in range(n):
        canvas = np.zeros((28, 28), np.int64)
        for obj_id in (2, 3):
            h, w = int(rng.integers(10, 13)), int(rng.integers(8, 11))
            y, x = int(rng.integers(0, 28 - h + 1)), int(rng.integers(0, 28 - w + 1))
            patch = canvas[y:y + h, x:x + w]
            patch[patch != 0] = -1
            patch[patch == 0] = obj_id
        canvas[canvas == 0] = 1
        objects[i] = np.maximum(canvas, 0).ravel()
    return objects, _noisy_masks(rng, objects, k)


def sklearn_loop(objects: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Reference AMI, one example at a time with scikit-learn."""
    pred = masks.argmax(1)
    return np.array([adjusted_mutual_info_score(o[o > 0], p[o > 0], average_method="max")
                     for o, p in zip(objects, pred)])


def _best_time(fn, repeats: int) -> float:
    """Best wall time of ``fn()`` (its result is copied to the host, which waits for it)."""
    fn().cpu()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn().cpu()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--n-sklearn", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="device for ami/ari, e.g. cuda")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    for name, make in (("shapes-like (D=400)", shapes_like),
                       ("texture-mnist-like (D=784)", texture_mnist_like)):
        objects, masks = make(args.n, args.seed)
        obj_t = torch.from_numpy(objects).to(args.device)
        masks_t = torch.from_numpy(masks).to(args.device)
        t_ami = _best_time(lambda: ami(obj_t, masks_t), args.repeats)
        t_ari = _best_time(lambda: ari(obj_t, masks_t), args.repeats)
        m = args.n_sklearn
        sklearn_loop(objects[:1], masks[:1])  # warm-up
        start = time.perf_counter()
        ref = sklearn_loop(objects[:m], masks[:m])
        t_sk = time.perf_counter() - start
        err = float(np.abs(ami(obj_t[:m], masks_t[:m]).cpu().numpy() - ref).max())
        print(f"{name}: scored/example {np.mean((objects > 0).sum(1)):.0f}, "
              f"mean AMI {float(ami(obj_t, masks_t).mean()):.3f}")
        print(f"  ami     {args.n:6d} examples {t_ami:7.3f} s  {args.n / t_ami:10.0f} ex/s")
        print(f"  ari     {args.n:6d} examples {t_ari:7.3f} s  {args.n / t_ari:10.0f} ex/s")
        print(f"  sklearn {m:6d} examples {t_sk:7.3f} s  {m / t_sk:10.0f} ex/s  "
              f"(ami is {(args.n / t_ami) / (m / t_sk):.0f}x faster, max |diff| {err:.1e})")


if __name__ == "__main__":
    main()
