"""Boxes from peaks, fitted to the ship's pixels: the peak growing exactly, the clutter threshold
against its own false-alarm rate, and whole boxes on real GeoTIFFs of speckled sea."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mscam.cli import main
from mscam.errors import InputError
from mscam.scene.boxes import write_scene_boxes
from mscam.scene.cfar import clutter_threshold_db
from mscam.scene.heatmap_writer import HEATMAP_NODATA
from mscam.scene.hull import label_components
from mscam.scene.localize import Peak, find_boxes, grow_peaks
from mscam.scene.raster import write_geotiff
from mscam.scene.regions import area_windows
from mscam.scene.vector import read_boxes

UTM = (500000.0, 10.0, 0.0, 6000000.0, 0.0, -10.0)
SIZE = 160


# -- the peak growing, by hand ----------------------------------------------------------------


def test_two_peaks_are_two_targets_only_where_the_heat_between_them_falls_below_half():
    # peaks 0.9 and 0.7 grow down to 0.45 and 0.35; 0.3 between them is below both: two regions,
    # and the 0.3 at the end is no one's
    labels, peaks = grow_peaks(np.array([[0.2, 0.9, 0.6, 0.3, 0.5, 0.7, 0.3]]), 0.5, 0.5, 1)
    assert labels.tolist() == [[0, 1, 1, 0, 2, 2, 0]]
    assert peaks == {1: Peak(0.9, 0, 1), 2: Peak(0.7, 0, 5)}
    # 0.4 between them is within 0.7's own region, which then meets 0.9's: one target
    labels, peaks = grow_peaks(np.array([[0.2, 0.9, 0.6, 0.4, 0.5, 0.7, 0.3]]), 0.5, 0.5, 1)
    assert labels.tolist() == [[0, 1, 1, 1, 1, 1, 0]] and peaks == {1: Peak(0.9, 0, 1)}


def test_a_ripple_on_one_target_is_one_peak_and_a_region_stops_at_half_its_peak():
    labels, peaks = grow_peaks(np.array([[0.0, 0.9, 0.8, 0.85, 0.0]]), 0.5, 0.5, 1)
    assert labels.tolist() == [[0, 1, 1, 1, 0]] and peaks == {1: Peak(0.9, 0, 1)}
    # the threshold picks the peaks; the region reaches below it, to half the peak's own heat
    labels, peaks = grow_peaks(np.array([[0.3, 0.5, 1.0, 0.55, 0.45]]), 0.9, 0.5, 1)
    assert labels.tolist() == [[0, 1, 1, 1, 0]] and peaks == {1: Peak(1.0, 0, 2)}


def test_peaks_closer_than_the_distance_are_one_and_nodata_is_no_ones():
    heat = np.zeros((3, 9))
    heat[1] = [0.0, 0.9, 0.2, 0.8, 0.0, 0.0, np.nan, 0.6, 0.0]
    labels, peaks = grow_peaks(heat, 0.5, 0.5, distance=2)
    # 0.8 is 2 px from 0.9: no peak, and the dip to 0.2 keeps it out of 0.9's region; the
    # nodata pixel is no one's and no barrier to 0.6 being a peak
    assert peaks == {1: Peak(0.9, 1, 1), 2: Peak(0.6, 1, 7)}
    assert labels.tolist() == [[0] * 9, [0, 1, 0, 0, 0, 0, 0, 2, 0], [0] * 9]
    with pytest.raises(InputError, match="fraction"):
        grow_peaks(heat, 0.5, 0.0)


def test_components_are_eight_connected():
    mask = np.array([[1, 1, 0, 0, 1], [0, 1, 0, 1, 1], [0, 0, 0, 0, 0], [1, 0, 1, 1, 1]], bool)
    labels, n = label_components(mask)
    assert n == 4
    assert labels.tolist() == [[1, 1, 0, 0, 2], [0, 1, 0, 2, 2], [0] * 5, [3, 0, 4, 4, 4]]


# -- the clutter threshold --------------------------------------------------------------------


@pytest.mark.parametrize("looks", [1.0, 4.4])
def test_the_clutter_threshold_holds_its_false_alarm_rate(looks):
    rng = np.random.default_rng(3)
    sea_db = 10 * np.log10(rng.gamma(looks, 0.02 / looks, 400_000))
    level = clutter_threshold_db(sea_db[:4000], pfa=1e-3)  # fitted on a ring-sized sample
    assert 0.5e-3 < np.mean(sea_db > level) < 2e-3
    with pytest.raises(InputError, match="false-alarm"):
        clutter_threshold_db(sea_db, pfa=0.7)


# -- whole boxes on GeoTIFFs -------------------------------------------------------------------


def ship_pixels(centre, length_px, width_px, heading_deg):
    """Pixels whose centres lie in a rectangle, heading clockwise from north (up)."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    t = math.radians(heading_deg)
    along = (cols - centre[0]) * math.sin(t) - (rows - centre[1]) * math.cos(t)
    across = (cols - centre[0]) * math.cos(t) + (rows - centre[1]) * math.sin(t)
    return (np.abs(along) <= length_px / 2) & (np.abs(across) <= width_px / 2)


