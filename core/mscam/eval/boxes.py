"""Boxes from a saliency map and their overlap: the geometry under every WSOL metric.

Boxes are inclusive pixel boxes ``(x0, y0, x1, y1)``: the box covers columns ``x0 … x1`` and rows
``y0 … y1``, so a single pixel is ``(x, y, x, y)`` and has area 1.

The components are labelled in numpy (no SciPy, no OpenCV), which suits chip-sized maps
(≤ 256² pixels); whole scenes go through :func:`mscam.scene.localize.find_boxes` instead.

>>> import numpy as np
>>> s = np.array([[1.0, 0.0, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 0.2]])
>>> boxes_from_map(s, 0.5).tolist()      # (0,0) and (1,1) touch diagonally: one component
[[0, 0, 1, 1]]
>>> box_iou([[0, 0, 1, 1]], [[1, 1, 2, 2]]).item()  # 1 shared pixel of 4 + 4 − 1
0.14285714285714285
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: (k, 4) inclusive pixel boxes, or anything ``np.asarray`` turns into one.
BoxArray = np.ndarray | Sequence[Sequence[int]]

# Forward neighbour offsets (row, col) of the 8-neighbourhood: each pair of neighbours once.
_NEIGHBOURS = ((0, 1), (1, -1), (1, 0), (1, 1))


def _as_boxes(boxes: BoxArray) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if (array[:, 2] < array[:, 0]).any() or (array[:, 3] < array[:, 1]).any():
        raise ValueError("a box has x1 < x0 or y1 < y0")
    return array


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a 2-D boolean mask.

    Returns ``(labels, n)``: an int32 array of the mask's shape with 0 on the background and
    ``1 … n`` on the components, numbered in raster order of their first pixel.

    Union-find over the foreground pixels, vectorised: every round hooks each tree's root to the
    smallest root among the trees it touches (so a parent index never exceeds its child's, which
    rules out cycles) and then compresses every path by pointer jumping. Each round merges every
    pair of touching trees or shrinks their number, so a chip takes a handful of rounds.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"label_components needs a 2-D mask, got shape {mask.shape}")
    height, width = mask.shape
    index = np.full(mask.shape, -1, dtype=np.int64)
    count = int(mask.sum())
    index[mask] = np.arange(count)  # foreground pixels numbered in raster order
    first: list[np.ndarray] = []
    second: list[np.ndarray] = []
    for dy, dx in _NEIGHBOURS:
        a = index[: height - dy, max(0, -dx) : width - max(0, dx)]
        b = index[dy:, max(0, dx) : width - max(0, -dx)]
        both = (a >= 0) & (b >= 0)
        first.append(a[both])
        second.append(b[both])
    a, b = np.concatenate(first), np.concatenate(second)
    parent = np.arange(count)
    while True:
        root_a, root_b = parent[a], parent[b]
        apart = root_a != root_b
        if not apart.any():
            break
        low = np.minimum(root_a[apart], root_b[apart])
        high = np.maximum(root_a[apart], root_b[apart])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    # Every root is its component's smallest index, i.e. its first pixel in raster order.
    roots, component = np.unique(parent, return_inverse=True)
    labels = np.zeros(mask.shape, dtype=np.int32)
    labels[mask] = component.astype(np.int32) + 1
    return labels, len(roots)


def component_boxes(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tight inclusive boxes (n, 4) and pixel counts (n,) of components ``1 … n`` of ``labels``."""
    rows, cols = np.nonzero(labels)
    which = labels[rows, cols] - 1
    x0 = np.full(n, np.iinfo(np.int64).max)
    y0 = np.full(n, np.iinfo(np.int64).max)
    x1 = np.full(n, -1)
    y1 = np.full(n, -1)
    np.minimum.at(x0, which, cols)
    np.minimum.at(y0, which, rows)
    np.maximum.at(x1, which, cols)
    np.maximum.at(y1, which, rows)
    sizes = np.bincount(which, minlength=n)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64), sizes


def thresholded_components(saliency: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (k, 4) and pixel counts (k,) of the 8-connected components of ``s ≥ τ·max(s)``.

    Components come in raster order of their first pixel. NaN pixels are never selected. With
    ``max(s) ≤ 0`` the rule selects every pixel ``≥ 0``: a blank map gives the whole-image box,
    as the ``≥`` of the definition implies. An all-NaN map gives no box.
    """
    s = np.asarray(saliency, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"a saliency map must be 2-D, got shape {s.shape}")
    finite = np.isfinite(s)
    if not finite.any():
        return np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        selected = finite & (s >= tau * s[finite].max())
    return component_boxes(*label_components(selected))


def boxes_from_map(saliency: np.ndarray, tau: float, version: str = "v1") -> np.ndarray:
    """WSOL boxes of a map at threshold τ, as (k, 4) inclusive pixel boxes.

    The pixels with ``s ≥ τ·max(s)`` are split into 8-connected components
    (:func:`thresholded_components`); ``version="v1"`` keeps the tight box of the largest
    component (most pixels; ties go to the first in raster order), ``"v2"`` keeps every
    component's box.
    """
    if version not in ("v1", "v2"):
        raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
    boxes, sizes = thresholded_components(saliency, tau)
    if version == "v1" and len(boxes):
        return boxes[[int(np.argmax(sizes))]]
    return boxes


def box_iou(boxes_a: BoxArray, boxes_b: BoxArray) -> np.ndarray:
    """Pairwise IoU (n, m) of inclusive pixel boxes.

    ``area = (x1 − x0 + 1)(y1 − y0 + 1)``; the intersection is the inclusive box
    ``(max x0, max y0, min x1, min y1)`` (area 0 when empty); ``IoU = I / (A + B − I)``.
    """
    a, b = _as_boxes(boxes_a), _as_boxes(boxes_b)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)
