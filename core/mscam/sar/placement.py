"""Targets of a synthetic scene: where ships, structures and ghosts go, and their rendering.

Ships (the truth) at sea, at anchor, along a lane or moored at a quay, with wakes and Kelvin
arms; platforms, wind-farm turbines on a lattice, buoys and rocks; azimuth ghosts of targets
outside the scene and of a bright coast. Lengths are metres, turned into pixels through the
scene's pixel spacing. Used by :func:`mscam.sar.synth.synthesize_scene`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mscam.radiometry.units import linear_to_db
from mscam.sar.background import Background
from mscam.sar.profiles import PIXEL_M, SceneProfile
from mscam.sar.targets import (
    HullStyle,
    TargetPatch,
    darken_wake,
    ghost_of,
    kelvin_arms,
    render_ship,
    render_structure,
    splat_points,
)

#: Azimuth ambiguities sit this far from their source (metres): λ·R·PRF / (2·V) for IW.
GHOST_OFFSET_M = (4200.0, 6200.0)
#: Impulse response: range and azimuth resolution (m) and Hamming weight (Sentinel-1 IW GRDH).
IRF = (20.0, 22.0, 0.75)


class Placer:
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
        return self.clear(x0, y0, x1, y1, gap)

    def clear(self, x0: float, y0: float, x1: float, y1: float, gap: float = 3.0) -> bool:
        """Whether the box keeps ``gap`` pixels from every target placed so far."""
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


def ship_length(rng: np.random.Generator, length_range: tuple[float, float] | None) -> float:
    """Ship length in metres. Default: 10–400, mostly small (fishing, leisure), few large
    carriers. With ``length_range`` (lo, hi): flat-ish over the range (half uniform in metres,
    half uniform in log-length), so large ships are as well represented as small ones."""
    if length_range is None:
        return float(10 ** (1.0 + 1.6 * rng.random() ** 1.6))
    lo, hi = length_range
    if rng.random() < 0.5:
        return float(rng.uniform(lo, hi))
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def hull_box(
    cx: float, cy: float, length_px: float, beam_px: float, heading: float
) -> tuple[int, int, int, int]:
    """Inclusive pixel box of a hull (a length × beam rectangle at ``heading`` degrees)."""
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
    return (
        math.floor(min(xs)),
        math.floor(min(ys)),
        max(math.ceil(max(xs)) - 1, math.floor(min(xs))),
        max(math.ceil(max(ys)) - 1, math.floor(min(ys))),
    )


def moor(
    background: Background,
    placer: Placer,
    length_px: float,
    beam_px: float,
    rng: np.random.Generator,
) -> tuple[float, float, float] | None:
    """A berth alongside a quay: centre and heading of a ship lying parallel to the quay wall,
    a pixel off it, fully on water and clear of the other targets; None if there is none."""
    quays = [f for f in background.features if f["kind"] == "quay"]
    h, w = background.land.shape
    for _ in range(12 if quays else 0):
        quay = quays[int(rng.integers(len(quays)))]
        heading = quay["heading_deg"] + 180.0 * int(rng.integers(2))
        rad = math.radians(quay["heading_deg"])
        ux, uy = math.sin(rad), -math.cos(rad)  # along the quay, seawards
        nx, ny = -uy, ux  # across it
        side = 1 if rng.random() < 0.5 else -1
        room = quay["length_px"] - length_px
        if room < 0:
            continue
        t = quay["root_t"] + rng.uniform(0, room) + length_px / 2
        off = side * (quay["width_px"] / 2 + beam_px / 2 + 1.0)
        cx, cy = quay["root_x"] + t * ux + off * nx, quay["root_y"] + t * uy + off * ny
        box = hull_box(cx, cy, length_px, beam_px, heading)
        x0, y0, x1, y1 = box
        if x0 < 1 or y0 < 1 or x1 >= w - 1 or y1 >= h - 1:
            continue
        # The hull (sampled along its centre line and sides) must be on free water.
        samples = np.linspace(-0.5, 0.5, max(int(length_px) + 2, 3))
        ok = True
        for b in (-0.5, 0.0, 0.5):
            xs = cx + samples * length_px * ux + b * beam_px * nx
            ys = cy + samples * length_px * uy + b * beam_px * ny
            if not placer.free_sea[ys.astype(int), xs.astype(int)].all():
                ok = False
                break
        if ok and placer.clear(x0, y0, x1, y1, gap=1.0):
            placer.taken.append((x0, y0, x1, y1))
            return cx, cy, heading
    return None


def place_ships(
    background: Background,
    placer: Placer,
    profile: SceneProfile,
    count: int,
    rng: np.random.Generator,
    *,
    spacing: float = PIXEL_M,
    length_range: tuple[float, float] | None = None,
    extra: np.random.Generator | None = None,
    co_gain_db: tuple[float, float] = (0.0, 0.0),
    irf: tuple[float, float, float] = IRF,
) -> list[tuple[dict[str, Any], TargetPatch, TargetPatch]]:
    """Place and render ``count`` ships (fewer if the sea is full): moored at a quay, at anchor
    near the coast, along a shipping lane, or anywhere at sea; moving ones may leave a dark
    wake (with bright Kelvin arms). ``extra`` draws what the widened world adds, so scenes of
    the default profiles stay as they were; ``co_gain_db`` brightens the co-polarised return
    (HH ships are slightly brighter than VV)."""
    h, w = background.land.shape
    resolution, alpha = (irf[0] / spacing, irf[1] / spacing), irf[2]
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
        length_m = ship_length(rng, length_range)
        length_px = length_m / spacing
        beam_px = max(length_px / rng.uniform(6.0, 8.0), 0.3)
        heading = rng.uniform(0, 360)
        mode = rng.random()
        near, moving, moored, spot = None, True, False, None
        if (
            extra is not None
            and profile.moored_fraction
            and extra.random() < profile.moored_fraction
        ):
            berth = moor(background, placer, length_px, beam_px, extra)
            if berth is not None:
                spot, heading, moving, moored = berth[:2], berth[2], False, True
        if spot is None:
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
        dim = False
        if extra is not None:
            # Wooden or GRP boats barely stand out; big steel hulls can be very bright.
            if length_m < 60 and extra.random() < profile.dim_ship_fraction:
                iy, ix = min(int(cy), h - 1), min(int(cx), w - 1)
                local = float(linear_to_db(background.vv[iy, ix]))
                peak, dim = local + float(extra.uniform(7.0, 15.0)), True
            elif length_m >= 150 and length_range is not None:
                peak = min(peak + float(extra.uniform(0.0, 5.0)), 35.0)
            if not dim and profile.filled_hull_fraction:
                # Hull material, aspect and processing spread any length over ~10 dB: some
                # big ships are dim, with sidelobes barely above the sea.
                peak = max(peak - float(extra.uniform(0.0, 10.0)), 5.0)
            peak += float(extra.uniform(*co_gain_db))
        style = None
        if (
            extra is not None
            and profile.filled_hull_fraction
            and extra.random() < profile.filled_hull_fraction
        ):
            # A filled hull (half the ships of the widened world), with a superstructure from
            # as bright as the deck to far brighter (how processors and hulls differ).
            style = HullStyle(float(extra.uniform(0.5, 3.0)), float(extra.uniform(0.0, 22.0)))
        vv = render_ship(cx, cy, length_px, beam_px, heading, peak, rng, resolution, alpha, style)
        vh_peak = peak - rng.uniform(5, 10)
        vh = render_ship(
            cx, cy, length_px, beam_px, heading, vh_peak, rng, resolution, alpha, style
        )
        wake = moving and length_m > 30 and rng.random() < profile.wake_probability
        kelvin = False
        if wake:
            length, depth = length_px * rng.uniform(3, 8), rng.uniform(0.5, 0.8)
            for image in (background.vv, background.vh):
                darken_wake(
                    image, ~background.land, cx, cy, heading, length, max(beam_px, 1.0), depth
                )
            if extra is not None and extra.random() < profile.kelvin_probability:
                kelvin, gain = True, float(extra.uniform(0.5, 3.0))
                for image, g in ((background.vv, gain), (background.vh, 0.5 * gain)):
                    kelvin_arms(image, ~background.land, cx, cy, heading, length, g)
        record = {
            "id": len(ships),
            "class": "ship",
            "box": hull_box(cx, cy, length_px, beam_px, heading),
            "x": cx,
            "y": cy,
            "length_m": length_m,
            "beam_m": beam_px * spacing,
            "heading_deg": heading,
            "peak_db": peak,
            "wake": bool(wake),
            "moored": moored,
            "dim": dim,
            "kelvin": kelvin,
        }
        ships.append((record, vv, vh))
    return ships


def place_structures(
    placer: Placer,
    profile: SceneProfile,
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    spacing: float = PIXEL_M,
    extra: np.random.Generator | None = None,
    irf: tuple[float, float, float] = IRF,
) -> list[tuple[dict[str, Any], TargetPatch, TargetPatch]]:
    """Platforms, wind-farm turbines on a grid, buoys and rocks: bright, static, not ships."""
    h, w = shape
    scale = PIXEL_M / spacing
    resolution, alpha = (irf[0] / spacing, irf[1] / spacing), irf[2]
    area_km2 = h * w * spacing**2 * 1e-6
    out: list[tuple[dict[str, Any], TargetPatch, TargetPatch]] = []

    def add(
        kind: str,
        cx: float,
        cy: float,
        size: float,
        points: int,
        peak: float,
        gen: np.random.Generator = rng,
        dominant: float = 3.0,
        cross_gap: tuple[float, float] = (6, 11),
    ) -> None:
        vv = render_structure(cx, cy, size, points, peak, gen, resolution, dominant, alpha)
        vh_peak = peak - gen.uniform(*cross_gap)
        vh = render_structure(cx, cy, size, points, vh_peak, gen, resolution, dominant, alpha)
        half = size / 2 + 0.5
        box = (
            math.floor(cx - half),
            math.floor(cy - half),
            math.floor(cx + half),
            math.floor(cy + half),
        )
        out.append(({"kind": kind, "x": cx, "y": cy, "box": box, "peak_db": peak}, vv, vh))

    if profile.wind_farm and min(h, w) * spacing >= profile.wind_farm_min_extent_m:
        grid = rng.uniform(*profile.turbine_spacing_m) / spacing
        n_rows = int(np.clip(min(h, w) * 0.35 / grid, 2, 6)) + 1
        n_cols = int(np.clip(min(h, w) * 0.35 / grid, 2, 7)) + 1
        angle = math.radians(rng.uniform(-20, 20))
        # A lattice wider than the scene is cut by its edge (its turbines outside are dropped).
        ox = rng.uniform(0, max(w - grid * n_cols, 1.0))
        oy = rng.uniform(0, max(h - grid * n_rows, 1.0))
        for r in range(n_rows):
            for c in range(n_cols):
                cx = ox + grid * (c * math.cos(angle) - r * math.sin(angle))
                cy = oy + grid * (c * math.sin(angle) + r * math.cos(angle))
                if placer.fits(cx, cy, 6.0 * scale):
                    placer.take(cx, cy, 2.0 * scale)
                    add("turbine", cx, cy, 1.5 * scale, 3, rng.uniform(*profile.turbine_peak_db))
    for _ in range(rng.poisson(profile.platform_density * area_km2)):
        size = rng.uniform(2, 6) * scale
        spot = placer.find(size / 2 + 4)
        if spot:
            add("platform", *spot, size, int(rng.integers(6, 20)), rng.uniform(20, 32))
    for _ in range(rng.poisson(profile.buoy_density * area_km2)):
        spot = placer.find(2.0)
        if spot:
            add("buoy", *spot, 0.5, 1, rng.uniform(*profile.buoy_peak_db))
    if extra is not None and profile.rock_density:
        # Wave-washed rocks: a few weak, incoherent facets; as bright in HV as a small boat.
        for _ in range(extra.poisson(profile.rock_density * area_km2)):
            size = extra.uniform(0.5, 3.0) * scale
            spot = placer.find(size / 2 + 2)
            if spot:
                n = int(extra.integers(2, 9))
                add("rock", *spot, size, n, extra.uniform(-6, 12), extra, 1.2, (4, 9))
    return out


def ghost_record(record: dict[str, Any], offset: int, smear: int, weaker: float) -> dict[str, Any]:
    x0, y0, x1, y1 = record["box"]
    return {
        "kind": "ghost",
        "source": record.get("source", "target"),
        "x": record["x"],
        "y": record["y"] + offset,
        "box": (x0, y0 + offset - smear, x1, y1 + offset + smear),
        "peak_db": record["peak_db"] - weaker,
    }


def offscene_ghosts(
    placer: Placer,
    profile: SceneProfile,
    shape: tuple[int, int],
    spacing: float,
    rng: np.random.Generator,
    irf: tuple[float, float, float] = IRF,
) -> list[tuple[dict[str, Any], TargetPatch, TargetPatch]]:
    """Azimuth ghosts of bright ships and platforms outside the scene: fainter, smeared copies
    of a target, with nothing bright a few kilometres up or down the azimuth line."""
    h, w = shape
    scale = PIXEL_M / spacing
    resolution, alpha = (irf[0] / spacing, irf[1] / spacing), irf[2]
    out = []
    for _ in range(rng.poisson(profile.offscene_ghost_density * h * w * spacing**2 * 1e-6)):
        source_peak, weaker = rng.uniform(20, 34), rng.uniform(18, 24)
        smear = int(rng.integers(3, 8) * scale)
        if rng.random() < 0.5:  # a ship's ghost
            length = rng.uniform(60, 300) / spacing
            spot = placer.find(length / 2 + smear + 1)
            if spot is None:
                continue
            heading = rng.uniform(0, 360)
            pair = [
                render_ship(*spot, length, length / 7, heading, p, rng, resolution, alpha)
                for p in (source_peak, source_peak - rng.uniform(5, 10))
            ]
        else:
            size = rng.uniform(2, 6) * scale
            spot = placer.find(size / 2 + smear + 1)
            if spot is None:
                continue
            n = int(rng.integers(6, 20))
            pair = [
                render_structure(*spot, size, n, p, rng, resolution, 3.0, alpha)
                for p in (source_peak, source_peak - rng.uniform(6, 11))
            ]
        vv, vh = (ghost_of(p, 0, weaker, smear) for p in pair)
        x0, y0 = vv.x0, vv.y0
        ys, xs = np.nonzero(vv.intensity >= vv.intensity.max() * 0.1)
        box = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()), y0 + int(ys.max()))
        record = {
            "kind": "ghost",
            "source": "offscene",
            "x": spot[0],
            "y": spot[1],
            "box": box,
            "peak_db": source_peak - weaker,
        }
        out.append((record, vv, vh))
    return out


def land_ghost(
    background: Background,
    images: list[np.ndarray],
    shape: tuple[int, int],
    spacing: float,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Azimuth ghost of the bright coast: the land's mean backscatter and urban points, ~20 dB
    fainter and smeared, shifted a few kilometres along azimuth onto the sea (wrapping around
    the scene: the source of a ghost is often outside the image). Added to the mean (before
    speckle) of ``images``; returns ghost records at the shifted bright urban points."""
    h = shape[0]
    offset = int(rng.choice([-1, 1]) * rng.uniform(*GHOST_OFFSET_M) / spacing) % h
    weaker = rng.uniform(17.0, 23.0)
    smear = max(int(rng.integers(3, 8) * PIXEL_M / spacing), 1)
    sea = ~background.land
    xs, ys, point_vv, point_vh = background.points
    for image, points in zip(images, (point_vv, point_vh)):
        source = np.where(background.land, image, 0.0).astype(np.float32)
        splat_points(source, xs, ys, points)
        shifted = np.roll(source, offset, axis=0)
        smeared = np.zeros_like(shifted)
        for k in range(smear):
            smeared += np.roll(shifted, k - smear // 2, axis=0)
        image += np.float32(10 ** (-weaker / 10) / smear) * smeared * sea
    records = []
    for item in background.features:
        if item["kind"] != "urban_point" or item["peak_db"] - weaker < -18:
            continue
        gx, gy = int(item["x"]), (int(item["y"]) + offset) % h
        if not sea[gy, gx]:
            continue
        records.append(
            {
                "kind": "ghost",
                "source": "land",
                "x": item["x"],
                "y": gy + 0.5,
                "box": (gx - 1, gy - smear // 2 - 1, gx + 1, gy + smear // 2 + 1),
                "peak_db": item["peak_db"] - weaker,
            }
        )
    return records
