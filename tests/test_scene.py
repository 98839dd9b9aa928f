"""The scene pipeline: tiling, seamless streaming mosaic, heatmap grid, boxes, failures."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mscam.errors import Cancelled, InputError, OutputError
from mscam.scene.mosaic import BlendBlock, StreamingMosaic, blend_window
from mscam.scene.pipeline import (
    SceneJob,
    SceneSettings,
    blend_hot_tiles,
    explain_scene,
    write_scene_boxes,
)
from mscam.scene.raster import GCP, open_raster_info
from mscam.scene.regions import _Region, merge_regions
from mscam.scene.tiling import TileGrid
from mscam.scene.vector import read_boxes
from scene_helpers import ARCH_FILE, UTM, bright_card, sea_scene, write_scene

gdal = pytest.importorskip("osgeo.gdal")


# -- tiling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "tile", "overlap"),
    [
        (100, 70, 32, 0.25),
        (64, 64, 64, 0.5),
        (30, 20, 64, 0.25),
        (257, 129, 64, 0.0),
        (500, 300, 48, 0.75),
    ],
)
def test_tile_grid_covers_the_raster_with_tiles_inside_it(width, height, tile, overlap):
    grid = TileGrid(width, height, tile, overlap)
    covered = np.zeros((height, width), int)
    for t in grid:
        assert 0 <= t.x0 and t.x1 <= width and 0 <= t.y0 and t.y1 <= height
        assert (t.width, t.height) == (min(tile, width), min(tile, height))
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert covered.min() >= 1
    assert len(list(grid)) == len(grid)
    steps = np.diff(grid.xs)
    assert (steps <= grid.stride).all() and (steps > 0).all()


def test_tile_grid_rejects_bad_settings():
    for args in [(0, 10, 32, 0.2), (10, 10, 4, 0.2), (10, 10, 32, 1.0), (10, 10, 32, -0.1)]:
        with pytest.raises(ValueError):
            TileGrid(*args)


def test_windows_partition_the_tile_rows():
    grid = TileGrid(300, 400, 64, 0.25)
    windows = grid.windows(rows_per_window=3)
    rows = [r for w in windows for r in range(w.row0, w.row1)]
    assert rows == list(range(grid.shape[0]))
    assert windows[0].y0 == 0 and windows[-1].y1 == 400
    assert sum(len(grid.tiles(w)) for w in windows) == len(grid)


# -- mosaic ---------------------------------------------------------------------------------------


def blend(grid: TileGrid, tile_maps: dict, rows_per_window: int = 1) -> np.ndarray:
    out = np.full((grid.height, grid.width), np.nan, np.float32)

    def sink(y0, rows):
        assert np.isnan(out[y0 : y0 + len(rows)]).all(), "rows emitted twice"
        out[y0 : y0 + len(rows)] = rows

    mosaic = StreamingMosaic(grid.width, grid.height, sink)
    windows = grid.windows(rows_per_window)
    for i, window in enumerate(windows):
        block = BlendBlock.empty(
            window.y0,
            window.y1,
            grid.width,
            valid=np.ones((window.y1 - window.y0, grid.width), bool),
        )
        for t in grid.tiles(window):
            block.add_tile(t.x0, t.y0, tile_maps[(t.row, t.col)])
        mosaic.add(block)
        mosaic.flush(grid.final_rows_before(i, windows))
    return out


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.6])
@pytest.mark.parametrize("rows_per_window", [1, 2])
def test_mosaic_of_constant_tile_maps_is_constant(overlap, rows_per_window):
    grid = TileGrid(203, 151, 40, overlap)
    maps = {(t.row, t.col): np.full((t.height, t.width), 0.37, np.float32) for t in grid}
    out = blend(grid, maps, rows_per_window)
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out, 0.37, rtol=0, atol=1e-6)


def test_mosaic_equals_the_weighted_average_of_the_tiles():
    grid = TileGrid(150, 110, 32, 0.5)
    rng = np.random.default_rng(3)
    maps = {(t.row, t.col): rng.random((t.height, t.width)).astype(np.float32) for t in grid}
    numerator = np.zeros((110, 150))
    weight = np.zeros((110, 150))
    for t in grid:
        w = blend_window(t.height, t.width)
        numerator[t.y0 : t.y1, t.x0 : t.x1] += w * maps[(t.row, t.col)]
        weight[t.y0 : t.y1, t.x0 : t.x1] += w
    np.testing.assert_allclose(blend(grid, maps, 2), numerator / weight, atol=1e-5)


def test_blend_window_is_positive_and_smooth():
    w = blend_window(64, 48)
    assert w.min() > 0 and w.max() <= 1
    assert w[0, 0] < 1e-3 and w[32, 24] > 0.99


# -- the pipeline on real GeoTIFFs -------------------------------------------------------------


@pytest.fixture(scope="module")
def model_card(tmp_path_factory) -> Path:
    return bright_card(tmp_path_factory.mktemp("model"))


def settings(card: Path, **kw) -> SceneSettings:
    return SceneSettings(model=str(card), architecture_file=str(ARCH_FILE), **kw)


def run_scene(tmp_path, card, array, name="scene", **kw):
    scene = write_scene(tmp_path / f"{name}.tif", array, **kw.pop("georef", {}))
    heat, boxes = tmp_path / f"{name}_heat.tif", tmp_path / f"{name}_boxes.gpkg"
    result = explain_scene(scene, heat, boxes, settings(card, **kw))
    return scene, heat, boxes, result


def test_heatmap_is_on_the_input_grid_with_values_nodata_and_tags(tmp_path, model_card):
    array = sea_scene(targets=[(100, 100, 120, 112)])
    array[:, :10, :] = np.nan
    scene, heat, _boxes, result = run_scene(tmp_path, model_card, array)
    src, out = gdal.Open(str(scene)), gdal.Open(str(heat))
    assert (out.RasterXSize, out.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    assert out.GetGeoTransform() == src.GetGeoTransform()
    assert out.GetSpatialRef().IsSame(src.GetSpatialRef())
    band = out.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32 and band.GetNoDataValue() == -1.0
    assert out.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert band.GetOverviewCount() >= 1 or max(out.RasterXSize, out.RasterYSize) <= 512
    values = band.ReadAsArray()
    assert (values[:10] == -1).all()
    data = values[10:]
    assert data.min() >= 0 and data.max() <= 1
    tags = out.GetMetadata()
    assert tags["MSCAM_METHOD"] == "ms-cam" and tags["MSCAM_TARGET_CLASS"] == "ship"
    assert tags["MSCAM_TILE"] == "64" and tags["MSCAM_OVERLAP"] == "0.25"
    assert tags["MSCAM_MODEL"] == "bright-test 1" and "MSCAM_VERSION" in tags
    # the target is hot, open sea stays cold
    assert values[100:112, 100:120].max() > 0.5
    assert values[200:, 250:].max() < 0.05
    assert result.hot_tiles > 0 and result.hot_tiles < result.tiles


def test_target_on_a_tile_corner_is_one_box_at_the_right_place(tmp_path, model_card):
    grid = TileGrid(400, 300, 64, 0.25)
    cx, cy = grid.xs[2] + 64, grid.ys[2] + 64  # corner of tile (2, 2), inside tiles (3, 3) …
    target = (cx - 8, cy - 6, cx + 8, cy + 6)
    _, _heat, boxes, result = run_scene(
        tmp_path, model_card, sea_scene(targets=[target]), threshold=0.5
    )
    found = read_boxes(boxes)
    assert result.n_boxes == len(found) == 1
    box = found[0]
    for field in ("class", "score", "peak", "mean", "area_m2", "method", "threshold"):
        assert field in box
    assert box["class"] == "ship" and box["method"] == "ms-cam" and box["threshold"] == 0.5
    assert (
        0.5 <= box["peak"] <= 1
        and box["mean"] <= box["peak"]
        and box["score"] >= box["peak"] - 1e-6
    )
    # map position: pixel box → UTM through the geotransform
    xmin, ymin, xmax, ymax = box["bbox"]
    tx0, ty1 = UTM[0] + target[0] * 10, UTM[3] - target[1] * 10
    tx1, ty0 = UTM[0] + target[2] * 10, UTM[3] - target[3] * 10
    inter = max(0, min(xmax, tx1) - max(xmin, tx0)) * max(0, min(ymax, ty1) - max(ymin, ty0))
    union = (xmax - xmin) * (ymax - ymin) + (tx1 - tx0) * (ty1 - ty0) - inter
    assert inter / union > 0.5
    assert box["area_m2"] == pytest.approx(
        100.0 * (box["px_x1"] - box["px_x0"] + 1) * (box["px_y1"] - box["px_y0"] + 1), rel=0.5
    )


def region(x0, y0, x1, y1, peak=0.5, pixels=4):
    return _Region(x0, y0, x1, y1, peak, peak * pixels, pixels, (x0, y0))


def test_regions_closer_than_the_gap_merge_into_one_box():
    # a chain a–b–c, each 2 px from the next, and d far away
    chain = [region(0, 0, 4, 4, 0.6), region(7, 0, 9, 3, 0.9, 2), region(12, 2, 14, 6, 0.7)]
    far = region(40, 40, 42, 42)
    merged = merge_regions([*chain, far], gap=3)
    assert len(merged) == 2
    big = max(merged, key=lambda r: r.pixels)
    assert (big.x0, big.y0, big.x1, big.y1) == (0, 0, 14, 6)
    assert big.peak == 0.9 and big.peak_xy == (7, 0) and big.pixels == 10
    assert big.total == pytest.approx(0.6 * 4 + 0.9 * 2 + 0.7 * 4)
    assert len(merge_regions([region(0, 0, 4, 4), region(7, 0, 9, 3)], gap=2)) == 2
    assert len(merge_regions([region(0, 0, 4, 4), region(5, 5, 6, 6)], gap=-1)) == 2


def test_a_split_target_is_one_box_unless_merging_is_off(tmp_path, model_card):
    targets = [(100, 100, 110, 108), (112, 100, 122, 108)]  # two blobs 2 px apart
    _, heat, boxes, _ = run_scene(tmp_path, model_card, sea_scene(targets=targets), threshold=0.5)
    assert len(read_boxes(boxes)) == 1
    assert (
        write_scene_boxes(heat, tmp_path / "split.gpkg", 0.5, "ship", "ms-cam", merge_gap=-1) == 2
    )


def test_empty_sea_gives_no_boxes_and_a_cold_heatmap(tmp_path, model_card):
    _, heat, boxes, result = run_scene(tmp_path, model_card, sea_scene(seed=5))
    assert result.n_boxes == 0 and read_boxes(boxes) == []
    assert result.hot_tiles == 0
    assert gdal.Open(str(heat)).ReadAsArray().max() == 0.0


def test_localize_again_at_other_thresholds(tmp_path, model_card):
    _, heat, _boxes, _ = run_scene(
        tmp_path, model_card, sea_scene(targets=[(50, 50, 70, 60), (300, 200, 310, 230)])
    )
    counts = {}
    for threshold in (0.2, 0.5, 0.999):
        out = tmp_path / f"again_{threshold}.gpkg"
        counts[threshold] = write_scene_boxes(heat, out, threshold, "ship", "ms-cam")
        assert all(b["threshold"] == threshold for b in read_boxes(out))
    assert counts[0.2] >= counts[0.5] >= 2 > counts[0.999]


def test_windows_processed_in_any_order_give_the_same_heatmap(tmp_path, model_card):
    scene = write_scene(tmp_path / "s.tif", sea_scene(targets=[(10, 150, 40, 170)]))
    job = SceneJob(scene, settings(model_card))
    windows = job.grid.windows()
    forward = [job.process_window(w).block for w in windows]
    backward = [job.process_window(w).block for w in reversed(windows)][::-1]
    for a, b in zip(forward, backward):
        np.testing.assert_array_equal(a.numerator, b.numerator)
        np.testing.assert_array_equal(a.weight, b.weight)


def test_batch_defaults_by_device_and_never_changes_the_heatmap(tmp_path, model_card):
    assert SceneJob(write_scene(tmp_path / "s.tif", sea_scene()), settings(model_card)).batch == 16
    array = sea_scene(targets=[(10, 150, 40, 170), (200, 60, 230, 75)])
    heats = []
    for batch in (None, 3, 64):
        _, heat, _, _ = run_scene(tmp_path, model_card, array, name=f"b{batch}", batch=batch)
        heats.append(gdal.Open(str(heat)).ReadAsArray())
    assert heats[0].max() > 0.5
    for other in heats[1:]:
        np.testing.assert_allclose(other, heats[0], atol=1e-5)


def test_gcp_located_input_gives_a_heatmap_with_the_same_gcps(tmp_path, model_card):
    gcps = [
        GCP(px, py, 15.0 + px * 1e-4, 54.0 - py * 1e-4)
        for px in (0, 200, 399)
        for py in (0, 150, 299)
    ]
    _, heat, boxes, _ = run_scene(
        tmp_path,
        model_card,
        sea_scene(targets=[(200, 100, 220, 110)]),
        georef={"geotransform": None, "gcps": gcps, "gcp_projection": "EPSG:4326"},
    )
    out = gdal.Open(str(heat))
    assert out.GetGeoTransform(can_return_null=True) is None
    assert out.GetGCPCount() == len(gcps)
    got = [v for g in out.GetGCPs() for v in (g.GCPPixel, g.GCPLine, g.GCPX, g.GCPY)]
    assert got == pytest.approx([v for g in gcps for v in (g.pixel, g.line, g.x, g.y)])
    found = read_boxes(boxes)
    assert len(found) == 1
    xmin, ymin, xmax, ymax = found[0]["bbox"]
    assert 15.0195 < xmin < xmax < 15.0225 and 53.988 < ymin < ymax < 53.9905


def test_raster_without_georeferencing_works_in_pixels_with_a_warning(tmp_path, model_card, caplog):
    _, _heat, boxes, _ = run_scene(
        tmp_path, model_card, sea_scene(targets=[(60, 60, 80, 70)]), georef={"geotransform": None}
    )
    assert "no georeferencing" in caplog.text
    (box,) = read_boxes(boxes)
    assert 55 <= box["bbox"][0] and box["bbox"][2] <= 85


def test_scene_smaller_than_a_tile_and_all_nodata(tmp_path, model_card, caplog):
    _, heat, _, result = run_scene(
        tmp_path, model_card, sea_scene(40, 50, [(20, 20, 30, 30)]), name="small"
    )
    assert result.tiles == 1
    assert gdal.Open(str(heat)).ReadAsArray()[20:30, 20:30].max() > 0.5
    _, heat, _, result = run_scene(
        tmp_path, model_card, np.full((2, 100, 100), np.nan, np.float32), name="nodata"
    )
    assert result.tiles == 0 and result.skipped_tiles > 0
    assert (gdal.Open(str(heat)).ReadAsArray() == -1).all()
    assert "nodata" in caplog.text


def test_gdal_block_cache_is_capped_during_a_run_and_restored(tmp_path, model_card):
    scene = write_scene(tmp_path / "s.tif", sea_scene())
    before = gdal.GetCacheMax()
    seen = []
    explain_scene(
        scene,
        tmp_path / "h.tif",
        settings=settings(model_card),
        progress=lambda fraction, message: seen.append((fraction, gdal.GetCacheMax())),
    )
    streaming = {cache for fraction, cache in seen if fraction < 1}  # while windows run
    assert streaming == {min(before, 64 * 2**20)}  # the floor: the scene is small
    assert seen[-1] == (1.0, before) and gdal.GetCacheMax() == before


def test_cancelled_run_leaves_nothing_behind(tmp_path, model_card):
    scene = write_scene(tmp_path / "s.tif", sea_scene())
    out = tmp_path / "out"
    out.mkdir()
    calls = iter(range(1000))
    with pytest.raises(Cancelled):
        explain_scene(
            scene,
            out / "h.tif",
            out / "b.gpkg",
            settings(model_card, batch=8),
            cancel=lambda: next(calls) >= 2,
        )
    assert list(out.iterdir()) == []


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mscam", *args], capture_output=True, text=True, check=False
    )


def test_cli_explain_and_localize_end_to_end(tmp_path, model_card):
    scene = write_scene(tmp_path / "s.tif", sea_scene(targets=[(100, 100, 120, 112)]))
    before = digest(scene)
    done = cli(
        "explain",
        str(scene),
        "--heatmap",
        str(tmp_path / "h.tif"),
        "--boxes",
        str(tmp_path / "b.gpkg"),
        "--model",
        str(model_card),
        "--architecture-file",
        str(ARCH_FILE),
        "--method",
        "grad-cam",
        "--tile",
        "48",
        "--overlap",
        "0.5",
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    assert "1 ship boxes" in done.stdout
    assert gdal.Open(str(tmp_path / "h.tif")).GetMetadataItem("MSCAM_METHOD") == "grad-cam"
    again = cli(
        "localize",
        str(tmp_path / "h.tif"),
        "--boxes",
        str(tmp_path / "b2.gpkg"),
        "--threshold",
        "0.3",
    )
    assert again.returncode == 0, again.stderr
    assert read_boxes(tmp_path / "b2.gpkg")[0]["method"] == "grad-cam"
    assert digest(scene) == before  # the input is never modified


class Payload:
    """A pickle that would create `marker` when unpickled by an unsafe loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def bad_inputs(tmp_path: Path, card: Path) -> dict[str, tuple[list[str], str]]:
    good = write_scene(tmp_path / "good.tif", sea_scene(60, 60))
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "card.json").write_text(Path(card).read_text())
    (hostile / "weights.pt").write_bytes(pickle.dumps(Payload(tmp_path / "pwned")))
    model = ["--model", str(card), "--architecture-file", str(ARCH_FILE)]
    return {
        "missing raster": ([str(tmp_path / "nope.tif"), *model], "does not exist"),
        "corrupt raster": ([str(corrupt), *model], "cannot open"),
        "empty raster": ([str(empty), *model], "cannot open"),
        "hostile model": (
            [str(good), "--model", str(hostile), "--architecture-file", str(ARCH_FILE)],
            "weights",
        ),
        "unknown method": ([str(good), *model, "--method", "magic-cam"], "invalid choice"),
        "unknown class": ([str(good), *model, "--target-class", "whale"], "unknown target class"),
        "bad option": ([str(good), *model, "--option", "colour=red"], "has no option 'colour'"),
        "unwritable output": (
            [str(good), *model, "--heatmap", "/proc/mscam/h.tif"],
            "cannot write",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing raster",
        "corrupt raster",
        "empty raster",
        "hostile model",
        "unknown method",
        "unknown class",
        "bad option",
        "unwritable output",
    ],
)
def test_bad_input_gives_one_line_a_nonzero_exit_and_no_output(case, tmp_path, model_card):
    args, message = bad_inputs(tmp_path, model_card)[case]
    out = tmp_path / "out"
    out.mkdir()
    if "--heatmap" not in args:
        args = [*args, "--heatmap", str(out / "h.tif"), "--boxes", str(out / "b.gpkg")]
    done = cli("explain", *args)
    assert done.returncode != 0
    # the architecture file's warning may come first; the failure is one line
    lines = [x for x in done.stderr.strip().splitlines() if "WARNING: running the Python" not in x]
    assert len(lines) == 1, done.stderr
    assert message in lines[0] and "Traceback" not in done.stderr
    assert list(out.iterdir()) == []
    assert not (tmp_path / "pwned").exists()


