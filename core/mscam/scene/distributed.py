"""One scene's windows spread over the workers of a Dask cluster.

Dask (`dask.distributed`) is imported only when used, so that `import mscam` still needs nothing
but torch and numpy. `explain_scene_distributed` sends `pipeline.process_window(scene, window,
settings)` for each window to the workers and assembles the streaming mosaic in this process as
the blocks arrive, in whatever order. A row is written only once every window that touches it has
arrived (the first window still missing bounds the rows that are final), and at most `in_flight`
windows past that one are out at a time, so memory holds a bounded band of rows as in the
single-process run. Blocks are added, not overwritten, so the heatmap is the single-process
heatmap to float rounding (bit for bit where no row is shared by more than two windows).

Many scenes, one per worker, are `mscam.scene.batch`, which shares this module's cluster
(`dask_client`), worker set-up (`roomy_malloc`, `_WORKER_LOCK`) and paths (`shared_settings`).

Workers read the scene by path: on a cluster of several machines the inputs and the model must be
at the same path on every machine (a shared file system). Each worker process keeps its loaded
model between windows (`pipeline.scene_job` is cached per process) and runs one window at a time
(`_WORKER_LOCK`: a model's hooks are not thread-safe). A worker lost mid-run costs nothing but
time: the scheduler gives its windows to another worker.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from mscam.errors import Cancelled, InputError
from mscam.scene.pipeline import (
    FINISHING,
    CancelCheck,
    Progress,
    SceneJob,
    SceneResult,
    SceneSettings,
    TileScore,
    WindowResult,
    finish_scene,
    process_window,
    streaming_mosaic,
    torch_threads,
)

#: Windows out on the cluster per worker thread: one running and one queued keeps every worker
#: busy while the results travel, and bounds the rows the mosaic holds.
IN_FLIGHT_PER_WORKER = 2
#: Seconds to wait for a scheduler given by address.
CONNECT_TIMEOUT = 30

_WORKER_LOCK = threading.Lock()

#: glibc's mallopt parameters, and the values a worker sets (`roomy_malloc`).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
WORKER_MMAP_THRESHOLD = 32 * 2**20
WORKER_TRIM_THRESHOLD = 64 * 2**20


@functools.lru_cache(maxsize=1)
def roomy_malloc() -> bool:
    """Undo Dask's `MALLOC_TRIM_THRESHOLD_=65536` in this worker process (glibc only; once).

    Dask's nanny starts every worker with that variable so that freed memory goes back to the
    system at once. Setting it also pins glibc's mmap threshold at 128 KiB, so every tile batch's
    activations and every window's arrays are fresh mmaps, page-faulted and zeroed each time:
    measured on the 2048² benchmark scene with one torch thread, the single-process pipeline took
    4.43 s with the variable set instead of 2.59 s, and 2.64 s with the variable set and these
    two `mallopt` calls. Freed memory up to `WORKER_TRIM_THRESHOLD` stays in the process.
    """
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False  # not started by a Dask nanny (e.g. threads inside QGIS): leave malloc be
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(
            libc.mallopt(M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD)
            and libc.mallopt(M_TRIM_THRESHOLD, WORKER_TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # not glibc: nothing to undo
        return False


# --- the cluster ----------------------------------------------------------------------------------


@contextmanager
def dask_client(
    scheduler: str | None = None,
    workers: int | None = None,
    timeout: float = CONNECT_TIMEOUT,
    *,
    processes: bool = True,
) -> Iterator[Any]:
    """A `distributed.Client`: on the cluster at `scheduler` (waiting for `workers` to have
    joined, if given), or on a new `LocalCluster` of `workers` processes (default: the cores),
    one thread each, closed after the block.

    `processes=False` makes the local workers threads of this process: for hosts that cannot
    start a Python process of their own (QGIS, whose executable is not a Python interpreter);
    `_WORKER_LOCK` then runs one scene or window at a time, with torch's threads inside."""
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the installation
        raise InputError(
            "the Dask scheduler needs the packages dask and distributed (make setup installs them)"
        ) from None
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            if workers:
                client.wait_for_workers(workers, timeout=timeout * 4)
            elif not client.scheduler_info(n_workers=-1)["workers"]:
                client.wait_for_workers(1, timeout=timeout * 4)
        except (TimeoutError, OSError) as exc:
            client.close()
            raise InputError(
                f"the Dask scheduler at {scheduler} has too few workers ({exc})"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    # One thread per worker process: the CNN's own threads do the parallel work inside a window.
    cluster = distributed.LocalCluster(
        n_workers=n if processes else 1,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=":0",  # a free port: 8787 may be taken by another cluster
        silence_logs=logging.ERROR,
    )
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def worker_threads(client: Any) -> int:
    """Task slots across the cluster (threads of every worker)."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers))


def shared_path(path: str | os.PathLike | None) -> str | None:
    """A path the workers can open: absolute for local files, GDAL's /vsi names as given."""
    if path is None:
        return None
    name = os.fspath(path)
    return name if name.startswith("/vsi") else os.path.abspath(name)


def shared_settings(settings: SceneSettings) -> SceneSettings:
    """`settings` with the model and architecture files as absolute paths (workers' cwd differs)."""
    return replace(
        settings,
        model=shared_path(settings.model),
        architecture_file=shared_path(settings.architecture_file),
    )


# --- one scene, windows on the workers ------------------------------------------------------------


def window_task(scene: str, window: Any, settings: SceneSettings) -> WindowResult:
    """What a worker runs for a window: `process_window`, one at a time per process, with the
    settings' torch threads (None: the worker's own; Dask's nanny starts workers with
    OMP_NUM_THREADS=1)."""
    roomy_malloc()
    with _WORKER_LOCK, torch_threads(settings.threads):
        return process_window(scene, window, settings)


def worker_model_loads() -> int:
    """How many `SceneJob`s (model loads) this process has built for windows (for tests)."""
    from mscam.scene.pipeline import scene_job

    return scene_job.cache_info().misses


class RowTracker:
    """Which windows have arrived, and the raster rows that are final because of it.

    A row is final when every window that touches it has arrived. Windows are bands of tile rows
    from the top, so the windows touching rows at or below `windows[k].y0` all have index `k` or
    more: with `k` the first window still missing, rows above `windows[k].y0` are final.
    """

    def __init__(self, windows: Sequence[Any], height: int) -> None:
        self.windows = list(windows)
        self.height = height
        self.arrived = [False] * len(self.windows)
        self.first_missing = 0

    def arrive(self, index: int) -> int:
        """Mark window `index` arrived; returns the first row not yet final."""
        if self.arrived[index]:
            raise ValueError(f"window {index} arrived twice")
        self.arrived[index] = True
        while self.first_missing < len(self.windows) and self.arrived[self.first_missing]:
            self.first_missing += 1
        return self.final_rows()

    def final_rows(self) -> int:
        if self.first_missing >= len(self.windows):
            return self.height
        return self.windows[self.first_missing].y0


def explain_scene_distributed(
    scene: str | os.PathLike,
    heatmap: str | os.PathLike,
    boxes: str | os.PathLike | None = None,
    settings: SceneSettings | None = None,
    *,
    client: Any,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    overwrite: bool = True,
    in_flight: int | None = None,
    order: Sequence[int] | None = None,
) -> SceneResult:
    """`pipeline.explain_scene` with the windows computed on the Dask cluster of `client`.

    Same outputs, same checks and the same all-or-nothing writing; the heatmap equals the
    single-process one to float rounding. `in_flight` bounds the windows out at a time past the
    first one missing (default: `IN_FLIGHT_PER_WORKER` per worker thread); `order` submits the
    windows in another order (tests).
    """
    from mscam.scene.outputs import StagedOutputs, prepare_scene_outputs

    settings = shared_settings(settings or SceneSettings())
    started = time.perf_counter()
    scene = shared_path(scene)
    heatmap, boxes = prepare_scene_outputs(
        heatmap, boxes, [scene, settings.model, settings.architecture_file], overwrite=overwrite
    )
    limit = in_flight or IN_FLIGHT_PER_WORKER * worker_threads(client)

    def windows_on_cluster(job: SceneJob, windows: list, cancel: CancelCheck | None):
        return _cluster_windows(client, scene, job, windows, settings, limit, order, cancel)

    with torch_threads(settings.threads), StagedOutputs() as staged:
        staged_heatmap = Path(staged.add(heatmap))
        staged_boxes = None if boxes is None else Path(staged.add(boxes))
        result = assemble_scene(
            scene, staged_heatmap, staged_boxes, settings, windows_on_cluster,
            progress=progress, cancel=cancel, started=started,
        )  # fmt: skip
        staged.commit()
    result.heatmap, result.boxes = heatmap, boxes
    return result


def _cluster_windows(
    client: Any,
    scene: str,
    job: SceneJob,
    windows: list,
    settings: SceneSettings,
    limit: int,
    order: Sequence[int] | None,
    cancel: CancelCheck | None,
) -> Iterator[tuple[int, WindowResult]]:
    """(index, result) of every window as the workers finish them; window `i` goes out only
    once `i < first missing + limit`, so the blocks waiting in the mosaic stay bounded."""
    from distributed import as_completed

    queue = list(order) if order is not None else list(range(len(windows)))
    if sorted(queue) != list(range(len(windows))):
        raise ValueError("order must name every window once")
    arrived = [False] * len(windows)
    first_missing = 0
    pending: dict[Any, int] = {}
    done = as_completed()
    run = uuid.uuid4().hex  # keys unique to this run: the scheduler may still know older ones

    def submit_ready() -> None:
        # Every window near enough to the first one missing (which is always among them).
        for index in [i for i in queue if i < first_missing + limit]:
            queue.remove(index)
            future = client.submit(
                window_task, scene, windows[index], settings, pure=False,
                key=f"mscam-window-{index}-{run}",
            )  # fmt: skip
            pending[future] = index
            done.add(future)

    submit_ready()
    try:
        for future in done:
            index = pending.pop(future)
            result = future.result()  # a worker's error is raised here, as it was raised there
            future.release()
            arrived[index] = True
            while first_missing < len(windows) and arrived[first_missing]:
                first_missing += 1
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            submit_ready()
            yield index, result
    finally:
        if pending:
            client.cancel(list(pending))


def assemble_scene(
    scene: str,
    heatmap: Path,
    boxes: Path | None,
    settings: SceneSettings,
    results_of: Any,
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    started: float | None = None,
) -> SceneResult:
    """`pipeline._explain_scene` with the windows' results coming from `results_of(job, windows,
    cancel)` as (index, result) in any order."""
    started = time.perf_counter() if started is None else started
    # Here for the grid, the writer's tags and the mapping back; the windows run elsewhere.
    job = SceneJob(scene, settings)
    windows = job.windows()
    band_rows = max(window.y1 - window.y0 for window in windows)
    report = progress or (lambda fraction, message: None)
    totals = {"tiles": 0, "skipped": 0, "empty_maps": 0}
    hot_by_window: dict[int, list[TileScore]] = {}
    tracker = RowTracker(windows, job.grid.height)
    with job.heatmap_writer(heatmap) as writer:
        with streaming_mosaic(job, writer, band_rows) as mosaic:
            for count, (index, result) in enumerate(results_of(job, windows, cancel), start=1):
                mosaic.add(result.block)
                mosaic.flush(tracker.arrive(index))
                hot_by_window[index] = result.hot_tiles
                totals["tiles"] += result.tiles
                totals["skipped"] += result.skipped
                totals["empty_maps"] += result.empty_maps
                report(count / (len(windows) + 1), f"window {count}/{len(windows)}")
            if tracker.final_rows() < job.grid.height:
                raise RuntimeError("the cluster returned fewer windows than it was given")
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            report(len(windows) / (len(windows) + 1), FINISHING)
            # In window order, as the single-process run lists them.
            hot_tiles = [tile for index in sorted(hot_by_window) for tile in hot_by_window[index]]
        return finish_scene(job, scene, writer, boxes, hot_tiles, totals, report, started, "dask")
