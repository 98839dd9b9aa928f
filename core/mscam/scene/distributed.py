"""Scenes and archives on a Dask cluster: one scene's windows spread over workers, or many scenes.

Two ways out of one process, both on Dask (`dask.distributed`), imported only when used so that
`import mscam` still needs nothing but torch and numpy:

- `explain_scene_distributed` sends `pipeline.process_window(scene, window, settings)` for each
  window to the workers and assembles the streaming mosaic in this process as the blocks arrive,
  in whatever order. A row is written only once every window that touches it has arrived (the
  first window still missing bounds the rows that are final), and at most `in_flight` windows
  past that one are out at a time, so memory holds a bounded band of rows as in the
  single-process run. Blocks are added, not overwritten, so the heatmap is the single-process
  heatmap to float rounding (bit for bit where no row is shared by more than two windows).
- `run_batch` sends whole scenes: each worker runs `pipeline.explain_scene` on one scene and
  writes that scene's heatmap and boxes (staged and renamed together, as always); this process
  then merges the boxes and writes the summary.

Workers read the scene, and in a batch write the outputs, by path: on a cluster of several
machines the inputs, the model and the output folder must be at the same path on every machine
(a shared file system). Each worker process keeps its loaded model between windows
(`pipeline.scene_job` is cached per process) and runs one window at a time (`_WORKER_LOCK`:
a model's hooks are not thread-safe). A worker lost mid-run costs nothing but time: the
scheduler gives its windows or scenes to another worker.
"""

from __future__ import annotations

import csv
import ctypes
import functools
import glob
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mscam.errors import Cancelled, InputError, MscamError, OutputError
from mscam.scene.pipeline import (
    FINISHING,
    CancelCheck,
    Progress,
    SceneJob,
    SceneResult,
    SceneSettings,
    TileScore,
    WindowResult,
    explain_scene,
    finish_scene,
    process_window,
    torch_threads,
)

log = logging.getLogger(__name__)

#: Windows out on the cluster per worker thread: one running and one queued keeps every worker
#: busy while the results travel, and bounds the rows the mosaic holds.
IN_FLIGHT_PER_WORKER = 2
#: File name suffixes a folder given to `mscam batch` is searched for (a `.SAFE` folder is a scene).
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2", ".nc", ".h5", ".hdf5", ".safe")
SUMMARY_FIELDS = ("scene", "tiles", "hot_tiles", "boxes", "seconds", "status", "error")
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
    from mscam.scene.heatmap_writer import HEATMAP_NODATA
    from mscam.scene.mosaic import StreamingMosaic
    from mscam.scene.raster import limited_block_cache, streaming_cache_bytes

    started = time.perf_counter() if started is None else started
    # Here for the grid, the writer's tags and the mapping back; the windows run elsewhere.
    job = SceneJob(scene, settings)
    windows = job.windows()
    band_rows = max(window.y1 - window.y0 for window in windows)
    report = progress or (lambda fraction, message: None)
    totals = {"tiles": 0, "skipped": 0}
    hot_by_window: dict[int, list[TileScore]] = {}
    tracker = RowTracker(windows, job.grid.height)
    with job.heatmap_writer(heatmap) as writer:
        with limited_block_cache(streaming_cache_bytes(job.reader.info, band_rows)):
            mosaic = StreamingMosaic(
                job.reader.info.width,
                job.reader.info.height,
                writer.write_rows,
                nodata=HEATMAP_NODATA,
            )
            for count, (index, result) in enumerate(results_of(job, windows, cancel), start=1):
                mosaic.add(result.block)
                mosaic.flush(tracker.arrive(index))
                hot_by_window[index] = result.hot_tiles
                totals["tiles"] += result.tiles
                totals["skipped"] += result.skipped
                report(count / (len(windows) + 1), f"window {count}/{len(windows)}")
            if tracker.final_rows() < job.grid.height:
                raise RuntimeError("the cluster returned fewer windows than it was given")
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            report(len(windows) / (len(windows) + 1), FINISHING)
            # In window order, as the single-process run lists them.
            hot_tiles = [tile for index in sorted(hot_by_window) for tile in hot_by_window[index]]
        return finish_scene(job, scene, writer, boxes, hot_tiles, totals, report, started, "dask")


# --- many scenes ----------------------------------------------------------------------------------


