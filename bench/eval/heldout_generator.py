"""Held-out SAR scenes for judging mscam: a generator that shares no code with ``mscam.sar``.

Written from the physics with numpy and GDAL only, and on purpose with other habits than mscam's
own synthesis, so that a model tuned to that synthesis cannot pass by memory:

- sea σ0 from a CMOD-like law: it falls with incidence across range (a random place in the
  swath, not the whole swath in one scene) and rises with wind speed, which varies in patches with
  low-wind slicks; the wind direction modulates it (upwind/crosswind);
- HH from VV through the Thompson polarisation ratio (HH darker at high incidence); cross-pol sea
  near the noise floor, whose own pattern (beam scalloping across range, ripple along azimuth) is
  visible in VH and HV;
- log-normal sea texture stretched along the wind, Gamma speckle with a random number of looks
  per scene;
- ships 25–300 m (flat length distribution), any heading: an incoherent, speckled hull (tapered
  bow) blurred by the resolution cell, plus a few coherent bright superstructure points imaged
  through a Kaiser-weighted sinc (the brightest with its full sidelobe cross on some ships);
  dark turbulent wakes behind some;
- non-ships: platforms (compact clusters of bright points), turbines on a grid, buoys;
- a coast with land cover (forest, crop parcels, bare ground, urban bright points, relief) and a
  harbour basin with quays, a jetty and moored ships alongside.

Truth stays outside the scene: :class:`HeldoutScene` carries it and the runner stores it as JSON.
A scene is a pure function of (kind, size, pixel spacing, seed) and :data:`GENERATOR_VERSION`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GENERATOR_VERSION = "hg1"
DN_SCALE = 600.0  #: DN = A·sqrt(σ0), the calibration constant mscam assumes by default
SWATH_KM = 250.0  #: Sentinel-1 IW swath width, to place a scene inside the incidence range
SWATH_INCIDENCE = (29.0, 46.0)
KAISER_BETA = 2.4  #: weighting of the processed spectrum (peak sidelobe about -18 dB)


@dataclass
class SceneObject:
    """One truth object: a ship (the target class) or a non-ship (platform, turbine, buoy)."""

    kind: str  #: "ship", "platform", "turbine" or "buoy"
    cx: float  #: centre, pixel coordinates (x right, y down, pixel centres at i + 0.5)
    cy: float
    length_m: float
    beam_m: float
    heading_deg: float  #: bow direction, clockwise from up (north for a north-up scene)
    corners_px: list[tuple[float, float]]
    moored: bool = False
    wake: bool = False
    sidelobes: bool = False
    peak_db: float = 0.0

    @property
    def bbox_px(self) -> tuple[float, float, float, float]:
        """Axis-aligned box of the oriented hull, half-open pixel coordinates (x0, y0, x1, y1)."""
        xs = [c[0] for c in self.corners_px]
        ys = [c[1] for c in self.corners_px]
        return (min(xs), min(ys), max(xs), max(ys))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cx": round(self.cx, 3),
            "cy": round(self.cy, 3),
            "length_m": round(self.length_m, 2),
            "beam_m": round(self.beam_m, 2),
            "heading_deg": round(self.heading_deg, 2),
            "corners_px": [[round(x, 3), round(y, 3)] for x, y in self.corners_px],
            "bbox_px": [round(v, 3) for v in self.bbox_px],
            "moored": self.moored,
            "wake": self.wake,
            "sidelobes": self.sidelobes,
            "peak_db": round(self.peak_db, 2),
        }


@dataclass
class HeldoutScene:
    """Linear σ0 per band (NaN = no data) on a regular grid, and its truth."""

    bands: dict[str, np.ndarray]
    pixel_m: float
    objects: list[SceneObject]
    meta: dict[str, Any] = field(default_factory=dict)
    land: np.ndarray | None = None  #: True on land (quays and the harbour's jetty included)

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.bands.values())).shape


# ---------------------------------------------------------------- random fields


def _smooth_field(
    shape: tuple[int, int],
    corr_px: float,
    rng: np.random.Generator,
    stretch: float = 1.0,
    angle_rad: float = 0.0,
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field with a Gaussian correlation of ``corr_px``.

    ``stretch`` > 1 lengthens the correlation along ``angle_rad`` (wind streaks). Large
    correlations are made on a coarse grid and interpolated: the field is smooth anyway.
    """
    h, w = shape
    factor = max(1, int(corr_px // 4))
    ch, cw = max(8, -(-h // factor) + 2), max(8, -(-w // factor) + 2)
    white = rng.standard_normal((ch, cw))
    fy = np.fft.fftfreq(ch)[:, None]
    fx = np.fft.rfftfreq(cw)[None, :]
    c = corr_px / factor
    along = fx * math.cos(angle_rad) + fy * math.sin(angle_rad)
    across = -fx * math.sin(angle_rad) + fy * math.cos(angle_rad)
    spectrum = np.exp(-2.0 * (math.pi * c) ** 2 * ((along * stretch) ** 2 + across**2))
    coarse = np.fft.irfft2(np.fft.rfft2(white) * spectrum, s=(ch, cw))
    coarse = (coarse - coarse.mean()) / (coarse.std() + 1e-12)
    if factor == 1:
        return coarse[:h, :w].astype(np.float32)
    return _bilinear(coarse, shape, factor).astype(np.float32)


def _bilinear(coarse: np.ndarray, shape: tuple[int, int], factor: int) -> np.ndarray:
    h, w = shape
    ys = (np.arange(h) + 0.5) / factor
    xs = (np.arange(w) + 0.5) / factor
    y0 = np.clip(ys.astype(int), 0, coarse.shape[0] - 2)
    x0 = np.clip(xs.astype(int), 0, coarse.shape[1] - 2)
    ty = (ys - y0)[:, None]
    tx = (xs - x0)[None, :]
    a = coarse[y0][:, x0]
    b = coarse[y0][:, x0 + 1]
    c = coarse[y0 + 1][:, x0]
    d = coarse[y0 + 1][:, x0 + 1]
    return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty


def _speckle(shape: tuple[int, int], looks: float, rng: np.random.Generator) -> np.ndarray:
    return rng.gamma(looks, 1.0 / looks, shape).astype(np.float32)


# ---------------------------------------------------------------- radiometry


def cmod_like_vv_db(incidence_deg: np.ndarray, wind_ms: np.ndarray, rel_dir_rad: float):
    """Sea VV σ0 (dB) from incidence, wind speed and wind direction relative to the look.

    Not CMOD5 itself but its shape: about -12 dB at 30° and -18 dB at 45° for 7 m/s crosswind,
    U^γ with γ growing with incidence, a sharp drop below ~2.5 m/s (no Bragg waves), and an
    upwind/crosswind modulation 1 + b1·cos φ + b2·cos 2φ.
    """
    theta = np.asarray(incidence_deg, dtype=np.float32)
    u = np.maximum(np.asarray(wind_ms, dtype=np.float32), 0.3)
    gamma = 1.5 + 0.035 * (theta - 30.0)
    db = -12.0 - 0.42 * (theta - 30.0) + 10.0 * gamma * np.log10(u / 7.0)
    db = db - 9.0 * np.clip(1.0 - u / 2.5, 0.0, 1.0)
    modulation = 1.0 + 0.12 * math.cos(rel_dir_rad) + 0.35 * math.cos(2 * rel_dir_rad)
    return db + 10.0 * math.log10(modulation / 1.35)


def polarisation_ratio_db(incidence_deg: np.ndarray) -> np.ndarray:
    """σ0_VV / σ0_HH of the sea (dB), Thompson et al. (1998) with α = 0.6."""
    t2 = np.tan(np.radians(incidence_deg)) ** 2
    return 10.0 * np.log10(((1 + 2 * t2) / (1 + 0.6 * t2)) ** 2)


def cross_pol_sea_db(wind_ms: np.ndarray) -> np.ndarray:
    """Sea VH σ0 (dB): about -31 dB at 7 m/s, rising weakly with wind, no incidence trend."""
    u = np.maximum(wind_ms, 0.5)
    return -31.0 + 12.0 * np.log10(u / 7.0)


@dataclass
class _Impulse:
    """Kaiser-weighted sinc, tabulated; ``width`` scales it to a -3 dB resolution in pixels."""

    table_x: np.ndarray
    table_y: np.ndarray
    width_1: float  # -3 dB width (intensity) for unit bandwidth

    def __call__(self, offset_px: np.ndarray, resolution_px: float) -> np.ndarray:
        u = np.abs(offset_px) * (self.width_1 / resolution_px)
        return np.interp(u, self.table_x, self.table_y, right=0.0)


def _make_impulse() -> _Impulse:
    freqs = np.linspace(-0.5, 0.5, 257)
    weights = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (2 * freqs) ** 2, 0, 1))) / np.i0(KAISER_BETA)
    x = np.linspace(0.0, 24.0, 4801)
    y = (weights[None, :] * np.cos(2 * np.pi * freqs[None, :] * x[:, None])).sum(1)
    y /= weights.sum()
    half = x[np.argmax(y**2 < 0.5)]
    return _Impulse(x, y, 2.0 * float(half))


IMPULSE = _make_impulse()


# ---------------------------------------------------------------- targets


def _corners(cx, cy, length_px, beam_px, heading_deg):
    h = math.radians(heading_deg)
    ax, ay = math.sin(h), -math.cos(h)  # bow direction
    bx, by = -ay, ax
    out = []
    for su, sv in ((0.5, 0.5), (0.5, -0.5), (-0.5, -0.5), (-0.5, 0.5)):
        out.append(
            (
                cx + su * length_px * ax + sv * beam_px * bx,
                cy + su * length_px * ay + sv * beam_px * by,
            )
        )
    return out


def _points_intensity(
    shape: tuple[int, int],
    x0: int,
    y0: int,
    xs: np.ndarray,
    ys: np.ndarray,
    amplitudes: np.ndarray,
    reach: np.ndarray,
    resolution: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Coherent sum of point scatterers imaged through the separable Kaiser-sinc response."""
    h, w = shape
    gx = x0 + np.arange(w) + 0.5
    gy = y0 + np.arange(h) + 0.5
    field_ = np.zeros(shape, dtype=np.complex128)
    phases = np.exp(2j * np.pi * rng.random(len(xs)))
    for x, y, a, r, p in zip(xs, ys, amplitudes, reach, phases):
        rx = IMPULSE(gx - x, resolution[0]) * (np.abs(gx - x) <= r)
        ry = IMPULSE(gy - y, resolution[1]) * (np.abs(gy - y) <= r)
        field_ += (a * p) * np.outer(ry, rx)
    return np.abs(field_) ** 2


def _hull_coverage(
    gx: np.ndarray, gy: np.ndarray, obj: SceneObject, pixel_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of each pixel covered by the hull (3×3 subsamples) and the along-hull coordinate."""
    length, beam = obj.length_m / pixel_m, obj.beam_m / pixel_m
    h = math.radians(obj.heading_deg)
    ax, ay = math.sin(h), -math.cos(h)
    cover = np.zeros((len(gy), len(gx)), dtype=np.float32)
    for oy in (-1 / 3, 0.0, 1 / 3):
        for ox in (-1 / 3, 0.0, 1 / 3):
            dx = gx[None, :] + ox - obj.cx
            dy = gy[:, None] + oy - obj.cy
            u = dx * ax + dy * ay
            v = -dx * ay + dy * ax
            rel = u / (0.5 * length + 1e-9)
            # pointed bow over the front quarter, a squarer stern
            taper = np.clip(1.0 - np.maximum(rel - 0.55, 0.0) * 1.9, 0.12, 1.0)
            cover += ((np.abs(u) <= 0.5 * length) & (np.abs(v) <= 0.5 * beam * taper)) / 9.0
    dx = gx[None, :] - obj.cx
    dy = gy[:, None] - obj.cy
    return cover, (dx * ax + dy * ay) / (0.5 * length + 1e-9)


def _blur3(img: np.ndarray, weight: float) -> np.ndarray:
    """Separable [w, 1, w] blur (normalised): the intensity response of the resolution cell."""
    out = img.copy()
    for axis in (0, 1):
        p = np.pad(out, [(1, 1) if a == axis else (0, 0) for a in (0, 1)])
        sl = [slice(None), slice(None)]
        sl[axis] = slice(0, -2)
        lo = p[tuple(sl)]
        sl[axis] = slice(2, None)
        hi = p[tuple(sl)]
        sl[axis] = slice(1, -1)
        out = (p[tuple(sl)] + weight * (lo + hi)) / (1 + 2 * weight)
    return out


@dataclass
class _Look:
    """How bright an object is per band: offsets (dB) from the co-pol levels."""

    hull_db: float
    points_db: np.ndarray
    xs: np.ndarray  # scatterer positions (pixels)
    ys: np.ndarray


def _ship_scatterers(obj: SceneObject, pixel_m: float, rng: np.random.Generator):
    length, beam = obj.length_m / pixel_m, obj.beam_m / pixel_m
    h = math.radians(obj.heading_deg)
    ax, ay = math.sin(h), -math.cos(h)
    n = 1 + round(obj.length_m / 35.0) + int(rng.poisson(1.0))
    kind = rng.random()
    if kind < 0.5:  # bridge aft (tankers, bulk carriers)
        u = rng.uniform(-0.45, -0.25, n)
    elif kind < 0.8:  # spread (container ships: stacks along the deck)
        u = rng.uniform(-0.45, 0.4, n)
    else:  # bridge forward (supply vessels, fishing boats)
        u = rng.uniform(0.05, 0.35, n)
    u[0] = rng.uniform(-0.45, 0.35)
    v = rng.uniform(-0.35, 0.35, n)
    xs = obj.cx + u * length * ax - v * beam * ay
    ys = obj.cy + u * length * ay + v * beam * ax
    return xs, ys


def render_objects(
    scene_bands: dict[str, np.ndarray],
    objects: list[SceneObject],
    pixel_m: float,
    resolution: tuple[float, float],
    looks: float,
    rng: np.random.Generator,
) -> None:
    """Add every object's intensity (speckled) to the linear σ0 bands, in place."""
    hgt, wid = next(iter(scene_bands.values())).shape
    # σ0 of a point target per pixel grows as the pixel shrinks (same RCS, smaller area)
    area_gain_db = 10.0 * math.log10((10.0 / pixel_m) ** 2) * 0.55
    for obj in objects:
        length_px = obj.length_m / pixel_m
        if obj.kind == "ship":
            xs, ys = _ship_scatterers(obj, pixel_m, rng)
            hull_db = rng.uniform(-5.0, 5.0) + 4.0 * math.log10(obj.length_m / 100.0)
            top = obj.peak_db
            pts = top - rng.uniform(2.0, 12.0, len(xs))
            pts[0] = top
        elif obj.kind == "platform":
            k = int(rng.integers(4, 10))
            r = 0.5 * length_px
            xs = obj.cx + rng.uniform(-r, r, k)
            ys = obj.cy + rng.uniform(-r, r, k)
            hull_db = rng.uniform(0.0, 8.0)
            pts = obj.peak_db - rng.uniform(0.0, 10.0, k)
            pts[0] = obj.peak_db
        else:  # turbine, buoy: one point
            xs, ys = np.array([obj.cx]), np.array([obj.cy])
            hull_db = -99.0
            pts = np.array([obj.peak_db])
        pts = pts + area_gain_db
        reach = np.full(len(xs), 2.5 * max(resolution))
        if obj.sidelobes:
            reach[0] = 18.0 * max(resolution)
        margin = math.ceil(reach.max()) + 2
        half = 0.5 * length_px + margin
        x0, x1 = math.floor(obj.cx - half), math.ceil(obj.cx + half)
        y0, y1 = math.floor(obj.cy - half), math.ceil(obj.cy + half)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, wid), min(y1, hgt)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        gx = np.arange(cx0, cx1) + 0.5
        gy = np.arange(cy0, cy1) + 0.5
        if obj.kind in ("ship", "platform"):
            if obj.kind == "ship":
                cover, along = _hull_coverage(gx, gy, obj, pixel_m)
                # deck structure: brightness varies along the hull
                profile = 1.0 + 0.6 * np.sin(along * rng.uniform(3, 9) + rng.uniform(0, 6.3))
                cover = cover * np.clip(profile, 0.2, None)
            else:
                dx = np.abs(gx[None, :] - obj.cx)
                dy = np.abs(gy[:, None] - obj.cy)
                cover = ((dx <= 0.5 * length_px) & (dy <= 0.5 * length_px)).astype(np.float32)
        else:
            cover = None
        for band, img in scene_bands.items():
            cross = band in ("VH", "HV")
            offset = rng.uniform(5.0, 10.0) if cross else 0.0
            if band == "HH":  # ships: double bounce often stronger in HH
                offset = -rng.uniform(-3.0, 2.0)
            patch = np.zeros((cy1 - cy0, cx1 - cx0), dtype=np.float64)
            if cover is not None:
                hull = cover * 10 ** ((hull_db - offset) / 10.0)
                hull = _blur3(hull, 0.35 * min(resolution) / 2.0)
                patch += hull * rng.gamma(looks, 1.0 / looks, hull.shape)
            amp = np.sqrt(
                10 ** ((pts - offset - (rng.uniform(0, 4, len(pts)) if cross else 0)) / 10)
            )
            patch += _points_intensity(patch.shape, cx0, cy0, xs, ys, amp, reach, resolution, rng)
            img[cy0:cy1, cx0:cx1] += patch.astype(np.float32)


def _wake_attenuation(
    shape: tuple[int, int], obj: SceneObject, pixel_m: float, rng: np.random.Generator
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """A dark turbulent wake behind a moving ship: factor (< 1) on the sea's mean σ0."""
    length_px = obj.length_m / pixel_m
    wake_px = length_px * rng.uniform(3.0, 9.0)
    width_px = max(1.5, obj.beam_m / pixel_m * rng.uniform(1.0, 2.0))
    h = math.radians(obj.heading_deg)
    bx, by = -math.sin(h), math.cos(h)  # astern
    sx, sy = obj.cx + bx * 0.5 * length_px, obj.cy + by * 0.5 * length_px
    ex, ey = sx + bx * wake_px, sy + by * wake_px
    pad = 3 * width_px + wake_px * 0.06 + 3
    x0 = int(max(0, math.floor(min(sx, ex) - pad)))
    x1 = int(min(shape[1], math.ceil(max(sx, ex) + pad)))
    y0 = int(max(0, math.floor(min(sy, ey) - pad)))
    y1 = int(min(shape[0], math.ceil(max(sy, ey) + pad)))
    if x1 <= x0 or y1 <= y0:
        return None
    gx = np.arange(x0, x1)[None, :] + 0.5 - sx
    gy = np.arange(y0, y1)[:, None] + 0.5 - sy
    along = gx * bx + gy * by
    across = -gx * by + gy * bx
    spread = width_px + 0.03 * np.clip(along, 0, None)  # turbulence widens slowly
    depth = rng.uniform(0.5, 0.85)
    strength = np.exp(-0.5 * (across / spread) ** 2) * np.exp(-np.clip(along, 0, None) / wake_px)
    strength *= (along > -1.0) & (along < wake_px)
    factor = 1.0 - depth * strength
    return (slice(y0, y1), slice(x0, x1)), factor.astype(np.float32)


# ---------------------------------------------------------------- layout


@dataclass(frozen=True)
class Recipe:
    """What one held-out scene contains."""

    kind: str  #: "open", "coastal" or "empty"
    size: int
    pixel_m: float = 10.0
    n_ships: int = 0
    n_platforms: int = 0
    n_buoys: int = 0
    turbine_grid: tuple[int, int] = (0, 0)
    bands: tuple[str, ...] = ("VV", "VH")
    incidence_range: tuple[float, float] = SWATH_INCIDENCE
    resolution_m: tuple[float, float] = (20.0, 22.0)
    looks_range: tuple[float, float] = (3.0, 6.0)
    wind_range: tuple[float, float] = (3.5, 11.0)
    nodata_edges: bool = False


def _free(occupied: list[tuple[float, float, float]], x: float, y: float, r: float) -> bool:
    return all((x - ox) ** 2 + (y - oy) ** 2 > (r + orad) ** 2 for ox, oy, orad in occupied)


def _place(
    rng: np.random.Generator,
    water: np.ndarray,
    occupied: list[tuple[float, float, float]],
    radius_px: float,
    border: float,
    tries: int = 400,
) -> tuple[float, float] | None:
    h, w = water.shape
    for _ in range(tries):
        x = rng.uniform(border + radius_px, w - border - radius_px)
        y = rng.uniform(border + radius_px, h - border - radius_px)
        if not _free(occupied, x, y, radius_px):
            continue
        r = math.ceil(radius_px) + 3
        iy, ix = int(y), int(x)
        if not water[max(0, iy - r) : iy + r + 1, max(0, ix - r) : ix + r + 1].all():
            continue
        return x, y
    return None


def _ship(rng, x, y, length_m, pixel_m, heading=None, moored=False) -> SceneObject:
    beam_m = length_m / rng.uniform(5.5, 8.0)
    heading = rng.uniform(0.0, 360.0) if heading is None else heading
    peak = float(np.clip(rng.uniform(8.0, 22.0) + 8.0 * math.log10(length_m / 100.0), 2.0, 32.0))
    return SceneObject(
        "ship",
        x,
        y,
        length_m,
        beam_m,
        heading,
        _corners(x, y, length_m / pixel_m, beam_m / pixel_m, heading),
        moored=moored,
        wake=(not moored) and rng.random() < 0.4,
        sidelobes=peak >= 15.0 and rng.random() < 0.6,
        peak_db=peak,
    )


def _compact(rng, kind, x, y, size_m, pixel_m, peak_db, sidelobes) -> SceneObject:
    s = size_m / pixel_m
    return SceneObject(
        kind,
        x,
        y,
        size_m,
        size_m,
        0.0,
        _corners(x, y, s, s, 0.0),
        sidelobes=sidelobes,
        peak_db=peak_db,
    )


def _coast(shape, rng, pixel_m) -> tuple[np.ndarray, dict[str, Any]]:
    """Land mask (True = land): land on the east, a fractal shoreline, bays and islets."""
    h, w = shape
    base = rng.uniform(0.58, 0.68) * w
    line = _smooth_field((h, 1), 80.0 * 10 / pixel_m, rng)[:, 0] * 0.07 * w
    line += _smooth_field((h, 1), 15.0 * 10 / pixel_m, rng)[:, 0] * 0.012 * w
    x = np.arange(w)[None, :]
    rough = _smooth_field(shape, 25.0 * 10 / pixel_m, rng) * 0.03 * w
    land = (x - (base + line[:, None])) + rough > 0
    islets = _smooth_field(shape, 12.0 * 10 / pixel_m, rng)
    land |= (islets > 3.1) & (x > 0.3 * w)
    return land, {"coast_base_px": float(base)}


def _harbour(land: np.ndarray, rng: np.random.Generator, pixel_m: float):
    """Cut a basin with quays and a central jetty into the coast; return quay lines and berths."""
    h, _w = land.shape
    s = 10.0 / pixel_m
    basin_len = int(rng.uniform(120, 150) * s)  # 1.2–1.5 km
    basin_wid = int(rng.uniform(60, 72) * s)
    yc = int(rng.uniform(0.3, 0.7) * h)
    y0, y1 = yc - basin_wid // 2, yc + basin_wid // 2
    rows = land[max(0, y0 - 40) : y1 + 40]
    coast_x = int(np.argmax(rows, axis=1).min())
    x0 = coast_x - int(10 * s)
    x1 = x0 + basin_len
    land[max(0, y0 - int(30 * s)) : y1 + int(30 * s), x0 : x1 + int(40 * s)] = True
    land[y0 - int(30 * s) : y1 + int(30 * s), x0 - int(90 * s) : x0] = False  # approach
    land[y0:y1, x0:x1] = False
    jetty_w = max(2, int(4 * s))
    jetty_len = int(basin_len * rng.uniform(0.5, 0.7))
    land[yc - jetty_w // 2 : yc + (jetty_w + 1) // 2, x1 - jetty_len : x1] = True
    quays = [
        (y0 - 1, x0, x1, +1),  # north quay: face at row y0, ships below
        (y1, x0, x1, -1),  # south quay: face at row y1, ships above
        (yc - jetty_w // 2 - 1, x1 - jetty_len, x1, -1),  # jetty north face, ships above
        (yc + (jetty_w + 1) // 2, x1 - jetty_len, x1, +1),  # jetty south face, ships below
    ]
    return quays, (x0, y0, x1, y1)


def _moored_ships(quays, rng, pixel_m, occupied) -> list[SceneObject]:
    ships = []
    for row, qx0, qx1, side in quays:
        x = qx0 + rng.uniform(4, 15) * 10 / pixel_m
        while True:
            length_m = rng.uniform(40.0, 240.0)
            lp = length_m / pixel_m
            if x + lp > qx1 - 2:
                break
            if rng.random() < 0.35:  # a free berth
                x += lp + rng.uniform(2.0, 12.0) * 10 / pixel_m
                continue
            beam_m = length_m / rng.uniform(5.5, 8.0)
            gap = rng.uniform(0.5, 2.0) * 10 / pixel_m
            # quay face at the pixel edge next to `row`
            face = row + 1 if side > 0 else row
            cy = face + side * (gap + 0.5 * beam_m / pixel_m)
            cx = x + 0.5 * lp
            heading = (90.0 if rng.random() < 0.5 else 270.0) + rng.normal(0, 0.7)
            obj = _ship(rng, cx, cy, length_m, pixel_m, heading=heading, moored=True)
            obj.beam_m = beam_m
            obj.corners_px = _corners(cx, cy, lp, beam_m / pixel_m, heading)
            ships.append(obj)
            occupied.append((cx, cy, 0.5 * lp + 2))
            x += lp + rng.uniform(2.0, 12.0) * 10 / pixel_m
    return ships


def generate(recipe: Recipe, seed: int) -> HeldoutScene:
    """One held-out scene: linear σ0 per band (NaN off the swath) and its truth objects."""
    rng = np.random.default_rng([0x4E1D, seed, recipe.size, int(recipe.pixel_m * 100)])
    shape = (recipe.size, recipe.size)
    h, w = shape
    px = recipe.pixel_m
    s = 10.0 / px  # pixels per 10 m pixel
    looks = float(rng.uniform(*recipe.looks_range))
    resolution = (recipe.resolution_m[0] / px, recipe.resolution_m[1] / px)

    # geometry across range (x): a random place in the swath
    width_km = w * px / 1000.0
    lo, hi = recipe.incidence_range
    span = (SWATH_INCIDENCE[1] - SWATH_INCIDENCE[0]) * width_km / SWATH_KM
    near = rng.uniform(lo, max(lo, hi - span))
    incidence = near + np.linspace(0.0, span, w, dtype=np.float32)[None, :]

    # wind: a mean, patches over a few km, calm slicks, direction relative to the look
    u_mean = rng.uniform(*recipe.wind_range)
    wind_dir = rng.uniform(0, 2 * math.pi)
    patches = _smooth_field(shape, 300.0 * s, rng)
    wind = u_mean * np.exp(0.25 * patches)
    # low-wind slicks: irregular, from two scales
    slicks = _smooth_field(shape, 120.0 * s, rng) + 0.6 * _smooth_field(shape, 25.0 * s, rng)
    wind = np.where(slicks > 2.0, wind * np.clip(1.0 - (slicks - 2.0) * 1.0, 0.25, 1.0), wind)
    wind = wind.astype(np.float32)

    land = np.zeros(shape, dtype=bool)
    meta: dict[str, Any] = {}
    quays: list = []
    basin = None
    if recipe.kind == "coastal":
        land, meta = _coast(shape, rng, px)
        quays, basin = _harbour(land, rng, px)
        meta["harbour_px"] = [int(v) for v in basin]
    water = ~land
    valid = np.ones(shape, dtype=bool)
    if recipe.nodata_edges:  # slanted GRD-like borders of no data
        yy = np.arange(h)[:, None] / h
        xx = np.arange(w)[None, :]
        left = (rng.uniform(8, 30) + rng.uniform(-15, 25) * yy) * s
        right = w - (rng.uniform(8, 30) + rng.uniform(-15, 25) * yy) * s
        valid = (xx >= left) & (xx < right)

    # objects
    objects: list[SceneObject] = []
    occupied: list[tuple[float, float, float]] = []
    if quays:
        objects += _moored_ships(quays, rng, px, occupied)
    placeable = water & valid
    border = 40.0 * s
    for _ in range(recipe.n_ships):
        length_m = rng.uniform(25.0, 300.0)
        r = 0.5 * length_m / px + 6 * s
        spot = _place(rng, placeable, occupied, r, border)
        if spot is None:
            continue
        obj = _ship(rng, spot[0], spot[1], length_m, px)
        objects.append(obj)
        occupied.append((spot[0], spot[1], r + 4 * s))
    for _ in range(recipe.n_platforms):
        size_m = rng.uniform(25.0, 60.0)
        spot = _place(rng, placeable, occupied, 0.5 * size_m / px + 8 * s, border)
        if spot is not None:
            peak = rng.uniform(18.0, 32.0)
            objects.append(_compact(rng, "platform", *spot, size_m, px, peak, rng.random() < 0.8))
            occupied.append((spot[0], spot[1], 0.5 * size_m / px + 10 * s))
    gy, gx = recipe.turbine_grid
    if gy and gx:
        step = rng.uniform(70, 100) * s
        ox = rng.uniform(border, w - border - (gx - 1) * step)
        oy = rng.uniform(border, h - border - (gy - 1) * step)
        for i in range(gy):
            for j in range(gx):
                x, y = ox + j * step + rng.normal(0, 0.3), oy + i * step + rng.normal(0, 0.3)
                if placeable[int(y), int(x)] and _free(occupied, x, y, 4 * s):
                    peak = rng.uniform(18.0, 28.0)
                    objects.append(_compact(rng, "turbine", x, y, 10.0, px, peak, True))
                    occupied.append((x, y, 6 * s))
    for _ in range(recipe.n_buoys):
        spot = _place(rng, placeable, occupied, 2.0 * s, border)
        if spot is not None:
            objects.append(_compact(rng, "buoy", *spot, 4.0, px, rng.uniform(0.0, 12.0), False))
            occupied.append((spot[0], spot[1], 3 * s))

    # mean backscatter of the sea, per band
    vv_db = cmod_like_vv_db(incidence, wind, wind_dir - 0.5 * math.pi)
    swell = np.sin(
        (np.arange(w)[None, :] * math.cos(wind_dir) + np.arange(h)[:, None] * math.sin(wind_dir))
        * 2
        * math.pi
        / (rng.uniform(150, 300) / px)
    )
    vv_db = vv_db + rng.uniform(0.2, 0.8) * swell
    means: dict[str, np.ndarray] = {}
    for band in recipe.bands:
        if band == "VV":
            means[band] = 10 ** (vv_db / 10)
        elif band == "HH":
            means[band] = 10 ** ((vv_db - polarisation_ratio_db(incidence)) / 10)
        else:
            means[band] = 10 ** ((cross_pol_sea_db(wind) + 0.3 * swell) / 10)
    # sea texture: log-normal, streaks along the wind
    texture = _smooth_field(shape, 5.0 * s, rng, stretch=3.0, angle_rad=wind_dir)
    sigma_t = rng.uniform(0.2, 0.45)
    texture = np.exp(sigma_t * texture - 0.5 * sigma_t**2)
    for band in means:
        means[band] = (means[band] * texture).astype(np.float32)
    for obj in objects:
        if obj.kind == "ship" and obj.wake:
            out = _wake_attenuation(shape, obj, px, rng)
            if out is not None:
                window, factor = out
                for band in means:
                    means[band][window] *= factor

    if land.any():
        _paint_land(means, land, rng, px, basin)
        for band in means:  # harbour water is sheltered: calm
            if basin is not None:
                bx0, by0, bx1, by1 = basin
                means[band][by0:by1, bx0:bx1] *= 0.12
        _quays(means, quays, land, px)

    # speckle, then the noise floor with its own pattern, then the targets
    bands: dict[str, np.ndarray] = {}
    nesz = _noise_floor(shape, rng, px)
    for band in recipe.bands:
        img = means[band] * _speckle(shape, looks, rng)
        floor = nesz if band in ("VH", "HV") else nesz - 2.0
        img += 10 ** (floor / 10) * _speckle(shape, looks, rng)
        bands[band] = img.astype(np.float32)
    render_objects(bands, objects, px, resolution, looks, rng)
    for band in bands:
        bands[band][~valid] = np.nan

    meta.update(
        {
            "generator": GENERATOR_VERSION,
            "kind": recipe.kind,
            "seed": seed,
            "size": recipe.size,
            "pixel_m": px,
            "bands": list(recipe.bands),
            "looks": round(looks, 3),
            "incidence_deg": [round(float(near), 2), round(float(near + span), 2)],
            "wind_ms": round(float(u_mean), 2),
            "resolution_px": [round(r, 3) for r in resolution],
            "land_fraction": round(float(land.mean()), 4),
            "valid_fraction": round(float(valid.mean()), 4),
        }
    )
    return HeldoutScene(bands, px, objects, meta, land)


def _noise_floor(shape, rng, pixel_m) -> np.ndarray:
    """NESZ (dB): beam scalloping across range plus a ripple along azimuth."""
    h, w = shape
    beam_px = rng.uniform(6000.0, 12000.0) / pixel_m
    x = np.arange(w)[None, :] + rng.uniform(0, beam_px)
    y = np.arange(h)[:, None]
    across = np.cos(np.pi * (x % beam_px) / beam_px - 0.5 * np.pi) ** 2  # peaks mid-beam
    ripple = np.sin(2 * np.pi * y / (rng.uniform(1500, 2500) / pixel_m))
    base = rng.uniform(-27.5, -25.0)
    return (base + 3.0 * (1.0 - across) + 0.4 * ripple).astype(np.float32)


def _paint_land(means, land, rng, pixel_m, basin) -> None:
    shape = land.shape
    h, w = shape
    s = 10.0 / pixel_m
    cover = _smooth_field(shape, 60.0 * s, rng)
    # crop parcels: a rotated grid with a level per parcel
    angle = rng.uniform(0, math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    pid = np.floor(u / (rng.uniform(25, 45) * s)) * 7919 + np.floor(v / (rng.uniform(15, 30) * s))
    parcel_db = ((np.sin(pid * 12.9898) * 43758.5453) % 1.0) * 6.0 - 14.0
    urban = _smooth_field(shape, 40.0 * s, rng) > 1.3
    if basin is not None:  # the port town around the harbour
        bx0, by0, bx1, by1 = basin
        m = int(50 * s)
        urban[max(0, by0 - m) : by1 + m, bx0 : bx1 + m] = True
    relief = _smooth_field(shape, 40.0 * s, rng)
    slope = np.gradient(relief, axis=1) * 6.0 * s  # facing the radar: brighter
    vv = np.where(cover > 0.4, -7.0, np.where(cover > -0.6, parcel_db, -15.5))
    vh = np.where(cover > 0.4, -13.0, np.where(cover > -0.6, parcel_db - 7.5, -24.0))
    grain = 1.5 * _smooth_field(shape, 3.0 * s, rng)  # tree crowns, furrows, roofs
    vv = np.where(urban, -1.0, vv) + np.clip(slope, -3, 3) + grain
    vh = np.where(urban, -9.0, vh) + np.clip(slope, -3, 3) + grain
    land_lin = {"VV": 10 ** (vv / 10), "VH": 10 ** (vh / 10)}
    land_lin["HH"] = land_lin["VV"] * 10 ** (rng.uniform(-1.0, 1.0) / 10)
    land_lin["HV"] = land_lin["VH"]
    # urban bright points: double bounce of buildings
    n_points = int(urban[land].sum() * 0.02)
    ys, xs = np.nonzero(urban & land)
    pick = rng.choice(len(ys), size=min(n_points, len(ys)), replace=False) if len(ys) else []
    bright = np.zeros(shape, dtype=np.float32)
    bright[ys[pick], xs[pick]] = 10 ** (rng.uniform(8.0, 24.0, len(pick)) / 10)
    bright = _blur3(bright, 0.25)
    for band in means:
        extra = bright * (10 ** (-0.8) if band in ("VH", "HV") else 1.0)
        means[band] = np.where(land, land_lin[band] + extra, means[band]).astype(np.float32)


def _quays(means, quays, land, pixel_m) -> None:
    """Quay walls: a bright line (double bounce between the wall and the water)."""
    for row, x0, x1, _side in quays:
        if 0 <= row < land.shape[0]:
            for band in means:
                gain = 10 ** ((6.0 if band not in ("VH", "HV") else -6.0) / 10)
                means[band][row, x0:x1] = np.maximum(means[band][row, x0:x1], gain)


# ---------------------------------------------------------------- writing


def write_geotiff(
    path: str,
    scene: HeldoutScene,
    units: str = "dB",
    epsg: int = 32631,
    origin: tuple[float, float] = (499_980.0, 5_900_020.0),
    gcp_grid: int = 0,
    gcp_rotation_deg: float = -12.0,
    bands: tuple[str, ...] | None = None,
) -> None:
    """Write the scene as a tiled GeoTIFF.

    ``units``: "dB" (Float32 σ0 dB, NaN = no data) or "DN" (UInt16 amplitude DN = A·sqrt(σ0),
    0 = no data). ``gcp_grid`` > 0 writes a ``gcp_grid``² grid of GCPs in EPSG:4326 of a frame
    rotated by ``gcp_rotation_deg`` (radar geometry) instead of a geotransform.
    """
    from osgeo import gdal, osr

    gdal.UseExceptions()
    names = bands or tuple(scene.bands)
    h, w = scene.shape
    dtype = gdal.GDT_Float32 if units == "dB" else gdal.GDT_UInt16
    ds = gdal.GetDriverByName("GTiff").Create(
        path,
        w,
        h,
        len(names),
        dtype,
        ["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=" + ("3" if units == "dB" else "2")],
    )
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(epsg)
    if gcp_grid:
        wgs = osr.SpatialReference()
        wgs.ImportFromEPSG(4326)
        wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        to_wgs = osr.CoordinateTransformation(utm, wgs)
        r = math.radians(gcp_rotation_deg)
        gcps = []
        for i, row in enumerate(np.linspace(0, h, gcp_grid)):
            for j, col in enumerate(np.linspace(0, w, gcp_grid)):
                e = origin[0] + scene.pixel_m * (col * math.cos(r) + row * math.sin(r))
                n = origin[1] - scene.pixel_m * (row * math.cos(r) - col * math.sin(r))
                lon, lat, _ = to_wgs.TransformPoint(e, n)
                gcps.append(gdal.GCP(lon, lat, 0.0, float(col), float(row), "", str(i * 100 + j)))
        ds.SetGCPs(gcps, wgs.ExportToWkt())
    else:
        ds.SetGeoTransform((origin[0], scene.pixel_m, 0.0, origin[1], 0.0, -scene.pixel_m))
        ds.SetProjection(utm.ExportToWkt())
    for i, name in enumerate(names, start=1):
        sigma0 = scene.bands[name]
        if units == "dB":
            data = (10.0 * np.log10(np.maximum(sigma0, 1e-5))).astype(np.float32)
            data[np.isnan(sigma0)] = np.nan
        else:
            dn = DN_SCALE * np.sqrt(np.nan_to_num(sigma0, nan=0.0))
            data = np.clip(np.rint(dn), 1, 65535).astype(np.uint16)
            data[np.isnan(sigma0)] = 0
        band = ds.GetRasterBand(i)
        band.WriteArray(data)
        band.SetDescription(name)
    ds.FlushCache()
    ds = None
