"""Localisation boxes: hot regions of the heatmap, a region per peak, a box per ship.

1. **Hot regions** (`regions.hot_regions`, the user's threshold): GDAL's polygonizer on the mask
   ``heat ≥ threshold`` (8-connected), streamed a strip of rows at a time, so a ship across a tile
   seam is one region and no whole-scene label image is ever held in memory. Regions whose boxes
   come within ``merge_gap`` pixels are examined together.
2. **Peaks** (`grow_peaks`): in each region's window (plus a margin), the local maxima ≥ threshold
   grow down to ``fraction`` of their own maximum (as the WSOL protocol thresholds each map at a
   fraction of its maximum), so one hot region holds several targets where the heat between them
   falls below that fraction of each one's peak.
3. **Hulls** (`hull.ship_components`, with the scene): inside each peak's region, the co-polarised
   pixels that stand above the local sea clutter (CFAR), one box per ship; a region where nothing
   stands out gives no box. Without the scene, the box is the peak's heat region.

A box is a tight pixel box, turned into a polygon in the input's CRS through GDAL's transformer
(geotransform, or the GCPs where there is none).
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mscam.errors import InputError
from mscam.scene.hull import (
    CoPolarisedImage,
    GroundFrame,
    HullSettings,
    box_max,
    dilate,
    oriented_box,
    ship_components,
)
from mscam.scene.lattice import drop_lattice_boxes
from mscam.scene.raster import (
    PixelMapper,
    RasterInfo,
    RasterReader,
    limited_block_cache,
)
from mscam.scene.regions import Area, _Region, hot_regions

log = logging.getLogger(__name__)

#: A peak's region grows down to this fraction of the peak's own heat.
DEFAULT_FRACTION = 0.5
#: Peaks closer than this (pixels, along either axis) are one.
DEFAULT_PEAK_DISTANCE = 2
#: Margin (pixels) read around a hot region: at first `MIN_MARGIN`, doubled while a peak's
#: region is cut by the window, up to the heatmap's tile size (`DEFAULT_MARGIN` when it does
#: not name one): a region can reach below the threshold, but not beyond the hot tiles.
MIN_MARGIN = 16
DEFAULT_MARGIN = 64
#: Block cache while regions are read: a few rows of heatmap and scene blocks.
REGION_CACHE = 64 * 2**20


@dataclass(frozen=True)
class Box:
    """One localisation box: pixel box (inclusive), its footprint and statistics."""

    x0: int
    y0: int
    x1: int
    y1: int
    peak: float
    mean: float
    pixels: int
    peak_xy: tuple[int, int]
    ring: tuple[tuple[float, float], ...]  # footprint in the raster's CRS (pixels if none)
    area_m2: float | None
    fit: str = "heat"  # "image": the ship's bright pixels; "heat": the peak's heat region
    length_m: float | None = None  # oriented box of the bright pixels (image fits only)
    width_m: float | None = None
    heading_deg: float | None = None  # 0–180, clockwise from grid north (up without a CRS)

    def record(self, **fields: object) -> dict[str, object]:
        return {
            "ring": self.ring,
            "peak": self.peak,
            "mean": self.mean,
            "area_m2": self.area_m2,
            "fit": self.fit,
            "length_m": self.length_m,
            "width_m": self.width_m,
            "heading_deg": self.heading_deg,
            "px_x0": self.x0,
            "px_y0": self.y0,
            "px_x1": self.x1,
            "px_y1": self.y1,
            **fields,
        }


def footprint_mapper(info: RasterInfo) -> PixelMapper | None:
    """The raster's pixel→map mapping; None (pixel coordinates, with a warning) without one."""
    if info.geotransform is None and len(info.gcps) < 3:
        log.warning("%s has no georeferencing: boxes are in pixel coordinates", info.path)
        return None
    return PixelMapper(info)


def ring_area_m2(ring: Sequence[tuple[float, float]], crs_wkt: str) -> float | None:
    """Area of a ring in m² (shoelace) for projected CRSs; for geographic CRSs a local
    equirectangular approximation (boxes are small); None without a CRS."""
    if not crs_wkt:
        return None
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    xs = np.array([p[0] for p in ring], np.float64)
    ys = np.array([p[1] for p in ring], np.float64)
    if srs.IsGeographic():
        metres_per_degree = 111_320.0
        xs = xs * metres_per_degree * math.cos(math.radians(float(ys.mean())))
        ys = ys * metres_per_degree
    elif srs.IsProjected():
        xs, ys = xs * srs.GetLinearUnits(), ys * srs.GetLinearUnits()
    else:
        return None
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(np.roll(xs, -1), ys)) / 2.0)


@dataclass(frozen=True)
class Peak:
    """A peak of the heat (window pixel coordinates) and its value."""

    value: float
    row: int
    col: int


