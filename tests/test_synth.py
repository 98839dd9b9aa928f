"""Synthetic Sentinel-1-like scenes: speckle and clutter statistics, levels, targets, truth, CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mscam.errors import InputError
from mscam.radiometry.units import db_to_linear, detect_units, linear_to_db, to_model_units
from mscam.sar.synth import (
    LOOKS,
    PROFILES,
    SyntheticScene,
    noise_floor_db,
    scene_profile,
    synthesize_scene,
)

#: A sea with nothing but a constant mean, the noise floor and speckle: its ENL must be L.
HOMOGENEOUS_SEA = scene_profile(
    "calm", nu=None, swell_db=0.0, streak_db=0.0, calm_fraction=0.0, wind_var=0.0,
    island_density=0.0, buoy_density=0.0, platform_density=0.0,
)  # fmt: skip


def strip_enl(db: np.ndarray, valid: np.ndarray, width: int = 4) -> float:
    """Mean ENL (mean² / variance of linear intensity) over narrow range strips, so the
    incidence-dependent mean barely changes inside one strip."""
    linear = db_to_linear(db)
    values = []
    for col in range(16, db.shape[1] - 16 - width, width):
        strip = linear[:, col : col + width][valid[:, col : col + width]]
        values.append(strip.mean() ** 2 / strip.var())
    return float(np.mean(values))


def median_db(db: np.ndarray, mask: np.ndarray) -> float:
    return float(linear_to_db(np.median(db_to_linear(db[mask]))))


@pytest.fixture(scope="module")
def coastal() -> SyntheticScene:
    return synthesize_scene(512, "coastal", seed=7)


@pytest.fixture(scope="module")
def dense() -> SyntheticScene:
    return synthesize_scene(384, "dense", seed=2)


def test_speckle_enl_on_homogeneous_sea() -> None:
    scene = synthesize_scene(256, HOMOGENEOUS_SEA, seed=3, n_ships=0)
    for band in (scene.vv_db, scene.vh_db):
        assert strip_enl(band, scene.valid_mask) == pytest.approx(LOOKS, abs=0.2)


def test_k_texture_makes_rough_sea_spikier() -> None:
    # Texture × speckle: 1/ENL = 1/L + 1/ν + 1/(Lν) → ≈ 1.6 for ν = 3, ≈ 3.4 for ν = 15.
    quiet = {
        "swell_db": 0.0,
        "streak_db": 0.0,
        "wind_var": 0.0,
        "calm_fraction": 0.0,
        "island_density": 0.0,
        "buoy_density": 0.0,
        "platform_density": 0.0,
    }
    rough = synthesize_scene(256, scene_profile("rough", **quiet), seed=1, n_ships=0)
    calm = synthesize_scene(256, scene_profile("calm", **quiet), seed=1, n_ships=0)
    rough_enl, calm_enl = (
        strip_enl(rough.vv_db, rough.valid_mask),
        strip_enl(calm.vv_db, calm.valid_mask),
    )
    assert 1.3 < rough_enl < 2.4
    assert 2.9 < calm_enl < 4.2
    assert rough_enl < calm_enl < LOOKS


def test_sea_falls_across_range_and_rough_is_brighter() -> None:
    calm = synthesize_scene(256, HOMOGENEOUS_SEA, seed=4, n_ships=0)
    rough = synthesize_scene(256, "rough", seed=4, n_ships=0)
    for scene, low, high in ((calm, -28.0, -14.0), (rough, -19.0, -8.0)):
        sea = scene.valid_mask & ~scene.land_mask
        near, far = sea.copy(), sea.copy()
        near[:, 64:] = False
        far[:, :192] = False
        near_db, far_db = median_db(scene.vv_db, near), median_db(scene.vv_db, far)
        assert low < far_db < near_db < high
        assert near_db - far_db > 3.0  # 0.5 dB per degree over ~11° between the strips
    assert median_db(rough.vv_db, rough.valid_mask) > median_db(calm.vv_db, calm.valid_mask) + 5


def test_levels_and_vh_below_vv(coastal: SyntheticScene) -> None:
    sea = coastal.valid_mask & ~coastal.land_mask
    land = coastal.valid_mask & coastal.land_mask
    assert land.mean() > 0.2 and sea.mean() > 0.3
    assert -25.0 < median_db(coastal.vv_db, sea) < -12.0
    assert -14.0 < median_db(coastal.vv_db, land) < -5.0
    # VH is 6–10 dB below VV over land; over sea the thermal noise floor narrows the gap.
    land_gap = median_db(coastal.vv_db, land) - median_db(coastal.vh_db, land)
    assert 5.5 < land_gap < 10.5
    assert median_db(coastal.vh_db, sea) < median_db(coastal.vv_db, sea) - 2.0


def test_noise_floor() -> None:
    nesz = noise_floor_db(np.linspace(30, 45, 301))
    assert -25.6 < nesz.min() and nesz.max() < -22.9
    # Worse at the sub-swath edges than at their centres (the scalloping seen on calm sea).
    assert noise_floor_db(np.array([36.3]))[0] > noise_floor_db(np.array([33.0]))[0] + 1.5


def test_ships_stand_out_of_the_sea(coastal: SyntheticScene, dense: SyntheticScene) -> None:
    for scene in (coastal, dense):
        assert scene.ships
        sea_level = median_db(scene.vv_db, scene.valid_mask & ~scene.land_mask)
        for ship in scene.ships:
            x0, y0, x1, y1 = ship["box"]
            peak = np.nanmax(scene.vv_db[max(y0 - 1, 0) : y1 + 2, max(x0 - 1, 0) : x1 + 2])
            assert 5.0 <= ship["peak_db"] <= 30.0
            assert peak >= ship["peak_db"] - 0.5  # background only adds to the target
            assert peak - sea_level > 15.0
            # VH also shows the ship well above the VH sea.
            vh_peak = np.nanmax(scene.vh_db[max(y0 - 1, 0) : y1 + 2, max(x0 - 1, 0) : x1 + 2])
            assert vh_peak > median_db(scene.vh_db, scene.valid_mask & ~scene.land_mask) + 8


def test_truth_boxes_are_ships_at_sea_inside_the_scene(dense: SyntheticScene) -> None:
    h, w = dense.shape
    for ship in dense.ships:
        x0, y0, x1, y1 = ship["box"]
        assert 0 <= x0 <= x1 < w and 0 <= y0 <= y1 < h
        assert ship["class"] == "ship" and 10.0 <= ship["length_m"] <= 400.0
        # The box spans the hull: its diagonal is between the beam and the length (+1 px).
        diagonal = math.hypot(x1 - x0 + 1, y1 - y0 + 1) * 10
        assert ship["beam_m"] - 1e-6 <= diagonal <= ship["length_m"] + ship["beam_m"] + 30
        assert dense.valid_mask[y0 : y1 + 1, x0 : x1 + 1].all()
        assert not dense.land_mask[y0 : y1 + 1, x0 : x1 + 1].any()


def test_hard_negatives(coastal: SyntheticScene) -> None:
    kinds = {item["kind"] for item in coastal.hard_negatives}
    assert {"turbine", "buoy", "urban_point"} <= kinds
    turbines = [t for t in coastal.hard_negatives if t["kind"] == "turbine"]
    assert len(turbines) >= 4  # a wind farm on a grid
    # Ghosts: platforms here (always ≥ +20 dB) cast azimuth ambiguities ~20 dB fainter, 4–6 km
    # away along azimuth; islands are land at sea.
    profile = scene_profile("calm", platform_density=0.6, ghost_probability=1.0, island_density=0.4)
    scene = synthesize_scene((1024, 160), profile, seed=1, n_ships=0)
    platforms = [p for p in scene.hard_negatives if p["kind"] == "platform"]
    ghosts = [g for g in scene.hard_negatives if g["kind"] == "ghost"]
    islands = [i for i in scene.hard_negatives if i["kind"] == "island"]
    assert ghosts and islands
    for island in islands:
        x0, y0, x1, y1 = island["box"]
        assert scene.land_mask[y0 : y1 + 1, x0 : x1 + 1].any()
    for ghost in ghosts:
        source = min(platforms, key=lambda p: abs(p["x"] - ghost["x"]))
        assert source["x"] == ghost["x"] and 420 <= abs(ghost["y"] - source["y"]) <= 620
        assert 18.0 <= source["peak_db"] - ghost["peak_db"] <= 22.0
        x0, y0, x1, y1 = ghost["box"]
        seen = np.nanmax(scene.vv_db[y0 : y1 + 1, x0 : x1 + 1])
        assert seen == pytest.approx(ghost["peak_db"], abs=3.0)


def test_determinism_and_seed_sensitivity() -> None:
    first = synthesize_scene(128, "dense", seed=11)
    again = synthesize_scene(128, "dense", seed=11)
    other = synthesize_scene(128, "dense", seed=12)
    np.testing.assert_array_equal(first.vv_db, again.vv_db)
    np.testing.assert_array_equal(first.vh_db, again.vh_db)
    assert first.ships == again.ships and first.hard_negatives == again.hard_negatives
    assert not np.array_equal(first.vv_db, other.vv_db, equal_nan=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_empty_profile_has_no_ships(seed: int) -> None:
    scene = synthesize_scene(256, "empty", seed)
    assert scene.ships == []


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_makes_a_valid_scene(name: str) -> None:
    scene = synthesize_scene((96, 160), name, seed=5)
    assert scene.vv_db.shape == scene.vh_db.shape == (96, 160)
    assert scene.vv_db.dtype == np.float32
    assert np.array_equal(np.isnan(scene.vv_db), ~scene.valid_mask)
    assert 0.0 < (~scene.valid_mask).mean() < 0.1  # ragged swath edges only
    assert scene.geotransform == (450_000.0, 10.0, 0.0, 6_150_000.0, 0.0, -10.0)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="unknown scene profile"):
        synthesize_scene(64, "stormy")
    with pytest.raises(InputError, match="at least 32"):
        synthesize_scene(8)


def test_map_scene_file_and_truth_at_the_right_place(dense: SyntheticScene, tmp_path: Path) -> None:
    pytest.importorskip("osgeo")
    from mscam.sar.synth_io import write_scene
    from mscam.scene.raster import open_raster_info, read_window
    from mscam.scene.vector import read_boxes, read_crs
    from osgeo import osr

    write_scene(dense, tmp_path / "s.tif", tmp_path / "t.gpkg")
    info = open_raster_info(tmp_path / "s.tif")
    assert info.geotransform == dense.geotransform and info.descriptions == ("VV", "VH")
    assert detect_units(info.dtype, unit_type=info.unit_types[0]) == "dB"
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    for wkt in (info.projection, read_crs(tmp_path / "t.gpkg")):
        found = osr.SpatialReference()
        found.ImportFromWkt(wkt)
        assert found.IsSame(utm)
    np.testing.assert_array_equal(read_window(tmp_path / "s.tif", 0, 0, 384, 384)[0], dense.vv_db)
    truth = sorted(read_boxes(tmp_path / "t.gpkg"), key=lambda r: r["ship_id"])
    assert len(truth) == len(dense.ships)
    gx, _, _, gy, _, _ = dense.geotransform
    for record, ship in zip(truth, dense.ships):
        x0, y0, x1, y1 = ship["box"]
        assert (record["px_x0"], record["px_y0"], record["px_x1"], record["px_y1"]) == ship["box"]
        expected = (gx + 10 * x0, gy - 10 * (y1 + 1), gx + 10 * (x1 + 1), gy - 10 * y0)
        np.testing.assert_allclose(record["bbox"], expected)
        assert record["class"] == "ship" and record["length_m"] == pytest.approx(ship["length_m"])


def test_dn_gcp_scene_is_located_by_its_gcps(dense: SyntheticScene, tmp_path: Path) -> None:
    pytest.importorskip("osgeo")
    from mscam.sar.synth_io import write_scene
    from mscam.scene.raster import PixelMapper, open_raster_info, read_window
    from mscam.scene.vector import read_boxes

    write_scene(dense, tmp_path / "g.tif", tmp_path / "g.gpkg", units="DN", geometry="gcp")
    info = open_raster_info(tmp_path / "g.tif")
    assert info.geotransform is None and len(info.gcps) == 121
    assert info.dtype == "uint16" and info.nodata == (0.0, 0.0)
    assert detect_units(info.dtype, unit_type=info.unit_types[0]) == "DN"
    raw = read_window(tmp_path / "g.tif", 0, 0, 384, 384, mask_nodata=False)
    assert (raw[0][~dense.valid_mask] == 0).all() and (raw[0][dense.valid_mask] > 0).all()
    # DN → dB gives back the scene within the 16-bit quantisation (coarser on dark pixels).
    back = to_model_units(raw[0], "DN", "dB")
    bright = dense.valid_mask & (dense.vv_db > -30)
    assert np.abs(back[bright] - dense.vv_db[bright]).max() < 0.4
    assert np.isnan(back[~dense.valid_mask]).all()
    # Truth polygons (EPSG:4326) sit where the GCP transformer puts the ship's pixel box.
    mapper = PixelMapper(info)
    for record in read_boxes(tmp_path / "g.gpkg"):
        box = (record["px_x0"], record["px_y0"], record["px_x1"], record["px_y1"])
        (corners,) = mapper.boxes_to_map([box])
        np.testing.assert_allclose(np.array(record["ring"][:4]), np.array(corners), atol=2e-6)
    # The radar-geometry grid is rotated by 12°: rows run south 12° east, i.e. the track heads
    # 348° like an ascending pass (checked in UTM, free of meridian convergence).
    write_scene(dense, tmp_path / "u.tif", None, geometry="gcp", gcp_epsg=32633)
    utm = PixelMapper(open_raster_info(tmp_path / "u.tif"))
    (x_top, x_bottom), (y_top, y_bottom) = utm.pixel_to_map(np.array([0, 0]), np.array([0, 384]))
    assert math.degrees(math.atan2(x_bottom - x_top, y_top - y_bottom)) == pytest.approx(
        12.0, abs=0.01
    )


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mscam", "synth", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("osgeo")
    from mscam.scene.raster import open_raster_info
    from mscam.scene.vector import read_boxes

    out, truth, png = tmp_path / "scene.tif", tmp_path / "truth.gpkg", tmp_path / "q.png"
    done = run_cli(
        str(out),
        "--truth",
        str(truth),
        "--profile",
        "dense",
        "--size",
        "160x200",
        "--seed",
        "3",
        "--units",
        "DN",
        "--quicklook",
        str(png),
    )
    assert done.returncode == 0, done.stderr
    assert "ships" in done.stderr and done.stdout == ""
    info = open_raster_info(out)
    assert (info.height, info.width, info.dtype) == (160, 200, "uint16")
    scene = synthesize_scene((160, 200), "dense", 3)
    assert len(read_boxes(truth)) == len(scene.ships) >= 3
    assert png.stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "stormy"], "unknown profile"),
        (["--size", "8"], "at least 32"),
        (["--size", "big"], "--size"),
        (["--units", "linear"], "--units"),
    ],
)
def test_cli_bad_arguments_fail_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "scene.tif"
    done = run_cli(str(out), "--truth", str(tmp_path / "t.gpkg"), *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    assert lines[-1].startswith("mscam: error:") and message in lines[-1]
    assert not any(line.startswith("Traceback") for line in lines)
    assert not out.exists()
