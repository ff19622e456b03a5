"""The trivial grouping any colour-scene model must beat: cluster each image's pixels by colour.

``kmeans_masks`` runs k-means (scikit-learn, K clusters) on the RGB values of every pixel of
one image at a time and returns one-hot masks shaped like Tagger's, so the same metrics score
both. On flat-colour scenes such as Tetrominoes it separates pieces of different colours
exactly and cannot separate two pieces of one colour: that needs shape.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning


def kmeans_masks(features: np.ndarray, channels: int, groups: int, seed: int = 0) -> np.ndarray:
    """One-hot masks ``(N, K, P)`` from k-means on pixel colours, image by image.

    Args:
        features: ``(N, P * C)`` pixel-major colour images.
        channels: C.
        groups: K, clusters per image (fewer distinct colours leave clusters empty).
        seed: k-means initialisation seed (k-means++, 4 restarts).
    """
    images = np.asarray(features, dtype=np.float64).reshape(len(features), -1, channels)  # (N, P, C)
    masks = np.zeros((images.shape[0], groups, images.shape[1]), dtype=np.float32)
    with warnings.catch_warnings():  # images with fewer than K colours: k-means says so, harmlessly
        warnings.simplefilter("ignore", ConvergenceWarning)
        for index, pixels in enumerate(images):
            labels = KMeans(groups, n_init=4, random_state=seed).fit_predict(pixels)  # (P,)
            masks[index, labels, np.arange(pixels.shape[0])] = 1.0
    return masks


def distinct_colours(colors: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: scenes whose objects all have different colours (``colors`` ``(N, objects)``)."""
    ordered = np.sort(colors, axis=1)
    return (np.diff(ordered, axis=1) != 0).all(axis=1)