def grow_peaks(
    heat: np.ndarray,
    threshold: float,
    fraction: float = DEFAULT_FRACTION,
    distance: int = DEFAULT_PEAK_DISTANCE,
) -> tuple[np.ndarray, dict[int, Peak]]:
    """Each peak's region of `heat` (2-D, NaN for nodata): a label per pixel (0: none) and the
    peak of each label.

    Peaks are the local maxima ≥ `threshold`, at least `distance` + 1 pixels apart (the higher
    wins). Each grows down to `fraction` × its own value through the pixels connected to it, in
    decreasing heat (flooding from the peaks). Two regions that meet are one target, under the
    higher peak: the lower peak's own region reached the higher one, so the heat never fell below
    `fraction` of it between them (a ripple on one hull, or two hulls the heat cannot tell apart;
    with the scene, the hulls' own pixels still split them).
    """
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"the peak fraction must be in (0, 1], got {fraction}")
    values = np.where(np.isfinite(heat), heat, -np.inf).astype(np.float64)
    local = (values >= threshold) & (values >= box_max(values, max(distance, 1)))
    rows, cols = np.nonzero(local)
    suppressed = np.zeros(values.shape, bool)
    peaks: list[Peak] = []
    for k in np.argsort(-values[rows, cols], kind="stable"):
        r, c = int(rows[k]), int(cols[k])
        if not suppressed[r, c]:
            peaks.append(Peak(float(values[r, c]), r, c))
            suppressed[
                max(r - distance, 0) : r + distance + 1, max(c - distance, 0) : c + distance + 1
            ] = True
    height, width = values.shape
    stride = width + 2
    level = np.pad(values, 1, constant_values=-np.inf).ravel()
    labels = np.zeros(level.size, np.int64)
    parent = list(range(len(peaks) + 1))
    stop = [math.inf] + [fraction * p.value for p in peaks]
    offsets = (-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1)

    def root(label: int) -> int:
        while parent[label] != label:
            parent[label] = parent[parent[label]]
            label = parent[label]
        return label

    queue: list[tuple[float, int, int]] = []  # highest pixel first

    def spread(index: int, owner: int) -> None:
        for offset in offsets:
            neighbour = index + offset
            if not labels[neighbour] and level[neighbour] >= stop[owner]:
                heapq.heappush(queue, (-level[neighbour], neighbour, owner))

    seeds = [(peak.row + 1) * stride + peak.col + 1 for peak in peaks]
    for label, index in enumerate(seeds, start=1):
        labels[index] = label  # first: a seed is its own peak's, whatever floods first
    for label, index in enumerate(seeds, start=1):
        spread(index, label)
    while queue:
        negative, index, label = heapq.heappop(queue)
        owner = root(label)
        if labels[index] or -negative < stop[owner]:
            continue
        labels[index] = owner
        for offset in offsets:
            other = int(labels[index + offset])
            if other and root(other) != owner:
                high, low = sorted((owner, root(other)))  # lower label = higher peak
                parent[low] = high
                owner = high
        spread(index, owner)
    roots = np.array([root(k) for k in range(len(peaks) + 1)], np.int64)
    grown = roots[labels].reshape(height + 2, width + 2)[1:-1, 1:-1]
    return grown, {k: peaks[k - 1] for k in range(1, len(peaks) + 1) if roots[k] == k}


def find_boxes(
    heatmap: str | Path,
    threshold: float,
    *,
    scene: str | Path | None = None,
    merge_gap: int = 3,
    lattice: str = "keep",
    fraction: float = DEFAULT_FRACTION,
    peak_distance: int = DEFAULT_PEAK_DISTANCE,
    hull: HullSettings | None = None,
    units: str | None = None,
    bands: tuple[str, ...] | None = None,
    areas: Sequence[Area] | None = None,
) -> list[Box]:
    """Boxes of the ships that the heatmap's hot regions (``heat ≥ threshold``, nodata excluded)
    point at, strongest first (see the module docstring).

    With `scene` (the SAR input the heatmap explains, on the same grid; `units` and `bands`
    override its detection as in the pipeline), a box is the pixels of one ship that stand above
    the local sea clutter, and a hot region where nothing does gives no box. Without it, a box is
    a peak's heat region. Regions whose boxes come within `merge_gap` pixels of each other are
    examined together (a negative gap: each on its own). `areas`: as for `hot_regions`.
    `lattice` "drop": with the scene, a box whose compact target stands on a regular lattice of
    such targets (a wind farm's turbines, `scene.lattice`) is dropped, with a log line.
    """
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    hull = hull or HullSettings()
    with RasterReader(heatmap) as reader:
        info = reader.info
        image = None
        if scene is not None:
            RasterReader(scene).close()  # a scene that cannot be read is the caller's error
            try:
                image = CoPolarisedImage(scene, units, bands)
            except InputError as exc:  # a scene the model could read but boxes cannot use
                log.warning("boxes from the heat alone: %s", str(exc))
        if image is not None:
            if image.shape != (info.height, info.width):
                image.close()
                raise InputError(
                    f"the scene {scene} ({image.shape[1]}×{image.shape[0]}) is not on the "
                    f"heatmap's grid ({info.width}×{info.height})"
                )
        try:
            regions = hot_regions(reader, threshold, merge_gap, areas)
            mapper = footprint_mapper(info)
            search = _BoxSearch(reader, image, mapper, threshold, fraction, peak_distance, hull)
            with limited_block_cache(REGION_CACHE):
                for region in sorted(regions, key=lambda r: (r.y0, r.x0)):
                    search.region(region)
                if image is not None and lattice == "drop" and search.boxes:
                    search.boxes = drop_lattice_boxes(search.boxes, image, info)
        finally:
            if image is not None:
                image.close()
    return sorted(search.boxes, key=lambda b: -b.peak)


