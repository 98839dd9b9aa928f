"""Weakly supervised localisation (WSOL) metrics: BoxAcc, MaxBoxAcc(V2), Top-1/GT-known Loc, PxAP.

The definitions follow Choe et al., "Evaluating Weakly Supervised Object Localization Methods
Right" (CVPR 2020), with the boxes of :mod:`mscam.eval.boxes`:

- ``BoxAcc(τ, δ) = 1/N Σ_n 1[ max_{b ∈ B_n(τ), g ∈ G_n} IoU(b, g) ≥ δ ]`` where ``B_n(τ)`` are the
  boxes of map n at threshold τ (v1: the largest component's, v2: every component's) and ``G_n``
  its ground-truth boxes. A share in [0, 1], not a percentage.
- ``MaxBoxAcc = max_τ BoxAcc(τ, 0.5)`` with v1 boxes, τ ∈ {0, 0.01, …, 0.99}.
- ``MaxBoxAccV2 = mean_{δ ∈ {0.3, 0.5, 0.7}} max_τ BoxAcc(τ, δ)`` with v2 boxes.
- ``GT-known Loc(τ) = BoxAcc(τ, 0.5)`` (maps of the ground-truth class) and
  ``Top-1 Loc(τ) = 1/N Σ_n 1[ŷ_n = y_n] · 1[best IoU_n ≥ 0.5]``.
- ``PxAP = Σ_l P(τ_l)(R(τ_l) − R(τ_{l−1}))`` over thresholds in decreasing order (``R(τ_0) = 0``),
  with precision and recall of ``s ≥ τ`` against the ground-truth masks pooled over every pixel of
  every image.

An image without a ground-truth box, or whose map gives no box (all NaN), counts as a miss.

>>> import numpy as np
>>> maps = np.zeros((1, 4, 4)); maps[0, 1:3, 1:3] = 1.0
>>> max_box_acc(maps, [[(1, 1, 2, 2)]])
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mscam.eval.boxes import BoxArray, box_iou, thresholded_components

#: The WSOL threshold grid τ ∈ {0, 0.01, …, 0.99}.
THRESHOLDS: np.ndarray = np.arange(100) / 100
#: The IoU thresholds δ that MaxBoxAccV2 averages over.
IOU_DELTAS_V2: tuple[float, ...] = (0.3, 0.5, 0.7)

#: (N, H, W) maps as an array or tensor, or a sequence of 2-D maps (sizes may differ).
Maps = np.ndarray | torch.Tensor | Sequence[np.ndarray]
#: Per image its ground-truth boxes: a (k, 4) array-like of inclusive pixel boxes (k ≥ 0).
GroundTruth = Sequence[BoxArray]


def _as_maps(maps: Maps) -> list[np.ndarray]:
    if isinstance(maps, torch.Tensor):
        maps = maps.detach().cpu().double().numpy()
    out = [np.asarray(m, dtype=np.float64) for m in maps]
    if any(m.ndim != 2 for m in out):
        raise ValueError("every map must be 2-D (maps are (N, H, W) or a sequence of (H, W))")
    return out


def _as_truth(gt_boxes: GroundTruth, n: int) -> list[np.ndarray]:
    if len(gt_boxes) != n:
        raise ValueError(f"got ground-truth boxes for {len(gt_boxes)} images and {n} maps")
    return [np.asarray(g, dtype=np.float64).reshape(-1, 4) for g in gt_boxes]


def _thresholds(thresholds: Sequence[float] | np.ndarray | None) -> np.ndarray:
    values = THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("thresholds must be a non-empty 1-D sequence")
    return values


def best_ious(
    maps: Maps,
    gt_boxes: GroundTruth,
    thresholds: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's best IoU at each threshold, for v1 and v2 boxes: two (N, T) arrays.

    ``best[n, t] = max_{b ∈ B_n(τ_t), g ∈ G_n} IoU(b, g)`` (0 without a box or a ground truth).
    The components are labelled once per (image, τ) and serve both box versions.
    """
    taus = _thresholds(thresholds)
    arrays = _as_maps(maps)
    truth = _as_truth(gt_boxes, len(arrays))
    v1 = np.zeros((len(arrays), taus.size))
    v2 = np.zeros((len(arrays), taus.size))
    for n, (s, gt) in enumerate(zip(arrays, truth)):
        if len(gt) == 0:
            continue
        for t, tau in enumerate(taus):
            boxes, sizes = thresholded_components(s, tau)
            if len(boxes) == 0:
                continue
            ious = box_iou(boxes, gt).max(axis=1)
            v1[n, t] = ious[int(np.argmax(sizes))]
            v2[n, t] = ious.max()
    return v1, v2


