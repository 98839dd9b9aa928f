"""Hot regions of a heatmap: the 8-connected regions of ``heat ≥ threshold``, merged when near.

GDAL's polygonizer runs on the mask ``heat ≥ threshold`` (8-connected), streamed a strip of rows at
a time, so a ship across a tile seam is one region and no whole-scene label image is ever held in
memory; told where the heat is (the run's hot tiles), it reads only those windows. Regions whose
boxes come within ``merge_gap`` pixels are merged, to be examined together by
`mscam.scene.localize`, which grows the peaks and fits the boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mscam.scene.raster import RasterReader, limited_block_cache, using_gdal

STRIP_ROWS = 512


def _threshold_mask(heat_band, mask_band, threshold: float) -> None:
    height = heat_band.YSize
    for y0 in range(0, height, STRIP_ROWS):
        rows = heat_band.ReadAsArray(0, y0, heat_band.XSize, min(STRIP_ROWS, height - y0))
        mask_band.WriteArray((rows >= threshold).astype(np.uint8), 0, y0)


@dataclass
class _Region:
    """A region's pixel box (inclusive) and the sums its statistics need."""

    x0: int
    y0: int
    x1: int
    y1: int
    peak: float
    total: float
    pixels: int
    peak_xy: tuple[int, int]

    def near(self, other: _Region, gap: int) -> bool:
        return (
            self.x0 - gap <= other.x1
            and other.x0 - gap <= self.x1
            and self.y0 - gap <= other.y1
            and other.y0 - gap <= self.y1
        )

    def absorb(self, other: _Region) -> None:
        if other.peak > self.peak:
            self.peak, self.peak_xy = other.peak, other.peak_xy
        self.x0, self.y0 = min(self.x0, other.x0), min(self.y0, other.y0)
        self.x1, self.y1 = max(self.x1, other.x1), max(self.y1, other.y1)
        self.total += other.total
        self.pixels += other.pixels


