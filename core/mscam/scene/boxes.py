"""A heatmap's localisation boxes as a GeoPackage: what `mscam explain --boxes`, `mscam localize`
and the plugin write.

The boxes come from `localize.find_boxes` (hot regions → peaks → the ships' bright pixels in the
scene when it is given); each gets the class, the method, the threshold and a `score`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from mscam.scene.localize import find_boxes
from mscam.scene.raster import open_raster_info
from mscam.scene.vector import write_boxes


class TileProbability(Protocol):
    """A hot tile's pixel window and target-class probability (`pipeline.TileScore`)."""

    x0: int
    y0: int
    x1: int
    y1: int
    probability: float


def write_scene_boxes(
    heatmap: str | Path,
    boxes: str | Path,
    threshold: float,
    target_class: str,
    method: str,
    hot_tiles: Sequence[TileProbability] | None = None,
    *,
    merge_gap: int = 3,
    lattice: str = "drop",
    scene: str | Path | None = None,
    units: str | None = None,
    bands: tuple[str, ...] | None = None,
    hot_reach: int | None = None,
) -> int:
    """The heatmap's boxes at `threshold`, written to a GeoPackage; returns their count.

    With `scene` (the SAR input, on the heatmap's grid; `units` and `bands` as for the pipeline)
    the boxes fit the ships' bright pixels and carry length, width and heading; without it they
    are the peaks' heat regions (`localize.find_boxes`). `lattice` "drop" (with `scene`) drops
    the boxes whose target stands on a lattice of point targets, a wind farm's turbines
    (`scene.lattice`); "keep" keeps them.

    `score` is the highest target-class probability among the hot tiles that contain the box's
    peak; without tile scores (boxes re-derived from a heatmap alone) it is the peak heat, which is
    a lower bound of that probability.

    `hot_reach`: with `hot_tiles`, the heat is 0 farther than this many pixels outside them (0 on
    the grid the tiles ran on, a few pixels when the heat was mapped back from a coarser one),
    so only the hot tiles' surroundings are searched, not the whole heatmap.
    """
    areas = None
    if hot_tiles is not None and hot_reach is not None:
        r = hot_reach
        areas = [(t.x0 - r, t.y0 - r, t.x1 + r, t.y1 + r) for t in hot_tiles]
    found = find_boxes(
        heatmap,
        threshold,
        scene=scene,
        merge_gap=merge_gap,
        lattice=lattice,
        units=units,
        bands=bands,
        areas=areas,
    )
    records = []
    for box in found:
        px, py = box.peak_xy
        covering = [
            t.probability for t in hot_tiles or () if t.x0 <= px < t.x1 and t.y0 <= py < t.y1
        ]
        score = max(covering) if covering else box.peak
        records.append(
            box.record(
                **{"class": target_class, "score": score, "method": method, "threshold": threshold}
            )
        )
    write_boxes(boxes, records, open_raster_info(heatmap).crs_wkt or None)
    return len(records)
