"""Issue 12's acceptance run, as a user does it: a real `dask scheduler` and two `dask worker`
processes started from the venv's `dask` command, and the `mscam` command line pointed at them.

`mscam batch` over three scenes and `mscam explain --scheduler` on one scene must give the
heatmaps of single-process runs (max |diff| ≤ 1e-5) and the same boxes; the merged `boxes.gpkg`
holds every scene's boxes; a rerun skips the finished scenes.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mscam.scene.raster import read_window
from mscam.scene.vector import read_boxes

from tests.scene_helpers import ARCH_FILE, bright_card, sea_scene, write_scene

pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # a scheduler and two worker processes start (seconds)

DASK = Path(sys.executable).with_name("dask")
SCENES = {
    "alpha": [(40, 50, 52, 58)],
    "bravo": [(100, 100, 110, 114), (20, 150, 26, 170)],
    "charlie": [(150, 30, 158, 50), (60, 180, 74, 188)],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mscam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mscam", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """tcp://127.0.0.1:PORT of a `dask scheduler` with two `dask worker` processes."""
    if not DASK.exists():
        pytest.fail(f"{DASK} is missing: make setup installs the dask command into the venv")
    logs = tmp_path_factory.mktemp("dask-logs")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    spawn = [
        ([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
          "--dashboard-address", ":0"], "scheduler"),
        ([str(DASK), "worker", address, "--nworkers", "2", "--nthreads", "1",
          "--dashboard-address", ":0", "--local-directory", str(logs)], "workers"),
    ]  # fmt: skip
    processes = []
    try:
        for argv, name in spawn:
            log = open(logs / f"{name}.log", "w")  # closed with the process below
            processes.append((subprocess.Popen(argv, stdout=log, stderr=log, env=env), log))
            time.sleep(1.0 if name == "scheduler" else 0.0)
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process, _log in reversed(processes):
            process.send_signal(signal.SIGINT)
        for process, log in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    card = bright_card(folder)
    scenes = []
    for seed, (name, targets) in enumerate(SCENES.items()):
        scenes.append(write_scene(folder / f"{name}.tif", sea_scene(200, 240, targets, seed=seed)))
    options = ["--model", str(card), "--architecture-file", str(ARCH_FILE), "--threads", "1"]
    return scenes, options


def heat(path: Path) -> np.ndarray:
    return read_window(path, 0, 0, 240, 200)[0]


def single_run(scene: Path, options: list[str], folder: Path) -> tuple[np.ndarray, list]:
    folder.mkdir(exist_ok=True)
    heatmap, boxes = folder / f"{scene.stem}.tif", folder / f"{scene.stem}.gpkg"
    done = mscam("explain", str(scene), "--heatmap", str(heatmap), "--boxes", str(boxes),
                 *options, "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return heat(heatmap), read_boxes(boxes)


def same_boxes(boxes: list, reference: list) -> None:
    assert len(boxes) == len(reference) > 0
    for box, ref in zip(boxes, reference):
        np.testing.assert_allclose(box["bbox"], ref["bbox"], atol=1e-6)
        assert box["score"] == pytest.approx(ref["score"], abs=1e-6)


def test_batch_and_explain_on_a_real_dask_scheduler_with_two_workers(cluster, inputs, tmp_path):
    scenes, options = inputs
    single = {scene.stem: single_run(scene, options, tmp_path / "single") for scene in scenes}

    out = tmp_path / "batch"
    done = mscam("batch", *map(str, scenes), "--out", str(out), "--scheduler", cluster, *options)
    assert done.returncode == 0, done.stderr
    merged = read_boxes(out / "boxes.gpkg")
    for scene in scenes:
        reference_heat, reference_boxes = single[scene.stem]
        assert np.abs(heat(out / f"{scene.stem}.heatmap.tif") - reference_heat).max() <= 1e-5
        same_boxes(read_boxes(out / f"{scene.stem}.boxes.gpkg"), reference_boxes)
        assert sum(Path(b["scene"]).stem == scene.stem for b in merged) == len(reference_boxes)
    assert len(merged) == sum(len(boxes) for _, boxes in single.values())
    with open(out / "summary.csv", newline="") as handle:
        assert {row["status"] for row in csv.DictReader(handle)} == {"ok"}

    # A rerun skips the finished scenes and leaves their outputs as they were.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.heatmap.tif")}
    again = mscam("batch", *map(str, scenes), "--out", str(out), "--scheduler", cluster, *options)
    assert again.returncode == 0, again.stderr
    assert (again.stdout + again.stderr).count("skipped") >= len(scenes)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.heatmap.tif")} == stamps

    # One scene's windows spread over the two workers.
    scene = scenes[1]
    heatmap, boxes = tmp_path / "spread.tif", tmp_path / "spread.gpkg"
    done = mscam("explain", str(scene), "--heatmap", str(heatmap), "--boxes", str(boxes),
                 "--scheduler", cluster, "--batch", "4", *options, "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    reference_heat, reference_boxes = single[scene.stem]
    assert np.abs(heat(heatmap) - reference_heat).max() <= 1e-5
    same_boxes(read_boxes(boxes), reference_boxes)
    shutil.rmtree(tmp_path / "single")
