"""The scene facade (`mscam.scene`): boxes drawn again from a heatmap keep the run's tile scores,
one point explained exactly as the pipeline explains its tile, the hot tiles stored in the COG."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mscam.cli import main
from mscam.errors import InputError
from mscam.scene import explain_point, explain_scene, read_boxes, redraw_boxes
from mscam.scene.heatmap_writer import (
    HeatmapWriter,
    TileScore,
    heatmap_hot_reach,
    heatmap_hot_tiles,
    heatmap_tags,
)
from mscam.scene.pipeline import SceneSettings
from mscam.scene.raster import write_geotiff
from scene_helpers import ARCH_FILE, UTM, bright_card, sea_scene, write_scene

gdal = pytest.importorskip("osgeo.gdal")

TARGETS = [(50, 50, 70, 60), (300, 200, 310, 230), (200, 120, 206, 124)]


@pytest.fixture(scope="module")
def model_card(tmp_path_factory) -> Path:
    return bright_card(tmp_path_factory.mktemp("model"))


def settings(card: Path, **kw) -> SceneSettings:
    return SceneSettings(model=str(card), architecture_file=str(ARCH_FILE), **kw)


@pytest.fixture(scope="module")
def run(tmp_path_factory, model_card):
    """One scene run with boxes: (scene, heatmap, boxes, result)."""
    folder = tmp_path_factory.mktemp("run")
    scene = write_scene(folder / "scene.tif", sea_scene(targets=TARGETS))
    heat, boxes = folder / "heat.tif", folder / "boxes.gpkg"
    result = explain_scene(scene, heat, boxes, settings(model_card))
    assert result.n_boxes >= 2
    return scene, heat, boxes, result


def records(path: Path) -> list[dict]:
    return sorted(read_boxes(path), key=lambda r: (r["px_y0"], r["px_x0"]))


def peak_heat(heatmap: Path, record: dict) -> float:
    """The highest heat inside a box's pixel bounds."""
    heat = gdal.Open(str(heatmap)).ReadAsArray()
    return float(
        heat[record["px_y0"] : record["px_y1"] + 1, record["px_x0"] : record["px_x1"] + 1].max()
    )


# -- the hot tiles stored with the heatmap ---------------------------------------------------------


def test_hot_tiles_survive_the_cog_copy_exactly(tmp_path):
    like = gdal.GetDriverByName("MEM").Create("", 40, 30, 1, gdal.GDT_Float32)
    like.SetGeoTransform(UTM)
    # Probabilities that a short decimal or float32 would not keep.
    tiles = [TileScore(0, 0, 32, 32, 0.1 + 1e-12), TileScore(8, 0, 40, 30, 2 / 3)]
    with HeatmapWriter(tmp_path / "h.tif", like, {"method": "ms-cam"}) as writer:
        writer.write_rows(0, np.zeros((30, 40), np.float32))
        writer.set_hot_tiles(tiles, reach=2)
        writer.finish()
    ds = gdal.Open(str(tmp_path / "h.tif"))
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert heatmap_hot_tiles(tmp_path / "h.tif") == tiles
    assert heatmap_hot_reach(tmp_path / "h.tif") == 2
    assert heatmap_tags(tmp_path / "h.tif") == {"method": "ms-cam"}  # the tags are unchanged


def test_a_run_stores_its_hot_tiles_and_what_the_boxes_were_drawn_with(run):
    _scene, heat, _boxes, result = run
    tiles = heatmap_hot_tiles(heat)
    assert len(tiles) == result.hot_tiles > 0
    assert all(0.5 <= t.probability <= 1 and t.x1 - t.x0 == 64 for t in tiles)
    assert heatmap_hot_reach(heat) == 0
    tags = heatmap_tags(heat)
    assert (tags["threshold"], tags["merge_gap"], tags["lattice"]) == ("0.5", "3", "drop")


def test_a_run_without_hot_tiles_stores_an_empty_list(tmp_path, model_card):
    scene = write_scene(tmp_path / "s.tif", sea_scene(seed=5))
    explain_scene(scene, tmp_path / "h.tif", None, settings(model_card))
    assert heatmap_hot_tiles(tmp_path / "h.tif") == []


def test_hot_tiles_are_set_while_the_rows_are_open(tmp_path):
    like = gdal.GetDriverByName("MEM").Create("", 8, 8, 1, gdal.GDT_Float32)
    with HeatmapWriter(tmp_path / "h.tif", like, {}) as writer:
        writer.close_rows()
        with pytest.raises(RuntimeError, match="after close_rows"):
            writer.set_hot_tiles([])


# -- redraw_boxes ----------------------------------------------------------------------------------


