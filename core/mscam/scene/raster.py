"""Raster I/O through GDAL: what a raster is, windowed reads, atomic GeoTIFF writes, geolocation.

This module and :mod:`mscam.scene.vector` are the only places that touch GDAL. ``osgeo`` is
imported inside the functions so that ``import mscam`` works where GDAL is not installed.
Every user-facing failure is one line: :class:`InputError` for rasters that are missing, corrupt
or empty, :class:`OutputError` for outputs that cannot be written.

Pixel coordinates follow GDAL: (0, 0) is the top-left corner of the first pixel, so the centre
of pixel (col, row) is (col + 0.5, row + 0.5).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from mscam.errors import InputError, OutputError
from mscam.scene.gdalenv import limited_block_cache, using_gdal  # noqa: F401 - re-exported
from mscam.scene.outputs import remove_files, scratch_path

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
#: A ground control point: pixel/line in the raster, x/y(/z) in the GCP projection.
GCPTuple = tuple[float, float, float, float]


@dataclass(frozen=True)
class GCP:
    """A ground control point: raster position (pixel, line) and ground position (x, y, z)."""

    pixel: float
    line: float
    x: float
    y: float
    z: float = 0.0


@dataclass(frozen=True)
class RasterInfo:
    """What a raster is, read once: size, types, nodata, georeferencing and band annotations."""

    path: str
    width: int
    height: int
    band_count: int
    dtype: str
    nodata: tuple[float | None, ...]
    geotransform: tuple[float, ...] | None
    projection: str
    gcps: tuple[GCP, ...]
    gcp_projection: str
    #: Per band: description (e.g. "VV"), unit type (e.g. "dB") and default-domain metadata.
    descriptions: tuple[str, ...]
    unit_types: tuple[str, ...]
    metadata: tuple[dict[str, str], ...]
    dataset_metadata: dict[str, str] = field(default_factory=dict)
    block_size: tuple[int, int] = (256, 256)
    #: Per band: GDAL's declared radiometry, value = raw · scale + offset (1 and 0 when none).
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()

    @property
    def scaled(self) -> bool:
        """Whether any band declares a scale or offset (reads then return scaled values)."""
        return any(s != 1.0 for s in self.scales) or any(o != 0.0 for o in self.offsets)

    @property
    def value_dtype(self) -> str:
        """The type of the values reads mean: float32 for scaled integers (an Int16 of dB×100
        with scale 0.01 holds dB, not DN); complex stays complex (reads give its magnitude)."""
        if np.issubdtype(np.dtype(self.dtype), np.complexfloating):
            return self.dtype
        return "float32" if self.scaled else self.dtype

    @property
    def crs_wkt(self) -> str:
        """The CRS that map coordinates are in: the projection, else the GCPs' projection."""
        return self.projection or self.gcp_projection


#: Bounds of the block cache a streaming pass asks for (see `streaming_cache_bytes`).
MIN_STREAMING_CACHE = 64 * 2**20
MAX_STREAMING_CACHE = 1024 * 2**20


def streaming_cache_bytes(info: RasterInfo, band_rows: int, output_block_rows: int = 256) -> int:
    """GDAL block cache a top-to-bottom pass over `info` needs, `band_rows` rows at a time.

    The pass reuses only the input's current block row (every band) and the output's block row
    it is filling; 1.5× that, at least `MIN_STREAMING_CACHE`, at most `MAX_STREAMING_CACHE`.
    Anything more only holds blocks that will never be read again, so memory would grow with
    the scene (measured: 256 MiB of cache made an 8192² scene peak 1.6× a 2048² one; 64 MiB,
    1.1×, at the same speed).
    """
    itemsize = np.dtype(info.dtype).itemsize
    block_rows = max(1, info.block_size[1])
    rows_in = band_rows + block_rows  # a band of rows can straddle two block rows
    need = rows_in * info.width * info.band_count * itemsize
    need += (band_rows + output_block_rows) * info.width * 4  # the float32 heatmap
    return int(min(max(1.5 * need, MIN_STREAMING_CACHE), MAX_STREAMING_CACHE))