@dataclass
class SceneRow:
    """One line of `summary.csv`."""

    scene: str
    tiles: int | None = None
    hot_tiles: int | None = None
    boxes: int | None = None
    seconds: float | None = None
    status: str = "pending"  # ok, skipped or failed
    error: str = ""

    def as_csv(self) -> dict[str, str]:
        values = {
            "scene": self.scene,
            "tiles": "" if self.tiles is None else str(self.tiles),
            "hot_tiles": "" if self.hot_tiles is None else str(self.hot_tiles),
            "boxes": "" if self.boxes is None else str(self.boxes),
            "seconds": "" if self.seconds is None else f"{self.seconds:.2f}",
            "status": self.status,
            "error": self.error,
        }
        return values


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Scene paths from files, folders (their rasters, not recursive) and glob patterns, in the
    order given, each once. A name that matches nothing, or two scenes of the same file name
    (their outputs would collide), is an error."""
    found: list[str] = []
    for item in inputs:
        if item.startswith("/vsi"):
            matches = [item]
        elif os.path.isdir(item) and not item.rstrip("/").lower().endswith(".safe"):
            matches = sorted(
                os.path.join(item, name)
                for name in os.listdir(item)
                if name.lower().endswith(RASTER_SUFFIXES) and not name.startswith(".")
            )
            if not matches:
                raise InputError(f"folder {item} holds no raster ({', '.join(RASTER_SUFFIXES)})")
        elif os.path.exists(item):
            matches = [item]
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise InputError(f"no file matches {item}")
        else:
            raise InputError(f"input {item} does not exist")
        for match in matches:
            path = os.path.abspath(match)
            if path not in found:
                found.append(path)
    if not found:
        raise InputError("no input scene")
    stems: dict[str, str] = {}
    for scene in found:
        stem = scene_stem(scene)
        if stem in stems:
            raise InputError(
                f"two scenes would write the same outputs ({stem}): {stems[stem]} and {scene}"
            )
        stems[stem] = scene
    return found


def scene_stem(scene: str) -> str:
    name = os.path.basename(scene.rstrip("/"))
    return name[: -len(".safe")] if name.lower().endswith(".safe") else os.path.splitext(name)[0]


def scene_outputs(out: Path, scene: str) -> tuple[Path, Path]:
    stem = scene_stem(scene)
    return out / f"{stem}.heatmap.tif", out / f"{stem}.boxes.gpkg"


def outputs_complete(heatmap: Path, boxes: Path) -> bool:
    """Whether a scene's pair was written by a finished run (both renamed into place and
    readable: a kill between the two renames leaves the heatmap alone)."""
    if not (heatmap.is_file() and boxes.is_file()):
        return False
    from mscam.scene.raster import open_raster_info
    from mscam.scene.vector import read_boxes

    try:
        open_raster_info(heatmap)
        read_boxes(boxes)
    except (MscamError, RuntimeError, OSError):
        return False
    return True


def scene_task(
    scene: str, heatmap: str, boxes: str, settings: SceneSettings, topic: str | None = None
) -> dict[str, Any]:
    """What a worker runs for one scene of a batch: `explain_scene`, its failure as a value.

    With `topic`, the scene's progress goes to the client as events on that topic."""
    report = None
    if topic:
        try:
            from distributed import get_worker

            worker = get_worker()

            def report(fraction: float, message: str) -> None:
                worker.log_event(topic, {"scene": scene, "fraction": fraction})

        except (ImportError, ValueError):
            report = None
    roomy_malloc()
    started = time.perf_counter()
    try:
        with _WORKER_LOCK:
            result = explain_scene(scene, heatmap, boxes, settings, progress=report)
    except MscamError as exc:
        return {"status": "failed", "error": str(exc), "seconds": time.perf_counter() - started}
    except MemoryError:
        return {"status": "failed", "error": "out of memory", "seconds": 0.0}
    except Exception as exc:
        return {"status": "failed", "error": f"unexpected {type(exc).__name__}: {exc}"}
    return {
        "status": "ok",
        "tiles": result.tiles,
        "hot_tiles": result.hot_tiles,
        "boxes": result.n_boxes,
        "seconds": result.seconds,
    }


def _previous_summary(path: Path) -> dict[str, dict[str, str]]:
    try:
        with open(path, newline="") as handle:
            return {row["scene"]: row for row in csv.DictReader(handle) if row.get("scene")}
    except (OSError, KeyError, csv.Error):
        return {}


def _number(text: str | None, kind: type) -> Any:
    try:
        return kind(text) if text not in (None, "") else None
    except ValueError:
        return None


