"""The scene use cases every front end calls (command line, Processing algorithms, QGIS dock).

- `explain_scene` (`scene.pipeline`): a scene → the heatmap COG and the boxes GeoPackage.
- `redraw_boxes` (here): the boxes again from a heatmap, at another threshold or with the
  scene, without the CNN; the scores stay the run's tile probabilities.
- `explain_point` (`scene.point`): every CAM method on the tile around one point.
- `evaluate_scene` (`eval.scene`): a heatmap's scores against truth boxes.

All four are importable from `mscam.scene`; this module imports no GDAL until a function runs.
"""

from __future__ import annotations

import os

from mscam.errors import InputError

PathLike = str | os.PathLike

#: What a heatmap without the tags gets (written before they were recorded): the pipeline's
#: defaults at the time (`SceneSettings`).
FALLBACK_THRESHOLD = 0.5
FALLBACK_MERGE_GAP = 3
#: Heatmaps from before the lattice check kept every box.
FALLBACK_LATTICE = "keep"


def redraw_boxes(
    heatmap: PathLike,
    boxes: PathLike,
    threshold: float | None = None,
    *,
    scene: PathLike | None = None,
    units: str | None = None,
    bands: tuple[str, ...] | str | None = None,
    merge_gap: int | None = None,
    target_class: str | None = None,
    lattice: str | None = None,
) -> int:
    """Draw a heatmap's boxes again, into the GeoPackage `boxes`; returns their count.

    `heatmap` must be one `explain_scene` wrote (a raster without its MSCAM_ tags is refused:
    a SAR scene would give boxes of bright sea). `threshold`, `merge_gap`, `lattice`, `units`
    and `bands` default to the run's own (its tags; a heatmap from before the lattice check
    keeps every box); `scene` is the SAR input the heatmap explains: with it
    the boxes fit the ships' bright pixels, as the run's do. `target_class` only names the boxes'
    class (default: the run's).

    Each box's `score` is the run's probability of the best hot tile holding its peak, stored
    with the heatmap: at the run's threshold, with its scene, the boxes are the run's, field for
    field. A heatmap from an older version holds no tiles: the score is then the peak heat (a
    lower bound of that probability) and the whole heatmap is searched.
    """
    from mscam.scene.boxes import write_scene_boxes
    from mscam.scene.heatmap_writer import heatmap_hot_reach, heatmap_hot_tiles, heatmap_tags
    from mscam.scene.outputs import check_outputs
    from mscam.scene.settings import SETTINGS, split_bands

    tags = heatmap_tags(heatmap)
    if not tags:
        raise InputError(
            f"{heatmap} is not an mscam heatmap (it has no MSCAM_ tags); boxes are drawn again "
            "from the heatmaps `mscam explain` writes"
        )
    check_outputs({"boxes": boxes}, [heatmap, scene])
    if threshold is None:
        threshold = run_threshold(tags)
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    if merge_gap is None:
        merge_gap = _tag_number(tags, "merge_gap", int, FALLBACK_MERGE_GAP)
    if lattice is None:
        lattice = tags.get("lattice") or FALLBACK_LATTICE
    SETTINGS["lattice"].check(lattice)
    if units is None:
        units = tags.get("units") or None
    if isinstance(bands, str):  # "VV,VH" as a front end has it
        bands = split_bands(bands)
    if bands is None:
        bands = split_bands(tags.get("bands"))
    tiles = heatmap_hot_tiles(heatmap)
    # The heat is 0 farther than `reach` outside the hot tiles: only around them is searched.
    reach = heatmap_hot_reach(heatmap) if tiles is not None else None
    return write_scene_boxes(
        heatmap,
        boxes,
        threshold,
        target_class or tags.get("target_class", "target"),
        # The run's boxes name the method without its options ("ms-cam(k=3)" → "ms-cam").
        tags.get("method", "unknown").split("(", 1)[0],
        tiles,
        merge_gap=merge_gap,
        lattice=lattice,
        scene=scene,
        units=units,
        bands=bands,
        hot_reach=reach,
    )


def run_threshold(tags: dict[str, str]) -> float:
    """The threshold a heatmap's run drew its boxes at (its tags; older heatmaps: the default)."""
    return _tag_number(tags, "threshold", float, FALLBACK_THRESHOLD)


def _tag_number(tags: dict[str, str], key: str, kind: type, fallback: float | int):
    try:
        return kind(tags[key])
    except (KeyError, ValueError):
        return fallback
