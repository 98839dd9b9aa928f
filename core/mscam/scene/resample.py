"""Working at the model's pixel spacing: the scene resampled in its own pixel grid, and back.

A model card may name the ground spacing its model was trained at (`ModelCard.pixel_spacing`).
When a scene's spacing (`mscam.scene.spacing`) is outside what the card accepts, the pipeline
works on a *working grid*: the same footprint cut into `width·s/s_m × height·s/s_m` pixels (no
reprojection; pixel corners stay on the input's corners). Tiling, CNN, CAM and mosaic run there;
the working heatmap goes to a scratch GeoTIFF and is then mapped back onto the input's own grid
(bilinear), so the final heatmap has the input's size, georeferencing and nodata as always.

Both directions are GDAL VRTs, read window by window: no whole-scene array is ever held.

Radiometry: a finer scene is averaged to the model's spacing (`SHRINK_RESAMPLING`; see there);
a coarser one is bilinearly interpolated. Averaging and interpolation happen in linear power,
never in dB or amplitude: each band the model reads goes through a VRT that turns it into power
(dB → 10^(dB/10), amplitude and DN → their square, linear σ0 as it is), is resampled there, and is
turned back into its own unit (10·log10, square root). Averaging dB values would be a geometric
mean of the power: about 2.5 dB darker on single-look sea. Nodata (declared, NaN, DN 0) is left
out of every average; a working pixel is nodata only when all the input pixels under it are.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TypeVar
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from mscam.errors import InputError, OutputError
from mscam.models import ModelCard
from mscam.scene.heatmap_writer import HEATMAP_NODATA, HeatmapWriter
from mscam.scene.raster import (
    MIN_STREAMING_CACHE,
    RasterInfo,
    RasterReader,
    limited_block_cache,
    using_gdal,
)
from mscam.scene.spacing import PixelSpacing, format_metres, scene_pixel_spacing

log = logging.getLogger(__name__)

__all__ = [
    "MappedBackHeatmap",
    "WorkingGrid",
    "map_back",
    "open_working_scene",
    "working_preprocessor",
]

#: Into power and back, per input unit (GDAL's built-in VRT pixel functions; None: as it is).
_TO_POWER = {"dB": "dB2pow", "amplitude": "intensity", "DN": "intensity", "linear": None}
_FROM_POWER = {"dB": ("dB", 'fact="10"'), "amplitude": ("sqrt", ""), "DN": ("sqrt", "")}

Tile = TypeVar("Tile")

#: How a scene finer than the model is brought to the model's spacing: "average" (in linear
#: power) is the radiometrically faithful choice, and the models from 2.1.0 on train on speckle of
#: 1–32 looks and on targets as sharp as one pixel (a 3 m scene averaged to 10 m has ~11× its
#: looks and ~1 px resolution). Held-out 3 m scenes of the other generator, two seed sets: 2.1.0
#: F1 0.65 / 0.59 averaged; 2.2.0 0.31 / 0.37 (its ships' chips: 4 of 22 called ships averaged, 6
#: with "nearest"); the 2.0.0 models, trained on 1–8 looks and 1.6–2.6 px, scored 0.17 / 0.36 with
#: "nearest" and 0.31 averaged. "nearest" stays available (`open_working_scene(shrink="nearest")`),
#: and the pipeline takes it for a scene resampled finer than it was imaged (its speckle says so:
#: `spacing.SceneDetail.oversampled`): averaging that blurs targets and smooths speckle again
#: (held-out open sea, 10 m warped to 3 m, 10 m model: F1 0.63 → 0.79 bilinear-warped, 0.76 →
#: 0.85 nearest-warped, as at 10 m).
SHRINK_RESAMPLING = "average"


@dataclass(frozen=True)
class WorkingGrid:
    """Where the pipeline works: the input's grid, or the same footprint at the model's spacing."""

    input_size: tuple[int, int]  # (width, height) of the input
    size: tuple[int, int]  # (width, height) of the working grid
    scene_spacing: PixelSpacing | None  # None: unknown

    @property
    def resampled(self) -> bool:
        return self.size != self.input_size

    @property
    def shrinks(self) -> bool:
        """Whether the working grid is no finer than the input (a finer scene brought down)."""
        return all(w <= i for w, i in zip(self.size, self.input_size))

    @property
    def spacing(self) -> tuple[float, float] | None:
        """Metres per working pixel (x, y); None when the scene's spacing is unknown."""
        if self.scene_spacing is None:
            return None
        return (
            self.scene_spacing.x * self.input_size[0] / self.size[0],
            self.scene_spacing.y * self.input_size[1] / self.size[1],
        )

    @classmethod
    def plan(cls, info: RasterInfo, card: ModelCard, override: float | None = None) -> WorkingGrid:
        """The grid a scene is worked on: resampled when the card names a pixel spacing and the
        scene's (`override`, else read from its georeferencing) is outside what it accepts."""
        size = (info.width, info.height)
        spacing = (
            PixelSpacing(override, override, "user")
            if override is not None
            else scene_pixel_spacing(info)
        )
        model = card.pixel_spacing
        if model is None:
            return cls(size, size, spacing)
        if spacing is None:
            log.warning(
                "the pixel spacing of %s is unknown (no georeferencing in metres): the scene is "
                "used as it is, as if at the model's %s m; give it with --pixel-spacing",
                info.path,
                format_metres(model),
            )
            return cls(size, size, None)
        if card.accepts_spacing(spacing.x) and card.accepts_spacing(spacing.y):
            return cls(size, size, spacing)
        working = (
            max(1, round(info.width * spacing.x / model)),
            max(1, round(info.height * spacing.y / model)),
        )
        grid = cls(size, working, spacing)
        log.info(
            "scene at %s m, model at %s m: working at %s m (%d×%d → %d×%d pixels)",
            spacing,
            format_metres(model),
            grid.spacing_text(),
            *size,
            *working,
        )
        if max(spacing.x, spacing.y) > model and not card.accepts_spacing(
            max(spacing.x, spacing.y)
        ):
            log.warning(
                "the scene's pixels (%s m) are coarser than the model's (%s m): it is enlarged "
                "%.1f× by interpolation, which adds no detail; small targets may be missed",
                spacing,
                format_metres(model),
                max(spacing.x, spacing.y) / model,
            )
        return grid

    def spacing_text(self) -> str:
        if self.spacing is None:
            return "unknown"
        return str(PixelSpacing(*self.spacing, "working"))

    def tags(self) -> dict[str, str]:
        """Heatmap tags: the scene's spacing and the spacing the model worked at."""
        return {
            "pixel_spacing": "unknown" if self.scene_spacing is None else str(self.scene_spacing),
            "working_spacing": self.spacing_text(),
        }

    def reach(self) -> int:
        """How far (input pixels) heat mapped back bilinearly can spread beyond a tile's box
        from `tiles_to_input`: up to one working pixel; 0 without a working grid."""
        if not self.resampled:
            return 0
        return math.ceil(max(n / w for n, w in zip(self.input_size, self.size))) + 1

    def tiles_to_input(self, tiles: Iterable[Tile]) -> list[Tile]:
        """Tile records (dataclasses with pixel x0, y0, x1, y1) moved onto the input's grid."""
        fx, fy = (n / w for n, w in zip(self.input_size, self.size))
        if not self.resampled:
            return list(tiles)
        return [
            replace(
                tile,
                x0=math.floor(tile.x0 * fx),
                y0=math.floor(tile.y0 * fy),
                x1=math.ceil(tile.x1 * fx),
                y1=math.ceil(tile.y1 * fy),
            )
            for tile in tiles
        ]