def sea_db(seed=0):
    """4-look speckled sea at -20 dB."""
    return 10 * np.log10(np.random.default_rng(seed).gamma(4.0, 0.01 / 4.0, (SIZE, SIZE)))


def blob(centre, peak, sigma=14.0):
    """Smooth heat, wider than any ship here: what a tile-sized CAM leaves."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    return peak * np.exp(-((cols - centre[0]) ** 2 + (rows - centre[1]) ** 2) / (2 * sigma**2))


def write(tmp_path, vv, heat, name="s"):
    scene, heatmap = tmp_path / f"{name}.tif", tmp_path / f"{name}_heat.tif"
    vh = vv - 7.0
    write_geotiff(
        scene,
        np.stack([vv, vh]).astype(np.float32),
        UTM,
        "EPSG:32633",
        nodata=float("nan"),
        band_descriptions=["VV", "VH"],
    )
    write_geotiff(
        heatmap,
        np.where(np.isnan(heat), HEATMAP_NODATA, heat).astype(np.float32),
        UTM,
        "EPSG:32633",
        nodata=HEATMAP_NODATA,
        metadata={"MSCAM_TILE": "64", "MSCAM_TARGET_CLASS": "ship", "MSCAM_METHOD": "ms-cam"},
    )
    return scene, heatmap


def with_ship(vv, mask, db=5.0, seed=1):
    speckle = 10 * np.log10(np.random.default_rng(seed).gamma(4.0, 0.25, vv.shape))
    return np.where(mask, db + speckle, vv)


def pixel_box(mask):
    rows, cols = np.nonzero(mask)
    return cols.min(), rows.min(), cols.max(), rows.max()


def iou(box, other):
    ix = min(box[2], other[2]) - max(box[0], other[0]) + 1
    iy = min(box[3], other[3]) - max(box[1], other[1]) + 1
    inter = max(ix, 0) * max(iy, 0)
    area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    area_other = (other[2] - other[0] + 1) * (other[3] - other[1] + 1)
    return inter / (area + area_other - inter)


def as_tuple(box):
    return (box.x0, box.y0, box.x1, box.y1)


def test_a_ship_box_fits_the_hull_with_its_length_width_and_heading(tmp_path):
    hull = ship_pixels((80, 80), 24, 4, 60.0)  # 240 m × 40 m, heading 60°
    scene, heatmap = write(tmp_path, with_ship(sea_db(), hull), blob((84, 76), 0.9))
    (box,) = find_boxes(heatmap, 0.5, scene=scene)
    assert box.fit == "image" and iou(as_tuple(box), pixel_box(hull)) >= 0.7
    assert box.length_m == pytest.approx(240, rel=0.15)
    assert box.width_m == pytest.approx(40, abs=15)
    assert abs((box.heading_deg - 60.0 + 90) % 180 - 90) < 5
    assert box.peak == pytest.approx(0.9, abs=0.01) and box.pixels == pytest.approx(
        hull.sum(), rel=0.3
    )
    # the heat alone gives the heat's region: far larger than the hull
    (heat_box,) = find_boxes(heatmap, 0.5)
    assert heat_box.fit == "heat" and heat_box.length_m is None
    assert iou(as_tuple(heat_box), pixel_box(hull)) < 0.5


def test_two_ships_under_one_hot_region_are_two_boxes(tmp_path):
    first = ship_pixels((70, 80), 16, 3, 0.0)
    second = ship_pixels((82, 80), 16, 3, 0.0)  # 9 px of sea between the hulls
    scene, heatmap = write(tmp_path, with_ship(sea_db(), first | second), blob((76, 80), 0.9))
    boxes = find_boxes(heatmap, 0.5, scene=scene)
    assert len(boxes) == 2
    fitted = sorted(as_tuple(b) for b in boxes)
    assert iou(fitted[0], pixel_box(first)) >= 0.6 and iou(fitted[1], pixel_box(second)) >= 0.6
    assert len(find_boxes(heatmap, 0.5)) == 1  # the heat alone cannot tell them apart


def test_a_hull_reaching_past_the_heat_is_followed_a_little_and_a_neighbour_is_not_a_ship(
    tmp_path,
):
    # Heat over the middle of a 40 px hull (heading 90°: along x) falls to half its peak 14 px
    # from the centre; the hull's own bright pixels carry the box up to `search` (3 px) further.
    # A boat 2–3 px outside the region, under heat above the threshold (0.3) but joined to
    # nothing in the region, is not another ship of this peak.
    hull = ship_pixels((80, 80), 40, 3, 90.0)
    boat = ship_pixels((80, 97), 4, 2, 90.0)  # rows 96–97; the region ends at row 93
    heat = blob((80, 80), 0.9, sigma=12.0)
    scene, heatmap = write(tmp_path, with_ship(sea_db(), hull | boat, db=8.0), heat)
    assert heat[96:98, 78:82].min() >= 0.3
    (box,) = find_boxes(heatmap, 0.3, scene=scene)
    half = heat >= 0.45
    x0, _, x1, _ = pixel_box(half & hull)  # the hull under the heat: 28 px long
    assert (box.x0, box.x1) == (x0 - 3, x1 + 3)  # the region's bright pixels, 3 px further
    assert box.y1 < 90  # the boat's pixels are not in the box


def test_area_windows_join_areas_that_touch_and_clip_to_the_raster():
    # two overlapping, one within the gap of their union, one far, one outside the raster
    areas = [(0, 0, 10, 10), (5, 5, 20, 20), (22, 0, 30, 4), (60, 60, 70, 70), (200, 0, 210, 5)]
    assert area_windows(areas, 100, 80, gap=2) == [(0, 0, 30, 20), (60, 60, 70, 70)]
    # a merged window that reaches a third area takes it in too
    chain = [(0, 0, 10, 10), (40, 0, 50, 10), (8, 8, 42, 12)]
    assert area_windows(chain, 100, 80, gap=0) == [(0, 0, 50, 12)]
    assert area_windows([(-5, -5, 3, 3)], 100, 80, gap=1) == [(0, 0, 3, 3)]


def test_boxes_searched_only_around_the_hot_areas_are_the_same_boxes(tmp_path):
    ships = ship_pixels((40, 40), 16, 3, 30.0) | ship_pixels((120, 110), 20, 4, 100.0)
    heat = np.maximum(blob((40, 40), 0.9, 8.0), blob((120, 110), 0.8, 8.0))
    heat[heat < 0.05] = 0.0  # outside the hot tiles the heat is exactly 0
    scene, heatmap = write(tmp_path, with_ship(sea_db(), ships), heat)
    everywhere = find_boxes(heatmap, 0.5, scene=scene)
    areas = [(16, 16, 64, 64), (96, 86, 144, 134)]
    assert len(everywhere) == 2
    assert find_boxes(heatmap, 0.5, scene=scene, areas=areas) == everywhere
    assert find_boxes(heatmap, 0.5, areas=areas) == find_boxes(heatmap, 0.5)
    # only what the areas hold is searched
    (one,) = find_boxes(heatmap, 0.5, scene=scene, areas=areas[:1])
    assert one == min(everywhere, key=lambda b: b.x0)


def test_hot_flat_sea_gives_no_box_when_the_image_is_there(tmp_path):
    scene, heatmap = write(tmp_path, sea_db(seed=4), blob((80, 80), 0.95))
    assert find_boxes(heatmap, 0.5, scene=scene) == []
    assert len(find_boxes(heatmap, 0.5)) == 1


def test_the_threshold_still_decides_which_peaks_count(tmp_path):
    centres, peaks = [(30, 30), (120, 40), (60, 120)], [0.9, 0.6, 0.3]
    hulls = [ship_pixels(c, 10, 3, 45.0) for c in centres]
    vv = with_ship(sea_db(), hulls[0] | hulls[1] | hulls[2])
    heat = sum(blob(c, p, sigma=8.0) for c, p in zip(centres, peaks))
    scene, heatmap = write(tmp_path, vv, heat)
    counts = [len(find_boxes(heatmap, t, scene=scene)) for t in (0.2, 0.5, 0.8, 0.95)]
    assert counts == [3, 2, 1, 0]


def test_nodata_is_neither_ship_nor_sea(tmp_path):
    hull = ship_pixels((80, 80), 24, 4, 90.0)  # along the rows: cols 68..91
    vv = with_ship(sea_db(), hull)
    vv[:, 84:] = np.nan  # the scene stops across the ship
    heat = blob((80, 80), 0.9)
    heat[:, 100:] = np.nan
    scene, heatmap = write(tmp_path, vv, heat)
    (box,) = find_boxes(heatmap, 0.5, scene=scene)
    assert box.x1 == 83 and box.x0 == pixel_box(hull)[0]
    # a hot region made only of scene nodata: no sea to compare with, the heat region stands
    vv[:] = np.nan
    scene, heatmap = write(tmp_path, vv, heat, name="void")
    (box,) = find_boxes(heatmap, 0.5, scene=scene)
    assert box.fit == "heat" and box.x1 < 100


def test_the_boxes_file_and_the_cli(tmp_path, capsys):
    hull = ship_pixels((80, 80), 20, 4, 30.0)
    scene, heatmap = write(tmp_path, with_ship(sea_db(), hull), blob((80, 80), 0.9))
    out = tmp_path / "boxes.gpkg"
    assert main(["localize", str(heatmap), "--boxes", str(out), "--scene", str(scene)]) == 0
    printed = capsys.readouterr().out  # this hand-made heatmap does not record its threshold
    assert "1 boxes at threshold 0.5 (the default: the heatmap does not say); fitted" in printed
    (record,) = read_boxes(out)
    assert (
        record["class"] == "ship" and record["fit"] == "image" and record["score"] == record["peak"]
    )
    assert record["length_m"] == pytest.approx(200, rel=0.2)
    assert abs((record["heading_deg"] - 30.0 + 90) % 180 - 90) < 6
    assert record["area_m2"] == pytest.approx(100.0 * hull.sum(), rel=0.35)
    xmin, _, _, ymax = record["bbox"]
    assert xmin == UTM[0] + 10 * record["px_x0"] and ymax == UTM[3] - 10 * record["px_y0"]
    # heat only, with a note; a scene on another grid is one clear line
    assert write_scene_boxes(heatmap, tmp_path / "heat.gpkg", 0.5, "ship", "ms-cam") == 1
    other = tmp_path / "other.tif"
    write_geotiff(other, np.zeros((2, 50, 50), np.float32) - 20, UTM, "EPSG:32633")
    args = ["localize", str(heatmap), "--boxes", str(tmp_path / "x.gpkg"), "--scene", str(other)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "not on the heatmap's grid" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.gpkg").exists()


def test_a_scene_without_a_co_polarised_band_falls_back_to_the_heat(tmp_path, caplog):
    hull = ship_pixels((80, 80), 20, 4, 30.0)
    scene, heatmap = write(tmp_path, with_ship(sea_db(), hull), blob((80, 80), 0.9))
    (box,) = find_boxes(heatmap, 0.5, scene=scene, bands=("VH", "HV"))
    assert box.fit == "heat" and "no co-polarised band" in caplog.text
    with pytest.raises(InputError, match="does not exist"):
        find_boxes(heatmap, 0.5, scene=tmp_path / "missing.tif")
