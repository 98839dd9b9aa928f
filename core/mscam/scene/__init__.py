"""The georeferenced scene side: raster and vector I/O (GDAL, imported lazily), tiling, mosaic.

Importing this package does not import GDAL; the functions below do when they run.

The scene use cases every front end calls (`mscam.scene.api`) are here too, imported when first
used (so importing this package does not import the pipeline, and `mscam.eval`, which imports
this package, does not import itself back): `explain_scene`, `redraw_boxes`, `explain_point`,
`evaluate_scene`.
"""

from importlib import import_module

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

#: The scene use cases, imported on first use: name → module.
_USE_CASES = {
    "explain_scene": "mscam.scene.pipeline",
    "redraw_boxes": "mscam.scene.api",
    "explain_point": "mscam.scene.point",
    "evaluate_scene": "mscam.eval.scene",
    "SceneSettings": "mscam.scene.pipeline",
    "SceneResult": "mscam.scene.pipeline",
    "Comparison": "mscam.scene.point",
}

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
    *_USE_CASES,
]


def __getattr__(name: str):
    if name in _USE_CASES:
        return getattr(import_module(_USE_CASES[name]), name)
    raise AttributeError(f"module 'mscam.scene' has no attribute {name!r}")
