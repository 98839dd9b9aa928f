"""Sentinel-1 calibration LUTs: σ0 = DN² / A², with A from the product's own sigmaNought vectors.

A GRD product's ``annotation/calibration/calibration-*.xml`` gives A at a sparse grid: one
``calibrationVector`` per few hundred lines, each with A at a list of pixels. Between them A is
bilinear in line and pixel (ESA's Sentinel-1 radiometric calibration note, and GDAL's calibrated
SAFE bands). A varies across the swath by about 1.5 dB, so one constant
(:data:`mscam.radiometry.units.DEFAULT_CALIBRATION`) is only right on average.

Pure numpy and the standard library; finding and reading the file of a product is
:mod:`mscam.scene.safe`'s part.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import numpy as np

from mscam.errors import InputError

#: A real calibration annotation is 1–3 MB; anything much larger is not one.
MAX_XML_BYTES = 64 * 2**20


@dataclass(frozen=True)
class CalibrationLut:
    """A (sigmaNought) at ``lines`` × ``pixels`` of a raster of ``size`` = (width, height)."""

    lines: np.ndarray  # (n,) increasing line numbers
    pixels: np.ndarray  # (m,) increasing pixel numbers
    values: np.ndarray  # (n, m) A at each line and pixel
    size: tuple[int, int]

    def at(
        self, x0: int, y0: int, width: int, height: int, grid: tuple[int, int] | None = None
    ) -> np.ndarray:
        """A over a window, (height, width) float64, bilinear between the vectors and constant
        beyond the first and last. ``grid`` = (width, height) of the raster the window is on
        when it is not the product's own (a working grid of the same footprint)."""
        grid_w, grid_h = grid or self.size
        cols = (np.arange(x0, x0 + width) + 0.5) * (self.size[0] / grid_w) - 0.5
        rows = (np.arange(y0, y0 + height) + 0.5) * (self.size[1] / grid_h) - 0.5
        across = np.stack([np.interp(cols, self.pixels, vector) for vector in self.values])
        i0, i1, weight = _brackets(rows, self.lines)
        return across[i0] * (1.0 - weight)[:, None] + across[i1] * weight[:, None]

    @property
    def range(self) -> tuple[float, float]:
        return float(self.values.min()), float(self.values.max())


def _brackets(points: np.ndarray, knots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point, the knots on either side and the weight of the second (clamped)."""
    position = np.interp(points, knots, np.arange(len(knots), dtype=np.float64))
    i0 = np.floor(position).astype(int)
    i1 = np.minimum(i0 + 1, len(knots) - 1)
    return i0, i1, position - i0


def _numbers(element: ElementTree.Element | None, what: str, name: str) -> np.ndarray:
    if element is None or not (element.text or "").split():
        raise InputError(f"calibration LUT {name}: a calibrationVector has no {what}")
    try:
        return np.array(element.text.split(), dtype=np.float64)
    except ValueError:
        raise InputError(f"calibration LUT {name}: {what} holds a non-number") from None


def parse_calibration(text: bytes, size: tuple[int, int], name: str = "") -> CalibrationLut:
    """The sigmaNought LUT of a Sentinel-1 calibration annotation for a raster of ``size``.

    Vectors whose pixels differ are put on the first vector's pixels (real products share them).
    :class:`InputError` (one line) when the file is not one, or A is not finite and positive.
    """
    if len(text) > MAX_XML_BYTES:
        raise InputError(f"calibration LUT {name} is over {MAX_XML_BYTES // 2**20} MB")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise InputError(f"calibration LUT {name} is not valid XML: {exc}") from None
    vectors = root.findall("./calibrationVectorList/calibrationVector")
    if root.tag != "calibration" or not vectors:
        raise InputError(f"calibration LUT {name} has no calibrationVector")
    lines, rows, pixels = [], [], None
    for vector in vectors:
        line = _numbers(vector.find("line"), "line", name)[0]
        where = _numbers(vector.find("pixel"), "pixel", name)
        values = _numbers(vector.find("sigmaNought"), "sigmaNought", name)
        if len(where) != len(values) or np.any(np.diff(where) <= 0):
            raise InputError(f"calibration LUT {name}: pixels and sigmaNought do not match")
        if pixels is None:
            pixels = where
        lines.append(line)
        rows.append(np.interp(pixels, where, values))
    order = np.argsort(lines, kind="stable")
    lut = CalibrationLut(
        np.asarray(lines)[order], pixels, np.stack(rows)[order], (int(size[0]), int(size[1]))
    )
    if np.any(np.diff(lut.lines) <= 0):
        raise InputError(f"calibration LUT {name}: two vectors for one line")
    if not np.all(np.isfinite(lut.values) & (lut.values > 0)):
        raise InputError(f"calibration LUT {name}: sigmaNought must be finite and positive")
    return lut
