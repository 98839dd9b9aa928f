"""A scene's ground pixel spacing in metres, from its georeferencing.

- Projected CRS with a geotransform: the lengths of the geotransform's column and row steps, in
  the CRS's linear unit times metres per unit. The projection's own scale error (0.9996 at a UTM
  central meridian, 1/cos φ in Web Mercator) is not corrected: a "10 m" grid is 10 m.
- Geographic CRS with a geotransform: the steps in degrees, turned into metres on the CRS's
  ellipsoid at the scene's centre latitude (meridional and prime-vertical radii of curvature).
- GCPs and no geotransform (SAR GRD products): the GCPs' ground positions in local metres
  (geographic GCPs as above, at their mean latitude), a least-squares affine fit of those against
  pixel/line, and the lengths of its column and row steps: ground distance over pixel distance.

Rotated or sheared geotransforms work, since a step's length does not depend on its direction.
A raster without any of these (or whose CRS GDAL cannot read) has no known spacing: ``None``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from mscam.scene.raster import RasterInfo, using_gdal

log = logging.getLogger(__name__)

__all__ = ["PixelSpacing", "format_metres", "metres_per_unit", "scene_pixel_spacing"]


@dataclass(frozen=True)
class PixelSpacing:
    """Ground distance in metres between neighbouring pixel centres along a row and a column."""

    x: float  # one column step (along a row)
    y: float  # one row step (down a column)
    source: str  # how it was found: "geotransform", "gcps" or "user"

    def __str__(self) -> str:
        x, y = format_metres(self.x), format_metres(self.y)
        return x if x == y else f"{x},{y}"


def format_metres(value: float) -> str:
    """A spacing as the tags write it: metres to the centimetre, e.g. ``"3.0"``, ``"9.99"``."""
    return str(round(float(value), 2))


def metres_per_unit(srs, latitude: float = 0.0) -> tuple[float, float]:
    """Metres per CRS unit eastwards and northwards: the linear unit of a projected CRS, or, for a
    geographic one, the length of one angular unit on its ellipsoid at ``latitude`` (degrees)."""
    if srs.IsProjected() or not srs.IsGeographic():
        unit = srs.GetLinearUnits()
        return unit, unit
    a = srs.GetSemiMajor()
    inverse_flattening = srs.GetInvFlattening()
    f = 1.0 / inverse_flattening if inverse_flattening else 0.0
    e2 = f * (2.0 - f)
    phi = math.radians(latitude)
    w = 1.0 - e2 * math.sin(phi) ** 2
    meridional = a * (1.0 - e2) / w**1.5  # radius of curvature along the meridian
    prime_vertical = a / math.sqrt(w)  # … and across it; × cos φ along the parallel
    radians = srs.GetAngularUnits()  # radians per angular unit (π/180 for degrees)
    return prime_vertical * math.cos(phi) * radians, meridional * radians


def _srs(wkt: str):
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    # GDAL's geotransforms and GCPs are x = easting/longitude, y = northing/latitude.
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _step_lengths(steps: np.ndarray, per_unit: tuple[float, float]) -> tuple[float, float]:
    """Lengths in metres of the column step (dx, dy) = steps[0] and the row step = steps[1]."""
    east, north = per_unit
    return (
        math.hypot(steps[0, 0] * east, steps[0, 1] * north),
        math.hypot(steps[1, 0] * east, steps[1, 1] * north),
    )


def _from_geotransform(info: RasterInfo, srs) -> tuple[float, float]:
    gt = info.geotransform
    steps = np.array([[gt[1], gt[4]], [gt[2], gt[5]]], np.float64)
    latitude = gt[3] + gt[4] * info.width / 2 + gt[5] * info.height / 2  # used if geographic
    return _step_lengths(steps, metres_per_unit(srs, latitude))


def _from_gcps(info: RasterInfo, srs) -> tuple[float, float]:
    points = np.array([(g.pixel, g.line, g.x, g.y) for g in info.gcps], np.float64)
    ground = points[:, 2:] - points[:, 2:].mean(axis=0)  # local: keeps the fit well conditioned
    per_unit = metres_per_unit(srs, float(points[:, 3].mean()))
    design = np.column_stack([points[:, 0], points[:, 1], np.ones(len(points))])
    affine, _, rank, _ = np.linalg.lstsq(design, ground, rcond=None)
    if rank < 3:
        raise ValueError("the GCPs lie on a line")
    return _step_lengths(affine[:2], per_unit)


def scene_pixel_spacing(info: RasterInfo) -> PixelSpacing | None:
    """The raster's pixel spacing in metres, or None when its georeferencing does not say."""
    if info.geotransform is not None and info.projection:
        source, wkt, measure = "geotransform", info.projection, _from_geotransform
    elif info.geotransform is None and len(info.gcps) >= 3 and info.gcp_projection:
        source, wkt, measure = "gcps", info.gcp_projection, _from_gcps
    else:
        return None
    try:
        with using_gdal():
            x, y = measure(info, _srs(wkt))
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        log.warning("cannot tell the pixel spacing of %s: %s", info.path, exc)
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    return PixelSpacing(x, y, source)
