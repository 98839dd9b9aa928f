"""Many scenes on a Dask cluster (`mscam batch`): one scene per worker.

`run_batch` sends whole scenes: each worker runs `pipeline.explain_scene` on one scene and writes
that scene's heatmap and boxes (staged and renamed together, as always); this process then merges
the boxes and writes the summary. Scenes whose pair is complete are skipped, and a failing scene
is recorded while the others go on.

Workers write the outputs by path: on a cluster of several machines the inputs, the model and the
output folder must be at the same path on every machine (a shared file system). The cluster
(`dask_client`), the worker set-up (`roomy_malloc`, one scene at a time under `_WORKER_LOCK`) and
the shared paths come from `mscam.scene.distributed`, which runs one scene's windows on the
workers. A worker lost mid-run costs nothing but time: the scheduler gives its scenes to another
worker.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mscam.errors import Cancelled, InputError, MscamError, OutputError
from mscam.scene.distributed import _WORKER_LOCK, roomy_malloc, shared_settings
from mscam.scene.pipeline import CancelCheck, Progress, SceneSettings, explain_scene

log = logging.getLogger(__name__)

#: File name suffixes a folder given to `mscam batch` is searched for (a `.SAFE` folder is a scene).
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2", ".nc", ".h5", ".hdf5", ".safe")
SUMMARY_FIELDS = ("scene", "tiles", "hot_tiles", "boxes", "seconds", "status", "error")


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