def run_batch(
    inputs: Sequence[str],
    out: str | os.PathLike,
    settings: SceneSettings | None = None,
    *,
    client: Any,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    force: bool = False,
) -> list[SceneRow]:
    """Explain every scene of `inputs` on the cluster: `out/<stem>.heatmap.tif` and
    `out/<stem>.boxes.gpkg` per scene, then `out/boxes.gpkg` (every scene's boxes, with a `scene`
    field) and `out/summary.csv`. Scenes whose pair is complete are skipped unless `force`; a
    failing scene is recorded and the others go on. `cancel()` is polled as scenes finish: the
    scenes not started are dropped (one already running finishes, or leaves nothing). Returns the
    summary's rows."""
    from distributed import as_completed

    settings = shared_settings(settings or SceneSettings())
    scenes = expand_inputs(inputs)
    out = Path(out).absolute()
    if not out.is_dir():
        try:
            out.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {out}: {exc.strerror}") from None
    previous = _previous_summary(out / "summary.csv")
    rows = {scene: SceneRow(scene) for scene in scenes}
    report = progress or (lambda fraction, message: None)
    fractions: dict[str, float] = {}
    lock = threading.Lock()

    def line() -> str:
        finished = sum(1 for row in rows.values() if row.status != "pending")
        failed = sum(1 for row in rows.values() if row.status == "failed")
        text = f"{finished}/{len(rows)} scenes"
        return text + (f", {failed} failed" if failed else "")

    def overall() -> float:
        with lock:
            done = sum(
                1.0 if row.status != "pending" else fractions.get(row.scene, 0.0)
                for row in rows.values()
            )
        return done / (len(rows) + 1)

    topic = f"mscam-progress-{os.getpid()}-{time.monotonic_ns()}"

    def on_event(event: Any) -> None:
        _, message = event
        with lock:
            fractions[message["scene"]] = min(float(message["fraction"]), 0.999)
        report(overall(), line())

    client.subscribe_topic(topic, on_event)
    futures = {}
    try:
        for scene in scenes:
            heatmap, boxes = scene_outputs(out, scene)
            if not force and outputs_complete(heatmap, boxes):
                row, old = rows[scene], previous.get(scene, {})
                row.status, row.seconds = "skipped", 0.0
                row.tiles = _number(old.get("tiles"), int)
                row.hot_tiles = _number(old.get("hot_tiles"), int)
                row.boxes = _count_boxes(boxes)
                log.debug("skipped %s: its heatmap and boxes are complete", scene)
                continue
            future = client.submit(
                scene_task, scene, str(heatmap), str(boxes), settings, topic, pure=False,
                key=f"mscam-scene-{scene_stem(scene)}-{uuid.uuid4().hex}",
            )  # fmt: skip
            futures[future] = scene
        report(overall(), line())
        for future in as_completed(list(futures)):
            scene = futures[future]
            row = rows[scene]
            try:
                outcome = future.result()
            except Exception as exc:  # the cluster gave up on it (workers killed over and over)
                outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            with lock:
                row.status = outcome["status"]
                row.error = outcome.get("error", "")
                row.tiles = outcome.get("tiles")
                row.hot_tiles = outcome.get("hot_tiles")
                row.boxes = outcome.get("boxes")
                row.seconds = outcome.get("seconds")
            if row.status == "failed":
                log.warning("%s failed: %s", scene, row.error)
            report(overall(), line())
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
    finally:
        client.unsubscribe_topic(topic)
        for future in futures:
            if not future.done():
                future.cancel()
    ordered = [rows[scene] for scene in scenes]
    merge_boxes(
        [(scene_stem(r.scene), scene_outputs(out, r.scene)[1]) for r in ordered
         if r.status in ("ok", "skipped")],
        out / "boxes.gpkg",
    )  # fmt: skip
    write_summary(ordered, out / "summary.csv")
    report(1.0, line())
    return ordered


def _count_boxes(path: Path) -> int | None:
    from mscam.scene.vector import read_boxes

    try:
        return len(read_boxes(path))
    except MscamError:
        return None


def merge_boxes(layers: Sequence[tuple[str, Path]], target: Path) -> int:
    """Every scene's boxes in one GeoPackage with a `scene` field (the scene's stem): in the
    scenes' CRS when they share one, else in WGS 84 (EPSG:4326). Returns the boxes written."""
    from mscam.scene.vector import read_boxes, read_crs, write_boxes

    tables = [(stem, read_boxes(path), read_crs(path)) for stem, path in layers]
    crss = {crs for _, _, crs in tables}
    common = crss.pop() if len(crss) == 1 else None
    records = []
    for stem, boxes, crs in tables:
        transform = None if common is not None or not crs else _to_wgs84(crs)
        for box in boxes:
            ring = box.pop("ring")
            box.pop("bbox", None)
            if transform is not None:
                ring = [tuple(transform.TransformPoint(x, y)[:2]) for x, y in ring]
            records.append({"scene": stem, **box, "ring": ring})
    write_boxes(
        target, records, common if common is not None else ("EPSG:4326" if tables else None)
    )
    return len(records)


def _to_wgs84(wkt: str) -> Any:
    from osgeo import osr

    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromWkt(wkt)
    target.ImportFromEPSG(4326)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(source, target)


def write_summary(rows: Sequence[SceneRow], path: Path) -> None:
    """`summary.csv`, written beside its place and renamed onto it."""
    from mscam.scene.raster import atomic_output

    with atomic_output(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv())
