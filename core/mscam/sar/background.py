"""Mean backscatter of a synthetic Sentinel-1 IW scene: land/sea layout, sea clutter, land cover.

The result is the mean σ0 (linear) per pixel *before* the noise floor and speckle; the scene
assembly in :mod:`mscam.sar.synth` adds both. Levels follow ``docs/sar.md``:

* sea (VV) ≈ -13 dB at 30° incidence and 7 m/s wind, falling 0.5 dB per degree across range and
  rising 1.6 dB per dB of wind speed (a CMOD-like power law); calm patches reach -25 to -30 dB;
  K-distributed: mean × unit-mean Gamma(ν) texture correlated over 30–100 m.
* land: forest ≈ -7.5, crops -14 to -8 (field parcels), bare -17 to -13, urban -9 to +1 dB with
  bright points; slopes facing the radar (near range is x = 0) are brighter.
* VH: 7–9 dB below VV over sea, 6.5–9.5 dB over land (before the noise floor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mscam.sar.fields import (
    blob_mask,
    block_mean,
    gamma_texture,
    gaussian_blur,
    gaussian_field,
    power_law_field,
    swell_field,
    upsample,
)
from mscam.sar.profiles import PIXEL_M, SceneProfile

#: Point returns: x, y (int pixel arrays), VV and VH intensity (σ0, linear).
Points = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: Layout fields (coastline, wind, land cover, relief) are made at 4 × 10 m and upsampled.
COARSE = 4


@dataclass
class Background:
    """Mean backscatter and layout of a scene (all arrays (H, W))."""

    vv: np.ndarray  #: mean σ0, linear, VV
    vh: np.ndarray  #: mean σ0, linear, VH
    land: np.ndarray  #: bool, land and islands
    coastal_sea: np.ndarray  #: bool, sea within ~1 km of land (anchorages, harbours)
    #: Urban point returns to add after speckle: x, y (int arrays), VV and VH intensity.
    points: Points
    features: list[dict[str, Any]] = field(default_factory=list)  #: islands, urban points


def _coarse_shape(shape: tuple[int, int]) -> tuple[int, int]:
    return -(-shape[0] // COARSE), -(-shape[1] // COARSE)


def _full(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return upsample(coarse, (coarse.shape[0] * COARSE, coarse.shape[1] * COARSE))[
        : shape[0], : shape[1]
    ]


def _coastline(
    coarse: tuple[int, int], land_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Signed coarse field, positive on land: a ramp towards a random side plus a fractal, so
    the coast is one ragged line with bays and headlands, cut at the wanted land fraction."""
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0 : coarse[0], 0 : coarse[1]].astype(np.float32)
    ramp = (xx * math.cos(angle) + yy * math.sin(angle)) / max(coarse)
    ramp = (ramp - ramp.mean()) / max(float(ramp.std()), 1e-6)
    signed = ramp + 0.45 * power_law_field(coarse, 3.3, rng, largest_px=max(coarse) / 2)
    return signed - np.quantile(signed, 1.0 - land_fraction)


def _rivers(
    land: np.ndarray, signed: np.ndarray, count: int, rng: np.random.Generator, scale: float = 1.0
) -> None:
    """Carve ``count`` meandering rivers (in place on ``land``) from inland down to the sea.

    A river walks down the coastline field's slope (towards the sea) with a meander; it is
    2–5 px wide and widens towards its mouth. Its water then gets the sheltered, dark sea look.
    """
    h, w = land.shape
    # Follow the large-scale slope only: the fractal's local wiggles would make rivers loop.
    gy, gx = np.gradient(gaussian_blur(signed, 12.0))
    inland = np.flatnonzero(signed > np.quantile(signed, 0.9)) if count else np.zeros(0, int)
    for start in rng.choice(inland, size=min(count, inland.size), replace=False):
        row, col = divmod(int(start), signed.shape[1])
        y, x = (row + 0.5) * COARSE, (col + 0.5) * COARSE
        heading = math.atan2(-gy[row, col], -gx[row, col])
        width = rng.uniform(1.0, 2.0) * scale
        for _ in range(4 * (h + w)):
            r = min(int(y / COARSE), signed.shape[0] - 1)
            c = min(int(x / COARSE), signed.shape[1] - 1)
            downhill = math.atan2(-gy[r, c], -gx[r, c])
            # Turn part-way towards downhill, plus a random meander.
            turn = math.atan2(math.sin(downhill - heading), math.cos(downhill - heading))
            heading += 0.15 * turn + rng.normal(0, 0.07)
            x, y = x + math.cos(heading), y + math.sin(heading)
            if not (0 <= x < w and 0 <= y < h):
                break
            width = min(width + 0.002 * scale, 2.5 * scale)
            iy, ix, half = int(y), int(x), math.ceil(width)
            land[max(iy - half, 0) : iy + half, max(ix - half, 0) : ix + half] = False
            if signed[r, c] < 0:  # reached the sea
                break


