"""Localisation boxes from a heatmap: threshold, connected regions, one box per region.

The regions come from GDAL's own polygonizer on the thresholded heatmap (8-connected), which
streams through the raster a row at a time: a ship across a tile seam is one region because the
heatmap has no seams, and no whole-scene label image is ever held in memory. The mask is written a
strip of rows at a time into a temporary compressed GTiff. Each region's statistics are read from
the heatmap window under its bounding box only.

A box is the region's tight pixel box, turned into a polygon in the input's CRS through GDAL's
transformer (geotransform, or the GCPs where there is none).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mscam.errors import InputError
from mscam.scene.raster import (
    PixelMapper,
    RasterInfo,
    RasterReader,
    limited_block_cache,
    using_gdal,
)

log = logging.getLogger(__name__)

STRIP_ROWS = 512


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

    def record(self, **fields: object) -> dict[str, object]:
        return {
            "ring": self.ring,
            "peak": self.peak,
            "mean": self.mean,
            "area_m2": self.area_m2,
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


def find_boxes(
    heatmap: str | Path, threshold: float, *, min_pixels: int = 1, merge_gap: int = 3
) -> list[Box]:
    """Boxes of the 8-connected regions where the heatmap is ≥ `threshold` (nodata excluded),
    strongest first. Regions whose boxes come within `merge_gap` pixels of each other are one box
    (a negative gap keeps every region on its own)."""
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    with RasterReader(heatmap) as reader, using_gdal() as gdal:
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
                regions = [_region(reader, feature.GetGeometryRef()) for feature in layer]
        finally:
            mask_ds = None
            gdal.Unlink(mask_path)
        mapper = footprint_mapper(reader.info)
    boxes = [_box(r, mapper) for r in merge_regions(regions, merge_gap) if r.pixels >= min_pixels]
    return sorted(boxes, key=lambda b: -b.peak)


def _region(reader: RasterReader, geometry) -> _Region:
    """One polygonized region's pixel box and statistics, from the heatmap under its box."""
    from osgeo import gdal, ogr

    minx, maxx, miny, maxy = geometry.GetEnvelope()
    x0, y0, x1, y1 = round(minx), round(miny), round(maxx) - 1, round(maxy) - 1
    w, h = x1 - x0 + 1, y1 - y0 + 1
    heat = reader.read(x0, y0, w, h, bands=[1], mask_nodata=True)[0]
    inside_ds = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
    inside_ds.SetGeoTransform((x0, 1, 0, y0, 0, 1))
    region = ogr.GetDriverByName("Memory").CreateDataSource("one")
    layer = region.CreateLayer("one", geom_type=ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(geometry)
    layer.CreateFeature(feature)
    gdal.RasterizeLayer(inside_ds, [1], layer, burn_values=[1])
    inside = inside_ds.GetRasterBand(1).ReadAsArray().astype(bool) & np.isfinite(heat)
    values = heat[inside].astype(np.float64)
    peak_row, peak_col = np.unravel_index(np.argmax(np.where(inside, heat, -np.inf)), heat.shape)
    return _Region(
        x0,
        y0,
        x1,
        y1,
        float(values.max()) if values.size else 0.0,
        float(values.sum()),
        int(values.size),
        (x0 + int(peak_col), y0 + int(peak_row)),
    )


def _box(r: _Region, mapper: PixelMapper | None) -> Box:
    """The region as a Box: footprint in the raster's CRS (pixels without one), area in m²."""
    if mapper is None:
        ring = (
            (r.x0, r.y0),
            (r.x1 + 1, r.y0),
            (r.x1 + 1, r.y1 + 1),
            (r.x0, r.y1 + 1),
            (r.x0, r.y0),
        )
        area = None
    else:
        ring = tuple(mapper.boxes_to_map([(r.x0, r.y0, r.x1, r.y1)])[0])
        pixel_area = ring_area_m2(
            mapper.boxes_to_map([(r.x0, r.y0, r.x0, r.y0)])[0], mapper.crs_wkt
        )
        area = None if pixel_area is None else pixel_area * r.pixels
    return Box(
        r.x0,
        r.y0,
        r.x1,
        r.y1,
        peak=r.peak,
        mean=r.total / r.pixels if r.pixels else 0.0,
        pixels=r.pixels,
        peak_xy=r.peak_xy,
        ring=tuple((float(x), float(y)) for x, y in ring),
        area_m2=area,
    )
