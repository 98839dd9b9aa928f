"""Export a styled heatmap as it looks on the map: a georeferenced RGBA GeoTIFF.

For reports and for tools that cannot colour a Float32 raster: the layer's own renderer runs in a
raster pipe, so the colours and the transparency of cold pixels and nodata are those on screen.
"""

from __future__ import annotations

import os
import uuid

from qgis.core import QgsProject, QgsRasterFileWriter, QgsRasterPipe

from .compat import WRITER_SUCCESS


def export_styled_raster(layer, path: str, feedback=None) -> str:
    """Write `layer` rendered with its current renderer to `path` (RGBA GeoTIFF, layer CRS,
    full resolution); atomic: a failure leaves nothing at `path`."""
    provider = layer.dataProvider()
    pipe = QgsRasterPipe()
    if not pipe.set(provider.clone()) or not pipe.set(layer.renderer().clone()):
        raise RuntimeError(f"cannot build a raster pipe for {layer.name()}")
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{uuid.uuid4().hex[:8]}.{name}")
    writer = QgsRasterFileWriter(temporary)
    writer.setOutputFormat("GTiff")
    writer.setCreateOptions(["COMPRESS=DEFLATE", "TILED=YES"])
    error = writer.writeRaster(
        pipe,
        provider.xSize(),
        provider.ySize(),
        provider.extent(),
        provider.crs(),
        QgsProject.instance().transformContext(),
        feedback,
    )
    if error != WRITER_SUCCESS or not os.path.exists(temporary):
        for leftover in (temporary, temporary + ".aux.xml"):
            if os.path.exists(leftover):
                os.remove(leftover)
        raise RuntimeError(f"cannot write {path} (QgsRasterFileWriter error {int(error)})")
    os.replace(temporary, path)
    return path
