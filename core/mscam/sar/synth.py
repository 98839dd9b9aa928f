"""Synthetic Sentinel-1 IW GRD-like scenes with known truth (``docs/sar.md``).

A scene is a pure function of its arguments and seed: mean backscatter from
:mod:`mscam.sar.background`, thermal noise, Gamma(L) speckle, then point targets from
:mod:`mscam.sar.targets` — ships (the truth) and hard negatives (platforms, wind turbines, buoys,
rocks, azimuth ghosts; islands and urban points come with the background).

Geometry: near range at x = 0 (the radar looks towards +x), azimuth along y, 10 m pixels unless
``pixel_spacing`` says otherwise (lengths are metres and become pixels through it). For visible
range effects a scene spans the whole IW incidence range (30°–45°) across its width, whatever its
size, together with the three sub-swaths' noise pattern. The co-polarised band is VV or HH
(``polarisation``); the second band is the cross-polarised one (VH or HV).

>>> scene = synthesize_scene(256, "coastal", seed=1)
>>> scene.vv_db.shape, scene.vv_db.dtype.name, scene.band_names
((256, 256), 'float32', ('VV', 'VH'))
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from mscam.errors import InputError
from mscam.radiometry.units import linear_to_db
from mscam.sar.background import Background, make_background
from mscam.sar.fields import speckle
from mscam.sar.placement import (
    Placer,
    ghost_record,
    land_ghost,
    offscene_ghosts,
    place_ships,
    place_structures,
)
from mscam.sar.profiles import PIXEL_M, PROFILES, SceneProfile, resolve_profile, scene_profile
from mscam.sar.targets import ghost_of, splat_points

__all__ = [
    "LOOKS",
    "PIXEL_M",
    "POLARISATIONS",
    "PROFILES",
    "SceneProfile",
    "SyntheticScene",
    "noise_floor_db",
    "polarisation_ratio_db",
    "scene_profile",
    "synthesize_scene",
]

LOOKS = 4.4  #: equivalent number of looks of Sentinel-1 IW GRDH
DEFAULT_EPSG = 32633
DEFAULT_ORIGIN = (450_000.0, 6_150_000.0)  #: UTM 33N, the southern Baltic
#: IW sub-swath incidence limits (IW1, IW2, IW3) in degrees.
SUBSWATHS = ((29.1, 36.3), (36.3, 41.6), (41.6, 46.0))
#: Co-polarisations a scene can have; the cross-polarised band goes with it (VV+VH, HH+HV).
POLARISATIONS = ("VV", "HH")
CROSS_POL = {"VV": "VH", "HH": "HV"}
#: Resolution (range, azimuth) in metres: Sentinel-1 IW GRDH.
RESOLUTION_M = (20.0, 22.0)


def polarisation_ratio_db(incidence_deg: np.ndarray | float) -> np.ndarray:
    """VV/HH ratio of sea clutter in dB: 0 at nadir, ~1 dB at 20°, ~2 at 30°, ~3.5 at 45°.

    The Bragg-like model of Thompson et al. (1998) with α = 1,
    PR = ((1 + 2 tan²θ) / (1 + tan²θ))²: HH sea is darker than VV, the more so at high incidence.
    """
    t2 = np.tan(np.radians(np.asarray(incidence_deg, dtype=np.float32))) ** 2
    return (20.0 * np.log10((1 + 2 * t2) / (1 + t2))).astype(np.float32)


@dataclass
class SyntheticScene:
    """A synthetic dual-pol scene: σ0 in dB (NaN outside the valid swath) and its truth.

    ``vv_db`` holds the co-polarised band and ``vh_db`` the cross-polarised one whatever the
    polarisation (HH and HV when ``polarisation`` is "HH"); :attr:`co_db`, :attr:`cross_db` and
    :attr:`band_names` say it without the historical names.
    """

    vv_db: np.ndarray
    vh_db: np.ndarray
    #: One dict per ship: id, class "ship", box (x0, y0, x1, y1 inclusive pixels), x, y (centre),
    #: length_m, beam_m, heading_deg (clockwise from north/up), peak_db (co-pol), wake, and
    #: moored (alongside a quay), dim (a small boat barely above the clutter), kelvin.
    ships: list[dict[str, Any]]
    #: Bright non-ships: kind (platform, turbine, buoy, rock, ghost, island, urban_point, quay),
    #: x, y (centre), box (inclusive pixels, clipped to the scene) and, for point targets,
    #: peak_db; a ghost also says its source ("target", "offscene" or "land").
    hard_negatives: list[dict[str, Any]]
    land_mask: np.ndarray
    valid_mask: np.ndarray
    incidence_deg: np.ndarray  #: per column
    profile: str
    seed: int
    geotransform: tuple[float, ...]  #: (x0, spacing, 0, y0, 0, -spacing): north-up UTM
    epsg: int
    polarisation: str = "VV"  #: co-polarisation: "VV" (bands VV, VH) or "HH" (bands HH, HV)
    pixel_spacing: float = PIXEL_M  #: metres per pixel
    calibration_db: float = 0.0  #: offset added to the whole scene (a calibration error)
    looks: float = LOOKS  #: speckle ENL
    resolution_m: tuple[float, float] = RESOLUTION_M  #: (range, azimuth) of the targets' IRF
    sidelobe_alpha: float = 0.75  #: Hamming weight of the IRF (1: strongest sidelobes)

    @property
    def shape(self) -> tuple[int, int]:
        return self.vv_db.shape  # type: ignore[return-value]

    @property
    def co_db(self) -> np.ndarray:
        return self.vv_db

    @property
    def cross_db(self) -> np.ndarray:
        return self.vh_db

    @property
    def band_names(self) -> tuple[str, str]:
        return self.polarisation, CROSS_POL[self.polarisation]


def noise_floor_db(incidence: np.ndarray) -> np.ndarray:
    """Thermal noise (NESZ) in dB: about -25.5 dB mid sub-swath, up to -23 at the sub-swath
    edges where the antenna pattern falls off (the scalloping seen on calm sea and in VH)."""
    nesz = np.full(incidence.shape, -25.5, np.float32)
    for near, far in SUBSWATHS:
        inside = (incidence >= near) & (incidence <= far)
        half = (far - near) / 2
        nesz[inside] = -25.5 + 2.5 * ((incidence[inside] - near - half) / half) ** 2
    return nesz


def _noise_floor(
    shape: tuple[int, int],
    incidence: np.ndarray,
    profile: SceneProfile,
    spacing: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear NESZ and a gain map for the seams: (1, W) each, or (H, W) when the profile asks
    for seams (``seam_db``): every sub-swath and every burst gets its own noise and level
    offset, so noise-floor stripes run along range and azimuth, and the noise scallops along
    azimuth inside each burst (TOPS)."""
    nesz_db = noise_floor_db(incidence)[None, :] + np.float32(profile.nesz_offset_db)
    gain_db = np.zeros((1, shape[1]), np.float32)
    if profile.seam_db > 0:
        h = shape[0]
        swath = np.searchsorted([near for near, _ in SUBSWATHS[1:]], incidence)[None, :]
        burst_px = rng.uniform(1200.0, 2000.0) * PIXEL_M / spacing / rng.uniform(2.0, 8.0)
        rows = (np.arange(h, dtype=np.float32) + rng.uniform(0, burst_px))[:, None]
        burst = (rows // burst_px).astype(np.int64)
        table = rng.normal(0.0, profile.seam_db, (3, int(burst.max()) + 2)).astype(np.float32)
        gains = rng.normal(0.0, 0.3 * profile.seam_db, (3, int(burst.max()) + 2))
        phase = (rows % burst_px) / burst_px
        scallop = profile.seam_db * 0.5 * np.cos(2 * math.pi * (phase - 0.5))
        nesz_db = nesz_db + table[swath, burst] + scallop.astype(np.float32)
        gain_db = gains.astype(np.float32)[swath, burst]
    return np.power(10.0, nesz_db / 10.0), np.power(10.0, gain_db / 10.0)


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


def _polarise(background: Background, incidence: np.ndarray, rng: np.random.Generator) -> None:
    """Turn the VV mean backscatter of ``background`` into HH, in place: the sea darkens by the
    polarisation ratio (growing with incidence), land changes by -1 to +1.5 dB and urban points
    (double bounce) brighten by 0–2 dB. The cross-polarised band (HV ≈ VH) stays."""
    sea_factor = np.power(10.0, -polarisation_ratio_db(incidence) * rng.uniform(0.85, 1.15) / 10)
    land_factor = 10 ** (rng.uniform(-1.0, 1.5) / 10)
    background.vv *= np.where(background.land, np.float32(land_factor), sea_factor[None, :])
    xs, ys, point_vv, point_vh = background.points
    gain = np.power(10.0, rng.uniform(0.0, 2.0, point_vv.size) / 10).astype(np.float32)
    background.points = (xs, ys, point_vv * gain, point_vh)


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
    polarisation: str = "VV",
    pixel_spacing: float = PIXEL_M,
    ship_length_m: tuple[float, float] | None = None,
    calibration_db: float = 0.0,
    resolution_m: tuple[float, float] = RESOLUTION_M,
    sidelobe_alpha: float = 0.75,
    speckle_corr_px: float = 0.0,
) -> SyntheticScene:
    """Synthesize a Sentinel-1 IW GRD-like dual-pol scene with its ship truth.

    ``size`` is a side or (height, width) in pixels of ``pixel_spacing`` metres (default 10);
    ``profile`` one of :data:`PROFILES` (``calm``, ``rough``, ``coastal``, ``empty``,
    ``dense``) or a :class:`SceneProfile`; ``n_ships`` overrides the profile's ship count.
    ``polarisation``: ``"VV"`` (bands VV, VH), ``"HH"`` (bands HH, HV; the sea is darker by the
    polarisation ratio) or ``"random"`` (one of the two, drawn from the seed).
    ``ship_length_m`` = (lo, hi) draws ship lengths flat over that range instead of the
    default mostly-small mix; ``looks`` is the speckle ENL; ``calibration_db`` offsets the whole
    scene (a calibration error). ``resolution_m`` and ``sidelobe_alpha`` shape the targets'
    impulse response (Sentinel-1: 20 × 22 m, 0.75; 1.0 gives the strongest sidelobe crosses);
    ``speckle_corr_px`` > 0 correlates the speckle of neighbouring pixels. Same arguments,
    same scene.
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 32 or w < 32:
        raise InputError(f"scene size must be at least 32 × 32 pixels, got {h} × {w}")
    profile = resolve_profile(profile)
    if polarisation not in (*POLARISATIONS, "random"):
        raise InputError(f"polarisation must be VV, HH or random, got {polarisation!r}")
    if not 0.1 <= pixel_spacing <= 100.0:
        raise InputError(f"pixel spacing must be 0.1–100 m, got {pixel_spacing}")
    if ship_length_m is not None and not 1.0 <= ship_length_m[0] <= ship_length_m[1]:
        raise InputError(f"ship_length_m must be (lo, hi) with 1 ≤ lo ≤ hi, got {ship_length_m}")
    if looks <= 0:
        raise InputError(f"looks must be positive, got {looks}")
    if not 0.5 <= sidelobe_alpha <= 1.0 or min(resolution_m) <= 0 or speckle_corr_px < 0:
        raise InputError(
            "need sidelobe_alpha in [0.5, 1], resolution_m > 0 and speckle_corr_px ≥ 0, got "
            f"{sidelobe_alpha}, {resolution_m}, {speckle_corr_px}"
        )
    # One independent stream per component: changing how ships are drawn does not move the
    # coastline of the same seed. The profile name is mixed in so profiles differ per seed.
    # Streams 6+ serve what the widened world added, so default scenes stay as they were.
    streams = np.random.SeedSequence([seed, zlib.crc32(profile.name.encode())]).spawn(10)
    layout, sea_rng, ship_rng, struct_rng, speckle_rng, ghost_rng = (
        np.random.default_rng(s) for s in streams[:6]
    )
    pol_rng, extra_rng, seam_rng, offscene_rng = (np.random.default_rng(s) for s in streams[6:])
    if polarisation == "random":
        polarisation = POLARISATIONS[int(pol_rng.integers(2))]
    shape = (h, w)
    scale = PIXEL_M / pixel_spacing
    incidence = np.linspace(*incidence_deg, w, dtype=np.float32)
    valid = _valid_mask(shape, layout) if nodata_border else np.ones(shape, bool)
    background = make_background(shape, profile, incidence, valid, sea_rng, pixel_spacing)
    if polarisation == "HH":
        _polarise(background, incidence, pol_rng)

    placer = Placer(background.land, valid, ship_rng)
    irf = (resolution_m[0], resolution_m[1], sidelobe_alpha)
    structures = place_structures(
        placer, profile, shape, struct_rng, spacing=pixel_spacing, extra=extra_rng, irf=irf
    )
    area_km2 = h * w * pixel_spacing**2 * 1e-6
    count = (
        n_ships
        if n_ships is not None
        else max(profile.min_ships, int(ship_rng.poisson(profile.ship_density * area_km2)))
    )
    ships = place_ships(
        background,
        placer,
        profile,
        count,
        ship_rng,
        spacing=pixel_spacing,
        length_range=ship_length_m,
        extra=extra_rng,
        co_gain_db=(0.0, 2.0) if polarisation == "HH" else (0.0, 0.0),
        irf=irf,
    )
    offscene = offscene_ghosts(placer, profile, shape, pixel_spacing, offscene_rng, irf)

    means = [background.vv, background.vh]
    hard_negatives = list(background.features)
    if profile.land_ghost_probability and background.points[0].size:
        if offscene_rng.random() < profile.land_ghost_probability:
            hard_negatives += land_ghost(background, means, shape, pixel_spacing, offscene_rng)
    nesz, gain = _noise_floor(shape, incidence, profile, pixel_spacing, seam_rng)
    images = []
    for mean in means:
        image = (mean + nesz) * speckle(shape, looks, speckle_rng, speckle_corr_px)
        images.append(image if profile.seam_db == 0 else image * gain)
    xs, ys, point_vv, point_vh = background.points
    splat_points(images[0], xs, ys, point_vv)
    splat_points(images[1], xs, ys, point_vh)
    for record, vv, vh in [*ships, *structures]:
        vv.add_to(images[0])
        vh.add_to(images[1])
        if record.get("kind") is not None:
            hard_negatives.append(record)
        # Azimuth ambiguities of bright targets: ~20 dB fainter, kilometres along azimuth.
        if record["peak_db"] >= 15 and ghost_rng.random() < profile.ghost_probability:
            offset = int(ghost_rng.choice([-1, 1]) * ghost_rng.uniform(420, 620) * scale)
            gy = int(record["y"]) + offset
            gx = int(record["x"])
            if 0 <= gy < h and 0 <= gx < w and valid[gy, gx] and not background.land[gy, gx]:
                weaker, smear = ghost_rng.uniform(18, 22), int(ghost_rng.integers(3, 7) * scale)
                ghost_of(vv, offset, weaker, smear).add_to(images[0])
                ghost_of(vh, offset, weaker, smear).add_to(images[1])
                hard_negatives.append(ghost_record(record, offset, smear, weaker))
    for record, vv, vh in offscene:
        vv.add_to(images[0])
        vh.add_to(images[1])
        hard_negatives.append(record)
    for item in hard_negatives:  # a ghost or an urban point at the edge: keep boxes inside
        x0, y0, x1, y1 = item["box"]
        item["box"] = (max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1))
    if calibration_db:
        for image in images:
            image *= np.float32(10 ** (calibration_db / 10))
        for record in [s[0] for s in ships] + hard_negatives:
            if "peak_db" in record:
                record["peak_db"] += calibration_db
    vv_db, vh_db = (linear_to_db(image).astype(np.float32) for image in images)
    vv_db[~valid] = np.nan
    vh_db[~valid] = np.nan
    geotransform = (origin[0], pixel_spacing, 0.0, origin[1], 0.0, -pixel_spacing)
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
        polarisation=polarisation,
        pixel_spacing=float(pixel_spacing),
        calibration_db=float(calibration_db),
        looks=float(looks),
        resolution_m=(float(resolution_m[0]), float(resolution_m[1])),
        sidelobe_alpha=float(sidelobe_alpha),
    )


def _scale_item(item: dict[str, Any], factor: int, co_db: np.ndarray) -> dict[str, Any]:
    """A truth record on a grid ``factor`` times coarser: box and centre scaled, and a point
    target's or ship's peak re-read from the averaged co-pol band (averaging lowers it)."""
    out = dict(item)
    x0, y0, x1, y1 = (int(v) for v in item["box"])
    box = (x0 // factor, y0 // factor, x1 // factor, y1 // factor)
    out["box"] = box
    out["averaged"] = factor
    for key in ("x", "y"):
        if key in item:
            out[key] = (float(item[key]) + 0.5) / factor - 0.5
    if "peak_db" in item:
        window = co_db[box[1] : box[3] + 1, box[0] : box[2] + 1]
        values = window[np.isfinite(window)]
        if values.size:
            out["peak_db"] = float(values.max())
    return out


def average_scene(scene: SyntheticScene, factor: int) -> SyntheticScene:
    """``scene`` averaged ``factor`` × ``factor`` pixels to one, in linear power, as a finer
    product brought to a coarser spacing is (GDAL's ``average``): what the pipeline does to a
    1–5 m scene before a 10 m model sees it. A block with any nodata is nodata; land where most
    of a block is land; truth boxes and centres scaled, peaks re-read from the averaged image.
    """
    if factor < 1:
        raise InputError(f"the averaging factor must be ≥ 1, got {factor}")
    if factor == 1:
        return scene
    h, w = (n // factor for n in scene.shape)
    if h < 1 or w < 1:
        raise InputError(f"a {scene.shape} scene is smaller than one {factor}² block")

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[: h * factor, : w * factor].reshape(h, factor, w, factor)

    valid = blocks(scene.valid_mask).all(axis=(1, 3))
    images = []
    for band in (scene.vv_db, scene.vh_db):
        linear = np.power(10.0, np.nan_to_num(band, nan=-100.0) / 10.0, dtype=np.float64)
        image = linear_to_db(blocks(linear).mean(axis=(1, 3))).astype(np.float32)
        image[~valid] = np.nan
        images.append(image)
    land = blocks(scene.land_mask).mean(axis=(1, 3)) >= 0.5
    incidence = scene.incidence_deg[: w * factor].reshape(w, factor).mean(axis=1)
    gt = list(scene.geotransform)
    gt[1], gt[5] = gt[1] * factor, gt[5] * factor

    def inside(item: dict[str, Any]) -> bool:
        x0, y0 = (int(v) // factor for v in item["box"][:2])
        return x0 < w and y0 < h

    return SyntheticScene(
        vv_db=images[0],
        vh_db=images[1],
        ships=[_scale_item(s, factor, images[0]) for s in scene.ships if inside(s)],
        hard_negatives=[
            _scale_item(n, factor, images[0]) for n in scene.hard_negatives if inside(n)
        ],
        land_mask=land,
        valid_mask=valid,
        incidence_deg=incidence.astype(np.float32),
        profile=scene.profile,
        seed=scene.seed,
        geotransform=tuple(gt),
        epsg=scene.epsg,
        polarisation=scene.polarisation,
        pixel_spacing=scene.pixel_spacing * factor,
        calibration_db=scene.calibration_db,
        looks=scene.looks * factor**2,
        resolution_m=scene.resolution_m,
        sidelobe_alpha=scene.sidelobe_alpha,
    )
