"""Quicklook PNGs of SAR scenes: σ0 in dB through a fixed window to grey, with optional boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mscam.errors import InputError, OutputError
from mscam.scene.raster import PathLike, atomic_output, using_gdal

#: The usual display window for VV σ0: dark calm sea at the bottom, ships saturate at the top.
QUICKLOOK_WINDOW_DB = (-30.0, 5.0)
BOX_COLOUR = (255, 200, 0)


def grey_db(vv_db: np.ndarray, window_db: tuple[float, float] = QUICKLOOK_WINDOW_DB) -> np.ndarray:
    """σ0 in dB through a fixed window to 0–255 grey (NaN is black)."""
    image = np.asarray(vv_db, dtype=np.float32)
    if image.ndim != 2 or 0 in image.shape:
        raise InputError(f"quicklook needs a 2-D image, got shape {image.shape}")
    low, high = window_db
    grey = np.clip((np.nan_to_num(image, nan=low) - low) / (high - low), 0, 1)
    return np.rint(grey * 255).astype(np.uint8)


def draw_boxes(
    rgb: list[np.ndarray], boxes: Sequence[Sequence[int]], colour: tuple[int, int, int]
) -> None:
    """Outline inclusive pixel boxes one pixel outside themselves, so no target is hidden."""
    h, w = rgb[0].shape
    for x0, y0, x1, y1 in boxes:
        bx0, by0 = max(int(x0) - 1, 0), max(int(y0) - 1, 0)
        bx1, by1 = min(int(x1) + 1, w - 1), min(int(y1) + 1, h - 1)
        for band, value in zip(rgb, colour):
            band[by0, bx0 : bx1 + 1] = value
            band[by1, bx0 : bx1 + 1] = value
            band[by0 : by1 + 1, bx0] = value
            band[by0 : by1 + 1, bx1] = value


def write_png(bands: Sequence[np.ndarray], path: PathLike) -> None:
    """Write 8-bit bands (grey or RGB) as a PNG, atomically."""
    with atomic_output(path) as temporary, using_gdal() as gdal:
        try:
            memory = gdal.GetDriverByName("MEM").Create(
                "", bands[0].shape[1], bands[0].shape[0], len(bands), gdal.GDT_Byte
            )
            for index, band in enumerate(bands):
                memory.GetRasterBand(index + 1).WriteArray(band)
            gdal.GetDriverByName("PNG").CreateCopy(temporary, memory)
            memory = None
        except RuntimeError as exc:
            raise OutputError(f"cannot write {path}: {exc}") from None


def quicklook_png(
    vv_db: np.ndarray,
    path: PathLike,
    boxes: Sequence[Sequence[int]] | None = None,
    window_db: tuple[float, float] = QUICKLOOK_WINDOW_DB,
) -> None:
    """Write ``vv_db`` (H, W) as a grey PNG over the fixed ``window_db`` (NaN is black).

    With ``boxes`` (inclusive pixel boxes x0, y0, x1, y1) the PNG is RGB and each box is outlined
    one pixel outside itself in amber, so the outline never hides the target it marks.
    """
    grey = grey_db(vv_db, window_db)
    if not boxes:
        write_png([grey], path)
        return
    rgb = [grey.copy(), grey.copy(), grey.copy()]
    draw_boxes(rgb, boxes, BOX_COLOUR)
    write_png(rgb, path)


# A "hot" ramp for the heatmap: transparent when cold, through red and orange to pale yellow.
_HEAT_STOPS = np.array([0.0, 0.15, 0.4, 0.7, 1.0])
_HEAT_RGB = np.array([[0, 0, 0], [120, 0, 40], [220, 30, 30], [255, 150, 0], [255, 255, 160]])
PREDICTED_COLOUR = (0, 230, 255)


def heat_overlay_png(
    vv_db: np.ndarray,
    heat: np.ndarray,
    path: PathLike,
    boxes: Sequence[Sequence[int]] = (),
    truth: Sequence[Sequence[int]] = (),
    window_db: tuple[float, float] = QUICKLOOK_WINDOW_DB,
) -> None:
    """The scene in grey with the heatmap (values in [0, 1], < 0 is nodata) blended over it,
    predicted boxes in cyan and truth boxes in amber."""
    grey = grey_db(vv_db, window_db).astype(np.float32)
    values = np.clip(np.nan_to_num(np.asarray(heat, np.float32), nan=0.0), 0, 1)
    # Opacity grows with the heat, so cold sea shows the SAR image untouched.
    alpha = np.clip((values - 0.05) / 0.35, 0, 1) * 0.85
    rgb = []
    for channel in range(3):
        colour = np.interp(values, _HEAT_STOPS, _HEAT_RGB[:, channel])
        rgb.append(np.rint(grey * (1 - alpha) + colour * alpha).astype(np.uint8))
    draw_boxes(rgb, truth, BOX_COLOUR)
    draw_boxes(rgb, boxes, PREDICTED_COLOUR)
    write_png(rgb, path)