def _source(path: str, band: int, src: tuple[int, int], dst: tuple[int, int], extra: str) -> str:
    return (
        f'<SourceFilename relativeToVRT="0">{escape(path)}</SourceFilename>'
        f"<SourceBand>{band}</SourceBand>"
        f'<SrcRect xOff="0" yOff="0" xSize="{src[0]}" ySize="{src[1]}"/>'
        f'<DstRect xOff="0" yOff="0" xSize="{dst[0]}" ySize="{dst[1]}"/>{extra}'
    )


def _band(
    number: int,
    source: str,
    *,
    kind: str = "SimpleSource",
    resampling: str | None = None,
    function: tuple[str, str] | None = None,
    nodata: float = math.nan,
) -> str:
    attributes = f" resampling={quoteattr(resampling)}" if resampling else ""
    derived = ""
    if function is not None:
        name, arguments = function
        derived = (
            f"<PixelFunctionType>{name}</PixelFunctionType>"
            + (f"<PixelFunctionArguments {arguments}/>" if arguments else "")
            + "<SourceTransferType>Float64</SourceTransferType>"
        )
    subclass = ' subClass="VRTDerivedRasterBand"' if function is not None else ""
    return (
        f'<VRTRasterBand dataType="Float32" band="{number}"{subclass}>'
        f"<NoDataValue>{nodata!r}</NoDataValue>{derived}"
        f"<{kind}{attributes}>{source}</{kind}></VRTRasterBand>"
    )


