"""The scene pipeline benchmark runs: a quick smoke run of bench/bench_scene.py reports every part
with positive numbers, and its large scenes are exact mosaics of their pieces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
PROFILES = {"calm", "coastal", "dense", "empty"}


@pytest.mark.slow
def test_quick_scene_benchmark_reports_every_part_with_positive_numbers(tmp_path):
    # One torch thread: on a shared 2-core machine two threads can be many times slower.
    run = subprocess.run(
        [sys.executable, str(BENCH / "bench_scene.py"), "--quick", "--threads", "1",
         "--device", "cpu", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "results" / "scene_cpu.json").read_text())
    assert set(report) == {"machine", "workload", "throughput", "prescreen", "accuracy", "criteria"}
    assert report["machine"]["torch_threads"] == 1 and report["workload"]["quick"]

    (scene,) = report["throughput"]
    for key in ("pixels", "seconds", "mpx_per_s", "tiles", "peak_rss_mib", "rss_before_mib"):
        assert scene[key] > 0, key
    assert scene["pixels"] == 512 * 512
    assert scene["hot_tiles"] <= scene["tiles"]
    assert "CNN+CAM" in scene["stages_s"] and all(s >= 0 for s in scene["stages_s"].values())
    bare = scene["bare"]
    assert bare["tiles"] == scene["tiles"] and bare["hot_tiles"] == scene["hot_tiles"]
    for key in ("forward_s", "bare_s", "mpx_per_s", "pipeline_x_bare"):
        assert bare[key] > 0, key

    screened, unscreened = report["prescreen"]["runs"]
    assert (screened["min_score"], unscreened["min_score"]) == (0.5, 0.0)
    assert unscreened["hot_tiles"] == unscreened["tiles"] > 0
    assert report["prescreen"]["speed_up"] > 0

    assert set(report["accuracy"]) == PROFILES
    for profile, entry in report["accuracy"].items():
        assert (entry["truth_boxes"] > 0) == (profile != "empty"), profile
        for criterion in ("iou", "hit"):
            for where in ("default", "best"):
                scores = entry[criterion][where]
                assert all(0 <= scores[k] <= 1 for k in ("precision", "recall", "f1"))
        assert entry["iou"]["default"]["threshold"] == 0.5

    targets = report["criteria"]
    assert len(targets) == 3 + 2 * 3 + 1  # memory, time, bare; F1 × 2 criteria × 3; empty
    assert all(row["met"] in (True, False, None) for row in targets)
    assert (tmp_path / "results" / "scene_cpu.md").read_text().startswith("# Scene pipeline")


def test_pieced_scene_is_the_mosaic_of_its_pieces(tmp_path, monkeypatch):
    from mscam.sar.synth import synthesize_scene
    from mscam.scene.raster import RasterReader

    monkeypatch.syspath_prepend(str(BENCH))
    import bench_scene

    spec = bench_scene.SceneSpec("calm", 128, seed=3, pieces=2)
    path = tmp_path / "mosaic.tif"
    bench_scene.write_pieced_scene(spec, path)
    with RasterReader(path) as reader:
        assert (reader.info.width, reader.info.height) == (128, 128)
        assert reader.info.descriptions == ("VV", "VH")
        mosaic = reader.read(0, 0, 128, 128)
    for k in range(4):
        row, col = divmod(k, 2)
        piece = synthesize_scene(64, "calm", seed=3 * 4 + k)
        window = mosaic[:, row * 64 : (row + 1) * 64, col * 64 : (col + 1) * 64]
        np.testing.assert_array_equal(window, np.stack([piece.vv_db, piece.vh_db]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mosaic.tif"]
