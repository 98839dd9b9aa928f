"""The held-out scene benchmark (bench/eval/heldout.py): its generator writes what it claims
(deterministic, georeferenced, the right bands and units, bright ships where the truth says),
and its scoring gives exact values on hand-built boxes. The benchmark itself is not run here."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

EVAL_DIR = Path(__file__).resolve().parents[1] / "bench" / "eval"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(EVAL_DIR))  # heldout imports its sibling heldout_generator
    try:
        spec = importlib.util.spec_from_file_location(name, EVAL_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EVAL_DIR))


gen = _load("heldout_generator")
heldout = _load("heldout")

RECIPE = gen.Recipe("open", 256, n_ships=4, n_platforms=1, n_buoys=1)


@pytest.fixture(scope="module")
def scene():
    return gen.generate(RECIPE, seed=11)


def test_generator_is_deterministic_for_a_seed(scene):
    again = gen.generate(RECIPE, seed=11)
    other = gen.generate(RECIPE, seed=12)
    for band in ("VV", "VH"):
        np.testing.assert_array_equal(scene.bands[band], again.bands[band])
    assert [o.to_json() for o in scene.objects] == [o.to_json() for o in again.objects]
    assert not np.array_equal(scene.bands["VV"], other.bands["VV"])
    kinds = [o.kind for o in scene.objects]
    assert kinds.count("ship") == 4 and "platform" in kinds and "buoy" in kinds


def test_db_geotiff_is_georeferenced_with_band_roles(scene, tmp_path):
    path = tmp_path / "s.tif"
    gen.write_geotiff(str(path), scene, units="dB", epsg=32631, origin=(500_000.0, 5_900_000.0))
    ds = gdal.Open(str(path))
    assert ds.RasterCount == 2
    assert [ds.GetRasterBand(i).GetDescription() for i in (1, 2)] == ["VV", "VH"]
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Float32
    assert ds.GetGeoTransform() == (500_000.0, 10.0, 0.0, 5_900_000.0, 0.0, -10.0)
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    assert srs.GetAuthorityCode(None) == "32631"
    assert ds.GetGCPCount() == 0
    vv = ds.GetRasterBand(1).ReadAsArray()
    expected = 10 * np.log10(np.maximum(scene.bands["VV"], 1e-5))
    np.testing.assert_allclose(vv, expected, atol=1e-4)
    vh = ds.GetRasterBand(2).ReadAsArray()
    # sea σ0 in dB: VV around -12…-25, cross-pol several dB lower, near the noise floor
    assert -26.0 < np.median(vv) < -10.0
    assert -32.0 < np.median(vh) < np.median(vv) - 4.0


def test_dn_geotiff_is_uint16_amplitude_with_zero_nodata(tmp_path):
    edged = gen.generate(gen.Recipe("open", 256, n_ships=1, nodata_edges=True), seed=5)
    path = tmp_path / "dn.tif"
    gen.write_geotiff(str(path), edged, units="DN")
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_UInt16 and band.GetDescription() == "VV"
    dn = band.ReadAsArray()
    sigma0 = edged.bands["VV"]
    off = np.isnan(sigma0)
    assert off.any() and (dn[off] == 0).all() and (dn[~off] > 0).all()
    expected = np.clip(np.rint(600.0 * np.sqrt(sigma0[~off])), 1, 65535)
    np.testing.assert_array_equal(dn[~off], expected)


def test_gcp_variant_has_gcps_and_no_geotransform(scene, tmp_path):
    path = tmp_path / "gcp.tif"
    gen.write_geotiff(str(path), scene, gcp_grid=5)
    ds = gdal.Open(str(path))
    assert ds.GetGeoTransform(can_return_null=True) is None
    assert ds.GetGCPCount() == 25
    srs = osr.SpatialReference(wkt=ds.GetGCPProjection())
    assert srs.GetAuthorityCode(None) == "4326"
    corner = next(g for g in ds.GetGCPs() if g.GCPPixel == 0 and g.GCPLine == 0)
    assert 2.0 < corner.GCPX < 4.0 and 53.0 < corner.GCPY < 54.0  # UTM 31N (500 km, 5900 km)


def test_single_band_file_and_hh_darker_than_vv_at_far_range(tmp_path):
    far = gen.generate(
        gen.Recipe("open", 256, n_ships=0, bands=("VV", "HH"), incidence_range=(42.0, 46.0)),
        seed=3,
    )
    path = tmp_path / "hh.tif"
    gen.write_geotiff(str(path), far, bands=("HH",))
    ds = gdal.Open(str(path))
    assert ds.RasterCount == 1 and ds.GetRasterBand(1).GetDescription() == "HH"
    hh = 10 * np.log10(np.median(far.bands["HH"]))
    vv = 10 * np.log10(np.median(far.bands["VV"]))
    assert vv - hh > 2.5  # Thompson's polarisation ratio is ~4.5 dB at 42–46°


def test_ships_are_bright_at_their_truth_positions(scene):
    vv = 10 * np.log10(scene.bands["VV"])
    sea = np.median(vv)
    for ship in (o for o in scene.objects if o.kind == "ship"):
        x0, y0, x1, y1 = ship.bbox_px
        inside = vv[math.floor(y0) : math.ceil(y1), math.floor(x0) : math.ceil(x1)]
        assert inside.max() > sea + 12.0, ship.to_json()
        # the hull's oriented box: length and beam in pixels
        (ax, ay), (bx, by), (cx, cy) = ship.corners_px[:3]
        assert math.hypot(ax - bx, ay - by) == pytest.approx(ship.beam_m / 10.0)
        assert math.hypot(bx - cx, by - cy) == pytest.approx(ship.length_m / 10.0)


def _ship(x0, y0, x1, y1, length_m, kind="ship"):
    return {
        "kind": kind,
        "cx": (x0 + x1) / 2,
        "cy": (y0 + y1) / 2,
        "bbox_px": [x0, y0, x1, y1],
        "length_m": length_m,
        "moored": False,
        "peak_db": 10.0,
    }


def test_scoring_gives_exact_values_on_hand_built_boxes():
    truth = [
        _ship(0, 0, 10, 10, 30.0),  # A: predicted exactly
        _ship(20, 0, 30, 10, 120.0),  # B: a small box on its centre (IoU 0.04)
        _ship(40, 0, 50, 10, 250.0),  # C: missed
        _ship(60, 0, 70, 10, 40.0, kind="platform"),
    ]
    predicted = [(0, 0, 10, 10), (24, 4, 26, 6), (61, 1, 69, 9)]
    s = heldout.score(predicted, truth, pixels=8_000_000)
    assert (s["ships"], s["boxes"], s["tp"], s["fp"], s["fn"]) == (3, 3, 2, 1, 1)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["tp_iou50"] == 1 and s["f1_iou50"] == pytest.approx(1 / 3)
    assert s["fp_on_non_ships"] == 1
    assert s["fp_where"] == {"non_ship": 1, "ship_again": 0, "land": 0, "sea": 0}
    assert s["false_per_4mpx"] == pytest.approx(0.5)
    bands = s["recall_by_length"]
    assert bands["<50 m"] == {"ships": 1, "found": 1, "recall": 1.0}
    assert bands["50-100 m"] == {"ships": 0, "found": 0, "recall": None}
    assert bands["100-200 m"]["recall"] == 1.0 and bands[">=200 m"]["recall"] == 0.0
    assert s["recall_ge100"] == pytest.approx(0.5) and s["ships_ge100"] == 2
    assert [m["length_m"] for m in s["missed"]] == [250.0]


def test_matching_is_one_to_one_best_iou_first():
    truth = [_ship(0, 0, 10, 10, 80.0)]
    s = heldout.score([(1, 1, 9, 9), (0, 0, 10, 10)], truth, pixels=4_000_000)
    assert (s["tp"], s["fp"], s["f1"]) == (1, 1, pytest.approx(2 / 3))
    assert heldout.match([(1, 1, 9, 9), (0, 0, 10, 10)], [(0, 0, 10, 10)], [(5, 5)], 0.1, True) == [
        (1, 0)
    ]
    # no ship at all: F1 is undefined, the false boxes still count
    empty = heldout.score([(0, 0, 4, 4)], [], pixels=2_000_000)
    assert empty["f1"] is None and empty["false_per_4mpx"] == pytest.approx(2.0)


def test_predicted_boxes_are_read_from_the_product_geopackage(tmp_path):
    path = tmp_path / "boxes.gpkg"
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = source.CreateLayer("boxes", None, ogr.wkbPolygon)
    for name in ("px_x0", "px_y0", "px_x1", "px_y1"):
        layer.CreateField(ogr.FieldDefn(name, ogr.OFTInteger64))
    feature = ogr.Feature(layer.GetLayerDefn())
    for name, value in zip(("px_x0", "px_y0", "px_x1", "px_y1"), (3, 4, 7, 9)):
        feature.SetField(name, value)
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POLYGON ((3 4,8 4,8 10,3 10,3 4))"))
    layer.CreateFeature(feature)
    source = None
    # the product's pixel box is inclusive; the benchmark's boxes are half-open
    assert heldout.read_predicted(path, tmp_path / "unused.tif") == [(3.0, 4.0, 8.0, 10.0)]


def test_truth_geopackage_holds_oriented_ships_in_map_coordinates(scene, tmp_path):
    spec = heldout.SceneSpec("t", RECIPE, 11, 32631, (500_000.0, 5_900_000.0))
    truth = {"objects": [o.to_json() for o in scene.objects]}
    heldout.write_truth_gpkg(tmp_path / "truth.gpkg", truth, spec)
    source = ogr.Open(str(tmp_path / "truth.gpkg"))
    layer = source.GetLayer(0)
    assert layer.GetFeatureCount() == len(scene.objects)
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "32631"
    feature = layer.GetNextFeature()
    first = scene.objects[0]
    assert feature["kind"] == first.kind
    ring = feature.GetGeometryRef().GetGeometryRef(0)
    x, y = ring.GetPoint_2D(0)
    assert x == pytest.approx(500_000.0 + 10.0 * first.corners_px[0][0], abs=0.01)
    assert y == pytest.approx(5_900_000.0 - 10.0 * first.corners_px[0][1], abs=0.01)


def test_false_boxes_are_sorted_by_where_they_fall():
    truth = [_ship(0, 0, 10, 10, 80.0), _ship(40, 40, 44, 44, 30.0, kind="buoy")]
    land = np.zeros((100, 100), dtype=bool)
    land[70:, 70:] = True
    predicted = [
        (0, 0, 10, 10),  # the ship
        (1, 1, 4, 4),  # a second, small box on the same ship (IoU 0.09, not on its centre)
        (41, 41, 43, 43),  # the buoy
        (80, 80, 84, 84),  # land
        (90, 0, 94, 4),  # sea
    ]
    s = heldout.score(predicted, truth, pixels=10_000, land=land)
    assert (s["tp"], s["fp"]) == (1, 4)
    assert s["fp_where"] == {"non_ship": 1, "ship_again": 1, "land": 1, "sea": 1}


def test_seed_sets_give_fresh_scenes_of_the_same_kinds():
    first, fresh = heldout.scene_specs(False), heldout.scene_specs(False, seed_set=2)
    assert [s.seed for s in first.values()] == [7301, 7302, 7303, 7304, 7305]
    assert [s.seed for s in fresh.values()] == [9301, 9302, 9303, 9304, 9305]
    assert [s.recipe for s in first.values()] == [s.recipe for s in fresh.values()]
    variants = {v.name for v in heldout.VARIANTS}
    assert variants == {
        "opensea",
        "coastal",
        "coastal-dn",
        "coastal-gcp",
        "empty",
        "vv-only",
        "hh-only",
        "opensea-3m",
        "opensea-warped-3m",
        "vv-only-3m",
    }