def _dataset(size: tuple[int, int], bands: list[str]) -> str:
    return (
        f'<VRTDataset rasterXSize="{size[0]}" rasterYSize="{size[1]}">{"".join(bands)}</VRTDataset>'
    )


def _source_nodata(unit: str, nodata: float | None) -> str:
    """The input values a band's power VRT leaves out (as `to_model_units` does)."""
    if nodata is None and unit == "DN":
        nodata = 0.0  # DN 0 is no data
    if nodata is None or math.isnan(nodata):
        return ""
    return f"<NODATA>{nodata!r}</NODATA>"


def open_working_scene(
    reader: RasterReader,
    units: dict[int, str],
    grid: WorkingGrid,
    shrink: str | None = None,
):
    """The input resampled onto `grid` as a float32 VRT (nodata NaN), opened as a RasterReader.

    `units` maps 0-based band indices to their units; bands not named are resampled as they are.
    `shrink` is GDAL's resampling when the grid is coarser (default `SHRINK_RESAMPLING`); a
    finer grid is always bilinear. The VRTs live in GDAL's memory file system until the reader
    is garbage-collected.
    """
    info = reader.info
    name = os.fspath(reader.path)
    source_name = name if name.startswith("/vsi") else os.path.abspath(name)
    folder = f"/vsimem/mscam-working-{uuid.uuid4().hex}"
    power_path, working_path = f"{folder}/power.vrt", f"{folder}/working.vrt"
    resampling = (shrink or SHRINK_RESAMPLING) if grid.shrinks else "bilinear"
    if resampling in ("nearest", "mode"):
        units = {}  # a picked pixel is the same in any unit: no trip through power
    full = (info.width, info.height)
    power_bands, working_bands = [], []
    for index in range(info.band_count):
        unit = units.get(index, "linear")
        to_power = _TO_POWER[unit]
        # Declared radiometry (an Int16 of dB×100 with scale 0.01) applies before anything else.
        band = reader.dataset.GetRasterBand(index + 1)
        scale, offset = band.GetScale() or 1.0, band.GetOffset() or 0.0
        extra = _source_nodata(unit, info.nodata[index])
        if (scale, offset) != (1.0, 0.0):
            extra += f"<ScaleOffset>{offset!r}</ScaleOffset><ScaleRatio>{scale!r}</ScaleRatio>"
        source = _source(source_name, index + 1, full, full, extra)
        power_bands.append(
            _band(
                index + 1,
                source,
                kind="ComplexSource",
                function=None if to_power is None else (to_power, ""),
            )
        )
        working_bands.append(
            _band(
                index + 1,
                _source(power_path, index + 1, full, grid.size, ""),
                resampling=resampling,
                function=_FROM_POWER.get(unit),
            )
        )
    with using_gdal() as gdal:
        gdal.FileFromMemBuffer(power_path, _dataset(full, power_bands))
        gdal.FileFromMemBuffer(working_path, _dataset(grid.size, working_bands))
    try:
        working = RasterReader(working_path)
    except BaseException:
        _unlink(power_path, working_path)
        raise
    weakref.finalize(working, _unlink, power_path, working_path)
    return working


def working_preprocessor(preprocessor, working: RasterReader):
    """The input's `ScenePreprocessor` (band roles, units and windows as decided on the input)
    reading the working scene instead, whose nodata is NaN."""
    moved = copy.copy(preprocessor)
    moved.reader = working
    moved.nodata = [None] * len(preprocessor.nodata)
    return moved


def _unlink(*paths: str) -> None:
    with using_gdal() as gdal:
        for path in paths:
            try:
                gdal.Unlink(path)
            except RuntimeError:
                pass


ValidRows = Callable[[int, int], np.ndarray]