def _islands(
    land: np.ndarray,
    valid: np.ndarray,
    profile: SceneProfile,
    rng: np.random.Generator,
    spacing: float = PIXEL_M,
) -> list[dict[str, Any]]:
    """Small rocky islands at sea (in place on ``land``); returned as hard-negative records."""
    h, w = land.shape
    scale = PIXEL_M / spacing
    count = rng.poisson(profile.island_density * h * w * spacing**2 * 1e-6)
    islands: list[dict[str, Any]] = []
    for _ in range(count * 20):
        if len(islands) >= count:
            break
        radius = float(np.exp(rng.uniform(math.log(2.5), math.log(18.0)))) * scale
        margin = int(radius * 2) + 6
        if w <= 2 * margin or h <= 2 * margin:
            continue
        cx, cy = rng.uniform(margin, w - margin), rng.uniform(margin, h - margin)
        area = (
            slice(int(cy) - margin, int(cy) + margin),
            slice(int(cx) - margin, int(cx) + margin),
        )
        if land[area].any() or not valid[area].all():
            continue
        (x0, y0, x1, y1), mask = blob_mask(land.shape, cx, cy, radius, rng)
        land[y0 : y1 + 1, x0 : x1 + 1] |= mask
        ys, xs = np.nonzero(mask)
        box = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()), y0 + int(ys.max()))
        islands.append({"kind": "island", "x": cx, "y": cy, "box": box, "radius_px": radius})
    return islands


