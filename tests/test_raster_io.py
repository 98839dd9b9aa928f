"""Raster and vector I/O: round trips, GCP geolocation, atomic writes, one-line errors."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mscam.errors import InputError, OutputError
from mscam.scene.raster import (
    GCP,
    MIN_STREAMING_CACHE,
    PixelMapper,
    RasterReader,
    atomic_output,
    limited_block_cache,
    open_raster_info,
    read_window,
    streaming_cache_bytes,
    write_geotiff,
)
from mscam.scene.vector import read_boxes, read_crs, write_boxes

gdal = pytest.importorskip("osgeo.gdal")
osr = pytest.importorskip("osgeo.osr")

GEOTRANSFORM = (450_000.0, 10.0, 0.0, 6_150_000.0, 0.0, -10.0)


def same_crs(wkt: str, epsg: int) -> bool:
    expected = osr.SpatialReference()
    expected.ImportFromEPSG(epsg)
    found = osr.SpatialReference()
    found.ImportFromWkt(wkt)
    return bool(found.IsSame(expected))


@pytest.fixture
def scene_tif(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    data = rng.normal(-15, 3, (2, 300, 260)).astype(np.float32)
    data[0, 5, 7] = -9999.0
    path = tmp_path / "scene.tif"
    write_geotiff(
        path,
        data,
        GEOTRANSFORM,
        "EPSG:32633",
        nodata=-9999.0,
        band_descriptions=["VV", "VH"],
        metadata={"PROFILE": "test"},
        band_metadata=[{"POLARISATION": "VV"}, {"POLARISATION": "VH"}],
        band_units=["dB", "dB"],
    )
    return path, data


def test_geotiff_round_trip(scene_tif: tuple[Path, np.ndarray]) -> None:
    path, data = scene_tif
    info = open_raster_info(path)
    assert (info.width, info.height, info.band_count, info.dtype) == (260, 300, 2, "float32")
    assert info.geotransform == GEOTRANSFORM
    assert same_crs(info.projection, 32633) and info.crs_wkt == info.projection
    assert info.nodata == (-9999.0, -9999.0)
    assert info.descriptions == ("VV", "VH") and info.unit_types == ("dB", "dB")
    assert info.metadata[1]["POLARISATION"] == "VH"
    assert info.dataset_metadata["PROFILE"] == "test"
    assert info.gcps == () and info.block_size == (256, 256)
    dataset = gdal.Open(str(path))
    assert dataset.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    window = read_window(path, 3, 4, 20, 10)
    expected = data[:, 4:14, 3:23].copy()
    expected[expected == -9999.0] = np.nan
    np.testing.assert_array_equal(window, expected)
    raw = read_window(path, 7, 5, 1, 1, bands=[1], mask_nodata=False)
    assert raw.shape == (1, 1, 1) and raw[0, 0, 0] == -9999.0


def test_reader_reuses_one_handle_and_pads_edges(scene_tif: tuple[Path, np.ndarray]) -> None:
    path, data = scene_tif
    with RasterReader(path) as reader:
        edge = reader.read(250, 290, 16, 16, bands=[2])
        inside = reader.read(0, 0, 8, 8)
        sample = reader.sample(64)
        dataset = reader.dataset
    assert dataset is not None
    assert edge.shape == (1, 16, 16) and edge.dtype == np.float32
    np.testing.assert_array_equal(edge[0, :10, :10], data[1, 290:, 250:])
    assert np.isnan(edge[0, 10:, :]).all() and np.isnan(edge[0, :, 10:]).all()
    expected = data[:, :8, :8].copy()
    expected[0, 5, 7] = np.nan  # the declared nodata pixel
    np.testing.assert_array_equal(inside, expected)
    assert sample.shape[0] == 2 and max(sample.shape[1:]) == 64
    with pytest.raises(InputError, match="closed"):
        reader.read(0, 0, 4, 4)
    with pytest.raises(InputError, match="bands"):
        read_window(path, 0, 0, 4, 4, bands=[3])


def test_uint16_dn_round_trip_with_zero_nodata(tmp_path: Path) -> None:
    dn = np.arange(1, 65, dtype=np.uint16).reshape(1, 8, 8)
    dn[0, :, 0] = 0
    write_geotiff(tmp_path / "dn.tif", dn, GEOTRANSFORM, 32633, nodata=0)
    info = open_raster_info(tmp_path / "dn.tif")
    assert info.dtype == "uint16" and info.nodata == (0.0,)
    back = read_window(tmp_path / "dn.tif", 0, 0, 8, 8)
    assert np.isnan(back[0, :, 0]).all()
    np.testing.assert_array_equal(back[0, :, 1:], dn[0, :, 1:])


def rotated_gcps(width: int, height: int) -> tuple[list[GCP], np.ndarray]:
    """A 5×5 GCP grid of a grid rotated by 12° in UTM: pixel → map is exactly this affine."""
    a = math.radians(12.0)
    affine = np.array(
        [
            [10 * math.cos(a), 10 * math.sin(a), 450_000.0],
            [10 * math.sin(a), -10 * math.cos(a), 6_150_000.0],
        ]
    )
    gcps = []
    for col in np.linspace(0, width, 5):
        for row in np.linspace(0, height, 5):
            x, y = affine @ [col, row, 1.0]
            gcps.append(GCP(float(col), float(row), float(x), float(y)))
    return gcps, affine


def test_gcp_raster_round_trip_and_geolocation(tmp_path: Path) -> None:
    gcps, affine = rotated_gcps(200, 150)
    path = tmp_path / "radar.tif"
    write_geotiff(path, np.zeros((1, 150, 200), np.uint16), gcps=gcps, gcp_projection=32633)
    info = open_raster_info(path)
    assert info.geotransform is None and info.projection == ""
    assert same_crs(info.gcp_projection, 32633) and info.crs_wkt == info.gcp_projection
    assert len(info.gcps) == 25
    for written, read in zip(gcps, info.gcps):
        assert read.pixel == pytest.approx(written.pixel) and read.x == pytest.approx(written.x)
        assert read.line == pytest.approx(written.line) and read.y == pytest.approx(written.y)
    mapper = PixelMapper(info)
    cols, rows = np.array([0.5, 37.25, 199.0]), np.array([0.5, 101.5, 10.0])
    xs, ys = mapper.pixel_to_map(cols, rows)
    ex, ey = affine @ np.stack([cols, rows, np.ones(3)])
    np.testing.assert_allclose(xs, ex, atol=0.01)
    np.testing.assert_allclose(ys, ey, atol=0.01)
    back_cols, back_rows = mapper.map_to_pixel(xs, ys)
    np.testing.assert_allclose(back_cols, cols, atol=1e-3)
    np.testing.assert_allclose(back_rows, rows, atol=1e-3)
    (ring,) = mapper.boxes_to_map([(10, 20, 19, 29)])  # corners of [10, 20) × [20, 30)
    np.testing.assert_allclose(ring[2], affine @ [20, 30, 1], atol=0.01)


def test_geotransform_mapper_is_exact(scene_tif: tuple[Path, np.ndarray]) -> None:
    mapper = PixelMapper(open_raster_info(scene_tif[0]))
    xs, ys = mapper.pixel_to_map(np.array([0.0, 1.5]), np.array([0.0, 2.5]))
    np.testing.assert_allclose(xs, [450_000.0, 450_015.0])
    np.testing.assert_allclose(ys, [6_150_000.0, 6_149_975.0])
    (ring,) = mapper.boxes_to_map([(0, 0, 1, 1)])
    assert ring[0] == (450_000.0, 6_150_000.0) and ring[2] == (450_020.0, 6_149_980.0)


def test_mapper_needs_georeferencing(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "plain.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="neither a geotransform nor GCPs"):
        PixelMapper(open_raster_info(tmp_path / "plain.tif"))


@pytest.mark.parametrize("content", [b"", b"not a tiff at all" * 10, b"II*\x00garbage"])
def test_corrupt_or_empty_raster_is_input_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.tif"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        open_raster_info(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_raster_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_window(tmp_path / "nope.tif", 0, 0, 4, 4)


def test_failed_write_leaves_nothing_and_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.tif"
    path.write_bytes(b"previous")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(gdal.Band, "WriteArray", broken)
    with pytest.raises(OutputError, match="disk full"):
        write_geotiff(path, np.zeros((1, 8, 8), np.float32))
    assert path.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]  # no temporary left behind


def test_atomic_output_removes_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "result.gpkg"
    with pytest.raises(KeyError), atomic_output(target) as temporary:
        Path(temporary).write_bytes(b"half")
        raise KeyError("cancelled")
    assert os.listdir(tmp_path) == []


def test_unwritable_outputs_are_output_errors(tmp_path: Path) -> None:
    data = np.zeros((1, 4, 4), np.float32)
    with pytest.raises(OutputError, match="does not exist"):
        write_geotiff(tmp_path / "missing" / "out.tif", data)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        write_geotiff(tmp_path / "file" / "out.tif", data)
    with pytest.raises(OutputError, match="is a folder"):
        write_boxes(tmp_path, [], 32633)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores modes")
def test_read_only_folder_is_output_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError):
            write_geotiff(folder / "out.tif", np.zeros((1, 4, 4), np.float32))
    finally:
        folder.chmod(0o700)


def test_boxes_round_trip_with_typed_fields(tmp_path: Path) -> None:
    path = tmp_path / "boxes.gpkg"
    records = [
        {
            "bbox": (1.0, 2.0, 3.0, 5.0),
            "class": "ship",
            "n": 3,
            "score": 0.5,
            "ok": True,
            "note": None,
        },
        {
            "ring": [(0.0, 0.0), (4.0, 1.0), (3.0, 5.0)],
            "class": "ship",
            "n": np.int64(7),
            "score": 1,
            "ok": False,
            "note": "rotated",
        },
    ]
    write_boxes(path, records, "EPSG:32633", layer="ships")
    found = read_boxes(path)
    assert same_crs(read_crs(path), 32633)
    assert [f["n"] for f in found] == [3, 7] and all(isinstance(f["n"], int) for f in found)
    assert [f["score"] for f in found] == [0.5, 1.0]  # ints and floats mixed → real
    assert [f["ok"] for f in found] == [True, False]
    assert [f["note"] for f in found] == [None, "rotated"]
    assert found[0]["bbox"] == (1.0, 2.0, 3.0, 5.0)
    assert found[1]["bbox"] == (0.0, 0.0, 4.0, 5.0) and found[1]["ring"][1] == (4.0, 1.0)
    assert read_boxes(path, layer="ships")[0]["class"] == "ship"


def test_empty_and_crs_less_box_layers(tmp_path: Path) -> None:
    write_boxes(tmp_path / "none.gpkg", [], 4326)
    assert read_boxes(tmp_path / "none.gpkg") == []
    write_boxes(tmp_path / "nocrs.gpkg", [{"bbox": (0, 0, 1, 1)}], None)
    assert read_crs(tmp_path / "nocrs.gpkg") == ""


def test_bad_box_records(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'bbox' or a 'ring'"):
        write_boxes(tmp_path / "a.gpkg", [{"class": "ship"}], 32633)
    with pytest.raises(InputError, match="mixes"):
        write_boxes(
            tmp_path / "b.gpkg",
            [{"bbox": (0, 0, 1, 1), "v": 1}, {"bbox": (0, 0, 1, 1), "v": "x"}],
            32633,
        )
    with pytest.raises(InputError, match="max < min"):
        write_boxes(tmp_path / "c.gpkg", [{"bbox": (2, 0, 1, 1)}], 32633)
    assert os.listdir(tmp_path) == []
    with pytest.raises(InputError):
        read_boxes(tmp_path / "missing.gpkg")


def test_gdal_exception_state_is_restored(scene_tif: tuple[Path, np.ndarray]) -> None:
    from osgeo import ogr

    before = (gdal.GetUseExceptions(), ogr.GetUseExceptions(), osr.GetUseExceptions())
    open_raster_info(scene_tif[0])
    with pytest.raises(InputError):
        open_raster_info(scene_tif[0].with_name("missing.tif"))
    assert (gdal.GetUseExceptions(), ogr.GetUseExceptions(), osr.GetUseExceptions()) == before


def test_import_does_not_load_gdal() -> None:
    code = "import sys, mscam, mscam.sar, mscam.scene; assert 'osgeo' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_streaming_cache_holds_a_band_of_rows_and_is_bounded(scene_tif) -> None:
    info = open_raster_info(scene_tif[0])
    assert streaming_cache_bytes(info, band_rows=112) == MIN_STREAMING_CACHE  # a small raster
    # A Sentinel-1 IW GRD in float32 dB, VV and VH, tiled 256²: one input block row (plus the
    # band), the heatmap's block row (plus the band), and half of that again.
    grd = replace(info, width=26_000, height=17_000, band_count=2, dtype="float32",
                  block_size=(256, 256))  # fmt: skip
    expected = 1.5 * ((112 + 256) * 26_000 * 2 * 4 + (112 + 256) * 26_000 * 4)
    assert streaming_cache_bytes(grd, band_rows=112) == int(expected)
    # The height never matters; a very wide raster hits the ceiling.
    assert streaming_cache_bytes(replace(grd, height=10**6), 112) == int(expected)
    assert streaming_cache_bytes(replace(grd, width=10**6), 112) == 1024 * 2**20


def test_block_cache_cap_is_restored_and_never_raises_the_users(scene_tif) -> None:
    before = gdal.GetCacheMax()
    with limited_block_cache(before // 2):
        assert gdal.GetCacheMax() == before // 2
        with limited_block_cache(before):  # never above what is in force
            assert gdal.GetCacheMax() == before // 2
    assert gdal.GetCacheMax() == before


def test_reads_honour_gdal_scale_offset_and_give_complex_magnitudes(tmp_path: Path) -> None:
    gdal = pytest.importorskip("osgeo.gdal")
    raw = np.array([[[-2000, 150], [-32768, 0]]], np.int16)
    path = tmp_path / "scaled.tif"
    write_geotiff(path, raw, nodata=-32768)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(1).SetScale(0.01)
    ds.GetRasterBand(1).SetOffset(-1.0)
    ds = None
    with RasterReader(path) as reader:
        assert reader.info.scaled and reader.info.value_dtype == "float32"
        np.testing.assert_allclose(reader.read(0, 0, 2, 2)[0], [[-21.0, 0.5], [np.nan, -1.0]])
        np.testing.assert_allclose(reader.sample()[0], [[-21.0, 0.5], [np.nan, -1.0]])
    slc = np.array([[[3 + 4j, 0], [-5j, 1]]], np.complex64)
    write_geotiff(tmp_path / "slc.tif", slc, nodata=0)
    with RasterReader(tmp_path / "slc.tif") as reader:
        assert reader.info.value_dtype == "complex64"
        np.testing.assert_array_equal(reader.read(0, 0, 2, 2)[0], [[5.0, np.nan], [5.0, 1.0]])


def test_float32_nodata_matches_in_the_bands_own_type(tmp_path: Path) -> None:
    path = tmp_path / "f.tif"
    write_geotiff(path, np.array([[[0.001, 0.5]]], np.float32), nodata=0.001)
    with RasterReader(path) as reader:
        np.testing.assert_array_equal(reader.read(0, 0, 2, 1)[0], [[np.nan, 0.5]])
