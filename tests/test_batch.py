"""`mscam batch` on a real Dask LocalCluster: per-scene outputs equal to single-process runs, the
merged boxes and the summary, a broken scene that does not stop the others, and the resume."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from mscam.cli import main
from mscam.errors import InputError
from mscam.scene.batch import expand_inputs, run_batch
from mscam.scene.distributed import dask_client
from mscam.scene.pipeline import SceneSettings, explain_scene
from mscam.scene.raster import read_window
from mscam.scene.vector import read_boxes, read_crs

from tests.scene_helpers import ARCH_FILE, bright_card, sea_scene, write_scene

pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # a local cluster starts worker processes (seconds)

SCENES = {
    "alpha": [(40, 50, 52, 58)],
    "bravo": [(100, 100, 110, 114), (20, 150, 26, 170)],
}


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> Path:
    return bright_card(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    for seed, (name, targets) in enumerate(SCENES.items()):
        write_scene(folder / f"{name}.tif", sea_scene(200, 240, targets, seed=seed))
    (folder / "broken.tif").write_bytes(b"II*\x00 this is not a GeoTIFF")
    (folder / "notes.txt").write_text("not a scene")
    return folder


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as client:
        yield client


def summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as handle:
        return {Path(row["scene"]).stem: row for row in csv.DictReader(handle)}


def test_batch_writes_every_scene_merges_boxes_reports_the_broken_one_and_resumes(
    archive, card, client, tmp_path
):
    settings = SceneSettings(model=str(card), architecture_file=str(ARCH_FILE), threads=1)
    out = tmp_path / "out"
    rows = run_batch([str(archive)], out, settings, client=client)
    assert [(Path(r.scene).name, r.status) for r in rows] == [
        ("alpha.tif", "ok"),
        ("bravo.tif", "ok"),
        ("broken.tif", "failed"),
    ]
    table = summary(out)
    assert list(table) == ["alpha", "bravo", "broken"]
    assert table["broken"]["status"] == "failed" and "broken.tif" in table["broken"]["error"]
    assert not (out / "broken.heatmap.tif").exists() and not (out / "broken.boxes.gpkg").exists()
    merged = read_boxes(out / "boxes.gpkg")
    for name in ("alpha", "bravo"):
        # Each scene's outputs are those of a single-process run.
        single = explain_scene(
            archive / f"{name}.tif", tmp_path / f"{name}.tif", tmp_path / f"{name}.gpkg", settings
        )
        heat = read_window(out / f"{name}.heatmap.tif", 0, 0, 240, 200)[0]
        assert np.abs(heat - read_window(single.heatmap, 0, 0, 240, 200)[0]).max() <= 1e-5
        boxes = read_boxes(out / f"{name}.boxes.gpkg")
        assert boxes == read_boxes(single.boxes) and len(boxes) == len(SCENES[name])
        assert int(table[name]["boxes"]) == len(boxes) and int(table[name]["tiles"]) > 0
        assert table[name]["status"] == "ok" and table[name]["error"] == ""
        # The merged layer holds them with the scene's name.
        mine = [{k: v for k, v in b.items() if k != "scene"} for b in merged if b["scene"] == name]
        assert mine == boxes
    assert len(merged) == sum(len(t) for t in SCENES.values())
    assert read_crs(out / "boxes.gpkg") == read_crs(out / "alpha.boxes.gpkg")
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no scratch left

    # The rerun skips the finished scenes (their files untouched) and tries the broken one again.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.startswith("alpha")}
    (out / "bravo.boxes.gpkg").unlink()  # as if killed between the pair's renames
    rows = run_batch([str(archive / "*.tif")], out, settings, client=client)
    assert [r.status for r in rows] == ["skipped", "ok", "failed"]
    assert stamps == {name: (out / name).stat().st_mtime_ns for name in stamps}
    table = summary(out)
    assert table["alpha"]["status"] == "skipped" and table["alpha"]["boxes"] == "1"
    assert len(read_boxes(out / "boxes.gpkg")) == len(merged)


def test_the_command_on_a_cluster_by_address(archive, card, client, tmp_path, capsys):
    out = tmp_path / "out"
    scenes = [str(archive / "alpha.tif"), str(archive / "bravo.tif")]
    options = ["--model", str(card), "--architecture-file", str(ARCH_FILE), "--quiet"]
    address = client.scheduler.address
    assert main(["batch", *scenes, "--out", str(out), "--scheduler", address, *options]) == 0
    printed = capsys.readouterr().out
    assert "alpha.tif: ok (1 boxes" in printed and "bravo.tif: ok (2 boxes" in printed
    assert main(["batch", *scenes, "--out", str(out), "--scheduler", address, *options]) == 0
    assert "alpha.tif: skipped (1 boxes)" in capsys.readouterr().out
    broken = str(archive / "broken.tif")
    assert main(["batch", broken, "--out", str(out), "--scheduler", address, *options]) == 1
    captured = capsys.readouterr()
    assert "broken.tif: failed:" in captured.out
    assert captured.err.strip().splitlines()[-1] == (
        "mscam: error: 1 of 1 scenes failed (see summary.csv)"
    )


def test_inputs_that_match_nothing_fail_in_one_line_before_any_cluster(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "none*.tif"), "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == f"mscam: error: no file matches {tmp_path}/none*.tif"
    assert not (tmp_path / "o").exists()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        write_scene(tmp_path / folder / "same.tif", sea_scene(64, 64))
    with pytest.raises(InputError, match="same outputs"):
        expand_inputs([str(tmp_path / "a"), str(tmp_path / "b")])
    assert expand_inputs([str(tmp_path / "a"), str(tmp_path / "a" / "same.tif")]) == [
        str(tmp_path / "a" / "same.tif")
    ]


@pytest.mark.qgis
def test_the_qgis_batch_algorithm_runs_scenes_inside_qgis(
    qgis_processing, qgis_iface, archive, card, tmp_path
):
    import processing

    from mscam_qgis import classFactory

    plugin = classFactory(qgis_iface)
    plugin.initGui()
    try:
        scenes = [str(archive / "alpha.tif"), str(archive / "bravo.tif")]
        results = processing.run(
            "mscam:batch",
            {
                "INPUTS": scenes,
                "MODEL": str(card),
                "ARCHITECTURE_FILE": str(ARCH_FILE),
                "DEVICE": "cpu",
                "SCHEDULER": "",
                "OUTPUT": str(tmp_path / "out"),
            },
        )
    finally:
        plugin.unload()
    assert results["SUMMARY"] == str(tmp_path / "out" / "summary.csv")
    assert [row["status"] for row in summary(tmp_path / "out").values()] == ["ok", "ok"]
    merged = read_boxes(results["BOXES"])
    assert sorted({b["scene"] for b in merged}) == ["alpha", "bravo"] and len(merged) == 3
