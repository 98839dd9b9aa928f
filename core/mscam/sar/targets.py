"""Point targets of a synthetic SAR scene: ships, platforms, turbines, buoys and their ghosts.

A target is a set of complex point scatterers. It is imaged through the SAR impulse response
(a Hamming-weighted sinc per axis, ~20 m × 22 m at 10 m pixels) by complex summation, so
scatterers interfere like in a real focused image and bright targets show the cross-shaped
sidelobes along range and azimuth. The response is separable, so a target's patch is one small
complex matrix product computed only in a window around it, never over the whole scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Range (x) and azimuth (y) resolution in pixels: Sentinel-1 IW GRDH is ~20 m × 22 m at 10 m.
RESOLUTION_PX = (2.0, 2.2)
#: Generalised Hamming coefficient of Sentinel-1's processing windows (peak sidelobe ≈ -21 dB).
HAMMING_ALPHA = 0.75
#: -3 dB width of the alpha = 0.75 weighted sinc, in units of 1/bandwidth.
_WIDTH_FACTOR = 0.98


@dataclass
class TargetPatch:
    """A rendered target: intensity (σ0, linear) of a window whose top-left pixel is (x0, y0)."""

    x0: int
    y0: int
    intensity: np.ndarray

    def add_to(self, image: np.ndarray) -> None:
        """Add the patch to ``image`` (intensity, in place), clipped to the image's extent."""
        h, w = self.intensity.shape
        ix0, iy0 = max(self.x0, 0), max(self.y0, 0)
        ix1, iy1 = min(self.x0 + w, image.shape[1]), min(self.y0 + h, image.shape[0])
        if ix1 <= ix0 or iy1 <= iy0:
            return
        part = self.intensity[iy0 - self.y0 : iy1 - self.y0, ix0 - self.x0 : ix1 - self.x0]
        image[iy0:iy1, ix0:ix1] += part


def impulse_response(
    offset_px: np.ndarray, resolution_px: float, alpha: float = HAMMING_ALPHA
) -> np.ndarray:
    """1-D weighted-sinc impulse response at ``offset_px`` pixels from a scatterer (peak 1);
    ``alpha`` is the generalised Hamming weight: 1 = no weighting (sidelobes -13 dB), 0.54 =
    Hamming (-43 dB), 0.75 = Sentinel-1 (~-21 dB)."""
    u = offset_px * (_WIDTH_FACTOR / resolution_px)
    side = (1.0 - alpha) / 2.0
    return np.sinc(u) + (side / alpha) * (np.sinc(u - 1.0) + np.sinc(u + 1.0))


def render_scatterers(
    xs: np.ndarray,
    ys: np.ndarray,
    amplitudes: np.ndarray,
    margin: int,
    resolution_px: tuple[float, float] = RESOLUTION_PX,
    alpha: float = HAMMING_ALPHA,
) -> TargetPatch:
    """Image complex point scatterers at continuous pixel positions (``xs``, ``ys``).

    The window spans the scatterers plus ``margin`` pixels, the reach of visible sidelobes;
    ``resolution_px`` is the (range, azimuth) resolution in pixels (it grows as pixels shrink).
    Pixel centres are at integer + 0.5 (GDAL convention).
    """
    x0 = math.floor(xs.min()) - margin
    y0 = math.floor(ys.min()) - margin
    x1 = math.floor(xs.max()) + margin
    y1 = math.floor(ys.max()) + margin
    cols = np.arange(x0, x1 + 1) + 0.5
    rows = np.arange(y0, y1 + 1) + 0.5
    range_response = impulse_response(cols[None, :] - xs[:, None], resolution_px[0], alpha)
    azimuth_response = impulse_response(rows[:, None] - ys[None, :], resolution_px[1], alpha)
    field = (azimuth_response * amplitudes[None, :]) @ range_response
    return TargetPatch(x0, y0, (np.abs(field) ** 2).astype(np.float32))


def _scaled(patch: TargetPatch, peak_db: float) -> TargetPatch:
    """The patch scaled so that its brightest pixel is ``peak_db`` (σ0 in dB)."""
    peak = float(patch.intensity.max())
    if peak > 0:
        patch.intensity *= np.float32(10 ** (peak_db / 10) / peak)
    return patch


def sidelobe_margin(
    peak_db: float, resolution_px: float = RESOLUTION_PX[0], alpha: float = HAMMING_ALPHA
) -> int:
    """Pixels around a target where its sidelobes still stand out of a -25 dB sea."""
    # Sidelobes fall ~21 dB below the peak (at alpha 0.75; 13 dB unweighted; a conservative
    # straight line between), then as 1/(πu): visible while above the sea.
    excess = peak_db - (13.3 + 30.8 * (1.0 - alpha)) + 25.0
    scale = resolution_px / RESOLUTION_PX[0]
    return int(np.clip(10 ** (excess / 20) / math.pi * scale, 4, 48 * scale))


