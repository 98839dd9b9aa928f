"""Scene-level evaluation: a heatmap GeoTIFF against truth boxes in a GeoPackage, and its CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mscam.errors import InputError
from mscam.eval import detection_scores, evaluate_scene, greedy_match, match_boxes
from mscam.eval.scene import DEFAULT_THRESHOLDS, truth_pixel_boxes
from mscam.scene.raster import open_raster_info, write_geotiff
from mscam.scene.vector import write_boxes

gdal = pytest.importorskip("osgeo.gdal")

UTM = (500000.0, 10.0, 0.0, 6000000.0, 0.0, -10.0)
EPSG = "EPSG:32633"
WIDTH, HEIGHT = 64, 48
# Inclusive pixel boxes: a 4×4 ship, a 5×4 ship and a 1×2 one.
SHIPS = [(10, 8, 13, 11), (40, 30, 44, 33), (25, 20, 25, 21)]


def utm_bbox(box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """Map (xmin, ymin, xmax, ymax) of an inclusive pixel box on the UTM grid."""
    x0, y0, x1, y1 = box
    return (UTM[0] + 10 * x0, UTM[3] - 10 * (y1 + 1), UTM[0] + 10 * (x1 + 1), UTM[3] - 10 * y0)


def paint(
    boxes: list[tuple[int, int, int, int]],
    value: float = 1.0,
    shift: int = 0,
    grow: int = 0,
    heat: np.ndarray | None = None,
) -> np.ndarray:
    """A heatmap with ``value`` on the boxes, shifted right by ``shift``, grown by ``grow``."""
    heat = np.zeros((HEIGHT, WIDTH), np.float32) if heat is None else heat
    for x0, y0, x1, y1 in boxes:
        rows = slice(max(y0 - grow, 0), y1 + grow + 1)
        heat[rows, max(x0 + shift - grow, 0) : x1 + shift + grow + 1] = value
    return heat


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    path = tmp_path / "truth.gpkg"
    write_boxes(path, [{"bbox": utm_bbox(b), "class": "ship"} for b in SHIPS], EPSG, layer="ships")
    return path


def heatmap(tmp_path: Path, heat: np.ndarray, name: str = "heat.tif", **kwargs) -> Path:
    path = tmp_path / name
    write_geotiff(path, heat, geotransform=UTM, projection=EPSG, **kwargs)
    return path


def test_truth_boxes_land_on_their_pixels(tmp_path, truth):
    info = open_raster_info(heatmap(tmp_path, paint(SHIPS)))
    boxes, centres, outside = truth_pixel_boxes(truth, info)
    np.testing.assert_array_equal(boxes, SHIPS)
    np.testing.assert_allclose(centres, [(12, 10), (42.5, 32), (25.5, 21)])
    assert outside == 0


def test_a_perfect_heatmap_scores_one(tmp_path, truth):
    result = evaluate_scene(heatmap(tmp_path, paint(SHIPS)), truth)
    json.dumps(result, allow_nan=False)  # JSON-serialisable, no NaN
    assert result["pxap"] == pytest.approx(1.0)
    assert result["thresholds"] == list(DEFAULT_THRESHOLDS)
    assert result["predictions"] == [3] * len(DEFAULT_THRESHOLDS)
    for name in ("iou", "hit"):
        assert result[name]["precision"] == [1.0] * len(DEFAULT_THRESHOLDS)
        assert result[name]["recall"] == [1.0] * len(DEFAULT_THRESHOLDS)
        assert result["best"][name] == {
            "threshold": 0.05,
            "predictions": 3,
            "tp": 3,
            "precision": 1.0,
            "recall": 1.0,
            "f1": 1.0,
        }
    assert result["truth_boxes"] == 3 and result["truth_outside"] == 0


def test_a_shifted_heatmap_scores_lower(tmp_path, truth):
    result = evaluate_scene(heatmap(tmp_path, paint(SHIPS, shift=2)), truth, [0.5])
    # IoUs 8/24, 12/28 and 0: no match at 0.5. Centres 12 and 42.5 stay inside the shifted
    # boxes [12, 16) and [42, 47); 25.5 is outside [27, 28).
    assert result["iou"]["tp"] == [0] and result["iou"]["recall"] == [0.0]
    assert result["hit"]["tp"] == [2] and result["hit"]["recall"] == [pytest.approx(2 / 3)]
    # Pixels: 20 of the 38 truth pixels are hot, 38 hot pixels; τ = 0 takes all 3072.
    hit = 20 / 38
    assert result["pxap"] == pytest.approx(hit * hit + 38 / 3072 * (1 - hit))


def test_hit_finds_ships_whose_heat_is_wider_than_the_hull(tmp_path, truth):
    result = evaluate_scene(heatmap(tmp_path, paint(SHIPS, grow=3)), truth, [0.5])
    assert result["iou"]["recall"] == [0.0]  # IoUs 16/100, 20/110, 2/56
    assert result["hit"]["recall"] == [1.0] and result["hit"]["precision"] == [1.0]


def test_best_threshold_drops_a_cooler_false_alarm(tmp_path, truth):
    heat = paint([(50, 5, 53, 8)], value=0.3, heat=paint(SHIPS))
    result = evaluate_scene(heatmap(tmp_path, heat), truth, [0.2, 0.3, 0.35, 0.9])
    assert result["predictions"] == [4, 4, 3, 3]
    assert result["iou"]["precision"] == [0.75, 0.75, 1.0, 1.0]
    assert result["best"]["iou"]["threshold"] == 0.35
    assert result["best"]["iou"]["f1"] == 1.0


def test_truth_in_another_crs_is_reprojected(tmp_path):
    from osgeo import osr

    utm, wgs84 = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    wgs84.ImportFromEPSG(4326)
    for srs in (utm, wgs84):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs84 = osr.CoordinateTransformation(utm, wgs84)
    records = []
    for box in SHIPS:
        xmin, ymin, xmax, ymax = utm_bbox(box)
        corners = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax)]
        records.append({"ring": [p[:2] for p in to_wgs84.TransformPoints(corners)]})
    path = tmp_path / "truth_wgs84.gpkg"
    write_boxes(path, records, 4326)
    result = evaluate_scene(heatmap(tmp_path, paint(SHIPS)), path, [0.5])
    assert result["iou"]["recall"] == [1.0] and result["pxap"] == pytest.approx(1.0)


def test_truth_on_a_rotated_gcp_grid_lands_on_its_pixels(tmp_path):
    # A heatmap located only by GCPs of a rotated, slightly wavy grid that the GCP polynomial
    # cannot fit exactly: residuals of a few hundredths of a pixel must not add a row or column.
    angle = np.radians(20.0)

    def to_map(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = 500000.0 + 10 * (cols * np.cos(angle) - rows * np.sin(angle)) + 0.5 * np.sin(cols / 9)
        y = 6000000.0 - 10 * (cols * np.sin(angle) + rows * np.cos(angle)) + 0.5 * np.cos(rows / 7)
        return x, y

    cols, rows = np.meshgrid(np.linspace(0, WIDTH, 5), np.linspace(0, HEIGHT, 5))
    xs, ys = to_map(cols.ravel(), rows.ravel())
    gcps = [(c, r, x, y) for c, r, x, y in zip(cols.ravel(), rows.ravel(), xs, ys)]
    path = tmp_path / "heat_gcp.tif"
    write_geotiff(path, paint(SHIPS), gcps=gcps, gcp_projection=EPSG)
    records = []
    for x0, y0, x1, y1 in SHIPS:
        corner_cols = np.array([x0, x1 + 1, x1 + 1, x0], np.float64)
        corner_rows = np.array([y0, y0, y1 + 1, y1 + 1], np.float64)
        corner_x, corner_y = to_map(corner_cols, corner_rows)
        records.append({"ring": list(zip(corner_x, corner_y))})
    write_boxes(tmp_path / "truth.gpkg", records, EPSG)
    boxes, centres, _ = truth_pixel_boxes(tmp_path / "truth.gpkg", open_raster_info(path))
    np.testing.assert_array_equal(boxes, SHIPS)
    np.testing.assert_allclose(centres, [(12, 10), (42.5, 32), (25.5, 21)], atol=0.1)
    result = evaluate_scene(path, tmp_path / "truth.gpkg", [0.5])
    assert result["iou"]["recall"] == [1.0] and result["pxap"] == pytest.approx(1.0)


def test_nodata_is_left_out_and_outside_truth_is_counted(tmp_path):
    heat = paint(SHIPS)
    heat[8, 10:14] = -1.0  # a row of the first ship is nodata, not a miss
    records = [{"bbox": utm_bbox(b)} for b in [*SHIPS, (200, 200, 203, 203)]]
    write_boxes(tmp_path / "truth.gpkg", records, EPSG)
    result = evaluate_scene(heatmap(tmp_path, heat, nodata=-1.0), tmp_path / "truth.gpkg", [0.5])
    assert result["pxap"] == pytest.approx(1.0)
    assert result["truth_boxes"] == 3 and result["truth_outside"] == 1


def test_bad_inputs_are_input_errors(tmp_path, truth):
    heat = heatmap(tmp_path, paint(SHIPS))
    with pytest.raises(InputError, match="does not exist"):
        evaluate_scene(heat, tmp_path / "missing.gpkg")
    with pytest.raises(InputError, match="thresholds"):
        evaluate_scene(heat, truth, [0.0])
    with pytest.raises(InputError):
        evaluate_scene(tmp_path / "missing.tif", truth)


def test_greedy_matching_is_one_to_one_in_score_order():
    # P0 (score .9) takes T0, its best IoU; P1 (score .5) wanted T0 too and may not take T1.
    quality = np.array([[0.6, 0.55], [0.7, 0.0]])
    allowed = quality >= 0.5
    assert greedy_match(allowed, quality, np.array([0.9, 0.5])) == 1
    # In the other score order P1 takes T0 and P0 falls back on T1.
    assert greedy_match(allowed, quality, np.array([0.5, 0.9])) == 2
    # Two boxes on one ship: one true positive, one false alarm.
    both = match_boxes(
        np.array([[0, 0, 3, 3], [0, 0, 3, 2]]),
        np.array([1.0, 0.8]),
        np.array([[0, 0, 3, 3]]),
        np.array([[2.0, 2.0]]),
    )
    assert both == {"iou": 1, "hit": 1}
    assert match_boxes(
        np.zeros((0, 4)), np.zeros(0), np.array([[0, 0, 1, 1]]), np.array([[1.0, 1.0]])
    ) == {"iou": 0, "hit": 0}


def test_detection_score_conventions():
    assert detection_scores(2, 4, 2) == (0.5, 1.0, pytest.approx(2 / 3))
    assert detection_scores(0, 0, 3) == (1.0, 0.0, 0.0)  # nothing claimed: vacuous precision
    assert detection_scores(0, 2, 0) == (0.0, 1.0, 0.0)  # nothing to find: vacuous recall
    assert detection_scores(0, 0, 0) == (1.0, 1.0, 1.0)


# -- command line ---------------------------------------------------------------------------------


def mscam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mscam", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_writes_json_and_plot(tmp_path, truth):
    heat = heatmap(tmp_path, paint(SHIPS, shift=2))
    out, plot = tmp_path / "scores.json", tmp_path / "curve.png"
    done = mscam(
        "evaluate",
        heat,
        "--truth",
        truth,
        "--json",
        out,
        "--plot",
        plot,
        "--thresholds",
        "0.3",
        "0.6",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["thresholds"] == [0.3, 0.6] and result["hit"]["tp"] == [2, 2]
    assert "PxAP" in done.stdout and "best F1" in done.stdout
    pytest.importorskip("matplotlib")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Without --json the scores go to stdout and the summary to stderr.
    done = mscam("evaluate", heat, "--truth", truth, "--thresholds", "0.5")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["iou"]["tp"] == [0]
    assert "PxAP" in done.stderr


def test_cli_bad_truth_is_one_line_and_non_zero(tmp_path):
    heat = heatmap(tmp_path, paint(SHIPS))
    done = mscam(
        "evaluate", heat, "--truth", tmp_path / "nope.gpkg", "--json", tmp_path / "out.json"
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("mscam: error:")
    assert "nope.gpkg" in done.stderr and not (tmp_path / "out.json").exists()
