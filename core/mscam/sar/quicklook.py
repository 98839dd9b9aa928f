"""Quicklook PNGs of SAR scenes: σ0 in dB through a fixed window to grey, with optional boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mscam.errors import InputError, OutputError
from mscam.scene.raster import PathLike, atomic_output, using_gdal

#: The usual display window for VV σ0: dark calm sea at the bottom, ships saturate at the top.
QUICKLOOK_WINDOW_DB = (-30.0, 5.0)
BOX_COLOUR = (255, 200, 0)


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
    image = np.asarray(vv_db, dtype=np.float32)
    if image.ndim != 2 or 0 in image.shape:
        raise InputError(f"quicklook needs a 2-D image, got shape {image.shape}")
    low, high = window_db
    grey = np.clip((np.nan_to_num(image, nan=low) - low) / (high - low), 0, 1)
    grey = np.rint(grey * 255).astype(np.uint8)
    bands = [grey]
    if boxes:
        bands = [grey.copy(), grey.copy(), grey.copy()]
        h, w = grey.shape
        for x0, y0, x1, y1 in boxes:
            bx0, by0 = max(int(x0) - 1, 0), max(int(y0) - 1, 0)
            bx1, by1 = min(int(x1) + 1, w - 1), min(int(y1) + 1, h - 1)
            for band, value in zip(bands, BOX_COLOUR):
                band[by0, bx0 : bx1 + 1] = value
                band[by1, bx0 : bx1 + 1] = value
                band[by0 : by1 + 1, bx0] = value
                band[by0 : by1 + 1, bx1] = value
    with atomic_output(path) as temporary, using_gdal() as gdal:
        try:
            memory = gdal.GetDriverByName("MEM").Create(
                "", grey.shape[1], grey.shape[0], len(bands), gdal.GDT_Byte
            )
            for index, band in enumerate(bands):
                memory.GetRasterBand(index + 1).WriteArray(band)
            gdal.GetDriverByName("PNG").CreateCopy(temporary, memory)
            memory = None
        except RuntimeError as exc:
            raise OutputError(f"cannot write {path}: {exc}") from None