@dataclass(frozen=True)
class HullStyle:
    """How a ship's return spreads over its hull (the widened world draws one per ship).

    ``fill``: scatterers per pixel² spread over the whole hull (a steel deck and cargo that
    return everywhere: the ship reads as a bright, filled hull), or 0 for the classic outline
    (points on both sides and the centre line). ``superstructure_db``: how much brighter the
    few superstructure returns are than a hull point, in intensity: ~25 dB makes a dim hull
    line under one bright cross, ~0 dB a hull as bright as its bridge."""

    fill: float = 0.0
    superstructure_db: float | None = None  # None: the classic 15–25 dB


def ship_scatterers(
    length_px: float,
    beam_px: float,
    heading_deg: float,
    rng: np.random.Generator,
    style: HullStyle | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scatterers of a ship centred at (0, 0): hull points plus superstructure.

    Returns offsets dx, dy (pixels; heading clockwise from north, i.e. up) and complex
    amplitudes. The bridge/superstructure sits aft of midships, the bow gives a moderate return.
    ``style`` None is the classic hull outline under a much brighter superstructure.
    """
    style = style or HullStyle()
    if style.fill > 0:
        n_hull = max(4, int(style.fill * length_px * max(beam_px, 1.0)))
    else:
        n_hull = max(2, int(length_px * 1.5))
    along = rng.uniform(-0.5, 0.5, n_hull) * length_px
    # The beam narrows towards the bow.
    taper = np.clip(1.0 - np.maximum(along / (0.5 * length_px + 1e-6) - 0.6, 0) * 2.0, 0.2, 1)
    if style.fill > 0:  # anywhere on the deck
        across = rng.uniform(-0.5, 0.5, n_hull) * beam_px * taper
    else:  # points on both sides and the centre line
        across = rng.choice([-0.5, 0.0, 0.5], n_hull) * beam_px * taper
    amp = rng.uniform(0.2, 0.6, n_hull)
    # A few dominant superstructure returns, by default 15–25 dB above a hull point: on a big
    # ship they carry the peak and the cross-shaped sidelobes, the hull a fainter line.
    n_super = int(rng.integers(1, 5))
    super_along = rng.uniform(-0.42, -0.1, n_super) * length_px
    super_across = rng.uniform(-0.3, 0.3, n_super) * beam_px
    if style.superstructure_db is None:
        super_amp = rng.uniform(3.0, 8.0, n_super)
    else:
        super_amp = 0.4 * 10 ** (style.superstructure_db / 20) * rng.uniform(0.7, 1.3, n_super)
    bow = np.array([0.5 * length_px])
    along = np.concatenate([along, super_along, bow])
    across = np.concatenate([across, super_across, [0.0]])
    amp = np.concatenate([amp, super_amp, [rng.uniform(0.5, 1.5)]])
    heading = math.radians(heading_deg)
    # Heading is clockwise from north (up, -y): along-ship unit vector (sin h, -cos h).
    dx = along * math.sin(heading) + across * math.cos(heading)
    dy = -along * math.cos(heading) + across * math.sin(heading)
    phases = np.exp(2j * math.pi * rng.random(amp.size))
    return dx, dy, amp * phases


def render_ship(
    cx: float,
    cy: float,
    length_px: float,
    beam_px: float,
    heading_deg: float,
    peak_db: float,
    rng: np.random.Generator,
    resolution_px: tuple[float, float] = RESOLUTION_PX,
    alpha: float = HAMMING_ALPHA,
    style: HullStyle | None = None,
) -> TargetPatch:
    """A ship's imaged intensity, scaled so its brightest pixel is ``peak_db``."""
    dx, dy, amplitudes = ship_scatterers(length_px, beam_px, heading_deg, rng, style)
    margin = sidelobe_margin(peak_db, resolution_px[0], alpha)
    patch = render_scatterers(cx + dx, cy + dy, amplitudes, margin, resolution_px, alpha)
    return _scaled(patch, peak_db)


def render_structure(
    cx: float,
    cy: float,
    size_px: float,
    n_points: int,
    peak_db: float,
    rng: np.random.Generator,
    resolution_px: tuple[float, float] = RESOLUTION_PX,
    dominant: float = 3.0,
    alpha: float = HAMMING_ALPHA,
) -> TargetPatch:
    """A compact man-made structure (platform, turbine, buoy) or a rock: points in a small
    square, the first ``dominant`` times stronger (a corner reflector: legs, deck edge)."""
    half = size_px / 2.0
    xs = cx + rng.uniform(-half, half, n_points)
    ys = cy + rng.uniform(-half, half, n_points)
    amplitudes = rng.uniform(0.5, 1.0, n_points) * np.exp(2j * math.pi * rng.random(n_points))
    amplitudes[0] *= dominant
    margin = sidelobe_margin(peak_db, resolution_px[0], alpha)
    patch = render_scatterers(xs, ys, amplitudes, margin, resolution_px, alpha)
    return _scaled(patch, peak_db)


def ghost_of(patch: TargetPatch, offset_y: int, weaker_db: float, smear_px: int) -> TargetPatch:
    """An azimuth ambiguity of ``patch``: ``weaker_db`` dB fainter at its peak, ``offset_y``
    pixels away along azimuth and smeared over ``smear_px`` pixels (ambiguities are defocused)."""
    smear = max(1, smear_px)
    h, w = patch.intensity.shape
    smeared = np.zeros((h + smear - 1, w), np.float32)
    for shift in range(smear):
        smeared[shift : shift + h] += patch.intensity
    smeared *= np.float32(10 ** (-weaker_db / 10) * patch.intensity.max() / smeared.max())
    return TargetPatch(patch.x0, patch.y0 + offset_y - smear // 2, smeared)


def splat_points(
    image: np.ndarray, xs: np.ndarray, ys: np.ndarray, intensities: np.ndarray
) -> None:
    """Add many faint incoherent point returns (urban clutter) with a 3×3 response, in place."""
    kernel = np.array([[0.05, 0.25, 0.05], [0.3, 1.0, 0.3], [0.05, 0.25, 0.05]], np.float32)
    h, w = image.shape
    flat = image.reshape(-1)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            px, py = xs + dx, ys + dy
            keep = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            np.add.at(flat, py[keep] * w + px[keep], intensities[keep] * kernel[dy + 1, dx + 1])


def darken_wake(
    background: np.ndarray,
    water: np.ndarray,
    cx: float,
    cy: float,
    heading_deg: float,
    wake_length_px: float,
    width_px: float,
    depth: float,
) -> None:
    """Darken the sea behind a moving ship (turbulent wake), in place on the mean backscatter.

    The wake starts at the ship centre, runs opposite to the heading for ``wake_length_px``,
    widens with distance and fades out; ``depth`` (0–1) is the relative darkening at its start.
    Only pixels where ``water`` is True change: a wake ends at the shore.
    """
    heading = math.radians(heading_deg)
    back_x, back_y = -math.sin(heading), math.cos(heading)  # unit vector pointing astern
    end_x, end_y = cx + back_x * wake_length_px, cy + back_y * wake_length_px
    pad = int(width_px * 3) + 2
    x0 = max(int(min(cx, end_x)) - pad, 0)
    x1 = min(int(max(cx, end_x)) + pad, background.shape[1] - 1)
    y0 = max(int(min(cy, end_y)) - pad, 0)
    y1 = min(int(max(cy, end_y)) + pad, background.shape[0] - 1)
    if x1 < x0 or y1 < y0:
        return
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float32) + 0.5
    along = (xx - cx) * back_x + (yy - cy) * back_y
    across = (xx - cx) * back_y - (yy - cy) * back_x
    spread = width_px * (1.0 + 1.5 * np.clip(along, 0, None) / wake_length_px)
    behind = np.clip(along, 0, None)
    strength = np.exp(-((across / spread) ** 2)) * np.exp(-behind / (0.5 * wake_length_px))
    strength *= (along > 0) & (along < wake_length_px)
    strength *= water[y0 : y1 + 1, x0 : x1 + 1]
    background[y0 : y1 + 1, x0 : x1 + 1] *= (1.0 - depth * strength).astype(np.float32)


def kelvin_arms(
    background: np.ndarray,
    water: np.ndarray,
    cx: float,
    cy: float,
    heading_deg: float,
    arm_length_px: float,
    gain: float,
) -> None:
    """Brighten the two Kelvin wake arms of a moving ship, in place on the mean backscatter.

    The arms leave the stern at ±19.5° from the track and fade with distance; ``gain`` is their
    relative brightening at the start (0.5–3 on calm sea, where they show best).
    """
    heading = math.radians(heading_deg)
    back_x, back_y = -math.sin(heading), math.cos(heading)
    reach = int(arm_length_px) + 3
    x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach, background.shape[1] - 1)
    y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach, background.shape[0] - 1)
    if x1 < x0 or y1 < y0:
        return
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float32) + 0.5
    along = (xx - cx) * back_x + (yy - cy) * back_y
    across = np.abs((xx - cx) * back_y - (yy - cy) * back_x)
    # Distance to the arm line |across| = along · tan(19.5°), about one pixel wide.
    off = across - along * math.tan(math.radians(19.5))
    strength = np.exp(-(off**2) / 0.8) * np.exp(-np.clip(along, 0, None) / (0.6 * arm_length_px))
    strength *= (along > 1) & (along < arm_length_px)
    strength *= water[y0 : y1 + 1, x0 : x1 + 1]
    background[y0 : y1 + 1, x0 : x1 + 1] *= (1.0 + gain * strength).astype(np.float32)
