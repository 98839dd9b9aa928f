"""The georeferenced scene side: raster and vector I/O (GDAL, imported lazily), tiling, mosaic.

Importing this package does not import GDAL; the functions below do when they run.
"""

from mscam.scene.raster import (
    GCP,
    PixelMapper,
    RasterInfo,
    RasterReader,
    atomic_output,
    crs_to_wkt,
    open_raster_info,
    read_window,
    write_geotiff,
)
from mscam.scene.vector import read_boxes, read_crs, write_boxes

__all__ = [
    "GCP",
    "PixelMapper",
    "RasterInfo",
    "RasterReader",
    "atomic_output",
    "crs_to_wkt",
    "open_raster_info",
    "read_boxes",
    "read_crs",
    "read_window",
    "write_boxes",
    "write_geotiff",
]