def map_back(
    working: str | os.PathLike,
    size: tuple[int, int],
    sink: Callable[[int, np.ndarray], None],
    valid_rows: ValidRows | None = None,
    strip_rows: int = 256,
) -> None:
    """Stream the heatmap GeoTIFF `working` onto a `size` = (width, height) grid of the same
    footprint, bilinearly, to `sink(y0, rows)` a strip at a time.

    `valid_rows(y0, n)` says where the input has data: elsewhere the rows are nodata. A pixel with
    data but no working value around it (all nodata) is 0, as pixels no tile covers are.
    """
    width, height = size
    # One top-to-bottom pass (the input's validity read, the heatmap written, a strip at a time):
    # GDAL's default cache (5 % of RAM) would only hold blocks never read again, so an 8192²
    # input peaked at 1.37 GB instead of ~0.6.
    with using_gdal() as gdal, limited_block_cache(MIN_STREAMING_CACHE):
        try:
            source = gdal.Open(os.fspath(working))
        except RuntimeError as exc:
            raise InputError(f"cannot read the working heatmap {working}: {exc}") from None
        src = (source.RasterXSize, source.RasterYSize)
        source = None
        xml = _dataset(
            size,
            [
                _band(
                    1,
                    _source(os.path.abspath(working), 1, src, size, ""),
                    resampling="bilinear",
                    nodata=HEATMAP_NODATA,
                )
            ],
        )
        dataset = gdal.Open(xml)
        band = dataset.GetRasterBand(1)
        # Strips of at most ~4 Mpx: a 40 000-pixel-wide scene still streams in bounded memory.
        step = max(1, min(strip_rows, (1 << 22) // width))
        for y0 in range(0, height, step):
            n = min(step, height - y0)
            rows = band.ReadAsArray(0, y0, width, n).astype(np.float32)
            rows[~np.isfinite(rows) | (rows == HEATMAP_NODATA)] = 0.0
            if valid_rows is not None:
                rows[~valid_rows(y0, n)] = HEATMAP_NODATA
            sink(y0, rows)
        band = dataset = None


class MappedBackHeatmap:
    """A heatmap writer for a working grid: rows go to a scratch GeoTIFF at the working size;
    `finish()` maps them back onto the grid of `like` (the input dataset) and writes the COG
    with `HeatmapWriter`. Same protocol as `HeatmapWriter`; nothing is left behind on failure.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        grid: WorkingGrid,
        like,
        tags: dict[str, str],
        valid_rows: ValidRows,
    ) -> None:
        self.grid = grid
        self.valid_rows = valid_rows
        self._final = HeatmapWriter(path, like, tags)  # checks the folder first
        final = Path(path).absolute()
        # Named as every scratch file is (`mscam.scene.outputs`), so a killed run's is cleaned up.
        self._scratch = final.parent / (
            f".{final.stem}-working.{os.getpid()}.{uuid.uuid4().hex[:8]}.scratch.tif"
        )
        options = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE"]
        options += ["PREDICTOR=3", "BIGTIFF=IF_SAFER"]
        with using_gdal() as gdal:
            try:
                self._ds = gdal.GetDriverByName("GTiff").Create(
                    str(self._scratch), *grid.size, 1, gdal.GDT_Float32, options
                )
            except RuntimeError as exc:
                self.discard()
                raise OutputError(f"cannot write {path}: {exc}") from None
        self._ds.GetRasterBand(1).SetNoDataValue(HEATMAP_NODATA)

    def write_rows(self, y0: int, rows: np.ndarray) -> None:
        self._ds.GetRasterBand(1).WriteArray(np.ascontiguousarray(rows, np.float32), 0, y0)

    @property
    def path(self) -> Path:
        """Where the COG goes (absolute)."""
        return self._final.path

    def set_hot_tiles(self, tiles) -> None:
        """Store the run's hot tiles, already moved onto the input's grid
        (`WorkingGrid.tiles_to_input`), with the reach of the mapped-back heat beyond them."""
        self._final.set_hot_tiles(tiles, reach=self.grid.reach())

    def close_rows(self) -> Path:
        """End the row writes and map them back: the returned scratch GeoTIFF is the heatmap on
        the input's grid (`HeatmapWriter.close_rows`)."""
        if self._ds is not None:
            self._ds.FlushCache()
            self._ds = None
            map_back(self._scratch, self.grid.input_size, self._final.write_rows, self.valid_rows)
            self._scratch.unlink(missing_ok=True)
        return self._final.close_rows()

    def finish(self) -> Path:
        """Map the working heatmap back onto the input's grid and build the COG."""
        try:
            return self.build_cog()
        finally:
            self.discard()

    def build_cog(self) -> Path:
        """`HeatmapWriter.build_cog` of the heatmap mapped back onto the input's grid."""
        self.close_rows()
        return self._final.build_cog()

    def discard(self) -> None:
        self._ds = None
        for leftover in (self._scratch, self._scratch.with_name(self._scratch.name + ".aux.xml")):
            leftover.unlink(missing_ok=True)
        self._final.discard()

    def __enter__(self) -> MappedBackHeatmap:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()