def _parcels(
    shape: tuple[int, int],
    size_px: tuple[float, float],
    rng: np.random.Generator,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """A patchwork of rotated, elongated parcels (fields, city blocks): uniform [0, 1) each.

    Rows of random height are cut into parcels of random length, so no two rows line up.
    """
    angle = rng.uniform(0, math.pi)
    c, s = math.cos(angle), math.sin(angle)
    x = (np.arange(shape[1], dtype=np.float32) + origin[0])[None, :]
    y = (np.arange(shape[0], dtype=np.float32) + origin[1])[:, None]
    u, v = x * c + y * s, y * c - x * s
    v_low, v_high = float(v.min()), float(v.max())
    n_rows = int((v_high - v_low) / size_px[0]) + 2
    edges = v_low + np.cumsum(rng.uniform(*size_px, n_rows))
    rows = np.searchsorted(edges, v)
    lengths = rng.uniform(size_px[0], 2.5 * size_px[1], n_rows + 1).astype(np.float32)
    offsets = rng.uniform(0, 200, n_rows + 1).astype(np.float32)
    cols = np.floor((u + offsets[rows]) / lengths[rows]).astype(np.int64)
    table = rng.random(8191).astype(np.float32)
    return table[(rows * 7919 + cols * 104729) % 8191]


def _farmland(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Field parcels of 150–600 m in two orientations (farms are laid out block by block)."""
    size = (15 * scale, 45 * scale)
    first, second = _parcels(shape, size, rng), _parcels(shape, size, rng)
    coarse = _coarse_shape(shape)
    field = gaussian_field(coarse, 300 * scale / COARSE, rng)
    return np.where(_full(field, shape) > 0, first, second)


def _sea(
    shape: tuple[int, int],
    incidence: np.ndarray,
    shelter: np.ndarray,
    profile: SceneProfile,
    rng: np.random.Generator,
    spacing: float = PIXEL_M,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean VV and VH σ0 of the sea."""
    coarse = shelter.shape
    scale = PIXEL_M / spacing
    wind_field = gaussian_field(coarse, 400 * scale / COARSE, rng)
    wind = profile.wind_ms * np.exp(profile.wind_var * wind_field)
    # Low-wind areas: a large-scale field with a finer one on top, so their edges are ragged.
    calm_noise = gaussian_field(coarse, 250 * scale / COARSE, rng) + 0.4 * gaussian_field(
        coarse, 60 * scale / COARSE, rng
    )
    calm = np.zeros(coarse, np.float32)
    if profile.calm_fraction > 0:
        cut = np.quantile(calm_noise, profile.calm_fraction)
        calm = np.clip((cut - calm_noise) / 0.4 + 0.5, 0, 1)
        calm = calm * calm * (3 - 2 * calm)  # smoothstep: slicks have soft but short edges
    # Wind drops in calm patches and in the lee of land (sheltered bays look dark).
    wind = wind * (1 - 0.85 * calm) * (1 - 0.6 * np.clip(2 * shelter, 0, 1))
    wind_full, calm_full = _full(wind, shape), _full(calm, shape)
    theta = incidence[None, :]
    db = -13.0 - 0.5 * (theta - 30.0) + 16.0 * np.log10(np.maximum(wind_full, 0.5) / 7.0)
    wind_dir = rng.uniform(0, 180)
    if profile.streak_db:
        streaks = gaussian_field(shape, 50 * scale, rng, anisotropy=5.0, angle_deg=wind_dir)
        db += profile.streak_db * streaks * (1 - calm_full)
    if profile.swell_db:
        wavelength = rng.uniform(14, 28) * scale
        swell = swell_field(shape, wavelength, wind_dir + rng.uniform(-40, 40), rng)
        db += profile.swell_db * swell * (1 - 0.6 * calm_full)
    db = np.clip(db, -32.0, -8.0)
    vv = np.power(10.0, db / 10.0, dtype=np.float32)
    if profile.nu is not None:
        nu = profile.nu + (20.0 - profile.nu) * calm_full  # calm sea is the least spiky
        texture_px = profile.texture_corr_m / spacing
        vv *= gamma_texture(gaussian_field(shape, texture_px, rng), nu)
    # VH depends less on incidence than VV, so the gap narrows from 9 to 7 dB across range.
    span = max(float(incidence[-1] - incidence[0]), 1e-6)
    gap = 9.0 - 2.0 * (theta - incidence[0]) / span
    return vv, (vv * np.power(10.0, -gap / 10.0)).astype(np.float32)


def _towns(
    land: np.ndarray,
    inland: np.ndarray,
    profile: SceneProfile,
    rng: np.random.Generator,
    spacing: float = PIXEL_M,
) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Towns on land near the coast (ports): (box, weight) each, weight 1 in the dense core
    fading to 0 in the suburbs along a ragged edge."""
    h, w = land.shape
    count = max(
        int(rng.poisson(profile.town_density * h * w * spacing**2 * 1e-6)), profile.min_towns
    )
    if count == 0 or not land.any():
        return []
    near_coast = np.flatnonzero(land & (inland < 0.6))
    candidates = near_coast if near_coast.size else np.flatnonzero(land)
    towns = []
    for index in rng.choice(candidates, size=count):
        cy, cx = divmod(int(index), w)
        radius = min(rng.uniform(30, 120) * PIXEL_M / spacing, min(h, w) / 5)
        margin = int(radius * 1.4)
        x0, y0 = max(cx - margin, 0), max(cy - margin, 0)
        x1, y1 = min(cx + margin, w - 1), min(cy + margin, h - 1)
        yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
        distance = np.hypot(xx - cx, yy - cy) / radius
        ragged = gaussian_field(distance.shape, max(radius / 4, 3.0), rng)
        weight = np.clip(1.0 - distance + 0.3 * ragged, 0, 1) * land[y0 : y1 + 1, x0 : x1 + 1]
        towns.append(((x0, y0, x1, y1), weight.astype(np.float32)))
    return towns


def _land(
    shape: tuple[int, int],
    land: np.ndarray,
    inland_coarse: np.ndarray,
    islands: list[dict[str, Any]],
    profile: SceneProfile,
    rng: np.random.Generator,
    features: list[dict[str, Any]],
    spacing: float = PIXEL_M,
) -> tuple[np.ndarray, np.ndarray, Points]:
    """Mean VV and VH σ0 over land, and the urban point returns."""
    coarse = inland_coarse.shape
    scale = PIXEL_M / spacing
    inland = _full(inland_coarse, shape)
    # Relief: fractal hills growing inland; islands are domes. Brightness follows the slope
    # along range (x): slopes rising away from the radar face it and look brighter.
    hills = (
        profile.relief_m
        * np.maximum(power_law_field(coarse, 4.5, rng, largest_px=800 * scale / COARSE) + 0.8, 0)
        * inland_coarse
    )
    slope = _full(np.gradient(hills, axis=1) / (spacing * COARSE), shape)
    for island in islands:
        x0, y0, x1, y1 = island["box"]
        radius = island["radius_px"]
        height = radius * spacing * rng.uniform(0.1, 0.35)
        xs = np.arange(x0, x1 + 1, dtype=np.float32) + 0.5 - island["x"]
        ys = np.arange(y0, y1 + 1, dtype=np.float32)[:, None] + 0.5 - island["y"]
        inside = xs[None, :] ** 2 + ys**2 < radius**2
        slope[y0 : y1 + 1, x0 : x1 + 1] += np.where(
            inside, -2 * height * xs[None, :] / (radius**2 * spacing), 0
        ).astype(np.float32)
    relief_db = np.clip(0.35 * np.degrees(np.arctan(slope)), -6.0, 9.0)

    # Land cover: forest (more of it on the hills), else farmland whose parcels are crops
    # (-14 to -8 dB) or, one in five, bare ploughed soil (-17 to -13 dB).
    forest = _full(gaussian_field(coarse, 150 * scale / COARSE, rng), shape) > 0.6 - 0.9 * inland
    canopy = gaussian_field(shape, 12.0 * scale, rng)
    parcels = _farmland(shape, rng, scale)
    bare = parcels < 0.2
    farm_db = np.where(bare, -17.0 + 20.0 * parcels, -14.0 + 7.5 * (parcels - 0.2))
    db = np.where(forest, -7.5 + 0.6 * canopy, farm_db)
    gap = np.where(forest, 6.5, np.where(bare, 9.5, 7.0 + 1.5 * parcels))
    nu = np.where(forest, 8.0, np.where(bare, 15.0, 25.0)).astype(np.float32)

    xs_all, ys_all, vv_all = [], [], []
    for (x0, y0, x1, y1), weight in _towns(land, inland, profile, rng, spacing):
        area = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        mask = weight > 0.2
        blocks = _parcels(mask.shape, (4 * scale, 9 * scale), rng, origin=(x0, y0))
        db[area] = np.where(mask, -9.0 + 10.0 * weight * (0.3 + 0.7 * blocks), db[area])
        gap[area] = np.where(mask, 7.0, gap[area])
        nu[area] = np.where(mask, 3.0, nu[area])
        # Bright corner reflections (walls on streets), densest in the core and strongest when
        # streets run along azimuth or range (the cardinal effect).
        density = (0.004 + 0.05 * weight) / scale**2  # per 10 m × 10 m, whatever the pixel
        ys, xs = np.nonzero(mask & (rng.random(mask.shape) < density))
        aligned = abs(math.cos(2 * rng.uniform(0, math.pi))) ** 8
        point_db = rng.uniform(-2.0, 10.0, xs.size) + 6.0 * aligned * rng.random(xs.size)
        xs_all.append(xs + x0)
        ys_all.append(ys + y0)
        vv_all.append(np.power(10.0, point_db / 10.0))
        for k in np.argsort(point_db)[::-1][:10]:
            x, y = int(xs[k] + x0), int(ys[k] + y0)
            features.append(
                {
                    "kind": "urban_point",
                    "x": x + 0.5,
                    "y": y + 0.5,
                    "box": (x - 1, y - 1, x + 1, y + 1),
                    "peak_db": float(point_db[k]),
                }
            )
    db = db + relief_db
    texture = gamma_texture(gaussian_field(shape, 2.0 * scale, rng), nu)
    vv = (np.power(10.0, db / 10.0) * texture).astype(np.float32)
    vh = (vv * np.power(10.0, -gap / 10.0)).astype(np.float32)
    xs = np.concatenate(xs_all) if xs_all else np.zeros(0, np.int64)
    ys = np.concatenate(ys_all) if ys_all else np.zeros(0, np.int64)
    point_vv = np.concatenate(vv_all) if vv_all else np.zeros(0)
    point_vh = point_vv * np.power(10.0, -rng.uniform(6.0, 10.0, point_vv.size) / 10.0)
    return vv, vh, (xs, ys, point_vv.astype(np.float32), point_vh.astype(np.float32))


def _quays(
    land: np.ndarray, valid: np.ndarray, count: int, rng: np.random.Generator, scale: float
) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Build ``count`` harbours out from the coast (in place on ``land``): one to three
    parallel piers of 150–600 m × 20–60 m pointing seawards. Returns each pier's record (kind
    "quay": root, heading, length, width for berthing ships) and its pixel mask's window."""
    h, w = land.shape
    sea = ~land
    coast = land & (
        np.roll(sea, 1, 0) | np.roll(sea, -1, 0) | np.roll(sea, 1, 1) | np.roll(sea, -1, 1)
    )
    margin = max(int(10 * scale), 2)  # a pier near the scene's edge is cut by it
    coast[:margin], coast[-margin:], coast[:, :margin], coast[:, -margin:] = (False,) * 4
    candidates = np.flatnonzero(coast & valid)
    if not candidates.size:
        return []
    # Seawards = down the gradient of the smoothed land mask.
    smooth = gaussian_blur(land.astype(np.float32), 6.0 * scale)
    gy, gx = np.gradient(smooth)
    out: list[tuple[dict[str, Any], np.ndarray]] = []
    for index in rng.choice(candidates, size=count):
        ry, rx = divmod(int(index), w)
        heading = math.degrees(math.atan2(-gx[ry, rx], gy[ry, rx]))  # clockwise from up
        rad = math.radians(heading)
        ux, uy = math.sin(rad), -math.cos(rad)
        nx, ny = -uy, ux
        length = rng.uniform(15, 60) * scale
        width = rng.uniform(2, 6) * scale
        n_piers = int(rng.integers(1, 4))
        gap = rng.uniform(8, 16) * scale + width
        for k in range(n_piers):
            shift = (k - (n_piers - 1) / 2) * gap
            root_x, root_y = rx + 0.5 + shift * nx - 3 * ux, ry + 0.5 + shift * ny - 3 * uy
            reach = int(length + width) + 6
            x0, x1 = max(int(root_x) - reach, 0), min(int(root_x) + reach, w - 1)
            y0, y1 = max(int(root_y) - reach, 0), min(int(root_y) + reach, h - 1)
            yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float32) + 0.5
            along = (xx - root_x) * ux + (yy - root_y) * uy
            across = (xx - root_x) * nx + (yy - root_y) * ny
            mask = (along >= 0) & (along <= length + 3) & (np.abs(across) <= width / 2)
            if not mask.any():
                continue
            land[y0 : y1 + 1, x0 : x1 + 1] |= mask
            ys, xs = np.nonzero(mask)
            box = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()), y0 + int(ys.max()))
            wall = mask & (np.abs(across) >= width / 2 - 1.0)
            record = {
                "kind": "quay",
                "x": root_x + ux * (length / 2 + 3),
                "y": root_y + uy * (length / 2 + 3),
                "box": box,
                "heading_deg": heading % 360,
                "length_px": float(length),
                "width_px": float(width),
                "root_x": root_x,
                "root_y": root_y,
                "root_t": 4.0,
            }
            out.append((record, np.stack([mask, wall])))
    return out