def crs_to_wkt(crs: str | int | None) -> str:
    """WKT of ``crs`` given as WKT, ``"EPSG:32633"``, a PROJ string or an EPSG code; "" for None."""
    if crs is None or crs == "":
        return ""
    with using_gdal():
        from osgeo import osr

        srs = osr.SpatialReference()
        try:
            if isinstance(crs, int):
                srs.ImportFromEPSG(crs)
            else:
                srs.SetFromUserInput(str(crs))
        except RuntimeError as exc:
            raise InputError(f"unknown coordinate reference system {crs!r}: {exc}") from None
    return srs.ExportToWkt()


@contextmanager
def atomic_output(path: PathLike) -> Iterator[str]:
    """Yield a temporary name beside ``path``; rename it to ``path`` only if the block succeeds.

    A failed or cancelled write leaves nothing at ``path`` (an older file there is kept) and no
    temporary file behind. The temporary keeps the extension so drivers that check it are happy.
    """
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write {path}: folder {folder} does not exist")
    if os.path.isdir(target):
        raise OutputError(f"cannot write {path}: it is a folder")
    temporary = scratch_path(target)
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException as exc:
        remove_files(temporary)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def _numpy_dtype(gdal_type: int) -> str:
    from osgeo import gdal_array

    return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type)).name


def _info_from_dataset(dataset: Any, path: str) -> RasterInfo:
    if dataset.RasterCount == 0 or dataset.RasterXSize == 0 or dataset.RasterYSize == 0:
        raise InputError(f"raster {path} is empty (no band or no pixel)")
    bands = [dataset.GetRasterBand(i + 1) for i in range(dataset.RasterCount)]
    gcps = tuple(GCP(g.GCPPixel, g.GCPLine, g.GCPX, g.GCPY, g.GCPZ) for g in dataset.GetGCPs())
    geotransform = dataset.GetGeoTransform(can_return_null=True)
    return RasterInfo(
        path=path,
        width=dataset.RasterXSize,
        height=dataset.RasterYSize,
        band_count=dataset.RasterCount,
        dtype=_numpy_dtype(bands[0].DataType),
        nodata=tuple(b.GetNoDataValue() for b in bands),
        geotransform=tuple(geotransform) if geotransform is not None else None,
        projection=dataset.GetProjection() or "",
        gcps=gcps,
        gcp_projection=(dataset.GetGCPProjection() or "") if gcps else "",
        descriptions=tuple(b.GetDescription() or "" for b in bands),
        unit_types=tuple(b.GetUnitType() or "" for b in bands),
        metadata=tuple(dict(b.GetMetadata() or {}) for b in bands),
        dataset_metadata=dict(dataset.GetMetadata() or {}),
        block_size=tuple(bands[0].GetBlockSize()),
        scales=tuple(float(b.GetScale() or 1.0) for b in bands),
        offsets=tuple(float(b.GetOffset() or 0.0) for b in bands),
    )


def _values(data: np.ndarray, info: RasterInfo, band: int, mask_nodata: bool) -> np.ndarray:
    """Raw pixels of 1-based `band` as the values they stand for, float32: nodata → NaN (when
    `mask_nodata`), GDAL's scale and offset applied, complex samples as their magnitude |z|."""
    nodata = info.nodata[band - 1]
    missing = None
    if mask_nodata and nodata is not None and not np.isnan(nodata):
        # In the band's own type, as GDAL stores it (0.001 as float32 is not 0.001 as float64).
        inexact = np.issubdtype(data.dtype, np.inexact)
        missing = data == (data.dtype.type(nodata) if inexact else nodata)
    if np.iscomplexobj(data):
        data = np.abs(data)
    values = data.astype(np.float32)
    if info.scales and (info.scales[band - 1] != 1.0 or info.offsets[band - 1] != 0.0):
        values = values * np.float32(info.scales[band - 1]) + np.float32(info.offsets[band - 1])
    if missing is not None:
        values[missing] = np.nan
    return values