def test_a_redraw_at_the_runs_threshold_with_its_scene_is_the_runs_boxes(run, tmp_path):
    scene, heat, boxes, _ = run
    expected = records(boxes)
    assert {r["fit"] for r in expected} == {"image"}
    # threshold None is the run's; given explicitly, the same.
    assert redraw_boxes(heat, tmp_path / "a.gpkg", scene=scene) == len(expected)
    assert records(tmp_path / "a.gpkg") == expected
    redraw_boxes(heat, tmp_path / "b.gpkg", 0.5, scene=scene)
    assert records(tmp_path / "b.gpkg") == expected
    # The command line's redraw too: `mscam localize HEATMAP --boxes B --threshold T --scene S`.
    args = ["localize", str(heat), "--boxes", str(tmp_path / "c.gpkg"), "--scene", str(scene)]
    assert main([*args, "--threshold", "0.5"]) == 0
    assert records(tmp_path / "c.gpkg") == expected


def test_localize_without_threshold_or_gap_uses_the_runs(tmp_path, model_card):
    scene = write_scene(tmp_path / "scene.tif", sea_scene(targets=TARGETS))
    heat, boxes = tmp_path / "heat.tif", tmp_path / "boxes.gpkg"
    explain_scene(scene, heat, boxes, settings(model_card, threshold=0.35, merge_gap=-1))
    args = ["localize", str(heat), "--boxes", str(tmp_path / "again.gpkg"), "--scene", str(scene)]
    assert main(args) == 0
    assert records(tmp_path / "again.gpkg") == records(boxes)
    assert {r["threshold"] for r in records(boxes)} == {0.35}


def test_scores_stay_tile_probabilities_at_another_threshold(run, tmp_path):
    scene, heat, _boxes, _ = run
    probabilities = {t.probability for t in heatmap_hot_tiles(heat)}
    for threshold in (0.3, 0.8):
        out = tmp_path / f"t{threshold}.gpkg"
        assert redraw_boxes(heat, out, threshold, scene=scene) >= 1
        found = records(out)
        assert all(r["threshold"] == threshold for r in found)
        assert all(r["score"] in probabilities and r["score"] >= 0.5 for r in found)


def test_a_boxs_score_is_its_tiles_probability_not_its_heat(tmp_path):
    """A heatmap whose heat (0.6) is below its tile's probability (0.9): the score is 0.9 at any
    threshold; a peak outside every stored tile scores its heat."""
    like = gdal.GetDriverByName("MEM").Create("", 100, 80, 1, gdal.GDT_Float32)
    like.SetGeoTransform(UTM)
    like.SetProjection(
        gdal.Open(str(write_scene(tmp_path / "s.tif", sea_scene(8, 8)))).GetProjection()
    )
    heat = np.zeros((80, 100), np.float32)
    heat[20:26, 20:30] = 0.6
    heat[60:64, 80:84] = 0.7  # outside the stored tiles: heat the search of the tiles never sees
    tags = {"method": "grad-cam(k=1)", "target_class": "ship", "threshold": "0.5"}
    with HeatmapWriter(tmp_path / "h.tif", like, tags) as writer:
        writer.write_rows(0, heat)
        writer.set_hot_tiles([TileScore(0, 0, 64, 64, 0.9)])
        writer.finish()
    for threshold in (0.3, 0.55):
        assert redraw_boxes(tmp_path / "h.tif", tmp_path / "b.gpkg", threshold) == 1
        (box,) = read_boxes(tmp_path / "b.gpkg")
        assert box["score"] == 0.9 and box["peak"] == pytest.approx(0.6)
        assert (box["method"], box["class"], box["threshold"]) == ("grad-cam", "ship", threshold)
    # The same heatmap without its tiles: the whole heatmap searched, scores are peak heat.
    with HeatmapWriter(tmp_path / "old.tif", like, tags) as writer:
        writer.write_rows(0, heat)
        writer.finish()
    assert redraw_boxes(tmp_path / "old.tif", tmp_path / "old.gpkg") == 2
    scores = sorted(box["score"] for box in read_boxes(tmp_path / "old.gpkg"))
    assert scores == pytest.approx([0.6, 0.7])


def test_a_heatmap_without_stored_tiles_falls_back_to_the_peak_heat(run, tmp_path):
    """A heatmap of an earlier version: no tiles, the whole heatmap searched, peak heat scores."""
    _scene, heat, _boxes, _ = run
    old = tmp_path / "old.tif"
    gdal.Translate(str(old), str(heat))
    ds = gdal.Open(str(old), gdal.GA_Update)
    band = ds.GetRasterBand(1)
    band.SetMetadata({k: v for k, v in band.GetMetadata().items() if not k.startswith("MSCAM_HOT")})
    ds = band = None
    assert heatmap_hot_tiles(old) is None and heatmap_hot_reach(old) is None
    n = redraw_boxes(old, tmp_path / "old.gpkg", 0.3)
    found = records(tmp_path / "old.gpkg")
    assert n == len(found) >= 2
    for record in found:
        assert record["score"] == pytest.approx(record["peak"])
        assert record["score"] == pytest.approx(peak_heat(old, record), abs=1e-6)


