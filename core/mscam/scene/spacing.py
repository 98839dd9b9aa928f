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

__all__ = [
    "DetailProbe",
    "PixelSpacing",
    "SceneDetail",
    "format_metres",
    "metres_per_unit",
    "resolved_spacing",
    "scene_detail",
    "scene_pixel_spacing",
    "speckle_correlation_px",
]


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


#: Correlation length (pixels) of speckle sampled at about its resolution, as products are:
#: 0.49–0.67 px measured on independent-look and Sentinel-1-like synthetic scenes at 3 and 10 m
#: (a 10 m scene warped to 3 m: 1.35 px nearest, 1.83 px bilinear).
SAMPLED_CORRELATION_PX = 0.55


def _box_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k × k box (k odd) around each pixel, edges extended."""
    pad = k // 2
    c = np.pad(values, ((pad + 1, pad), (pad + 1, pad)), mode="edge").cumsum(0).cumsum(1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def speckle_correlation_px(reader, band: int, grid: int = 4, size: int = 128) -> float | None:
    """How far (pixels) a band's speckle stays correlated: the lag at which the autocorrelation of
    its log-intensity fluctuations (texture removed by a 9 × 9 mean, bright targets clipped to 3
    robust sigmas) falls to 0.5, median over
    ``grid`` × ``grid`` windows of ``size`` pixels without nodata, along rows and columns.

    About 0.5–0.7 px for a product sampled at its resolution; a scene resampled finer than its
    resolution (a 10 m product warped to 3 m) stays correlated over as many pixels as it was
    enlarged (1.4–1.8 px for 3.3×). None when no window is usable (small, nodata, constant).
    """
    info = reader.info
    side = min(size, info.width, info.height)
    if side < 24:
        return None
    lengths: list[float] = []
    for fy in np.linspace(0.15, 0.85, grid):
        for fx in np.linspace(0.15, 0.85, grid):
            x0, y0 = int(fx * (info.width - side)), int(fy * (info.height - side))
            window = reader.read(x0, y0, side, side, bands=[band])[0].astype(np.float64)
            if not np.isfinite(window).all():
                continue
            if window.min() > 0:  # linear power, amplitude or DN; dB stays as it is
                window = np.log(window)
            fluctuation = (window - _box_mean(window, 9))[4:-4, 4:-4]
            # Ships and platforms are a few correlated outliers: clip them to 3 robust sigmas.
            spread = 1.4826 * float(np.median(np.abs(fluctuation - np.median(fluctuation))))
            fluctuation = np.clip(fluctuation, -3 * spread, 3 * spread)
            for axis in (0, 1):
                rho = [1.0]
                for lag in range(1, 8):
                    a = fluctuation[:-lag] if axis == 0 else fluctuation[:, :-lag]
                    b = fluctuation[lag:] if axis == 0 else fluctuation[:, lag:]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        rho.append(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
                if not all(math.isfinite(r) for r in rho):
                    continue
                below = next((lag for lag in range(1, 8) if rho[lag] < 0.5), None)
                if below is None:
                    lengths.append(7.0)
                else:
                    lengths.append(
                        below - 1 + (rho[below - 1] - 0.5) / (rho[below - 1] - rho[below])
                    )
    return float(np.median(lengths)) if lengths else None


def resolved_spacing(spacing: float, correlation_px: float | None) -> float:
    """The ground detail a scene holds (metres): its pixel spacing, or more where its speckle is
    correlated over more pixels than a product sampled at its resolution
    (:data:`SAMPLED_CORRELATION_PX`), i.e. where it was resampled finer than it was imaged."""
    if correlation_px is None:
        return spacing
    return spacing * max(1.0, correlation_px / SAMPLED_CORRELATION_PX)


#: A scene whose speckle says it holds at least this many times coarser detail than its pixels
#: was resampled finer than it was imaged (a 10 m product warped to 3 m: 2.5–3.3×).
OVERSAMPLED_FACTOR = 1.5


@dataclass(frozen=True)
class SceneDetail:
    """What a scene's pixels hold: their spacing (metres, the finer axis), the speckle's
    correlation length (pixels, None when not measured) and the ground detail that implies."""

    spacing: float
    correlation_px: float | None
    detail: float

    @property
    def oversampled(self) -> bool:
        """Resampled finer than it was imaged: decimate it back, do not average it again."""
        return self.detail >= OVERSAMPLED_FACTOR * self.spacing


def scene_detail(reader, band: int, spacing: float | None) -> SceneDetail | None:
    """:class:`SceneDetail` of band ``band`` of ``reader``'s raster at ``spacing`` metres
    (None without a spacing); the measure is logged when the scene is oversampled."""
    if spacing is None:
        return None
    correlation = speckle_correlation_px(reader, band)
    detail = SceneDetail(spacing, correlation, resolved_spacing(spacing, correlation))
    if detail.oversampled:
        log.info(
            "the scene's %s m pixels hold about %s m of detail (speckle correlated over %.2f px): "
            "it was resampled finer than it was imaged",
            format_metres(spacing),
            format_metres(detail.detail),
            correlation,
        )
    return detail


class DetailProbe:
    """A scene's pixel spacing (``pixel_spacing`` when the user gives it, else its
    georeferencing; the finer axis) and, measured once when first asked, the detail its
    co-polarised band holds (:func:`scene_detail`)."""

    def __init__(self, reader, bands=None, pixel_spacing: float | None = None) -> None:
        from mscam.models.select import CO_POL
        from mscam.radiometry.units import detect_band_roles

        self.reader = reader
        info = reader.info
        if pixel_spacing is None:
            found = scene_pixel_spacing(info)
            pixel_spacing = None if found is None else min(found.x, found.y)
        self.spacing = pixel_spacing
        roles = detect_band_roles(
            info.band_count, descriptions=info.descriptions, metadata=info.metadata, override=bands
        )
        co = [i for i, role in enumerate(roles) if role.upper() in CO_POL]
        self.band = co[0] + 1 if co else 1
        self._detail: list[SceneDetail | None] = []

    def detail(self) -> SceneDetail | None:
        if not self._detail:
            self._detail.append(scene_detail(self.reader, self.band, self.spacing))
        return self._detail[0]

    def oversampled(self) -> bool:
        detail = self.detail()
        return detail is not None and detail.oversampled
