"""Scene-level scores of a heatmap GeoTIFF and its boxes against ground-truth boxes (GeoPackage).

Two families of numbers, both JSON-serialisable (:func:`evaluate_scene`):

- **PxAP**: pixel average precision of ``heat ≥ τ`` against the mask of the truth boxes,
  ``Σ_l P(τ_l)(R(τ_l) − R(τ_{l−1}))`` over τ ∈ {0, 0.01, …, 0.99} (τ decreasing), streamed over
  the heatmap a strip of rows at a time; nodata pixels are left out.
- **Box precision, recall and F1 per threshold**: at each threshold the boxes of
  :func:`mscam.scene.localize.find_boxes` (8-connected regions of ``heat ≥ τ``) are matched one to
  one with the truth boxes, greedily in decreasing peak heat: each prediction takes the
  still-unmatched truth box it qualifies for with the highest IoU. Two criteria qualify a pair:

  - ``iou``: IoU of the inclusive pixel boxes ≥ 0.5 (the detection standard);
  - ``hit``: the prediction's box contains the truth box's centre. A small ship's heat region is
    wider than its hull (the CNN's receptive field, the blending of overlapping tiles), so its box
    can find the ship with an IoU well below 0.5; ``hit`` counts such a find and ``iou`` does not.

  ``precision = TP / predictions``, ``recall = TP / truths``,
  ``F1 = 2PR / (P + R)``; 0/0 counts as 1 (no prediction is a vacuous precision of 1, no truth a
  vacuous recall of 1), and F1 is 0 when P + R = 0. The best threshold is the one with the highest
  F1 (the lowest threshold on ties), per criterion.

Truth boxes are read with :func:`mscam.scene.vector.read_boxes`, reprojected to the heatmap's CRS
when theirs differs, and mapped to pixels on the heatmap's grid (geotransform or GCPs) with
:meth:`mscam.scene.raster.PixelMapper.map_to_pixel`: a truth box becomes the inclusive box of the
pixels that its footprint's bounding box covers at least half along each axis (the pixel of its
centre when it is smaller than a pixel). A heatmap without georeferencing takes the truth
coordinates as pixel coordinates. GDAL is imported only when a function here runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mscam.errors import InputError
from mscam.eval.boxes import box_iou
from mscam.eval.wsol import PixelPRCurve

log = logging.getLogger(__name__)

#: Box thresholds evaluated when none are given: 0.05, 0.10, …, 0.95.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))
#: A prediction matches a truth box under the ``iou`` criterion from this IoU on.
MATCH_IOU = 0.5
STRIP_ROWS = 512
CRITERIA = {
    "iou": f"IoU of the pixel boxes >= {MATCH_IOU}",
    "hit": "the predicted box contains the truth box centre",
}

PathLike = str | Path


def greedy_match(allowed: np.ndarray, quality: np.ndarray, scores: np.ndarray) -> int:
    """The number of one-to-one matches when predictions (rows) pick truths (columns) greedily.

    Predictions go in decreasing ``scores`` (stable); each takes, among the still-unmatched truths
    it is ``allowed`` to match, the one of highest ``quality`` (the first on ties).
    """
    allowed = np.asarray(allowed, dtype=bool)
    quality = np.where(allowed, np.asarray(quality, dtype=np.float64), -np.inf)
    taken = np.zeros(allowed.shape[1], dtype=bool)
    for row in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        candidates = np.where(taken, -np.inf, quality[row])
        if np.isfinite(candidates).any():
            taken[int(np.argmax(candidates))] = True
    return int(taken.sum())


def detection_scores(tp: int, predictions: int, truths: int) -> tuple[float, float, float]:
    """``(precision, recall, F1)``; 0/0 counts as 1 for P and R, and F1 = 0 when P + R = 0."""
    precision = tp / predictions if predictions else 1.0
    recall = tp / truths if truths else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def match_boxes(
    predicted: np.ndarray, scores: np.ndarray, truth: np.ndarray, truth_centres: np.ndarray
) -> dict[str, int]:
    """True positives under each criterion (``iou``, ``hit``) of inclusive pixel boxes.

    ``truth_centres`` (k, 2) are (col, row) in GDAL pixel coordinates, where the inclusive box
    ``(x0, y0, x1, y1)`` covers ``[x0, x1 + 1) × [y0, y1 + 1)``.
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, 4)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    if len(predicted) == 0 or len(truth) == 0:
        return {"iou": 0, "hit": 0}
    iou = box_iou(predicted, truth)
    cx, cy = truth_centres[:, 0][None, :], truth_centres[:, 1][None, :]
    contains = ((predicted[:, [0]] <= cx) & (cx <= predicted[:, [2]] + 1)
                & (predicted[:, [1]] <= cy) & (cy <= predicted[:, [3]] + 1))  # fmt: skip
    return {
        "iou": greedy_match(iou >= MATCH_IOU, iou, scores),
        "hit": greedy_match(contains, iou, scores),
    }