def _quay_returns(
    vv: np.ndarray,
    vh: np.ndarray,
    quays: list[tuple[dict[str, Any], np.ndarray]],
    points: Points,
    rng: np.random.Generator,
) -> Points:
    """Quays look dark on top (flat concrete, -18 to -12 dB) with bright walls (double bounce
    with the water) and a few very bright cranes and bollards: in place on the means, and
    their point returns appended to ``points``."""
    xs_all, ys_all, vv_all = [points[0]], [points[1]], [points[2]]
    for record, stack in quays:
        mask, wall = stack
        x0, y0 = record["box"][0], record["box"][1]
        # The stack's window starts where the mask's box was measured from; recover it.
        ys, xs = np.nonzero(mask)
        ox, oy = x0 - int(xs.min()), y0 - int(ys.min())
        window = (slice(oy, oy + mask.shape[0]), slice(ox, ox + mask.shape[1]))
        top = np.power(10.0, rng.uniform(-18.0, -12.0) / 10.0)
        # The wall facing the water is a continuous bright line whose level varies along it.
        line_db = rng.uniform(-8.0, 2.0) + 2.0 * rng.standard_normal(mask.shape)
        line = np.power(10.0, line_db / 10.0).astype(np.float32)
        level = np.where(wall, line, np.float32(top))
        vv[window] = np.where(mask, level, vv[window])
        vh[window] = np.where(mask, level * np.float32(10**-0.8), vh[window])
        wy, wx = np.nonzero(wall & (rng.random(wall.shape) < rng.uniform(0.03, 0.12)))
        crane = rng.random(wy.size) < 0.15
        point_db = np.where(crane, rng.uniform(10.0, 22.0, wy.size), rng.uniform(-2, 8, wy.size))
        xs_all.append(wx + ox)
        ys_all.append(wy + oy)
        vv_all.append(np.power(10.0, point_db / 10.0).astype(np.float32))
    point_vv = np.concatenate(vv_all).astype(np.float32)
    added = point_vv[points[3].size :]
    point_vh = np.concatenate(
        [points[3], added * np.power(10.0, -rng.uniform(6, 10, added.size) / 10)]
    ).astype(np.float32)
    return np.concatenate(xs_all), np.concatenate(ys_all), point_vv, point_vh


