"""Synthetic Sentinel-1 IW GRD-like scenes with known truth (``shared/spec/sar.md``).

A scene is a pure function of (size, profile, seed): mean backscatter from
:mod:`mscam.sar.background`, thermal noise, Gamma(L = 4.4) speckle, then point targets from
:mod:`mscam.sar.targets` — ships (the truth) and hard negatives (platforms, wind turbines, buoys,
azimuth ghosts; islands and urban points come with the background).

Geometry: 10 m pixels, near range at x = 0 (the radar looks towards +x), azimuth along y. For
visible range effects a scene spans the whole IW incidence range (30°–45°) across its width,
whatever its size, together with the three sub-swaths' noise pattern.

>>> scene = synthesize_scene(256, "coastal", seed=1)
>>> scene.vv_db.shape, scene.vv_db.dtype.name
((256, 256), 'float32')
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mscam.errors import InputError
from mscam.sar.background import PIXEL_M, Background, make_background
from mscam.sar.fields import speckle
from mscam.sar.targets import (
    TargetPatch,
    darken_wake,
    ghost_of,
    render_ship,
    render_structure,
    splat_points,
)
from mscam.sar.units import linear_to_db

LOOKS = 4.4  #: equivalent number of looks of Sentinel-1 IW GRDH
DEFAULT_EPSG = 32633
DEFAULT_ORIGIN = (450_000.0, 6_150_000.0)  #: UTM 33N, the southern Baltic
#: IW sub-swath incidence limits (IW1, IW2, IW3) in degrees.
SUBSWATHS = ((29.1, 36.3), (36.3, 41.6), (41.6, 46.0))


@dataclass(frozen=True)
class SceneProfile:
    """What a kind of scene contains. Densities are per km² (1 km² = 100 × 100 px)."""

    name: str
    wind_ms: float  #: mean wind speed at 10 m
    wind_var: float = 0.2  #: log-normal spread of the wind over a few km
    calm_fraction: float = 0.0  #: share of the sea in calm (low-wind) patches
    nu: float | None = 10.0  #: K-distribution shape of sea texture (None: no texture)
    texture_corr_m: float = 30.0  #: correlation length of the sea texture (30–100 m)
    swell_db: float = 0.5  #: amplitude of the swell pattern
    streak_db: float = 0.5  #: amplitude of wind streaks
    land_fraction: float = 0.0
    relief_m: float = 0.0  #: typical hill height inland
    town_density: float = 0.0
    min_towns: int = 0  #: a coast usually has a port town
    rivers: int = 0  #: rivers running from inland to the sea
    island_density: float = 0.0
    ship_density: float = 0.0
    min_ships: int = 0
    anchorage: bool = False  #: part of the ships wait at anchor near the coast
    lane: bool = False  #: part of the ships follow a shipping lane
    wake_probability: float = 0.3
    platform_density: float = 0.0
    buoy_density: float = 0.0
    wind_farm: bool = False
    ghost_probability: float = 0.6  #: chance that a bright target (≥ +15 dB) casts a ghost


PROFILES: dict[str, SceneProfile] = {
    p.name: p
    for p in (
        SceneProfile(
            "calm",
            wind_ms=3.5,
            wind_var=0.25,
            calm_fraction=0.3,
            nu=15.0,
            swell_db=0.3,
            streak_db=0.3,
            island_density=0.005,
            ship_density=0.025,
            min_ships=1,
            wake_probability=0.6,
            platform_density=0.002,
            buoy_density=0.01,
        ),
        SceneProfile(
            "rough",
            wind_ms=11.0,
            wind_var=0.15,
            nu=3.0,
            texture_corr_m=60.0,
            swell_db=1.2,
            streak_db=1.0,
            island_density=0.003,
            ship_density=0.025,
            min_ships=1,
            wake_probability=0.15,
            platform_density=0.002,
            buoy_density=0.005,
        ),
        SceneProfile(
            "coastal",
            wind_ms=6.0,
            calm_fraction=0.1,
            land_fraction=0.45,
            relief_m=80.0,
            town_density=0.015,
            min_towns=1,
            rivers=2,
            island_density=0.03,
            ship_density=0.04,
            min_ships=2,
            anchorage=True,
            buoy_density=0.02,
            wind_farm=True,
        ),
        SceneProfile(
            "empty",
            wind_ms=6.0,
            calm_fraction=0.1,
            land_fraction=0.12,
            relief_m=60.0,
            town_density=0.005,
            rivers=1,
            island_density=0.005,
            platform_density=0.005,
            buoy_density=0.015,
            wind_farm=True,
        ),
        SceneProfile(
            "dense",
            wind_ms=7.0,
            nu=8.0,
            land_fraction=0.2,
            relief_m=50.0,
            town_density=0.008,
            rivers=1,
            island_density=0.01,
            ship_density=0.15,
            min_ships=3,
            anchorage=True,
            lane=True,
            buoy_density=0.02,
            platform_density=0.002,
        ),
    )
}


@dataclass
class SyntheticScene:
    """A synthetic dual-pol scene: σ0 in dB (NaN outside the valid swath) and its truth."""

    vv_db: np.ndarray
    vh_db: np.ndarray
    #: One dict per ship: id, class "ship", box (x0, y0, x1, y1 inclusive pixels), x, y (centre),
    #: length_m, beam_m, heading_deg (clockwise from north/up), peak_db (VV), wake.
    ships: list[dict[str, Any]]
    #: Bright non-ships: kind (platform, turbine, buoy, ghost, island, urban_point), x, y
    #: (centre), box (inclusive pixels, clipped to the scene) and, for point targets, peak_db.
    hard_negatives: list[dict[str, Any]]
    land_mask: np.ndarray
    valid_mask: np.ndarray
    incidence_deg: np.ndarray  #: per column
    profile: str
    seed: int
    geotransform: tuple[float, ...]  #: (x0, 10, 0, y0, 0, -10): north-up UTM
    epsg: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.vv_db.shape  # type: ignore[return-value]


def noise_floor_db(incidence: np.ndarray) -> np.ndarray:
    """Thermal noise (NESZ) in dB: about -25.5 dB mid sub-swath, up to -23 at the sub-swath
    edges where the antenna pattern falls off (the scalloping seen on calm sea and in VH)."""
    nesz = np.full(incidence.shape, -25.5, np.float32)
    for near, far in SUBSWATHS:
        inside = (incidence >= near) & (incidence <= far)
        half = (far - near) / 2
        nesz[inside] = -25.5 + 2.5 * ((incidence[inside] - near - half) / half) ** 2
    return nesz


def _valid_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Swath edges like a GRD's: ragged nodata strips along near and far range."""
    h, w = shape
    valid = np.ones(shape, bool)
    rows = np.arange(h)
    for side in (0, 1):
        base = rng.uniform(0.004, 0.02) * w
        wiggle = (
            base
            * 0.5
            * np.sin(2 * math.pi * (rows / max(h, 1) * rng.uniform(0.5, 2) + rng.random()))
        )
        width = np.maximum(np.round(base + wiggle), 1).astype(int)
        cols = np.arange(w)[None, :]
        edge = cols < width[:, None] if side == 0 else cols >= (w - width)[:, None]
        valid &= ~edge
    return valid