class RasterReader:
    """An open raster for many windowed reads (a pipeline reads tile after tile from one handle).

    >>> with RasterReader("scene.tif") as reader:  # doctest: +SKIP
    ...     tile = reader.read(0, 0, 128, 128)       # (bands, 128, 128) float32, nodata → NaN
    """

    def __init__(self, path: PathLike) -> None:
        # GDAL's name as given: Path() would fold `/vsizip//abs/a.zip` into a relative path.
        name = os.fspath(path)
        self.name = name
        self.path = Path(path)
        if not name.startswith("/vsi") and not self.path.exists():
            raise InputError(f"raster {name} does not exist")
        with using_gdal() as gdal:
            try:
                self._dataset = gdal.Open(name, gdal.GA_ReadOnly)
            except RuntimeError as exc:
                raise InputError(f"cannot open raster {name}: {exc}") from None
            self.info = _info_from_dataset(self._dataset, name)
        if np.issubdtype(np.dtype(self.info.dtype), np.complexfloating):
            log.info(
                "%s holds complex (SLC) samples: reading their magnitude |z| as amplitude", name
            )

    @property
    def dataset(self) -> Any:
        """The open ``gdal.Dataset`` (for copying its georeferencing onto an output)."""
        if self._dataset is None:
            raise InputError(f"raster {self.path} is closed")
        return self._dataset

    def __enter__(self) -> RasterReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the GDAL dataset (idempotent)."""
        self._dataset = None

    def read(
        self,
        x0: int,
        y0: int,
        width: int,
        height: int,
        bands: Sequence[int] | None = None,
        mask_nodata: bool = True,
    ) -> np.ndarray:
        """Read a window as (bands, height, width) float32; ``bands`` are 1-based band numbers.

        Pixels outside the raster, and nodata pixels when ``mask_nodata``, are NaN, so a tile at
        the scene's edge has the full tile size.
        """
        dataset = self.dataset
        if width <= 0 or height <= 0:
            raise InputError(f"window size must be positive, got {width}×{height}")
        band_numbers = list(bands or range(1, self.info.band_count + 1))
        if any(b < 1 or b > self.info.band_count for b in band_numbers):
            raise InputError(f"raster {self.path} has bands 1..{self.info.band_count}, not {bands}")
        out = np.full((len(band_numbers), height, width), np.nan, dtype=np.float32)
        # Clip the window to the raster and read only the overlap.
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + width, self.info.width), min(y0 + height, self.info.height)
        if cx1 <= cx0 or cy1 <= cy0:
            return out
        with using_gdal():
            for slot, number in enumerate(band_numbers):
                band = dataset.GetRasterBand(number)
                try:
                    data = band.ReadAsArray(cx0, cy0, cx1 - cx0, cy1 - cy0)
                except RuntimeError as exc:
                    raise InputError(f"cannot read raster {self.path}: {exc}") from None
                data = _values(data, self.info, number, mask_nodata)
                out[slot, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = data
        return out

    def sample(self, max_side: int = 512, mask_nodata: bool = True) -> np.ndarray:
        """The whole raster decimated to at most ``max_side`` pixels a side, (bands, h, w) float32.

        GDAL picks overviews when the file has them, so this is cheap even on a full GRD; it is
        what unit detection looks at.
        """
        dataset = self.dataset
        scale = max(self.info.width, self.info.height) / max_side
        width = max(1, round(self.info.width / max(scale, 1.0)))
        height = max(1, round(self.info.height / max(scale, 1.0)))
        with using_gdal():
            try:
                data = dataset.ReadAsArray(buf_xsize=width, buf_ysize=height)
            except RuntimeError as exc:
                raise InputError(f"cannot read raster {self.path}: {exc}") from None
        data = np.asarray(data).reshape(self.info.band_count, height, width)
        return np.stack([_values(data[i], self.info, i + 1, mask_nodata) for i in range(len(data))])


def open_raster_info(path: PathLike) -> RasterInfo:
    """Describe the raster at ``path`` (size, dtype, nodata, geotransform or GCPs, bands)."""
    with RasterReader(path) as reader:
        return reader.info


def read_window(
    source: PathLike | RasterReader,
    x0: int,
    y0: int,
    width: int,
    height: int,
    bands: Sequence[int] | None = None,
    mask_nodata: bool = True,
) -> np.ndarray:
    """Read a window from a path or an open :class:`RasterReader` (see its ``read``)."""
    if isinstance(source, RasterReader):
        return source.read(x0, y0, width, height, bands, mask_nodata)
    with RasterReader(source) as reader:
        return reader.read(x0, y0, width, height, bands, mask_nodata)


def _as_gcps(gcps: Sequence[GCP | Sequence[float]]) -> list[GCP]:
    return [g if isinstance(g, GCP) else GCP(*g) for g in gcps]


def write_geotiff(
    path: PathLike,
    array: np.ndarray,
    geotransform: Sequence[float] | None = None,
    projection: str | int | None = None,
    gcps: Sequence[GCP | Sequence[float]] | None = None,
    gcp_projection: str | int | None = None,
    nodata: float | None = None,
    band_descriptions: Sequence[str] | None = None,
    metadata: Mapping[str, str] | None = None,
    band_metadata: Sequence[Mapping[str, str]] | None = None,
    band_units: Sequence[str] | None = None,
) -> None:
    """Write ``array`` ((bands, H, W) or (H, W)) as a tiled, DEFLATE-compressed GeoTIFF, atomically.

    The data type is the array's. Georeferencing is a ``geotransform`` with ``projection``, or
    ``gcps`` ((pixel, line, x, y[, z]) or :class:`GCP`) with ``gcp_projection``; CRSs are WKT,
    ``"EPSG:n"`` or an EPSG code. The file appears at ``path`` only once it is complete.
    """
    data = np.asarray(array)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3 or 0 in data.shape:
        raise InputError(f"write_geotiff needs a (bands, H, W) array, got shape {data.shape}")
    count, height, width = data.shape
    for name, items in (
        ("band_descriptions", band_descriptions),
        ("band_metadata", band_metadata),
        ("band_units", band_units),
    ):
        if items is not None and len(items) != count:
            raise InputError(f"{len(items)} {name} given for {count} bands")
    from osgeo import gdal_array

    gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(data.dtype)
    if gdal_type is None:
        raise InputError(f"GeoTIFF cannot store {data.dtype} pixels")
    floating = np.issubdtype(data.dtype, np.floating)
    options = [
        "TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE",
        f"PREDICTOR={3 if floating else 2}", "BIGTIFF=IF_SAFER",
    ]  # fmt: skip
    projection_wkt, gcp_wkt = crs_to_wkt(projection), crs_to_wkt(gcp_projection)
    with atomic_output(path) as temporary, using_gdal() as gdal:
        try:
            dataset = gdal.GetDriverByName("GTiff").Create(
                temporary, width, height, count, gdal_type, options
            )
            if geotransform is not None:
                dataset.SetGeoTransform([float(v) for v in geotransform])
            if projection_wkt:
                dataset.SetProjection(projection_wkt)
            if gcps:
                gdal_gcps = [gdal.GCP(g.x, g.y, g.z, g.pixel, g.line) for g in _as_gcps(gcps)]
                dataset.SetGCPs(gdal_gcps, gcp_wkt)
            if metadata:
                dataset.SetMetadata({str(k): str(v) for k, v in metadata.items()})
            for index in range(count):
                band = dataset.GetRasterBand(index + 1)
                if nodata is not None:
                    band.SetNoDataValue(float(nodata))
                if band_descriptions is not None:
                    band.SetDescription(str(band_descriptions[index]))
                if band_units is not None:
                    band.SetUnitType(str(band_units[index]))
                if band_metadata is not None:
                    band.SetMetadata({str(k): str(v) for k, v in band_metadata[index].items()})
                band.WriteArray(data[index])
            dataset.FlushCache()
            dataset = None  # closing writes the last blocks; it must happen before the rename
        except RuntimeError as exc:
            dataset = None
            raise OutputError(f"cannot write {path}: {exc}") from None


class PixelMapper:
    """Map raster pixel/line coordinates to map coordinates and back.

    Uses the geotransform when the raster has one, else a GCP transformer (``method``
    ``"polynomial"``, GDAL's automatic order, or ``"tps"`` thin-plate spline for dense GCP
    grids); never assumes a geotransform. Map coordinates are in :attr:`crs_wkt`.
    """

    def __init__(self, info: RasterInfo, method: str = "polynomial") -> None:
        self.crs_wkt = info.crs_wkt
        self._affine: np.ndarray | None = None
        self._transformer: Any = None
        if info.geotransform is not None:
            gt = info.geotransform
            self._affine = np.array([[gt[1], gt[2], gt[0]], [gt[4], gt[5], gt[3]], [0, 0, 1.0]])
        elif len(info.gcps) >= 3:
            if method not in ("polynomial", "tps"):
                raise InputError(f"unknown GCP transformer method {method!r}")
            with using_gdal() as gdal:
                # The transformer needs a dataset to carry the GCPs; a 1×1 in-memory one will do.
                self._carrier = gdal.GetDriverByName("MEM").Create("", 1, 1, 1, gdal.GDT_Byte)
                self._carrier.SetGCPs(
                    [gdal.GCP(g.x, g.y, g.z, g.pixel, g.line) for g in info.gcps],
                    info.gcp_projection,
                )
                option = "METHOD=GCP_TPS" if method == "tps" else "METHOD=GCP_POLYNOMIAL"
                self._transformer = gdal.Transformer(self._carrier, None, [option])
        else:
            raise InputError(f"raster {info.path} has neither a geotransform nor GCPs")

    def _apply(self, a: np.ndarray, b: np.ndarray, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
        if self._affine is not None:
            matrix = np.linalg.inv(self._affine) if inverse else self._affine
            out_a = matrix[0, 0] * a + matrix[0, 1] * b + matrix[0, 2]
            out_b = matrix[1, 0] * a + matrix[1, 1] * b + matrix[1, 2]
            return out_a, out_b
        points = np.stack([a.ravel(), b.ravel()], axis=1).tolist()
        with using_gdal():
            result, success = self._transformer.TransformPoints(int(inverse), points)
        if not all(success):
            raise InputError("some points fall outside what the GCP transformer can map")
        coords = np.asarray(result, dtype=np.float64)
        return coords[:, 0].reshape(a.shape), coords[:, 1].reshape(a.shape)

    def pixel_to_map(self, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates (x, y) of pixel positions (GDAL convention: centres at +0.5)."""
        return self._apply(cols, rows, inverse=False)

    def map_to_pixel(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions (col, row) of map coordinates."""
        return self._apply(xs, ys, inverse=True)

    def boxes_to_map(self, boxes: Sequence[Sequence[float]]) -> list[list[tuple[float, float]]]:
        """Map footprints (four corners each) of inclusive pixel boxes (x0, y0, x1, y1).

        Corners rather than two opposite points, so boxes of a rotated (GCP) grid stay exact.
        """
        if len(boxes) == 0:
            return []
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        # An inclusive pixel box covers [x0, x1 + 1) × [y0, y1 + 1) in GDAL pixel coordinates.
        cols = np.stack([b[:, 0], b[:, 2] + 1, b[:, 2] + 1, b[:, 0]], axis=1)
        rows = np.stack([b[:, 1], b[:, 1], b[:, 3] + 1, b[:, 3] + 1], axis=1)
        xs, ys = self.pixel_to_map(cols, rows)
        return [list(zip(x.tolist(), y.tolist())) for x, y in zip(xs, ys)]
