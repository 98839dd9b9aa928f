"""One scene's windows on a real Dask LocalCluster: the same heatmap and boxes as one process,
whatever the order the windows arrive in, even when a worker process is killed mid-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mscam.scene.distributed import (
    RowTracker,
    assemble_scene,
    dask_client,
    explain_scene_distributed,
    roomy_malloc,
    worker_model_loads,
)
from mscam.scene.pipeline import SceneSettings, explain_scene, process_window
from mscam.scene.raster import read_window
from mscam.scene.tiling import TileGrid
from mscam.scene.vector import read_boxes

from tests.scene_helpers import ARCH_FILE, bright_card, sea_scene, write_scene

distributed = pytest.importorskip("distributed")

TARGETS = [(40, 50, 52, 58), (300, 200, 310, 214), (180, 120, 186, 140)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("scene") / "ships.tif", sea_scene(targets=TARGETS))


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> SceneSettings:
    card = bright_card(tmp_path_factory.mktemp("model"))
    # batch 4: one tile row per window, so the 300-row scene is 6 windows.
    return SceneSettings(model=str(card), architecture_file=str(ARCH_FILE), batch=4, threads=1)


@pytest.fixture(scope="module")
def reference(scene, settings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("single")
    result = explain_scene(scene, folder / "heat.tif", folder / "boxes.gpkg", settings)
    return result, read_window(result.heatmap, 0, 0, 400, 300)[0], read_boxes(result.boxes)


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as client:
        yield client


def assert_same(result, reference) -> None:
    single, heat, boxes = reference
    got = read_window(result.heatmap, 0, 0, 400, 300)[0]
    assert np.abs(got - heat).max() <= 1e-5
    assert (got == -1).sum() == (heat == -1).sum()
    assert read_boxes(result.boxes) == boxes
    assert (result.tiles, result.hot_tiles, result.n_boxes) == (
        single.tiles,
        single.hot_tiles,
        single.n_boxes,
    )


def test_row_tracker_flushes_only_rows_every_window_has_reached():
    windows = TileGrid(100, 300, 64, 0.25).windows(1)  # rows 0-63, 48-111, … 236-299
    tracker = RowTracker(windows, 300)
    assert tracker.arrive(2) == 0  # window 0 still missing: nothing final
    assert tracker.arrive(0) == windows[1].y0  # window 1 still touches rows 48 …
    assert tracker.arrive(1) == windows[3].y0  # 0-2 in: rows above window 3 are final
    for index in range(3, len(windows)):
        tracker.arrive(index)
    assert tracker.final_rows() == 300
    with pytest.raises(ValueError, match="twice"):
        tracker.arrive(0)


@pytest.mark.parametrize("order", ["reversed", "odd-even"])
def test_any_arrival_order_gives_the_single_process_heatmap(
    scene, settings, reference, tmp_path, order
):
    def results_of(job, windows, cancel):
        indices = list(range(len(windows)))
        indices = indices[::-1] if order == "reversed" else indices[1::2] + indices[::2]
        for index in indices:
            yield index, process_window(str(scene), windows[index], settings)

    result = assemble_scene(
        str(scene), tmp_path / "h.tif", tmp_path / "b.gpkg", settings, results_of
    )
    assert_same(result, reference)


@pytest.mark.slow
def test_local_cluster_gives_the_single_process_heatmap_and_boxes(
    scene, settings, reference, client, tmp_path
):
    fractions, messages = [], []
    result = explain_scene_distributed(
        scene,
        tmp_path / "heat.tif",
        tmp_path / "boxes.gpkg",
        settings,
        client=client,
        progress=lambda fraction, message: (fractions.append(fraction), messages.append(message)),
        order=[5, 4, 3, 2, 1, 0],
        in_flight=6,
    )
    assert_same(result, reference)
    # a report per window (6), then the COG and boxes, then done
    assert fractions[-1] == 1.0 and fractions == sorted(fractions) and len(fractions) == 8
    assert messages[-3:] == ["window 6/6", "writing the heatmap and the boxes", "done"]
    assert sorted(os.listdir(tmp_path)) == ["boxes.gpkg", "heat.tif"]  # no scratch left
    # Each worker built the scene's job (loaded the model) once, however many windows it ran.
    assert set(client.run(worker_model_loads).values()) <= {0, 1}
    # Dask's nanny pins glibc's mmap threshold (MALLOC_TRIM_THRESHOLD_); the workers undid it.
    assert set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {"65536"}
    assert set(client.run(roomy_malloc).values()) == {True}


@pytest.mark.slow
def test_a_scene_worked_at_the_models_spacing_is_mapped_back_the_same(
    scene, settings, client, tmp_path
):
    # The card says 10 m; the scene said to be at 5 m is worked on a half-size VRT on each worker.
    card = Path(settings.model)
    folder = tmp_path / "card10m"
    shutil.copytree(card if card.is_dir() else card.parent, folder)
    card_file = folder / "card.json"
    card_json = json.loads(card_file.read_text())
    card_file.write_text(json.dumps({**card_json, "pixel_spacing": 10.0}))
    at_5m = replace(settings, model=str(folder), pixel_spacing=5.0)
    single = explain_scene(scene, tmp_path / "s.tif", tmp_path / "s.gpkg", at_5m)
    spread = explain_scene_distributed(
        scene, tmp_path / "d.tif", tmp_path / "d.gpkg", at_5m, client=client
    )
    assert single.tiles == spread.tiles < 20  # the 150x200 working grid's tiles, not 400x300's
    heat = read_window(spread.heatmap, 0, 0, 400, 300)[0]
    assert heat.shape == (300, 400)
    assert np.abs(heat - read_window(single.heatmap, 0, 0, 400, 300)[0]).max() <= 1e-5
    assert read_boxes(spread.boxes) == read_boxes(single.boxes)


@pytest.mark.slow
def test_a_killed_worker_still_gives_the_complete_identical_output(
    scene, settings, reference, tmp_path
):
    killed = []
    with dask_client(workers=2) as client:
        pids = client.run(os.getpid)

        def kill_a_busy_worker(fraction: float, message: str) -> None:
            if killed or fraction >= 1.0:
                return
            busy = [address for address, keys in client.processing().items() if keys]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])

        result = explain_scene_distributed(
            scene,
            tmp_path / "heat.tif",
            tmp_path / "boxes.gpkg",
            settings,
            client=client,
            progress=kill_a_busy_worker,
            in_flight=2,
        )
    assert killed, "no worker was busy after the first window"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert_same(result, reference)


@pytest.mark.slow
def test_a_worker_error_is_the_one_line_error_and_leaves_nothing(client, settings, tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a raster")
    from mscam.errors import InputError

    with pytest.raises(InputError):
        explain_scene_distributed(broken, tmp_path / "h.tif", None, settings, client=client)
    assert sorted(os.listdir(tmp_path)) == ["broken.tif"]


def test_unreachable_scheduler_is_one_line():
    from mscam.errors import InputError

    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        with dask_client("tcp://127.0.0.1:9", timeout=2):
            pass


@pytest.mark.slow
def test_the_explain_command_on_a_cluster_by_address(scene, settings, reference, client, tmp_path):
    from mscam.cli import main

    heat, boxes = tmp_path / "heat.tif", tmp_path / "boxes.gpkg"
    options = ["--model", settings.model, "--architecture-file", settings.architecture_file]
    address = client.scheduler.address
    argv = ["explain", str(scene), "--heatmap", str(heat), "--boxes", str(boxes), "--quiet"]
    assert main([*argv, *options, "--batch", "4", "--threads", "1", "--scheduler", address]) == 0
    got = read_window(heat, 0, 0, 400, 300)[0]
    assert np.abs(got - reference[1]).max() <= 1e-5
    assert read_boxes(boxes) == reference[2]