def _join_touching(
    ships: list[tuple[np.ndarray, Peak]], join: int
) -> list[tuple[np.ndarray, Peak]]:
    """Ships of different peaks whose pixels come within 2·`join` pixels of each other are one
    ship (two peaks of the heat on one hull), with the higher peak."""
    boxes = []
    for mask, _ in ships:
        rows, cols = np.nonzero(mask)
        boxes.append((rows.min(), cols.min(), rows.max(), cols.max()))
    group = list(range(len(ships)))
    reach = 2 * join + 1
    for i in range(len(ships)):
        for j in range(i):
            (ar0, ac0, ar1, ac1), (br0, bc0, br1, bc1) = boxes[i], boxes[j]
            if ar0 - reach > br1 or br0 - reach > ar1 or ac0 - reach > bc1 or bc0 - reach > ac1:
                continue
            near = (
                slice(max(min(ar0, br0) - reach, 0), max(ar1, br1) + reach + 1),
                slice(max(min(ac0, bc0) - reach, 0), max(ac1, bc1) + reach + 1),
            )
            # 8-adjacent after growing each by `join`, as pieces are in ship_components
            if (dilate(ships[i][0][near], join + 1) & dilate(ships[j][0][near], join)).any():
                old, new = group[i], group[j]
                group = [new if g == old else g for g in group]
    joined: dict[int, tuple[np.ndarray, Peak]] = {}
    for (mask, peak), g in zip(ships, group):
        if g in joined:
            other_mask, other_peak = joined[g]
            mask = mask | other_mask
            peak = max(peak, other_peak, key=lambda p: p.value)
        joined[g] = (mask, peak)
    return list(joined.values())


def _tile_on_grid(tags: dict[str, str]) -> int:
    """The heatmap's tile size in its own pixels (its tags; a tile worked at a coarser spacing
    covers more of them), `DEFAULT_MARGIN` when the tags do not say."""
    try:
        tile = float(tags["MSCAM_TILE"])
    except (KeyError, ValueError):
        return DEFAULT_MARGIN
    try:
        tile *= float(tags["MSCAM_WORKING_SPACING"]) / float(tags["MSCAM_PIXEL_SPACING"])
    except (KeyError, ValueError, ZeroDivisionError):
        pass
    return max(MIN_MARGIN, math.ceil(tile))