def test_redraw_refuses_a_raster_that_is_no_mscam_heatmap(run, tmp_path, capsys):
    scene, *_ = run
    with pytest.raises(InputError, match="not an mscam heatmap"):
        redraw_boxes(scene, tmp_path / "b.gpkg")
    assert main(["localize", str(scene), "--boxes", str(tmp_path / "b.gpkg")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an mscam heatmap" in err and "Traceback" not in err
    assert not (tmp_path / "b.gpkg").exists()


def test_redraw_refuses_to_write_onto_its_inputs(run):
    _scene, heat, *_ = run
    with pytest.raises(Exception, match=r"heatmap|input|reads"):
        redraw_boxes(heat, heat)


def test_a_redraw_after_a_resampled_run_is_the_runs_boxes(tmp_path):
    """Worked at the model's 10 m and mapped back to 3 m: tiles on the input's grid and a reach."""
    card = bright_card(tmp_path / "source")
    data = json.loads(card.read_text())
    data["pixel_spacing"] = 10.0
    at10 = tmp_path / "at10"
    at10.mkdir()
    (at10 / "card.json").write_text(json.dumps(data))
    shutil.copy(card.parent / data["weights"], at10 / data["weights"])
    x0, y0, side = 500, 400, 40  # a 120 m target at 3 m
    array = sea_scene(600, 900, targets=[(x0, y0, x0 + side, y0 + side)])
    scene = write_scene(
        tmp_path / "s.tif", array, geotransform=(500000.0, 3.0, 0.0, 6e6, 0.0, -3.0)
    )
    heat, boxes = tmp_path / "h.tif", tmp_path / "b.gpkg"
    result = explain_scene(scene, heat, boxes, settings(at10 / "card.json"))
    assert result.n_boxes == 1
    assert heatmap_hot_reach(heat) > 0
    tiles = heatmap_hot_tiles(heat)
    assert tiles and all(t.x1 - t.x0 > 64 for t in tiles)  # on the 3 m grid
    redraw_boxes(heat, tmp_path / "again.gpkg", scene=scene)
    assert records(tmp_path / "again.gpkg") == records(boxes)


# -- explain_point ---------------------------------------------------------------------------------


def test_explain_point_gives_the_runs_tile_probability_with_units_and_bands(tmp_path, model_card):
    """A scene in linear power with its bands unnamed and in VH, VV order: the run and the point
    both need --units and --bands, and then agree on the tile."""
    db = sea_scene(targets=TARGETS)
    power = (10 ** (db[::-1] / 10)).astype(np.float32)  # VH, VV in linear power
    scene = tmp_path / "s.tif"
    write_geotiff(scene, power, geotransform=UTM, projection="EPSG:32633")
    overrides = {"units": "linear", "bands": ("VH", "VV")}
    explain_scene(scene, tmp_path / "h.tif", None, settings(model_card, **overrides))
    tiles = heatmap_hot_tiles(tmp_path / "h.tif")
    assert tiles
    tile = max(tiles, key=lambda t: t.probability)
    cx, cy = (tile.x0 + tile.x1) / 2, (tile.y0 + tile.y1) / 2
    x, y = UTM[0] + cx * UTM[1], UTM[3] + cy * UTM[5]
    common = {"model": str(model_card), "architecture_file": str(ARCH_FILE), "methods": ["ms-cam"]}
    point = explain_point(scene, x, y, **common, units="linear", bands="VH, VV")  # as typed
    assert point.window == (tile.x0, tile.y0, tile.x1 - tile.x0, tile.y1 - tile.y0)
    assert point.working_window == point.window
    assert point.probabilities["ship"] == pytest.approx(tile.probability, abs=1e-6)
    assert point.corners[0] == (UTM[0] + tile.x0 * UTM[1], UTM[3] + tile.y0 * UTM[5])
    heat = point.maps["ms-cam"]
    assert heat.shape == (64, 64) and 0 <= heat.min() and heat.max() <= 1 + 1e-6
    # Without the overrides the bands are taken by position (VV, VH): another tile altogether.
    guessed = explain_point(scene, x, y, **common)
    assert abs(guessed.probabilities["ship"] - tile.probability) > 1e-4


def test_explain_point_without_georeferencing_takes_pixel_coordinates(tmp_path, model_card):
    scene = write_scene(tmp_path / "s.tif", sea_scene(targets=TARGETS), geotransform=None)
    point = explain_point(
        scene, 60, 55, model=str(model_card), architecture_file=str(ARCH_FILE), methods=["grad-cam"]
    )
    assert point.window == (28, 23, 64, 64) and point.corners is None
    assert point.probabilities["ship"] > 0.9
    with pytest.raises(InputError, match="outside"):
        explain_point(scene, 400, 10, model=str(model_card), architecture_file=str(ARCH_FILE))


# -- the package -----------------------------------------------------------------------------------


def test_the_use_cases_come_from_mscam_scene_without_loading_gdal_torch_or_the_pipeline():
    code = (
        "import sys, mscam.scene\n"
        "assert 'osgeo' not in sys.modules and 'torch' not in sys.modules\n"
        "assert 'mscam.scene.pipeline' not in sys.modules\n"
        "assert 'mscam.eval.scene' not in sys.modules\n"
        "from mscam.scene import explain_scene, redraw_boxes, explain_point, evaluate_scene\n"
        "from mscam.eval.scene import evaluate_scene as e\n"
        "assert e is evaluate_scene\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