def make_background(
    shape: tuple[int, int],
    profile: SceneProfile,
    incidence: np.ndarray,
    valid: np.ndarray,
    rng: np.random.Generator,
    spacing: float = PIXEL_M,
) -> Background:
    """Lay out land and sea for ``profile`` and compute their mean backscatter; lengths in the
    profile are metres, turned into pixels of ``spacing`` metres."""
    coarse = _coarse_shape(shape)
    scale = PIXEL_M / spacing
    if profile.land_fraction > 0:
        signed = _coastline(coarse, profile.land_fraction, rng)
        land = _full(signed, shape) > 0
        _rivers(land, signed, profile.rivers, rng, scale)
    else:
        land = np.zeros(shape, bool)
    islands = _islands(land, valid, profile, rng, spacing)
    quays = _quays(land, valid, profile.harbours, rng, scale) if profile.harbours else []
    land_coarse = block_mean(land, COARSE)
    shelter = gaussian_blur(land_coarse, 15.0 * scale)  # land within ~600 m
    inland = np.clip((gaussian_blur(land_coarse, 8.0 * scale) - 0.5) / 0.4, 0, 1)
    vv, vh = _sea(shape, incidence, shelter, profile, rng, spacing)
    features: list[dict[str, Any]] = list(islands)
    none = np.zeros(0, np.int64)
    points: Points = (none, none, none.astype(np.float32), none.astype(np.float32))
    if land.any():
        land_vv, land_vh, points = _land(
            shape, land, inland, islands, profile, rng, features, spacing
        )
        vv, vh = np.where(land, land_vv, vv), np.where(land, land_vh, vh)
    if quays:
        points = _quay_returns(vv, vh, quays, points, rng)
        features += [q for q, _ in quays]
    near = _full(shelter, shape)
    coastal_sea = ~land & (near > 0.02) & (near < 0.3)
    return Background(vv, vh, land, coastal_sea, points, features)