def _transform_points(
    xs: np.ndarray, ys: np.ndarray, source_wkt: str, target_wkt: str
) -> tuple[np.ndarray, np.ndarray]:
    from osgeo import osr

    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromWkt(source_wkt)
    target.ImportFromWkt(target_wkt)
    if source.IsSame(target):
        return xs, ys
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(source, target)
    points = transform.TransformPoints(np.stack([xs, ys], axis=1).tolist())
    out = np.asarray(points, dtype=np.float64)
    return out[:, 0], out[:, 1]


def _covered_pixels(low: float, high: float) -> tuple[int, int]:
    """First and last pixel at least half covered by ``[low, high)`` along one axis; the pixel
    holding the centre when none is. Rounding to the nearest pixel edge, rather than taking every
    pixel touched, keeps a pixel-aligned footprint exact under the round-off of a GCP transformer
    (a millionth of a pixel past an edge must not add a row)."""
    first, last = math.floor(low + 0.5), math.floor(high + 0.5) - 1
    if last < first:
        first = last = math.floor((low + high) / 2)
    return first, last


def truth_pixel_boxes(
    truth_path: PathLike, info: Any, layer: str | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Truth boxes on the grid of the raster ``info`` (a :class:`RasterInfo`).

    Returns the inclusive pixel boxes (k, 4) clipped to the raster, their footprints' centres
    (k, 2) in pixel coordinates, and how many truth boxes fell wholly outside the raster.
    """
    from mscam.scene.raster import PixelMapper, using_gdal
    from mscam.scene.vector import read_boxes, read_crs

    if not str(truth_path).startswith("/vsi") and not Path(truth_path).exists():
        raise InputError(f"truth {truth_path} does not exist")
    records = read_boxes(truth_path, layer)
    truth_wkt = read_crs(truth_path, layer)
    georeferenced = info.geotransform is not None or len(info.gcps) >= 3
    mapper = PixelMapper(info) if georeferenced else None
    if mapper is None:
        log.warning("%s has no georeferencing: truth coordinates are taken as pixels", info.path)
    boxes, centres, outside = [], [], 0
    with using_gdal():
        for record in records:
            if not record.get("ring"):
                continue
            xs = np.array([p[0] for p in record["ring"]], np.float64)
            ys = np.array([p[1] for p in record["ring"]], np.float64)
            if mapper is not None:
                if truth_wkt and mapper.crs_wkt:
                    xs, ys = _transform_points(xs, ys, truth_wkt, mapper.crs_wkt)
                xs, ys = mapper.map_to_pixel(xs, ys)
            c0, c1, r0, r1 = xs.min(), xs.max(), ys.min(), ys.max()
            x0, x1 = _covered_pixels(c0, c1)
            y0, y1 = _covered_pixels(r0, r1)
            if x1 < 0 or y1 < 0 or x0 >= info.width or y0 >= info.height:
                outside += 1
                continue
            boxes.append(
                (max(x0, 0), max(y0, 0), min(x1, info.width - 1), min(y1, info.height - 1))
            )
            centres.append(((c0 + c1) / 2, (r0 + r1) / 2))
    return (
        np.array(boxes, np.int64).reshape(-1, 4),
        np.array(centres, np.float64).reshape(-1, 2),
        outside,
    )


def _pixel_curve(reader: Any, truth: np.ndarray) -> PixelPRCurve:
    """PR counts of the heatmap's band 1 against the truth boxes' mask, a strip at a time."""
    width, height = reader.info.width, reader.info.height
    curve = PixelPRCurve()
    for y0 in range(0, height, STRIP_ROWS):
        rows = min(STRIP_ROWS, height - y0)
        heat = reader.read(0, y0, width, rows, bands=[1])[0]
        mask = np.zeros((rows, width), dtype=bool)
        for x0, by0, x1, by1 in truth:
            if by1 >= y0 and by0 < y0 + rows:
                mask[max(by0 - y0, 0) : by1 - y0 + 1, x0 : x1 + 1] = True
        curve.update(heat, mask)
    return curve


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def _check_thresholds(thresholds: Sequence[float] | None) -> list[float]:
    values = sorted({float(t) for t in (thresholds or DEFAULT_THRESHOLDS)})
    bad = [t for t in values if not 0.0 < t <= 1.0]
    if bad:
        raise InputError(f"thresholds must be in (0, 1], got {bad[0]}")
    return values


def evaluate_scene(
    heatmap_path: PathLike,
    truth_path: PathLike,
    thresholds: Sequence[float] | None = None,
    *,
    layer: str | None = None,
    scene: PathLike | None = None,
    units: str | None = None,
    bands: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Scores of a heatmap GeoTIFF against the truth boxes of a GeoPackage (``layer``: default
    the first); see the module docstring for the definitions. ``thresholds`` (in (0, 1]) default
    to 0.05, 0.10, …, 0.95. With ``scene`` (the SAR input, with the pipeline's ``units`` and
    ``bands`` overrides) the boxes are fitted to the ships' bright pixels, as `mscam explain`
    draws them; without it they are the peaks' heat regions.

    Returns a JSON-serialisable dict: ``pxap`` (None without truth pixels) and its
    ``pixel_curve``; per threshold ``predictions`` and, per criterion (``iou``, ``hit``), ``tp``,
    ``precision``, ``recall`` and ``f1``; ``best`` threshold by F1 per criterion; counts and the
    ``criteria`` in words.
    """
    from mscam.scene.localize import find_boxes
    from mscam.scene.raster import RasterReader

    taus = _check_thresholds(thresholds)
    with RasterReader(heatmap_path) as reader:
        info = reader.info
        truth, centres, outside = truth_pixel_boxes(truth_path, info, layer)
        pixels = _pixel_curve(reader, truth)
    if outside:
        log.warning("%d truth boxes lie outside %s and are ignored", outside, heatmap_path)
    precision_px, recall_px = pixels.curve()
    curves: dict[str, dict[str, list[float]]] = {
        name: {"tp": [], "precision": [], "recall": [], "f1": []} for name in CRITERIA
    }
    predictions = []
    for tau in taus:
        found = find_boxes(heatmap_path, tau, scene=scene, units=units, bands=bands)
        boxes = np.array([(b.x0, b.y0, b.x1, b.y1) for b in found], np.int64).reshape(-1, 4)
        tps = match_boxes(boxes, np.array([b.peak for b in found]), truth, centres)
        predictions.append(len(found))
        for name, tp in tps.items():
            precision, recall, f1 = detection_scores(tp, len(found), len(truth))
            for key, value in (
                ("tp", tp),
                ("precision", precision),
                ("recall", recall),
                ("f1", f1),
            ):
                curves[name][key].append(value)
    best = {}
    for name, curve in curves.items():
        index = int(np.argmax(curve["f1"]))
        best[name] = {
            "threshold": taus[index],
            "predictions": predictions[index],
            **{key: curve[key][index] for key in ("tp", "precision", "recall", "f1")},
        }
    return {
        "heatmap": str(heatmap_path),
        "truth": str(truth_path),
        "width": info.width,
        "height": info.height,
        "truth_boxes": len(truth),
        "truth_outside": outside,
        "pxap": pixels.average_precision(),
        "pixel_curve": {
            "thresholds": pixels.thresholds.tolist(),
            "precision": _finite_or_none(precision_px),
            "recall": _finite_or_none(recall_px),
        },
        "match_iou": MATCH_IOU,
        "criteria": dict(CRITERIA),
        "thresholds": taus,
        "predictions": predictions,
        **curves,
        "best": best,
    }