def merge_regions(regions: list[_Region], gap: int) -> list[_Region]:
    """Merge regions whose boxes come within `gap` pixels of each other, until none do.

    An image-gated CAM can split one ship into several bright blobs a few pixels apart; an analyst
    wants one box. Candidate pairs come from a coarse grid, so a scene with thousands of regions
    does not cost n² comparisons.
    """
    if gap < 0 or len(regions) < 2:
        return regions
    merged = True
    while merged:
        merged = False
        cell = 64 + gap
        grid: dict[tuple[int, int], list[int]] = {}
        for index, r in enumerate(regions):
            for cy in range((r.y0 - gap) // cell, (r.y1 + gap) // cell + 1):
                for cx in range((r.x0 - gap) // cell, (r.x1 + gap) // cell + 1):
                    grid.setdefault((cx, cy), []).append(index)
        alive = [True] * len(regions)
        for index, r in enumerate(regions):
            if not alive[index]:
                continue
            for cy in range((r.y0 - gap) // cell, (r.y1 + gap) // cell + 1):
                for cx in range((r.x0 - gap) // cell, (r.x1 + gap) // cell + 1):
                    for other in grid.get((cx, cy), ()):
                        if other != index and alive[other] and r.near(regions[other], gap):
                            r.absorb(regions[other])
                            alive[other] = False
                            merged = True
        regions = [r for r, keep in zip(regions, alive) if keep]
    return regions


#: The largest window (pixels) `hot_regions` reads at once when it is told where the heat is;
#: a larger cluster of hot areas falls back to the streaming pass over the whole heatmap.
MAX_AREA_PIXELS = 2**22

Area = tuple[int, int, int, int]  # pixel window x0, y0, x1, y1 (end exclusive)


#: Side (pixels) of the buckets `area_windows` files the windows in: a few tiles each.
AREA_BUCKET = 256


def area_windows(areas: Sequence[Area], width: int, height: int, gap: int) -> list[Area]:
    """Disjoint windows covering `areas` (clipped to the raster), areas that overlap or come
    within `gap` pixels in one window, so no region of the heat is split between two."""
    windows = [
        (max(x0, 0), max(y0, 0), min(x1, width), min(y1, height))
        for x0, y0, x1, y1 in areas
        if x1 > 0 and y1 > 0 and x0 < width and y0 < height
    ]
    while True:  # a merged window can reach a third one: until none touch
        merged = _join_touching_windows(windows, gap)
        if len(merged) == len(windows):
            return sorted(merged)
        windows = merged


def _join_touching_windows(windows: list[Area], gap: int) -> list[Area]:
    """The bounding windows of the groups of `windows` that touch within `gap`, transitively.

    Windows are filed in buckets of `AREA_BUCKET` pixels by their extent grown by `gap` on the
    low side: two windows touch only if those extents overlap, and then they share a bucket; so
    only windows of one bucket are compared (linear in the windows, not quadratic)."""
    parent = list(range(len(windows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    buckets: dict[tuple[int, int], list[int]] = {}
    for i, (x0, y0, x1, y1) in enumerate(windows):
        for by in range((y0 - gap) // AREA_BUCKET, y1 // AREA_BUCKET + 1):
            for bx in range((x0 - gap) // AREA_BUCKET, x1 // AREA_BUCKET + 1):
                buckets.setdefault((bx, by), []).append(i)
    for members in buckets.values():
        for k, i in enumerate(members):
            ax0, ay0, ax1, ay1 = windows[i]
            for j in members[k + 1 :]:
                bx0, by0, bx1, by1 = windows[j]
                if ax0 - gap <= bx1 and bx0 - gap <= ax1 and ay0 - gap <= by1 and by0 - gap <= ay1:
                    parent[root(j)] = root(i)
    joined: dict[int, list[int]] = {}
    for i, (x0, y0, x1, y1) in enumerate(windows):
        w = joined.setdefault(root(i), [x0, y0, x1, y1])
        w[:] = [min(w[0], x0), min(w[1], y0), max(w[2], x1), max(w[3], y1)]
    return [(w[0], w[1], w[2], w[3]) for w in joined.values()]


def hot_regions(
    reader: RasterReader, threshold: float, merge_gap: int, areas: Sequence[Area] | None = None
) -> list[_Region]:
    """The 8-connected regions of ``heat ≥ threshold`` (pixel boxes and pixel counts), merged
    when their boxes come within `merge_gap` pixels.

    `areas`: pixel windows outside which the heat is known to be below the threshold (the hot
    tiles of the run that made it): only those are read, not the whole heatmap.
    """
    if areas is not None:
        info = reader.info
        windows = area_windows(areas, info.width, info.height, max(merge_gap, 0) + 1)
        if all((x1 - x0) * (y1 - y0) <= MAX_AREA_PIXELS for x0, y0, x1, y1 in windows):
            regions = []
            for window in windows:
                regions += _window_regions(reader, threshold, window)
            return merge_regions(regions, merge_gap)
    with using_gdal() as gdal:
        from osgeo import ogr

        heat_band = reader.dataset.GetRasterBand(1)
        width, height = reader.info.width, reader.info.height
        # A compressed in-memory mask: mostly zeros, so small even for a whole GRD scene.
        mask_path = f"/vsimem/mscam-mask-{id(reader):x}.tif"
        mask_ds = gdal.GetDriverByName("GTiff").Create(
            mask_path, width, height, 1, gdal.GDT_Byte, ["TILED=YES", "COMPRESS=DEFLATE"]
        )
        mask_band = mask_ds.GetRasterBand(1)
        # One pass over the heatmap reuses no block; the polygonizer reads the mask a scanline at
        # a time and needs its current block row cached. A few of those, no more: a larger
        # cache only fills with heatmap blocks read once (+58 MiB on an 8192² scene).
        mask_block_row = mask_band.GetBlockSize()[1] * width  # bytes
        try:
            with limited_block_cache(max(16 * 2**20, 4 * mask_block_row)):
                _threshold_mask(heat_band, mask_band, threshold)
                polygons = ogr.GetDriverByName("Memory").CreateDataSource("regions")
                layer = polygons.CreateLayer("regions", geom_type=ogr.wkbPolygon)
                layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
                # No geotransform on the mask: polygons come out in pixel coordinates.
                gdal.Polygonize(mask_band, mask_band, layer, 0, ["8CONNECTED=8"])
                regions = [_region(feature.GetGeometryRef()) for feature in layer]
        finally:
            mask_ds = None
            gdal.Unlink(mask_path)
    return merge_regions(regions, merge_gap)


def _window_regions(reader: RasterReader, threshold: float, window: Area) -> list[_Region]:
    """`hot_regions` within one pixel window, read at once."""
    x0, y0, x1, y1 = window
    with using_gdal() as gdal:
        from osgeo import ogr

        heat = reader.dataset.GetRasterBand(1).ReadAsArray(x0, y0, x1 - x0, y1 - y0)
        if not (heat >= threshold).any():
            return []
        mask_ds = gdal.GetDriverByName("MEM").Create("", x1 - x0, y1 - y0, 1, gdal.GDT_Byte)
        mask_band = mask_ds.GetRasterBand(1)
        mask_band.WriteArray((heat >= threshold).astype(np.uint8))
        polygons = ogr.GetDriverByName("Memory").CreateDataSource("regions")
        layer = polygons.CreateLayer("regions", geom_type=ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
        gdal.Polygonize(mask_band, mask_band, layer, 0, ["8CONNECTED=8"])
        regions = [_region(feature.GetGeometryRef(), x0, y0) for feature in layer]
        mask_ds = None
    return regions


def _region(geometry, dx: int = 0, dy: int = 0) -> _Region:
    """A polygonized region's pixel box and pixel count (its area: the polygon follows pixel
    edges). Its heat is read later, with the window around it."""
    minx, maxx, miny, maxy = geometry.GetEnvelope()
    x0, y0, x1, y1 = round(minx) + dx, round(miny) + dy, round(maxx) - 1 + dx, round(maxy) - 1 + dy
    return _Region(x0, y0, x1, y1, 0.0, 0.0, round(geometry.GetArea()), (x0, y0))
