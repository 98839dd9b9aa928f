"""Random fields for synthetic SAR scenes: correlated Gaussian fields, K-texture and speckle.

Everything is numpy and driven by a caller's ``numpy.random.Generator``, so a scene is a pure
function of its seed. Correlated fields are white noise filtered in the Fourier domain; fields
whose correlation spans many pixels (wind, land cover, relief) are made on a coarse grid and
upsampled bilinearly, which is both faster and free of the FFT's wrap-around at the scene edges.
"""

from __future__ import annotations

import math

import numpy as np

Shape = tuple[int, int]


def upsample(field: np.ndarray, shape: Shape) -> np.ndarray:
    """Bilinear resampling of a 2-D ``field`` onto ``shape`` (pixel-centre aligned), float32."""

    def axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        low = np.floor(pos).astype(np.intp)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low).astype(np.float32)

    r0, r1, fr = axis_weights(field.shape[0], shape[0])
    c0, c1, fc = axis_weights(field.shape[1], shape[1])
    src = field.astype(np.float32, copy=False)
    rows = src[r0] * (1 - fr)[:, None] + src[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc)[None, :] + rows[:, c1] * fc[None, :]


def _filtered_noise(shape: Shape, spectrum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(shape, dtype=np.float32)
    field = np.fft.irfft2(np.fft.rfft2(noise) * spectrum, s=shape).astype(np.float32)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def _frequencies(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return fy, fx


def gaussian_field(
    shape: Shape,
    corr_px: float,
    rng: np.random.Generator,
    anisotropy: float = 1.0,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field correlated over ``corr_px`` pixels (float32).

    ``corr_px`` is the distance where the correlation falls to 1/e (a Gaussian kernel of standard
    deviation ``corr_px / 2``); ``anisotropy`` > 1 stretches it along ``angle_deg`` (degrees
    counter-clockwise from the x axis), which makes wind streaks. Large correlations are computed
    on a coarse grid (at least 3 px per correlation length) and upsampled.
    """
    factor = max(1, int(corr_px / 3))
    if factor > 1:
        # Pad by a quarter before cropping so the periodic FFT field does not wrap at the edges.
        coarse = (shape[0] // factor + 3, shape[1] // factor + 3)
        padded = (int(coarse[0] * 1.25) + 1, int(coarse[1] * 1.25) + 1)
        small = gaussian_field(padded, corr_px / factor, rng, anisotropy, angle_deg)
        return upsample(small[: coarse[0], : coarse[1]], (coarse[0] * factor, coarse[1] * factor))[
            : shape[0], : shape[1]
        ]
    fy, fx = _frequencies(shape)
    theta = math.radians(angle_deg)
    along = fx * math.cos(theta) - fy * math.sin(theta)  # y grows downwards in an image
    across = fx * math.sin(theta) + fy * math.cos(theta)
    sigma = corr_px / 2.0
    spectrum = np.exp(-2 * math.pi**2 * sigma**2 * ((along * anisotropy) ** 2 + across**2))
    return _filtered_noise(shape, spectrum, rng)


def power_law_field(
    shape: Shape, beta: float, rng: np.random.Generator, largest_px: float
) -> np.ndarray:
    """Unit-variance fractal field with power spectrum ∝ |k|^-beta (coastlines, relief).

    Wavelengths longer than ``largest_px`` are damped so the field has no scene-wide trend.
    """
    fy, fx = _frequencies(shape)
    k = np.sqrt(fx**2 + fy**2)
    k0 = 1.0 / largest_px
    spectrum = (k**2 + k0**2) ** (-beta / 4.0)
    spectrum[0, 0] = 0.0
    return _filtered_noise(shape, spectrum, rng)


def swell_field(
    shape: Shape, wavelength_px: float, direction_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """Unit-variance narrow-band wave field: ocean swell, the wave pattern SAR shows over sea."""
    fy, fx = _frequencies(shape)
    theta = math.radians(direction_deg)
    k0 = 1.0 / wavelength_px
    # Energy around ±k0 along the swell direction, ~15 % spread in wavenumber and direction.
    kx0, ky0 = k0 * math.cos(theta), -k0 * math.sin(theta)
    spread = 0.15 * k0
    peak = np.exp(-((fx - kx0) ** 2 + (fy - ky0) ** 2) / (2 * spread**2))
    mirror = np.exp(-((fx + kx0) ** 2 + (fy + ky0) ** 2) / (2 * spread**2))
    return _filtered_noise(shape, peak + mirror, rng)


def gamma_texture(gaussian: np.ndarray, nu: float | np.ndarray) -> np.ndarray:
    """Unit-mean Gamma(ν)-distributed texture with the correlation of a Gaussian field.

    The Wilson–Hilferty transform ``(1 - 1/(9ν) + g·sqrt(1/(9ν)))³`` maps a standard normal ``g``
    to a Gamma(ν, 1/ν) variate (accurate for ν ≥ 1), so the texture keeps the field's spatial
    correlation. Texture × speckle is K-distributed clutter; ν ≈ 2 is rough, ≈ 20 calm sea.
    """
    nu = np.maximum(np.asarray(nu, dtype=np.float32), 1.0)
    c = 1.0 / (9.0 * nu)
    base = np.maximum(1.0 - c + gaussian * np.sqrt(c), 0.0)
    return (base**3).astype(np.float32)


def speckle(
    shape: Shape, looks: float, rng: np.random.Generator, corr_px: float = 0.0
) -> np.ndarray:
    """Multilook intensity speckle: Gamma(shape=L, scale=1/L), unit mean, variance 1/L.

    ``corr_px`` > 0 correlates neighbouring pixels, as in products sampled finer than their
    resolution: each look is the intensity of a circular Gaussian field smoothed by a Gaussian
    of ``corr_px`` pixels, and round(L) (at least 1) such looks are averaged.
    """
    if corr_px <= 0:
        return rng.standard_gamma(looks, size=shape, dtype=np.float32) / np.float32(looks)
    reach = max(1, math.ceil(2.5 * corr_px))
    taps = np.exp(-0.5 * (np.arange(-reach, reach + 1) / corr_px) ** 2)
    taps = (taps / np.sqrt((taps**2).sum())).astype(np.float32)  # the 2-D kernel: unit power
    n_looks = max(1, round(looks))
    total = np.zeros(shape, np.float32)
    for _ in range(2 * n_looks):  # real and imaginary parts of every look
        raw = rng.standard_normal((shape[0] + 2 * reach, shape[1] + 2 * reach), np.float32)
        rows = sum(w * raw[k : k + shape[0]] for k, w in enumerate(taps))
        field = sum(w * rows[:, k : k + shape[1]] for k, w in enumerate(taps))
        total += field * field
    return total / np.float32(2 * n_looks)


def blob_mask(
    shape: Shape, cx: float, cy: float, radius: float, rng: np.random.Generator
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """A rough, roughly round blob (island, lake, town): its inclusive pixel box and bool mask."""
    margin = int(radius * 1.6) + 2
    x0, y0 = max(int(cx) - margin, 0), max(int(cy) - margin, 0)
    x1, y1 = min(int(cx) + margin, shape[1] - 1), min(int(cy) + margin, shape[0] - 1)
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float32)
    angle = np.arctan2(yy - cy, xx - cx)
    # A few random harmonics on the radius give a natural outline.
    edge = np.full_like(angle, radius)
    for harmonic in range(2, 6):
        edge += (
            radius
            * rng.uniform(0, 0.3 / harmonic * 2)
            * np.cos(harmonic * angle + rng.uniform(0, 2 * math.pi))
        )
    mask = np.hypot(xx - cx, yy - cy) <= edge
    return (x0, y0, x1, y1), mask


def gaussian_blur(field: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur through the FFT, with reflected padding so edges do not wrap (float32)."""
    pad = int(3 * sigma_px) + 1
    padded = np.pad(field.astype(np.float32), pad, mode="reflect")
    fy, fx = _frequencies(padded.shape)
    spectrum = np.exp(-2 * math.pi**2 * sigma_px**2 * (fx**2 + fy**2))
    blurred = np.fft.irfft2(np.fft.rfft2(padded) * spectrum, s=padded.shape)
    return blurred[pad:-pad, pad:-pad].astype(np.float32)


def block_mean(field: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor``×``factor`` blocks (the last partial blocks are edge-padded)."""
    h, w = field.shape
    ph, pw = -h % factor, -w % factor
    padded = np.pad(field.astype(np.float32), ((0, ph), (0, pw)), mode="edge")
    return padded.reshape(padded.shape[0] // factor, factor, -1, factor).mean(axis=(1, 3))
