"""The "compare methods here" use case for the dock: `mscam.scene.explain_point` (the engine
makes the tile exactly as the scene pipeline does). Nothing is imported from the engine until
`compare_methods` runs: torch may not be installed yet when the dock loads."""

from __future__ import annotations


def compare_methods(raster: str, x: float, y: float, model: str | None = None, **options):
    """`mscam.scene.explain_point(raster, x, y, model=model, **options)` for the map point (x, y)
    QGIS gives: on a raster without georeferencing, QGIS draws pixel (col, row) at (col, −row)
    (the extent is 0…width by −height…0), while the engine takes (col, row)."""
    from mscam.scene.point import explain_point

    if not georeferenced(raster):
        y = -y
    return explain_point(raster, x, y, model=model, **options)


def georeferenced(raster: str) -> bool:
    """Whether QGIS places `raster` by a geotransform or by GCPs (else by its pixel grid)."""
    from mscam.scene.raster import open_raster_info

    info = open_raster_info(raster)
    return info.geotransform is not None or len(info.gcps) >= 3