def box_accuracy(ious: np.ndarray, delta: float) -> np.ndarray:
    """``BoxAcc(τ, δ)`` for every τ from best IoUs (N, T): the share of images with IoU ≥ δ."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.shape[0] == 0:
        raise ValueError("no image to evaluate")
    return (ious >= delta).mean(axis=0)


def box_acc(
    maps: Maps, gt_boxes: GroundTruth, tau: float, delta: float = 0.5, version: str = "v1"
) -> float:
    """``BoxAcc(τ, δ)``: share of images whose best box at τ has IoU ≥ δ with a ground-truth box."""
    return float(box_acc_curve(maps, gt_boxes, delta, [tau], version)[0])


def box_acc_curve(
    maps: Maps,
    gt_boxes: GroundTruth,
    delta: float = 0.5,
    thresholds: Sequence[float] | np.ndarray | None = None,
    version: str = "v1",
) -> np.ndarray:
    """The curve ``BoxAcc(τ, δ)`` over ``thresholds`` (default τ ∈ {0, 0.01, …, 0.99})."""
    if version not in ("v1", "v2"):
        raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
    v1, v2 = best_ious(maps, gt_boxes, thresholds)
    return box_accuracy(v1 if version == "v1" else v2, delta)


def max_box_acc(
    maps: Maps, gt_boxes: GroundTruth, thresholds: Sequence[float] | np.ndarray | None = None
) -> float:
    """``MaxBoxAcc = max_τ BoxAcc(τ, 0.5)`` with v1 boxes (the largest component's)."""
    return float(box_acc_curve(maps, gt_boxes, 0.5, thresholds, "v1").max())


def max_box_acc_v2(
    maps: Maps,
    gt_boxes: GroundTruth,
    deltas: Sequence[float] = IOU_DELTAS_V2,
    thresholds: Sequence[float] | np.ndarray | None = None,
) -> float:
    """``MaxBoxAccV2 = mean_{δ ∈ deltas} max_τ BoxAcc(τ, δ)`` with v2 boxes (every component's)."""
    _, v2 = best_ious(maps, gt_boxes, thresholds)
    return float(np.mean([box_accuracy(v2, d).max() for d in deltas]))


def _class_ids(values: Sequence[int] | np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    ids = np.asarray(torch.as_tensor(values).cpu()).reshape(-1)
    if ids.size != n:
        raise ValueError(f"got {ids.size} classes for {n} maps")
    return ids


def _top1_loc(ious: np.ndarray, predicted: Any, labels: Any, delta: float) -> float:
    """``1/N Σ 1[ŷ_n = y_n] 1[IoU_n ≥ δ]`` for best IoUs (N,) at one τ."""
    correct = _class_ids(predicted, ious.size) == _class_ids(labels, ious.size)
    return float(np.mean(correct & (ious >= delta)))


def localization_accuracy(
    maps: Maps,
    gt_boxes: GroundTruth,
    predicted: Sequence[int] | np.ndarray | torch.Tensor,
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    tau: float | None = None,
    delta: float = 0.5,
) -> tuple[float, float, float]:
    """``(Top-1 Loc, GT-known Loc, τ)`` with v1 boxes of the ground-truth class maps.

    ``GT-known Loc = BoxAcc(τ, δ)``; ``Top-1 Loc = 1/N Σ 1[ŷ_n = y_n] 1[IoU_n ≥ δ]``. Where the
    prediction is right the predicted-class map is the ground-truth class map, and where it is
    wrong the image fails anyway, so the ground-truth class maps serve both. ``tau=None`` takes the
    τ of the grid {0, 0.01, …, 0.99} that maximises GT-known Loc (MaxBoxAcc's τ; the lowest on
    ties).
    """
    taus = THRESHOLDS if tau is None else np.array([tau], dtype=np.float64)
    v1, _ = best_ious(maps, gt_boxes, taus)
    gt_known = box_accuracy(v1, delta)
    best = int(np.argmax(gt_known))
    top1 = _top1_loc(v1[:, best], predicted, labels, delta)
    return top1, float(gt_known[best]), float(taus[best])


class PixelPRCurve:
    """Pixel precision and recall of ``s ≥ τ`` against a mask, pooled over any number of updates.

    Memory is O(T): a score histogram per class, so a whole scene can be fed strip by strip.
    NaN scores (nodata) are ignored. At a threshold where nothing is predicted the precision is 1
    (it never weighs in the AP: the recall does not move there).

    >>> curve = PixelPRCurve([0.25, 0.5, 0.75])
    >>> curve.update(np.array([0.9, 0.6, 0.3, 0.1]), np.array([True, False, True, False]))
    >>> round(curve.average_precision(), 4)      # 1·½ + ½·0 + ⅔·½
    0.8333
    """

    def __init__(self, thresholds: Sequence[float] | np.ndarray | None = None) -> None:
        self.thresholds = np.sort(_thresholds(thresholds))
        self._positive = np.zeros(self.thresholds.size + 1, dtype=np.int64)
        self._negative = np.zeros(self.thresholds.size + 1, dtype=np.int64)

    def update(self, scores: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> None:
        """Add pixels: ``scores`` and boolean ground-truth ``mask`` of the same shape."""
        if isinstance(scores, torch.Tensor):
            scores = scores.detach().cpu().double().numpy()
        if isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
        s = np.asarray(scores, dtype=np.float64)
        m = np.asarray(mask, dtype=bool)
        if s.shape != m.shape:
            raise ValueError(f"scores {s.shape} and mask {m.shape} differ in shape")
        finite = np.isfinite(s)
        # Number of thresholds ≤ s: the pixel is predicted positive at exactly that many of them.
        passed = np.searchsorted(self.thresholds, s[finite], side="right")
        inside = m[finite]
        size = self.thresholds.size + 1
        self._positive += np.bincount(passed[inside], minlength=size)
        self._negative += np.bincount(passed[~inside], minlength=size)

    def counts(self) -> tuple[np.ndarray, np.ndarray, int]:
        """``(TP(τ), FP(τ), #positives)`` per threshold, thresholds ascending."""
        tp = np.cumsum(self._positive[::-1])[::-1][1:]
        fp = np.cumsum(self._negative[::-1])[::-1][1:]
        return tp, fp, int(self._positive.sum())

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(precision(τ), recall(τ))`` per threshold, thresholds ascending; recall is NaN
        when the masks hold no positive pixel."""
        tp, fp, positives = self.counts()
        predicted = tp + fp
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 1.0)
        recall = tp / positives if positives else np.full(tp.shape, np.nan)
        return precision, recall

    def average_precision(self) -> float | None:
        """``Σ_l P(τ_l)(R(τ_l) − R(τ_{l−1}))``, τ decreasing, ``R(τ_0) = 0``.

        None when no pixel is positive (recall undefined).
        """
        precision, recall = self.curve()
        if np.isnan(recall).any():
            return None
        precision, recall = precision[::-1], recall[::-1]
        steps = np.diff(recall, prepend=0.0)
        return float(np.sum(precision * steps))


def pxap(
    maps: Maps,
    masks: Sequence[np.ndarray] | np.ndarray | torch.Tensor,
    thresholds: Sequence[float] | np.ndarray | None = None,
) -> float | None:
    """PxAP: the pixel average precision of ``s ≥ τ`` against boolean masks, pooled over images.

    ``PxAP = Σ_l P(τ_l)(R(τ_l) − R(τ_{l−1}))`` (τ decreasing, ``R(τ_0) = 0``), τ on the grid
    {0, 0.01, …, 0.99} by default. Maps are used as given (expected in [0, 1]); None when the
    masks hold no positive pixel.
    """
    arrays = _as_maps(maps)
    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    if len(masks) != len(arrays):
        raise ValueError(f"got {len(masks)} masks for {len(arrays)} maps")
    curve = PixelPRCurve(thresholds)
    for s, mask in zip(arrays, masks):
        curve.update(s, mask)
    return curve.average_precision()


@dataclass(frozen=True)
class WSOLReport:
    """Every WSOL number of one evaluation; :meth:`to_dict` is JSON-serialisable.

    ``box_acc``: BoxAcc(τ, 0.5) with v1 boxes over ``thresholds`` (the GT-known Loc curve);
    ``box_acc_v2``: for each δ of MaxBoxAccV2, BoxAcc(τ, δ) with v2 boxes.
    """

    thresholds: np.ndarray
    box_acc: np.ndarray
    max_box_acc: float
    best_threshold: float
    box_acc_v2: dict[float, np.ndarray]
    max_box_acc_v2: float
    top1_loc: float | None
    gt_known_loc: float
    pxap: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": self.thresholds.tolist(),
            "box_acc": self.box_acc.tolist(),
            "max_box_acc": self.max_box_acc,
            "best_threshold": self.best_threshold,
            "box_acc_v2": {f"{d:g}": curve.tolist() for d, curve in self.box_acc_v2.items()},
            "max_box_acc_v2": self.max_box_acc_v2,
            "top1_loc": self.top1_loc,
            "gt_known_loc": self.gt_known_loc,
            "pxap": self.pxap,
        }


def evaluate_wsol(
    maps: Maps,
    gt_boxes: GroundTruth,
    *,
    predicted: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    labels: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    masks: Sequence[np.ndarray] | np.ndarray | torch.Tensor | None = None,
    thresholds: Sequence[float] | np.ndarray | None = None,
    deltas: Sequence[float] = IOU_DELTAS_V2,
) -> WSOLReport:
    """All WSOL metrics at once, labelling each (map, τ) only once.

    Top-1 and GT-known Loc are taken at MaxBoxAcc's τ (``best_threshold``); Top-1 Loc needs
    ``predicted`` and ``labels``, PxAP needs ``masks`` (None otherwise).
    """
    taus = _thresholds(thresholds)
    v1, v2 = best_ious(maps, gt_boxes, taus)
    curve = box_accuracy(v1, 0.5)
    best = int(np.argmax(curve))
    top1 = None
    if predicted is not None and labels is not None:
        top1 = _top1_loc(v1[:, best], predicted, labels, 0.5)
    v2_curves = {float(d): box_accuracy(v2, d) for d in deltas}
    return WSOLReport(
        thresholds=taus,
        box_acc=curve,
        max_box_acc=float(curve[best]),
        best_threshold=float(taus[best]),
        box_acc_v2=v2_curves,
        max_box_acc_v2=float(np.mean([c.max() for c in v2_curves.values()])),
        top1_loc=top1,
        gt_known_loc=float(curve[best]),
        pxap=None if masks is None else pxap(maps, masks),
    )