class _BoxSearch:
    """The boxes of one heatmap, a hot region at a time."""

    def __init__(self, reader, image, mapper, threshold, fraction, distance, hull) -> None:
        self.reader, self.image, self.mapper = reader, image, mapper
        self.threshold, self.fraction, self.distance, self.hull = (
            threshold,
            fraction,
            distance,
            hull,
        )
        self.margin = _tile_on_grid(reader.info.dataset_metadata or {})
        self.frame = GroundFrame(mapper)
        self.pixel_area = None
        if mapper is not None:
            self.pixel_area = ring_area_m2(mapper.boxes_to_map([(0, 0, 0, 0)])[0], mapper.crs_wkt)
        self.boxes: list[Box] = []
        self.claimed: set[int] = set()  # scene pixels already in a box (windows overlap)

    def region(self, region: _Region) -> None:
        info = self.reader.info
        margin = min(MIN_MARGIN, self.margin)
        while True:
            x0, y0 = max(region.x0 - margin, 0), max(region.y0 - margin, 0)
            x1 = min(region.x1 + margin + 1, info.width)
            y1 = min(region.y1 + margin + 1, info.height)
            heat = self.reader.read(x0, y0, x1 - x0, y1 - y0, bands=[1])[0]
            labels, peaks = grow_peaks(heat, self.threshold, self.fraction, self.distance)
            own = {
                k: p
                for k, p in peaks.items()
                if region.x0 <= x0 + p.col <= region.x1 and region.y0 <= y0 + p.row <= region.y1
            }
            # A region cut by the window's edge (not the raster's) is read again, wider.
            edges = [labels[0] if y0 > 0 else (), labels[-1] if y1 < info.height else ()]
            edges += [labels[:, 0] if x0 > 0 else (), labels[:, -1] if x1 < info.width else ()]
            cut = set(np.concatenate([np.asarray(e, np.int64) for e in edges]).tolist())
            if not own or margin >= self.margin or not cut & set(own):
                break
            margin *= 2
        if not own:
            return
        db = None if self.image is None else self.image.read_db(x0, y0, x1 - x0, y1 - y0)
        hot = (labels > 0) | (np.nan_to_num(heat, nan=0.0) >= self.threshold)
        ships: list[tuple[np.ndarray, Peak]] = []
        for label, peak in own.items():
            grown = labels == label
            found = None if db is None else self._ships(db, grown, hot)
            if found is None:
                self._add(grown, heat, peak, x0, y0, "heat")
            else:
                # nothing bright there (an empty list): hot, but no ship on the sea to box
                ships += self._hot_ships(found, heat, peak)
        for mask, peak in _join_touching(ships, self.hull.join):
            self._add(mask, heat, peak, x0, y0, "image")

    def _ships(self, db: np.ndarray, grown: np.ndarray, hot: np.ndarray) -> list[np.ndarray] | None:
        """`ship_components` on the part of the window around the region that it looks at."""
        rows, cols = np.nonzero(grown)
        pad = self.hull.guard + self.hull.ring + self.hull.search + self.hull.join + 1
        near = (
            slice(max(rows.min() - pad, 0), rows.max() + pad + 1),
            slice(max(cols.min() - pad, 0), cols.max() + pad + 1),
        )
        found = ship_components(db[near], grown[near], hot[near], self.hull)
        if found is None:
            return None
        ships = []
        for part in found:
            ship = np.zeros(grown.shape, bool)
            ship[near] = part
            ships.append(ship)
        return ships

    def _hot_ships(
        self, found: list[np.ndarray], heat: np.ndarray, peak: Peak
    ) -> list[tuple[np.ndarray, Peak]]:
        """A peak's ships with the peak each box reports: the peak itself for the ship with the
        most heat on it; another ship must be hot itself (its own heat ≥ threshold)."""
        if not found:
            return []
        primary = int(np.argmax([float(np.nansum(heat[ship])) for ship in found]))
        ships = [(found[primary], peak)]
        for k, ship in enumerate(found):
            values = np.where(ship, np.nan_to_num(heat, nan=-np.inf), -np.inf)
            r, c = np.unravel_index(int(np.argmax(values)), values.shape)
            if k != primary and values[r, c] >= self.threshold:
                ships.append((ship, Peak(float(values[r, c]), int(r), int(c))))
        return ships

    def _add(
        self, mask: np.ndarray, heat: np.ndarray, peak: Peak, x0: int, y0: int, fit: str
    ) -> None:
        rows, cols = np.nonzero(mask)
        width = self.reader.info.width
        pixels = set(((rows + y0) * width + cols + x0).tolist())
        if pixels & self.claimed:
            return  # the same target, seen from a neighbouring region's window
        self.claimed |= pixels
        bx0, by0, bx1, by1 = (
            int(cols.min()) + x0,
            int(rows.min()) + y0,
            int(cols.max()) + x0,
            int(rows.max()) + y0,
        )
        if self.mapper is None:
            ring = ((bx0, by0), (bx1 + 1, by0), (bx1 + 1, by1 + 1), (bx0, by1 + 1), (bx0, by0))
        else:
            ring = tuple(self.mapper.boxes_to_map([(bx0, by0, bx1, by1)])[0])
        shape = oriented_box(rows + y0, cols + x0, self.frame) if fit == "image" else None
        metric = shape is not None and self.frame.metric
        values = heat[mask]
        self.boxes.append(
            Box(
                bx0,
                by0,
                bx1,
                by1,
                peak=peak.value,
                mean=float(np.nanmean(values)) if np.isfinite(values).any() else 0.0,
                pixels=len(pixels),
                peak_xy=(peak.col + x0, peak.row + y0),
                ring=tuple((float(x), float(y)) for x, y in ring),
                area_m2=None if self.pixel_area is None else self.pixel_area * len(pixels),
                fit=fit,
                length_m=shape.length if metric else None,
                width_m=shape.width if metric else None,
                heading_deg=None if shape is None else shape.heading_deg,
            )
        )
