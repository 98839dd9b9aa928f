"""Boxes on a lattice of point targets (a wind farm's turbines): the point targets, the lattice
test by hand, and the boxes dropped or kept on real GeoTIFFs through `find_boxes`, the CLI and
a redraw."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from mscam.cli import main
from mscam.scene.api import redraw_boxes
from mscam.scene.heatmap_writer import HEATMAP_NODATA
from mscam.scene.lattice import LatticeSettings, lattice_kind, point_targets
from mscam.scene.localize import find_boxes
from mscam.scene.raster import write_geotiff
from mscam.scene.vector import read_boxes

UTM = (500000.0, 10.0, 0.0, 6000000.0, 0.0, -10.0)
SIZE = 320
SETTINGS = LatticeSettings()


def sea_db(seed=0, shape=(SIZE, SIZE)):
    """4-look speckled sea at -20 dB."""
    return 10 * np.log10(np.random.default_rng(seed).gamma(4.0, 0.01 / 4.0, shape))


def add_turbine(db, x, y, peak=25.0):
    """A point target: a 3×3 core falling 4 dB from its centre, and a sidelobe cross 13 dB
    down, 6 pixels each way along the grid (what a turbine's dihedral leaves at 10 m)."""
    for k in range(1, 7):
        for dx, dy in ((k, 0), (-k, 0), (0, k), (0, -k)):
            db[y + dy, x + dx] = max(db[y + dy, x + dx], peak - 13.0 - k)
    db[y - 1 : y + 2, x - 1 : x + 2] = np.maximum(db[y - 1 : y + 2, x - 1 : x + 2], peak - 4.0)
    db[y, x] = peak


def add_ship(db, x, y, length=16, peak=15.0):
    """A hull of `length` pixels along a row (160 m at 10 m), 2 pixels wide."""
    db[y : y + 2, x : x + length] = np.maximum(db[y : y + 2, x : x + length], peak)


# -- point targets and the lattice test, by hand ----------------------------------------------


def test_point_targets_are_one_per_target_and_compact_only_when_small():
    db = sea_db()
    add_turbine(db, 50, 60)
    add_ship(db, 150, 200)
    found = {(t.x, t.y): t.compact for t in point_targets(db, 10.0, SETTINGS)}
    assert found[50.0, 60.0] is True  # the cross is bright, but not within 6 dB of the peak
    ship = [xy for xy in found if 150 <= xy[0] < 166 and 200 <= xy[1] < 202]
    assert len(ship) == 1 and found[ship[0]] is False  # one target, 160 m: not compact
    # at 1 m pixels the same turbine core (3 m) is compact and the hull (16 m) is too
    assert all(point_targets(db, 1.0, SETTINGS)[k].compact for k in range(len(found)))
    # an all-nodata window, or too few valid pixels, holds no targets
    assert point_targets(np.full((20, 20), np.nan), 10.0, SETTINGS) == []


def test_a_row_of_four_and_two_rows_of_three_are_lattices_three_alone_is_not():
    row = np.array([(40.0, 0.0), (80.0, 0.0), (120.0, 0.0)])
    assert lattice_kind((0.0, 0.0), row, 10.0, SETTINGS) == "row"  # 4 with the point
    assert lattice_kind((0.0, 0.0), row[:2], 10.0, SETTINGS) == ""  # 3 in one direction
    corner = np.array([(40.0, 0.0), (80.0, 0.0), (0.0, 40.0), (0.0, 80.0)])
    assert lattice_kind((0.0, 0.0), corner, 10.0, SETTINGS) == "grid"
    # the point in the middle of a row of 4: p - v, p + v, p + 2v
    assert (
        lattice_kind((40.0, 0.0), np.array([(0.0, 0), (80, 0), (120, 0)]), 10.0, SETTINGS) == "row"
    )
    # a position off the row by less than the tolerance (1.5 px, or 15 m: 1.5 px at 10 m) still
    # counts, and the next is found from the step measured on it …
    jitter = np.array([(0, 0.4), (0, -0.4), (0, 0.4)])
    assert lattice_kind((0.0, 0.0), row + jitter, 10.0, SETTINGS) == "row"
    # … one further off does not
    assert lattice_kind((0.0, 0.0), row + 5 * jitter, 10.0, SETTINGS) == ""
    # steps shorter than 150 m or longer than 2 km are no lattice (10 m pixels)
    assert lattice_kind((0.0, 0.0), row / 4, 10.0, SETTINGS) == ""
    assert lattice_kind((0.0, 0.0), row * 6, 10.0, SETTINGS) == ""
    assert lattice_kind((0.0, 0.0), row * 6, 5.0, SETTINGS) == "row"  # 1.2 km at 5 m pixels
    assert lattice_kind((0.0, 0.0), np.empty((0, 2)), 10.0, SETTINGS) == ""


# -- boxes on real GeoTIFFs ---------------------------------------------------------------------

#: A 3×3 wind farm 400 m apart, a ship and a lone buoy-like point target.
FARM = [(60 + 40 * i, 60 + 40 * j) for i in range(3) for j in range(3)]
SHIP, LONE = (200, 240), (260, 80)


def heat_at(points, shape=(SIZE, SIZE), sigma=5.0, peak=0.9):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    heat = np.zeros(shape)
    for x, y in points:
        heat = np.maximum(heat, peak * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / sigma**2))
    return heat


