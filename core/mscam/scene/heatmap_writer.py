"""Writing the heatmap: rows streamed into a tiled GTiff, finished as a Cloud Optimized GeoTIFF.

GDAL's COG driver can only copy a finished dataset, so rows go first into a tiled, compressed
GTiff under a temporary name beside the output; `finish()` builds the COG (overviews included)
under a second temporary name and renames it onto the requested path. Until then nothing exists
at that path; `discard()` (or leaving the `with` block on an error) removes both temporaries.
The heatmap is on the input's own pixel grid: same size, geotransform and CRS, or the same GCPs.

The run's hot tiles (`TileScore`: the pixel windows on the heatmap's grid and the target-class
probability the model gave them) are stored with the heatmap, so boxes drawn again from it keep
the run's scores (`mscam.scene.redraw_boxes`). They are band 1's metadata items (default domain;
GDAL's COG copy keeps no other domain, and writing one onto the finished COG would break its
layout):

- ``MSCAM_HOT_TILES``: ``"x0 y0 x1 y1 p;x0 y0 x1 y1 p;..."``, integers in heatmap pixels (x1, y1
  exclusive), ``p`` written with Python's ``repr`` so it reads back to the same float; absent
  when no tile was hot (GDAL keeps no empty item).
- ``MSCAM_HOT_REACH``: how many pixels beyond the tiles' windows the heat may reach (0 on the
  grid the tiles ran on; a few pixels when the heat was mapped back from a coarser working grid).
  Always written: it says that the tiles were stored.

Heatmaps written before this have neither item.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from mscam.errors import InputError, ModelError, OutputError
from mscam.scene.outputs import remove_files, scratch_path
from mscam.scene.raster import atomic_output, limited_block_cache, using_gdal

HEATMAP_NODATA = -1.0
#: Band 1 metadata items holding the run's hot tiles and their reach (see the module docstring).
HOT_TILES_ITEM = "MSCAM_HOT_TILES"
HOT_REACH_ITEM = "MSCAM_HOT_REACH"


@dataclass
class TileScore:
    """A hot tile: its pixel window and the target-class probability the model gave it."""

    x0: int
    y0: int
    x1: int
    y1: int
    probability: float


def format_hot_tiles(tiles: Sequence[TileScore]) -> str:
    """The `MSCAM_HOT_TILES` text of `tiles` (probabilities exactly, via `repr`)."""
    return ";".join(
        f"{int(t.x0)} {int(t.y0)} {int(t.x1)} {int(t.y1)} {float(t.probability)!r}" for t in tiles
    )


def parse_hot_tiles(text: str) -> list[TileScore]:
    """The tiles of a `MSCAM_HOT_TILES` text; ValueError when it is not one."""
    tiles = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        fields = item.split()
        if len(fields) != 5:
            raise ValueError(f"expected 'x0 y0 x1 y1 p', got {item!r}")
        x0, y0, x1, y1 = (int(v) for v in fields[:4])
        tiles.append(TileScore(x0, y0, x1, y1, float(fields[4])))
    return tiles


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

    def set_hot_tiles(self, tiles: Sequence[TileScore], reach: int = 0) -> None:
        """Store the run's hot tiles (on the heatmap's grid) and how far beyond them the heat
        may reach; before `close_rows`, while the rows are still open."""
        if self._ds is None:
            raise RuntimeError("set_hot_tiles after close_rows: the heatmap is closed")
        band = self._ds.GetRasterBand(1)
        if tiles:
            band.SetMetadataItem(HOT_TILES_ITEM, format_hot_tiles(tiles))
        band.SetMetadataItem(HOT_REACH_ITEM, str(int(reach)))

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


def _open_heatmap(path: str | os.PathLike):
    with using_gdal() as gdal:
        try:
            return gdal.Open(os.fspath(path))
        except RuntimeError as exc:
            raise InputError(f"cannot read heatmap {path}: {exc}") from None


def heatmap_tags(path: str | os.PathLike) -> dict[str, str]:
    """The tags `HeatmapWriter` recorded (method, model, target_class, …) in a heatmap."""
    ds = _open_heatmap(path)
    return {
        key[len("MSCAM_") :].lower(): value
        for key, value in (ds.GetMetadata() or {}).items()
        if key.startswith("MSCAM_")
    }


def _band_item(path: str | os.PathLike, item: str) -> str | None:
    ds = _open_heatmap(path)  # held while its band is read: GDAL frees the band with it
    return ds.GetRasterBand(1).GetMetadataItem(item)


def heatmap_hot_tiles(path: str | os.PathLike) -> list[TileScore] | None:
    """The run's hot tiles stored with a heatmap (`HeatmapWriter.set_hot_tiles`), on its grid;
    None when the heatmap holds none (written by an older version)."""
    text = _band_item(path, HOT_TILES_ITEM)
    if text is None:  # no hot tile, or none stored (an older heatmap: no reach either)
        return None if _band_item(path, HOT_REACH_ITEM) is None else []
    try:
        return parse_hot_tiles(text)
    except ValueError as exc:
        raise InputError(f"heatmap {path}: unreadable {HOT_TILES_ITEM}: {exc}") from None


def heatmap_hot_reach(path: str | os.PathLike) -> int | None:
    """How far (pixels) the heat may reach beyond the stored hot tiles; None when not stored."""
    text = _band_item(path, HOT_REACH_ITEM)
    try:
        return None if text is None else max(0, int(text))
    except ValueError:
        return None