class _Placer:
    """Finds free sea positions: valid, not on land, not overlapping earlier targets."""

    def __init__(self, land: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> None:
        self.free_sea = valid & ~land
        self.rng = rng
        self.taken: list[tuple[float, float, float, float]] = []

    def fits(self, cx: float, cy: float, half: float, gap: float = 3.0) -> bool:
        h, w = self.free_sea.shape
        x0, y0, x1, y1 = cx - half - 2, cy - half - 2, cx + half + 2, cy + half + 2
        if x0 < 0 or y0 < 0 or x1 >= w or y1 >= h:
            return False
        if not self.free_sea[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1].all():
            return False
        return all(
            x1 + gap < a or a2 + gap < x0 or y1 + gap < b or b2 + gap < y0
            for a, b, a2, b2 in self.taken
        )

    def take(self, cx: float, cy: float, half: float) -> None:
        self.taken.append((cx - half, cy - half, cx + half, cy + half))

    def find(
        self, half: float, near: tuple[float, float, float] | None = None, tries: int = 60
    ) -> tuple[float, float] | None:
        """A free centre; ``near`` = (x, y, spread) samples around a point instead."""
        h, w = self.free_sea.shape
        for _ in range(tries):
            if near is None:
                cx, cy = self.rng.uniform(0, w), self.rng.uniform(0, h)
            else:
                cx, cy = self.rng.normal(near[0], near[2]), self.rng.normal(near[1], near[2])
            if self.fits(cx, cy, half):
                self.take(cx, cy, half)
                return cx, cy
        return None


def _ship_length(rng: np.random.Generator) -> float:
    """Ship length in metres, 10–400, mostly small (fishing, leisure), few large carriers."""
    return float(10 ** (1.0 + 1.6 * rng.random() ** 1.6))


def _ships(
    background: Background,
    placer: _Placer,
    profile: SceneProfile,
    count: int,
    rng: np.random.Generator,
) -> list[tuple[dict[str, Any], TargetPatch, TargetPatch]]:
    """Place and render ``count`` ships (fewer if the sea is full): at anchor near the coast,
    along a shipping lane, or anywhere at sea; moving ones may leave a dark wake."""
    h, w = background.land.shape
    lane_angle = rng.uniform(0, 180)
    lane_point = (rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h)
    anchorages = np.flatnonzero(background.coastal_sea & placer.free_sea)
    anchor_points = (
        [divmod(int(i), w)[::-1] for i in rng.choice(anchorages, 2)]
        if (profile.anchorage and anchorages.size)
        else []
    )
    ships = []
    for _ in range(count):
        length_m = _ship_length(rng)
        length_px = length_m / PIXEL_M
        beam_px = max(length_px / rng.uniform(6.0, 8.0), 0.3)
        heading = rng.uniform(0, 360)
        mode = rng.random()
        near, moving = None, True
        if anchor_points and mode < 0.35:
            ax, ay = anchor_points[int(rng.integers(len(anchor_points)))]
            near, moving = (ax, ay, 12.0 + 3 * length_px), False
        elif profile.lane and mode < 0.7:
            # Along the lane: a point on the lane line, heading with or against it.
            t = rng.uniform(-1.0, 1.0) * max(h, w)
            rad = math.radians(lane_angle)
            near = (lane_point[0] + t * math.sin(rad), lane_point[1] - t * math.cos(rad), 25.0)
            heading = (lane_angle + 180 * rng.integers(2) + rng.normal(0, 6)) % 360
        spot = placer.find(length_px / 2 + 1, near) or placer.find(length_px / 2 + 1)
        if spot is None:
            continue
        cx, cy = spot
        peak = float(np.clip(5 + 25 * math.log10(length_m / 10) / 1.6 + rng.normal(0, 3), 5, 30))
        vv = render_ship(cx, cy, length_px, beam_px, heading, peak, rng)
        vh = render_ship(cx, cy, length_px, beam_px, heading, peak - rng.uniform(5, 10), rng)
        wake = moving and length_m > 30 and rng.random() < profile.wake_probability
        if wake:
            length, depth = length_px * rng.uniform(3, 8), rng.uniform(0.5, 0.8)
            for image in (background.vv, background.vh):
                darken_wake(
                    image, ~background.land, cx, cy, heading, length, max(beam_px, 1.0), depth
                )
        # Hull corners → inclusive pixel box.
        rad = math.radians(heading)
        ux, uy = math.sin(rad), -math.cos(rad)
        corners = [
            (
                cx + a * ux * length_px / 2 + b * uy * beam_px / 2,
                cy + a * uy * length_px / 2 - b * ux * beam_px / 2,
            )
            for a in (-1, 1)
            for b in (-1, 1)
        ]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        box = (
            math.floor(min(xs)),
            math.floor(min(ys)),
            max(math.ceil(max(xs)) - 1, math.floor(min(xs))),
            max(math.ceil(max(ys)) - 1, math.floor(min(ys))),
        )
        record = {
            "id": len(ships),
            "class": "ship",
            "box": box,
            "x": cx,
            "y": cy,
            "length_m": length_m,
            "beam_m": beam_px * PIXEL_M,
            "heading_deg": heading,
            "peak_db": peak,
            "wake": bool(wake),
        }
        ships.append((record, vv, vh))
    return ships


def _structures(
    placer: _Placer, profile: SceneProfile, shape: tuple[int, int], rng: np.random.Generator
) -> list[tuple[dict[str, Any], TargetPatch, TargetPatch]]:
    """Platforms, wind-farm turbines on a grid and buoys: bright, static, not ships."""
    h, w = shape
    area_km2 = h * w * 1e-4
    out: list[tuple[dict[str, Any], TargetPatch, TargetPatch]] = []

    def add(kind: str, cx: float, cy: float, size: float, points: int, peak: float) -> None:
        vv = render_structure(cx, cy, size, points, peak, rng)
        vh = render_structure(cx, cy, size, points, peak - rng.uniform(6, 11), rng)
        half = size / 2 + 0.5
        box = (
            math.floor(cx - half),
            math.floor(cy - half),
            math.floor(cx + half),
            math.floor(cy + half),
        )
        out.append(({"kind": kind, "x": cx, "y": cy, "box": box, "peak_db": peak}, vv, vh))

    if profile.wind_farm and min(h, w) >= 200:
        spacing = rng.uniform(55, 80)
        n_rows = int(np.clip(min(h, w) * 0.35 / spacing, 2, 6)) + 1
        n_cols = int(np.clip(min(h, w) * 0.35 / spacing, 2, 7)) + 1
        angle = math.radians(rng.uniform(-20, 20))
        ox, oy = rng.uniform(0, w - spacing * n_cols), rng.uniform(0, h - spacing * n_rows)
        for r in range(n_rows):
            for c in range(n_cols):
                cx = ox + spacing * (c * math.cos(angle) - r * math.sin(angle))
                cy = oy + spacing * (c * math.sin(angle) + r * math.cos(angle))
                if placer.fits(cx, cy, 6.0):
                    placer.take(cx, cy, 2.0)
                    add("turbine", cx, cy, 1.5, 3, rng.uniform(10, 22))
    for _ in range(rng.poisson(profile.platform_density * area_km2)):
        size = rng.uniform(2, 6)
        spot = placer.find(size / 2 + 4)
        if spot:
            add("platform", *spot, size, int(rng.integers(6, 20)), rng.uniform(20, 32))
    for _ in range(rng.poisson(profile.buoy_density * area_km2)):
        spot = placer.find(2.0)
        if spot:
            add("buoy", *spot, 0.5, 1, rng.uniform(-3, 8))
    return out


def synthesize_scene(
    size: int | tuple[int, int],
    profile: str | SceneProfile = "coastal",
    seed: int = 0,
    *,
    n_ships: int | None = None,
    incidence_deg: tuple[float, float] = (30.0, 45.0),
    nodata_border: bool = True,
    looks: float = LOOKS,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    epsg: int = DEFAULT_EPSG,
) -> SyntheticScene:
    """Synthesize a Sentinel-1 IW GRD-like dual-pol (VV, VH) scene with its ship truth.

    ``size`` is a side or (height, width) in 10 m pixels; ``profile`` one of :data:`PROFILES`
    (``calm``, ``rough``, ``coastal``, ``empty``, ``dense``) or a :class:`SceneProfile`;
    ``n_ships`` overrides the profile's ship count. Same arguments, same scene.
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 32 or w < 32:
        raise InputError(f"scene size must be at least 32 × 32 pixels, got {h} × {w}")
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise InputError(f"unknown scene profile {profile!r}; choose {', '.join(PROFILES)}")
        profile = PROFILES[profile]
    # One independent stream per component: changing how ships are drawn does not move the
    # coastline of the same seed. The profile name is mixed in so profiles differ per seed.
    streams = np.random.SeedSequence([seed, zlib.crc32(profile.name.encode())]).spawn(6)
    layout, sea_rng, ship_rng, struct_rng, speckle_rng, ghost_rng = (
        np.random.default_rng(s) for s in streams
    )
    shape = (h, w)
    incidence = np.linspace(*incidence_deg, w, dtype=np.float32)
    valid = _valid_mask(shape, layout) if nodata_border else np.ones(shape, bool)
    background = make_background(shape, profile, incidence, valid, sea_rng)

    placer = _Placer(background.land, valid, ship_rng)
    structures = _structures(placer, profile, shape, struct_rng)
    count = (
        n_ships
        if n_ships is not None
        else max(profile.min_ships, int(ship_rng.poisson(profile.ship_density * h * w * 1e-4)))
    )
    ships = _ships(background, placer, profile, count, ship_rng)

    nesz = np.power(10.0, noise_floor_db(incidence) / 10.0)[None, :]
    images = []
    for mean in (background.vv, background.vh):
        images.append((mean + nesz) * speckle(shape, looks, speckle_rng))
    xs, ys, point_vv, point_vh = background.points
    splat_points(images[0], xs, ys, point_vv)
    splat_points(images[1], xs, ys, point_vh)
    hard_negatives = list(background.features)
    for record, vv, vh in [*ships, *structures]:
        vv.add_to(images[0])
        vh.add_to(images[1])
        if record.get("kind") is not None:
            hard_negatives.append(record)
        # Azimuth ambiguities of bright targets: ~20 dB fainter, kilometres along azimuth.
        if record["peak_db"] >= 15 and ghost_rng.random() < profile.ghost_probability:
            offset = int(ghost_rng.choice([-1, 1]) * ghost_rng.uniform(420, 620))
            gy = int(record["y"]) + offset
            gx = int(record["x"])
            if 0 <= gy < h and 0 <= gx < w and valid[gy, gx] and not background.land[gy, gx]:
                weaker, smear = ghost_rng.uniform(18, 22), int(ghost_rng.integers(3, 7))
                ghost_of(vv, offset, weaker, smear).add_to(images[0])
                ghost_of(vh, offset, weaker, smear).add_to(images[1])
                x0, y0, x1, y1 = record["box"]
                hard_negatives.append(
                    {
                        "kind": "ghost",
                        "x": record["x"],
                        "y": record["y"] + offset,
                        "box": (x0, y0 + offset - smear, x1, y1 + offset + smear),
                        "peak_db": record["peak_db"] - weaker,
                    }
                )
    for item in hard_negatives:  # a ghost or an urban point at the edge: keep boxes inside
        x0, y0, x1, y1 = item["box"]
        item["box"] = (max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1))
    vv_db, vh_db = (linear_to_db(image).astype(np.float32) for image in images)
    vv_db[~valid] = np.nan
    vh_db[~valid] = np.nan
    geotransform = (origin[0], PIXEL_M, 0.0, origin[1], 0.0, -PIXEL_M)
    return SyntheticScene(
        vv_db=vv_db,
        vh_db=vh_db,
        ships=[s[0] for s in ships],
        hard_negatives=hard_negatives,
        land_mask=background.land,
        valid_mask=valid,
        incidence_deg=incidence,
        profile=profile.name,
        seed=seed,
        geotransform=geotransform,
        epsg=epsg,
    )


def scene_profile(name: str, **changes: Any) -> SceneProfile:
    """A named profile with some fields changed, e.g. ``scene_profile("calm", nu=None)``."""
    if name not in PROFILES:
        raise InputError(f"unknown scene profile {name!r}; choose {', '.join(PROFILES)}")
    return replace(PROFILES[name], **changes)