def farm_scene(tmp_path, georeferenced=True):
    db = sea_db(3)
    for x, y in [*FARM, LONE]:
        add_turbine(db, x, y)
    add_ship(db, *SHIP)
    scene, heatmap = tmp_path / "farm.tif", tmp_path / "farm_heat.tif"
    georef = (UTM, "EPSG:32633") if georeferenced else (None, "")
    write_geotiff(
        scene,
        np.stack([db, db - 7.0]).astype(np.float32),
        *georef,
        nodata=float("nan"),
        band_descriptions=["VV", "VH"],
    )
    heat = heat_at([*FARM, LONE, (SHIP[0] + 8, SHIP[1] + 1)])
    write_geotiff(
        heatmap,
        np.where(np.isnan(heat), HEATMAP_NODATA, heat).astype(np.float32),
        *georef,
        nodata=HEATMAP_NODATA,
        metadata={"MSCAM_TILE": "64", "MSCAM_TARGET_CLASS": "ship", "MSCAM_METHOD": "ms-cam"},
    )
    return scene, heatmap


def centres(boxes):
    return sorted(((b.x0 + b.x1) // 2, (b.y0 + b.y1) // 2) for b in boxes)


def near(found, points, reach=3):
    return all(
        any(abs(x - px) <= reach and abs(y - py) <= reach for x, y in found) for px, py in points
    )


def test_the_farms_boxes_are_dropped_the_ship_and_the_lone_point_kept(tmp_path, caplog):
    scene, heatmap = farm_scene(tmp_path)
    kept = find_boxes(heatmap, 0.5, scene=scene)  # the engine's own default: keep
    assert len(kept) == 11 and near(centres(kept), [*FARM, LONE])
    with caplog.at_level(logging.INFO, logger="mscam.scene.lattice"):
        dropped = find_boxes(heatmap, 0.5, scene=scene, lattice="drop")
    assert len(dropped) == 2 and near(centres(dropped), [LONE, (SHIP[0] + 8, SHIP[1])])
    assert "dropped 9 of 11 boxes" in caplog.text and "--lattice keep" in caplog.text
    # without the scene there is no image to tell point targets: every box stays
    assert len(find_boxes(heatmap, 0.5, lattice="drop")) == 11


def test_without_georeferencing_the_lattice_is_read_at_10_m_pixels(tmp_path):
    scene, heatmap = farm_scene(tmp_path, georeferenced=False)
    assert len(find_boxes(heatmap, 0.5, scene=scene, lattice="drop")) == 2


def test_localize_drops_or_keeps_and_a_heatmap_from_before_keeps(tmp_path, capsys):
    scene, heatmap = farm_scene(tmp_path)
    args = ["localize", str(heatmap), "--scene", str(scene), "--boxes"]
    # the hand-made heatmap has no lattice tag: as a heatmap from before the check, keep
    assert main([*args, str(tmp_path / "a.gpkg")]) == 0
    assert len(read_boxes(tmp_path / "a.gpkg")) == 11
    assert main([*args, str(tmp_path / "b.gpkg"), "--lattice", "drop"]) == 0
    assert len(read_boxes(tmp_path / "b.gpkg")) == 2
    assert redraw_boxes(heatmap, tmp_path / "c.gpkg", scene=scene, lattice="drop") == 2
    with pytest.raises(SystemExit):
        main([*args, str(tmp_path / "d.gpkg"), "--lattice", "maybe"])
    assert "invalid choice: 'maybe'" in capsys.readouterr().err
    assert not (tmp_path / "d.gpkg").exists()
