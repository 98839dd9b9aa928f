"""The "compare methods here" use case for the dock: `mscam.scene.explain_point` (the engine
makes the tile exactly as the scene pipeline does). Nothing is imported from the engine until
`compare_methods` runs: torch may not be installed yet when the dock loads."""

from __future__ import annotations


def compare_methods(raster: str, x: float, y: float, model: str | None = None, **options):
    """`mscam.scene.explain_point(raster, x, y, model=model, **options)`."""
    from mscam.scene.point import explain_point

    return explain_point(raster, x, y, model=model, **options)
