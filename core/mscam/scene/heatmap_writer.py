"""Writing the heatmap: rows streamed into a tiled GTiff, finished as a Cloud Optimized GeoTIFF.

GDAL's COG driver can only copy a finished dataset, so rows go first into a tiled, compressed
GTiff under a temporary name beside the output; `finish()` builds the COG (overviews included)
under a second temporary name and renames it onto the requested path. Until then nothing exists
at that path; `discard()` (or leaving the `with` block on an error) removes both temporaries.
The heatmap is on the input's own pixel grid: same size, geotransform and CRS, or the same GCPs.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np

from mscam.errors import InputError, ModelError, OutputError
from mscam.scene.outputs import remove_files, scratch_path
from mscam.scene.raster import atomic_output, limited_block_cache, using_gdal

HEATMAP_NODATA = -1.0


class HeatmapWriter:
    """Streams Float32 heatmap rows to `path` on the grid of the raster `like` (a GDAL dataset)."""

    def __init__(self, path: str | os.PathLike, like, tags: dict[str, str]) -> None:
        self.path = Path(path).absolute()
        folder = self.path.parent
        if not folder.is_dir():
            raise OutputError(f"cannot write {path}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"cannot write {path}: folder {folder} is not writable")
        # The scratch GTiff is a hidden sibling: same filesystem, and the COG copy reads it. Its
        # name carries our process id, so a later run can remove it if we are killed.
        self._scratch = Path(scratch_path(self.path.with_suffix(".tif"), "scratch"))
        options = [
            "TILED=YES",
            "BLOCKXSIZE=256",
            "BLOCKYSIZE=256",
            "COMPRESS=DEFLATE",
            "PREDICTOR=3",
            "BIGTIFF=IF_SAFER",
        ]
        with using_gdal() as gdal:
            try:
                self._ds = gdal.GetDriverByName("GTiff").Create(
                    str(self._scratch),
                    like.RasterXSize,
                    like.RasterYSize,
                    1,
                    gdal.GDT_Float32,
                    options,
                )
            except RuntimeError as exc:
                raise OutputError(f"cannot write {path}: {exc}") from None
        geotransform = like.GetGeoTransform(can_return_null=True)
        if geotransform is not None:
            self._ds.SetGeoTransform(geotransform)
            self._ds.SetProjection(like.GetProjection())
        if like.GetGCPCount():
            self._ds.SetGCPs(like.GetGCPs(), like.GetGCPProjection())
        band = self._ds.GetRasterBand(1)
        band.SetNoDataValue(HEATMAP_NODATA)
        band.SetDescription("heatmap")
        self._ds.SetMetadata({f"MSCAM_{key.upper()}": str(value) for key, value in tags.items()})

    def write_rows(self, y0: int, rows: np.ndarray) -> None:
        # The promise of a heatmap: values in [0, 1] or nodata, never NaN or inf.
        if not np.isfinite(rows).all():
            raise ModelError(
                f"non-finite heat in rows {y0}..{y0 + len(rows) - 1}: the model's output is not "
                "finite there (NaN or inf weights, or input values out of range)"
            )
        rows = np.where(rows == HEATMAP_NODATA, rows, np.clip(rows, 0.0, 1.0))
        self._ds.GetRasterBand(1).WriteArray(np.ascontiguousarray(rows, np.float32), 0, y0)

    def close_rows(self) -> Path:
        """End the row writes: the returned scratch GeoTIFF holds the whole heatmap (grid, tags,
        nodata as the COG will) and can be read, e.g. for the boxes, while `finish` builds the
        COG from it. It lives until `finish` or `discard`."""
        if self._ds is not None:
            self._ds.FlushCache()
            self._ds = None
        return self._scratch

    def finish(self) -> Path:
        """Build the COG with overviews, move it onto the requested path, remove the scratch."""
        try:
            return self.build_cog()
        finally:
            self.discard()

    def build_cog(self) -> Path:
        """Build the COG with overviews and move it onto the requested path; the scratch rows
        stay readable until `discard` (the boxes may still be reading them)."""
        rows = self.close_rows()
        # The copy streams block by block: a small cache is as fast and keeps the peak low
        # (measured on an 8192² heatmap: 32 MiB, +115 MiB and 2.0 s; 64 MiB, +160 MiB, 2.1 s).
        with (
            atomic_output(self.path) as temporary,
            limited_block_cache(32 * 2**20),
            using_gdal() as gdal,
        ):
            try:
                gdal.Translate(
                    temporary,
                    str(rows),
                    format="COG",
                    creationOptions=[
                        "COMPRESS=DEFLATE",
                        "PREDICTOR=YES",
                        "BLOCKSIZE=256",
                        "OVERVIEWS=IGNORE_EXISTING",
                        "RESAMPLING=AVERAGE",
                        "BIGTIFF=IF_SAFER",
                        # Compress blocks (and build overviews) on every core.
                        "NUM_THREADS=ALL_CPUS",
                    ],
                )
            except RuntimeError as exc:
                raise OutputError(f"cannot write {self.path}: {exc}") from None
        return self.path

    def discard(self) -> None:
        self._ds = None
        remove_files(self._scratch)

    def __enter__(self) -> HeatmapWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()


def heatmap_tags(path: str | os.PathLike) -> dict[str, str]:
    """The tags `HeatmapWriter` recorded (method, model, target_class, …) in a heatmap."""
    with using_gdal() as gdal:
        try:
            ds = gdal.Open(str(path))
        except RuntimeError as exc:
            raise InputError(f"cannot read heatmap {path}: {exc}") from None
    return {
        key[len("MSCAM_") :].lower(): value
        for key, value in (ds.GetMetadata() or {}).items()
        if key.startswith("MSCAM_")
    }
