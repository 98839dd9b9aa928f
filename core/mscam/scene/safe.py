"""What a Sentinel-1 SAFE product opened by GDAL's SENTINEL1 driver adds: its calibration LUTs.

GDAL opens a product by its ``manifest.safe``, its folder or its zip (``/vsizip/…``); its bands
are the measurement files' UInt16 DN, each with ``POLARIZATION`` and ``SWATH`` metadata, and its
file list names every annotation. For a band read as DN, `sentinel1_calibration` finds the
calibration annotation of the band's polarisation and swath in that list and reads its
sigmaNought LUT (:mod:`mscam.radiometry.calibration`), so σ0 = DN²/A² uses the product's own A.
Any other raster, or a product whose calibration cannot be read, gets None (and a warning for
the latter): the preprocessing then uses the constant A of :mod:`mscam.radiometry.units`.
"""

from __future__ import annotations

import logging
import os

from mscam.errors import InputError
from mscam.radiometry.calibration import MAX_XML_BYTES, CalibrationLut, parse_calibration
from mscam.scene.raster import RasterReader, using_gdal

log = logging.getLogger(__name__)

__all__ = ["sentinel1_calibration"]


def _read_small(gdal, path: str) -> bytes:
    """The bytes of a (possibly /vsizip/) file through GDAL's virtual file system, bounded."""
    stat = gdal.VSIStatL(path)
    if stat is None or stat.size > MAX_XML_BYTES:
        raise InputError(f"calibration LUT {path} is missing or over {MAX_XML_BYTES} bytes")
    handle = gdal.VSIFOpenL(path, "rb")
    try:
        return bytes(gdal.VSIFReadL(1, stat.size, handle))
    finally:
        gdal.VSIFCloseL(handle)


def sentinel1_calibration(reader: RasterReader, band: int) -> CalibrationLut | None:
    """The sigmaNought LUT of 1-based ``band`` when ``reader`` is a Sentinel-1 SAFE product,
    else None."""
    info = reader.info
    with using_gdal() as gdal:
        dataset = reader.dataset
        if dataset.GetDriver().ShortName != "SAFE":
            return None
        items = dataset.GetRasterBand(band).GetMetadata() or {}
        files = list(dataset.GetFileList() or [])
        polarisation = items.get("POLARIZATION", "").lower()
        swath = items.get("SWATH", "").lower()
        # calibration-s1a-iw-grd-vv-…xml: the band's swath and polarisation as words of the name.
        wanted = [
            path
            for path in files
            if os.path.basename(path).lower().startswith("calibration-")
            and f"-{polarisation}-" in os.path.basename(path).lower()
            and (not swath or f"-{swath}-" in os.path.basename(path).lower())
        ]
        if len(wanted) != 1:
            log.warning(
                "%s: %s calibration annotations for band %d (%s %s); using the constant A",
                reader.name,
                len(wanted) or "no",
                band,
                swath.upper(),
                polarisation.upper(),
            )
            return None
        try:
            text = _read_small(gdal, wanted[0])
        except (RuntimeError, InputError) as exc:
            log.warning("cannot read %s (%s); using the constant A", wanted[0], exc)
            return None
    try:
        lut = parse_calibration(text, (info.width, info.height), os.path.basename(wanted[0]))
    except InputError as exc:
        log.warning("%s; using the constant A", exc)
        return None
    low, high = lut.range
    log.info(
        "band %d (%s): σ0 = DN²/A² with the product's sigmaNought LUT (A %.1f–%.1f)",
        band,
        polarisation.upper(),
        low,
        high,
    )
    return lut
