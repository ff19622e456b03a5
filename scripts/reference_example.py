"""How well did the reference's trained TextureMNIST2 model reconstruct its one published example?

CuriousAI/tagger ships ``pretrained_models/mnist-results/mnist_removal_example_v3.npz``: one
clean input ``x`` (our valid image 2907, bit for bit) with the trained model's reconstructions
``z`` and masks ``m`` (4 groups). This prints the error of the mixture mean and the continuous
cost ``-log sum_k m_k N(x; z_k, v)`` for a range of v, i.e. where the reference's learned
variance must have ended. The file is not part of this repository; pass its path:

    git -C PATH/TO/tagger show HEAD:pretrained_models/mnist-results/mnist_removal_example_v3.npz > example.npz
    python scripts/reference_example.py example.npz
"""
import sys

import numpy as np


def main(path: str) -> None:
    data = np.load(path, allow_pickle=False)
    x = data["x"].reshape(1, -1).astype(np.float64)  # (1, D)
    z = data["z"].reshape(4, -1).astype(np.float64)  # (K, D)
    m = data["m"].reshape(4, -1).astype(np.float64)  # (K, D)
    mean = (m * z).sum(0)
    print(f"groups' share of pixels: {np.round(m.mean(1), 3).tolist()}")
    print(f"rms error of the mixture mean sum_k m_k z_k: {np.sqrt(((mean - x[0]) ** 2).mean()):.4f}")
    print("| v | cost (nats per pixel, without 0.5 log 2 pi) |\n|---|---|")
    for v in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
        log_terms = -0.5 * (np.log(v) + (x - z) ** 2 / v) + np.log(m + 1e-5)  # (K, D)
        top = log_terms.max(0)
        cost = -(np.log(np.exp(log_terms - top).sum(0)) + top)
        print(f"| {v} | {cost.mean():.3f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