def test_invalid_settings_are_input_errors(model_card):
    with pytest.raises(InputError):
        SceneSettings(min_score=1.5)
    with pytest.raises(InputError):
        SceneSettings(threshold=0)
    with pytest.raises(OutputError):
        explain_scene(Path(__file__), Path(__file__), None, settings(model_card))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_heatmap_equals_cpu(tmp_path, model_card):
    array = sea_scene(targets=[(100, 100, 120, 112)])
    _, cpu_heat, _, _ = run_scene(tmp_path, model_card, array, name="cpu", device="cpu")
    _, gpu_heat, _, _ = run_scene(tmp_path, model_card, array, name="gpu", device="cuda")
    np.testing.assert_allclose(
        gdal.Open(str(gpu_heat)).ReadAsArray(), gdal.Open(str(cpu_heat)).ReadAsArray(), atol=1e-4
    )
    assert open_raster_info(gpu_heat).width == 400


def test_cold_tiles_and_empty_maps_do_not_dilute_a_hot_tiles_evidence():
    grid = TileGrid(112, 64, 64, 0.25)  # two tiles: x 0–63 and 48–111, overlapping on 48–63
    left, right = grid.tiles(grid.windows()[0])
    assert (left.x0, right.x0, len(grid.windows())) == (0, 48, 1)
    hot_map = np.full((64, 64), 0.8, np.float32)
    rows = {}

    def run(maps, probabilities):
        block = BlendBlock.empty(0, 64, 112, valid=np.ones((64, 112), bool))
        hot, empty = blend_hot_tiles(
            block, [left, right], np.stack(maps), np.array(probabilities), 0.5
        )
        assert empty == sum(p >= 0.5 and m.max() == 0 for m, p in zip(maps, probabilities))
        mosaic = StreamingMosaic(112, 64, lambda y0, r: rows.__setitem__("out", r))
        mosaic.add(block)
        mosaic.flush(64)
        return hot, rows["out"]

    # Left hot, right cold (its map was never computed): the overlap keeps the hot value exactly.
    hot, out = run([hot_map, np.zeros((64, 64), np.float32)], [0.8, 0.3])
    assert [(t.x0, t.probability) for t in hot] == [(0, pytest.approx(0.8))]
    np.testing.assert_allclose(out[:, :64], 0.8, rtol=1e-6)
    np.testing.assert_array_equal(out[:, 64:], 0.0)
    # A hot tile whose CAM is 0 everywhere is listed as hot but adds no weight either.
    hot, out = run([hot_map, np.zeros((64, 64), np.float32)], [0.8, 0.9])
    assert [t.x0 for t in hot] == [0, 48]
    np.testing.assert_allclose(out[:, :64], 0.8, rtol=1e-6)
    # Two hot maps still blend smoothly: in the overlap, between the two values.
    hot, out = run([hot_map, np.full((64, 64), 0.4, np.float32)], [0.8, 0.9])
    overlap = out[:, 48:64]
    assert np.all((overlap > 0.4) & (overlap < 0.8)) and np.all(np.diff(overlap[32]) < 0)
    np.testing.assert_allclose(out[:, 64:], 0.4, rtol=1e-6)
