"""The scene pipeline end to end: speed and peak memory, against the bare model, and box accuracy.

Every number comes from `mscam.scene.explain_scene` with the bundled default model, MS-CAM and
the default `SceneSettings` (`min_score` 0.5, threshold 0.5), on synthetic Sentinel-1-like scenes:

- **Throughput and peak memory** on `coastal` scenes of 2048² and 8192² pixels: seconds, Mpx/s,
  tiles, hot tiles and the peak resident set (`ru_maxrss`) of a fresh process that ran only that
  scene, with the time split over the pipeline's stages (setup, read+preprocess, tile cutting,
  CNN+CAM, mosaic, row writes, COG finishing, boxes), measured by a `perf_counter` around each
  stage's function (time spent in a nested timed function counts once, in the inner stage).
  Reading and tile cutting run in a background thread while the CNN works, so the stages can
  add up to more than the run's time.
  A 2048² scene is `synthesize_scene(2048, "coastal", seed)`; a larger one is a mosaic of 2048²
  pieces with consecutive seeds (each piece like the 2048² scene, nodata swath edges included),
  so the content per pixel matches and the synthesis never holds more than one piece.
- **The bare model on the same tiles**: the batches that `SceneJob.process_window` hands to the
  CNN (recorded by replacing its `explain_batch`, so the tiles, skips and batch sizes are the
  pipeline's own), through the model the pipeline runs (`SceneJob.model`: BatchNorm folded,
  channels-last), timed as the passes the pipeline needs: the forward of every batch under
  `no_grad`, plus, for the tiles whose target probability reaches `min_score`, the backward the
  CAM needs: `torch.autograd.grad` of the summed target logits with respect to the target layer's
  output (the forward that builds that graph is not timed). Reading the tiles is not timed either.
  `pipeline × bare` is the pipeline's throughput over the bare passes' throughput.
- **The prescreen's speed-up** on an `empty` scene (open sea and coast, no ship): the default
  `min_score` 0.5 against `min_score` 0, where every tile gets a backward pass and a CAM.
- **Box accuracy** on the `calm`, `coastal`, `dense` and `empty` profiles, two seeds each:
  `mscam.eval.evaluate_scene` of the heatmap against the synthetic truth, both criteria (IoU ≥ 0.5
  and "the box contains the ship's centre"), at the default threshold and at the threshold of the
  best F1 (counts summed over the seeds, then precision, recall and F1).

Synthesis runs in a process of its own and is not timed. The runs whose memory is reported run
alone in a fresh process; the prescreen pair shares one, and the other accuracy runs share one.
Every process warms up on one window of its scene before timing. The peak resident set includes
GDAL's block cache (`GDAL_CACHEMAX`, recorded; by default 5 % of the RAM). `--threads` sets
torch's threads (default: every core): on a shared machine one thread can be several times
faster than two. The issue's targets are measured, not asserted: peak memory of 8192² within
1.3× of 2048², time at most 1.25× linear in pixels, the pipeline at least 0.6× the bare passes'
throughput, box F1 ≥ 0.8 with ships and no box on `empty`.

    python bench/bench_scene.py --out bench             # writes bench/results/scene_cpu.{json,md}
    python bench/bench_scene.py --out bench --device cuda
    python bench/bench_scene.py --out /tmp/b --quick    # a small smoke run (seconds)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mscam.errors import InputError
from mscam.eval.scene import DEFAULT_THRESHOLDS, detection_scores
from mscam.scene.pipeline import SceneSettings, default_batch, resolve_device
from workload import (
    machine_info,
    machine_line,
    set_threads,
    significant,
    synchronizer,
    write_mosaic,
    write_report,
)

PIECE = 2048  # side of the synthesized pieces that larger scenes are made of
THROUGHPUT_PROFILE = "coastal"
PRESCREEN_PROFILE = "empty"
ACCURACY_PROFILES = ("calm", "coastal", "dense", "empty")
MEMORY_LIMIT = 1.3  # peak memory of the largest scene over the smallest
LINEARITY_LIMIT = 20 / 16  # time ratio over pixel ratio
BARE_LIMIT = 0.6  # pipeline throughput over the bare passes' throughput (issue 13)
F1_TARGET = 0.8


@dataclass(frozen=True)
class SceneSpec:
    """A synthetic scene: `profile`, `size`² pixels, from `pieces`² pieces of consecutive seeds."""

    profile: str
    size: int
    seed: int
    pieces: int = 1

    @property
    def name(self) -> str:
        return f"{self.profile}-{self.size}-s{self.seed}" + (
            f"-p{self.pieces}" if self.pieces > 1 else ""
        )

    @property
    def has_truth(self) -> bool:
        return self.pieces == 1


@dataclass(frozen=True)
class Run:
    """One timed `explain_scene` of `scene`, and what else to do in the same process after it."""

    scene: SceneSpec
    min_score: float = SceneSettings.min_score
    bare: bool = False  # time the bare model passes on the same tiles
    evaluate: bool = False  # score the boxes against the truth


def scene_spec(profile: str, size: int, seed: int) -> SceneSpec:
    """A scene of `size`²: synthesized at once up to `PIECE`, from pieces above it."""
    if size <= PIECE:
        return SceneSpec(profile, size, seed)
    if size % PIECE:
        raise ValueError(f"sizes above {PIECE} must be multiples of it, got {size}")
    return SceneSpec(profile, size, seed, size // PIECE)


# -- synthesis (its own process, untimed) -------------------------------------------------------


def synthesize(specs: list[SceneSpec], folder: str) -> dict[str, float]:
    """Writes `folder/NAME.tif` (and `NAME.gpkg`, the truth, for unpieced scenes); seconds each."""
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene

    seconds = {}
    for spec in specs:
        start = time.perf_counter()
        path = Path(folder) / f"{spec.name}.tif"
        if spec.pieces == 1:
            scene = synthesize_scene(spec.size, spec.profile, spec.seed)
            write_scene(scene, path, path.with_suffix(".gpkg"))
        else:
            write_pieced_scene(spec, path)
        seconds[spec.name] = round(time.perf_counter() - start, 1)
    return seconds


def write_pieced_scene(spec: SceneSpec, path: Path) -> None:
    """A `pieces × pieces` mosaic of scenes of `size / pieces` with seeds `seed·n² + k`, each
    written by `write_scene` first, so bands, units, nodata and metadata are the same as there."""
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene
    from mscam.scene.raster import atomic_output

    side = spec.size // spec.pieces
    piece_path = path.with_name(f".{path.stem}.piece.tif")

    def pieces():
        for k in range(spec.pieces**2):
            write_scene(synthesize_scene(side, spec.profile, spec.seed * spec.pieces**2 + k),
                        piece_path)  # fmt: skip
            yield str(piece_path)

    with atomic_output(path) as temporary:
        write_mosaic(
            temporary, pieces(), spec.pieces, side, {"PIECES": f"{spec.pieces}x{spec.pieces}"}
        )
    piece_path.unlink(missing_ok=True)


# -- scene runs (fresh processes) ---------------------------------------------------------------


class StageClock:
    """Exclusive seconds per stage: each wrapped function's time, less its wrapped callees'."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._local = threading.local()  # reading runs in a thread of its own

    @property
    def _inner(self) -> list[float]:
        if not hasattr(self._local, "inner"):
            self._local.inner = []
        return self._local.inner

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._inner.append(0.0)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.seconds[stage] += elapsed - self._inner.pop()
                if self._inner:
                    self._inner[-1] += elapsed

        setattr(owner, name, timed)


def instrument_pipeline() -> StageClock:
    """Wraps the pipeline's stages (in this process only) with one `StageClock`."""
    from mscam.scene import pipeline
    from mscam.scene.heatmap_writer import HeatmapWriter
    from mscam.scene.mosaic import BlendBlock, StreamingMosaic
    from mscam.scene.preprocess import ScenePreprocessor

    clock = StageClock()
    for owner, name, stage in (
        (pipeline.SceneJob, "__init__", "setup"),
        (ScenePreprocessor, "read", "read+preprocess"),
        (pipeline.SceneJob, "prepare_window", "tile cutting"),
        (pipeline.SceneJob, "explain_batch", "CNN+CAM"),
        (BlendBlock, "add_tile", "mosaic"),
        (StreamingMosaic, "add", "mosaic"),
        (StreamingMosaic, "flush", "mosaic"),
        (HeatmapWriter, "write_rows", "row writes"),
        (HeatmapWriter, "close_rows", "row writes"),
        (HeatmapWriter, "build_cog", "COG finishing"),
        (pipeline, "write_scene_boxes", "boxes"),
    ):
        clock.wrap(owner, name, stage)
    return clock


def run_scenes(runs: list[Run], folder: str, device: str, threads: int) -> list[dict[str, Any]]:
    """The runs, one after the other, in this (fresh) process; one result dict each."""
    from mscam.scene.pipeline import SceneJob, explain_scene

    set_threads(threads)
    clock = instrument_pipeline()
    results = []
    for index, run in enumerate(runs):
        scene = Path(folder) / f"{run.scene.name}.tif"
        settings = SceneSettings(device=device, min_score=run.min_score)
        if index == 0:  # warm up: the model, the explainer and the kernels for this tile shape
            warm = SceneJob(scene, settings)
            warm.process_window(warm.grid.windows()[0])
            del warm
        heatmap = scene.with_name(f"{scene.stem}.m{run.min_score}.heat.tif")
        boxes = heatmap.with_name(f"{scene.stem}.m{run.min_score}.boxes.gpkg")
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        rss_before = _rss_mib()
        clock.seconds.clear()
        result = explain_scene(scene, heatmap, boxes, settings)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        stages = {stage: significant(s) for stage, s in clock.seconds.items()}
        stages["other"] = significant(max(result.seconds - sum(clock.seconds.values()), 0.0))
        pixels = result_pixels(heatmap)
        row: dict[str, Any] = {
            "scene": asdict(run.scene),
            "name": run.scene.name,
            "min_score": run.min_score,
            "pixels": pixels,
            "seconds": significant(result.seconds),
            "mpx_per_s": significant(pixels / 1e6 / result.seconds),
            "tiles": result.tiles,
            "hot_tiles": result.hot_tiles,
            "skipped_tiles": result.skipped_tiles,
            "boxes": result.n_boxes,
            "device": result.device,
            "rss_before_mib": round(rss_before, 1),
            "peak_rss_mib": round(peak, 1),
            "first_in_process": index == 0,
            "stages_s": stages,
        }
        if cuda:
            row["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if run.bare:
            row["bare"] = time_bare_passes(SceneJob(scene, settings))
            bare_s = row["bare"]["forward_s"] + row["bare"]["backward_s"]
            row["bare"]["bare_s"] = significant(bare_s)
            row["bare"]["mpx_per_s"] = significant(pixels / 1e6 / bare_s)
            row["bare"]["pipeline_x_bare"] = significant(bare_s / result.seconds)
        if run.evaluate and run.scene.has_truth:
            row["evaluation"] = evaluation(heatmap, scene.with_suffix(".gpkg"), settings.threshold)
        for output in (heatmap, boxes):
            output.unlink(missing_ok=True)
        results.append(row)
    return results


def result_pixels(heatmap: Path) -> int:
    from mscam.scene.raster import open_raster_info

    info = open_raster_info(heatmap)
    return info.width * info.height


def time_bare_passes(job: Any) -> dict[str, Any]:
    """Seconds of the bare model's passes on the pipeline's own batches (see the module doc)."""
    model, target = job.model, job.target_index  # the model the pipeline runs
    layer = model.get_submodule(job.loaded.card.target_layer)
    sync = synchronizer(str(job.device))
    captured: dict[str, torch.Tensor] = {}  # the target layer's output of the last forward
    handle = layer.register_forward_hook(
        lambda module, inputs, output: captured.__setitem__("output", output)
    )
    forward_s = backward_s = 0.0
    tiles = hot_tiles = batches = 0
    try:
        for window in job.windows():  # the pipeline's own windows and batches
            for batch in recorded_batches(job, window):
                x = batch.to(job.device).contiguous(memory_format=torch.channels_last)
                sync()
                start = time.perf_counter()
                with torch.no_grad():
                    logits = model(x)
                sync()
                forward_s += time.perf_counter() - start
                hot = torch.softmax(logits.float(), dim=1)[:, target] >= job.settings.min_score
                tiles, batches = tiles + len(x), batches + 1
                if not bool(hot.any()):
                    continue
                hot_tiles += int(hot.sum())
                with torch.enable_grad():
                    score = model(x[hot])[:, target].sum()
                sync()
                start = time.perf_counter()
                torch.autograd.grad(score, captured["output"])
                sync()
                backward_s += time.perf_counter() - start
    finally:
        handle.remove()
    return {
        "tiles": tiles,
        "hot_tiles": hot_tiles,
        "batches": batches,
        "forward_s": significant(forward_s),
        "backward_s": significant(backward_s),
    }


def recorded_batches(job: Any, window: Any) -> list[torch.Tensor]:
    """The batches `job.process_window(window)` gives the CNN, recorded instead of explained."""
    batches: list[torch.Tensor] = []

    def record(batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        batches.append(batch)
        n = batch.shape[0]
        return np.zeros((n, *batch.shape[-2:]), np.float32), np.zeros(n, np.float32)

    job.explain_batch = record
    try:
        job.process_window(window)
    finally:
        del job.explain_batch
    return batches


def evaluation(heatmap: Path, truth: Path, threshold: float) -> dict[str, Any]:
    """What the accuracy tables need from `evaluate_scene`: counts per threshold and criterion."""
    from mscam.eval.scene import evaluate_scene

    thresholds = sorted({*DEFAULT_THRESHOLDS, threshold})
    scores = evaluate_scene(heatmap, truth, thresholds)
    return {
        "truth_boxes": scores["truth_boxes"],
        "pxap": scores["pxap"],
        "thresholds": scores["thresholds"],
        "predictions": scores["predictions"],
        "tp": {criterion: scores[criterion]["tp"] for criterion in ("iou", "hit")},
    }


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the whole benchmark ------------------------------------------------------------------------


def in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a new interpreter; a child that dies (out of memory) raises here."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = set_threads(args.threads)
    machine = machine_info(args.device)
    from osgeo import gdal

    machine["gdal"] = gdal.__version__
    machine["gdal_cache_max_mib"] = round(gdal.GetCacheMax() / 2**20)
    seed = 0
    throughput = [Run(scene_spec(THROUGHPUT_PROFILE, size, seed)) for size in args.sizes]
    throughput[0] = replace(throughput[0], bare=True)
    prescreen = [
        Run(SceneSpec(PRESCREEN_PROFILE, args.accuracy_size, seed), min_score)
        for min_score in (SceneSettings.min_score, 0.0)
    ]
    accuracy = [
        Run(SceneSpec(profile, args.accuracy_size, s), evaluate=True)
        for profile in ACCURACY_PROFILES
        for s in range(args.seeds)
    ]
    # A throughput or prescreen run of an accuracy scene with default settings serves both.
    for group in (throughput, prescreen):
        for i, item in enumerate(group):
            twin = replace(item, bare=False, evaluate=True)
            if twin in accuracy:
                accuracy.remove(twin)
                group[i] = replace(item, evaluate=True)
    started = time.perf_counter()
    specs = list(dict.fromkeys(item.scene for item in [*throughput, *prescreen, *accuracy]))
    with tempfile.TemporaryDirectory(prefix="mscam-bench-scene-") as folder:
        say(f"synthesizing {len(specs)} scenes ...")
        synthesis_s = in_fresh_process(synthesize, specs, folder)
        results = []
        for item in throughput:
            say(f"{item.scene.name}: explain_scene{' and the bare model' if item.bare else ''} ...")
            results += in_fresh_process(run_scenes, [item], folder, args.device, threads)
        say("prescreen: min_score 0.5 and 0 ...")
        results += in_fresh_process(run_scenes, prescreen, folder, args.device, threads)
        if accuracy:
            say(f"accuracy: {len(accuracy)} more scenes ...")
            results += in_fresh_process(run_scenes, accuracy, folder, args.device, threads)
    machine["load_average_after_timing"] = [round(value, 2) for value in os.getloadavg()]
    n_throughput = len(throughput)
    report = {
        "machine": machine,
        "workload": {
            "model": "bundled default (load_model(None))",
            "method": SceneSettings.method,
            "settings": {
                **{
                    key: getattr(SceneSettings, key)
                    for key in ("overlap", "threshold", "min_score", "max_nodata")
                },
                "batch": default_batch(resolve_device(args.device)),  # the device's default
            },
            "device": args.device,
            "threads": threads,
            "sizes": args.sizes,
            "accuracy_size": args.accuracy_size,
            "seeds": args.seeds,
            "piece": PIECE,
            "quick": args.quick,
            "synthesis_s": synthesis_s,
            "benchmark_s": round(time.perf_counter() - started, 1),
        },
        "throughput": results[:n_throughput],
        "prescreen": prescreen_summary(results[n_throughput : n_throughput + 2]),
        "accuracy": accuracy_summary(
            [row for row in results if "evaluation" in row], SceneSettings.threshold
        ),
    }
    report["criteria"] = criteria(report)
    return report


def prescreen_summary(pair: list[dict[str, Any]]) -> dict[str, Any]:
    screened, unscreened = pair
    return {
        "scene": screened["name"],
        "runs": [
            {key: row[key] for key in ("min_score", "seconds", "mpx_per_s", "tiles", "hot_tiles")}
            for row in pair
        ],
        "speed_up": significant(unscreened["seconds"] / screened["seconds"]),
    }


def accuracy_summary(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Per profile, the counts of its seeds summed per threshold, then P, R and F1 per criterion
    at the default threshold and at the best one (highest F1, the lowest threshold on ties)."""
    profiles: dict[str, Any] = {}
    for profile in ACCURACY_PROFILES:
        mine = [row for row in rows if row["scene"]["profile"] == profile]
        if not mine:
            continue
        thresholds = mine[0]["evaluation"]["thresholds"]
        truth = sum(row["evaluation"]["truth_boxes"] for row in mine)
        predictions = np.sum([row["evaluation"]["predictions"] for row in mine], axis=0)
        entry: dict[str, Any] = {
            "scenes": [row["name"] for row in mine],
            "truth_boxes": truth,
            "pxap": [row["evaluation"]["pxap"] for row in mine],
            "threshold": threshold,
            "boxes_at_threshold": int(predictions[thresholds.index(threshold)]),
        }
        for criterion in ("iou", "hit"):
            tp = np.sum([row["evaluation"]["tp"][criterion] for row in mine], axis=0)
            curve = [detection_scores(int(t), int(p), truth) for t, p in zip(tp, predictions)]
            best = int(np.argmax([f1 for _, _, f1 in curve]))
            entry[criterion] = {
                name: {
                    "threshold": thresholds[i],
                    "boxes": int(predictions[i]),
                    "tp": int(tp[i]),
                    **dict(zip(("precision", "recall", "f1"), map(significant, curve[i]))),
                }
                for name, i in (("default", thresholds.index(threshold)), ("best", best))
            }
        profiles[profile] = entry
    return profiles


def criteria(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value (None where it was not measured)."""
    rows = report["throughput"]
    small, large = rows[0], rows[-1]
    measured_scale = len(rows) > 1
    pixel_ratio = large["pixels"] / small["pixels"]
    bare = small["bare"]
    out = [
        {
            "target": f"peak memory of {large['name']} within {MEMORY_LIMIT}x of {small['name']}",
            "value": significant(large["peak_rss_mib"] / small["peak_rss_mib"])
            if measured_scale
            else None,
            "limit": MEMORY_LIMIT,
        },
        {
            "target": f"time at most {LINEARITY_LIMIT}x linear in pixels "
            f"({pixel_ratio:.0f}x pixels, at most {pixel_ratio * LINEARITY_LIMIT:.0f}x time)",
            "value": significant(large["seconds"] / small["seconds"]) if measured_scale else None,
            "limit": significant(pixel_ratio * LINEARITY_LIMIT),
        },
        {
            "target": f"pipeline at least {BARE_LIMIT}x the bare passes' throughput",
            "value": bare["pipeline_x_bare"],
            "limit": BARE_LIMIT,
            "at_least": True,
        },
    ]
    for profile, entry in report["accuracy"].items():
        if entry["truth_boxes"] == 0:
            out.append({"target": f"no box on {profile}", "value": entry["boxes_at_threshold"],
                        "limit": 0})  # fmt: skip
            continue
        for criterion in ("iou", "hit"):
            out.append({
                "target": f"box F1 ({criterion}) at the default threshold on {profile} "
                f">= {F1_TARGET}",
                "value": entry[criterion]["default"]["f1"], "limit": F1_TARGET, "at_least": True,
            })  # fmt: skip
    for row in out:
        value, limit = row["value"], row["limit"]
        row["met"] = None if value is None else (
            value >= limit if row.pop("at_least", False) else value <= limit
        )  # fmt: skip
    return out


# -- the report ---------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    work, machine = report["workload"], report["machine"]
    settings = ", ".join(f"{key} {value}" for key, value in work["settings"].items())
    lines = [
        f"# Scene pipeline throughput and accuracy ({work['device']})",
        "",
        f"`explain_scene` with the {work['model']} model, {work['method']}, default settings "
        f"({settings}), {work['threads']} torch threads; synthetic scenes above {work['piece']}² "
        f"are mosaics of {work['piece']}² pieces. One run per scene, in a fresh process after a "
        f"one-window warmup. Load average after the timings: "
        f"{machine['load_average_after_timing']}; the whole benchmark took "
        f"{work['benchmark_s']:.0f} s."
        + (" **Quick smoke run: not a measurement.**" if work["quick"] else ""),
        "",
        machine_line(machine) + f" GDAL {machine['gdal']} (cache {machine['gdal_cache_max_mib']} "
        "MiB).",
        "",
        "## Throughput and peak memory",
        "",
        "| scene | pixels | s | Mpx/s | tiles | hot | skipped | boxes | RSS before (MiB) "
        "| peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["throughput"]:
        lines.append(
            f"| {row['name']} | {row['pixels'] / 1e6:.1f} M | {row['seconds']:.1f} "
            f"| {row['mpx_per_s']:.3g} | {row['tiles']} | {row['hot_tiles']} "
            f"| {row['skipped_tiles']} | {row['boxes']} | {row['rss_before_mib']:.0f} "
            f"| {row['peak_rss_mib']:.0f} |"
        )
    stages = list(dict.fromkeys(s for row in report["throughput"] for s in row["stages_s"]))
    lines += [
        "",
        "Time split (seconds; each stage without the timed stages it calls; read+preprocess and "
        "tile cutting run in a background thread, overlapping the CNN; COG finishing runs in a "
        "second thread while the boxes are found, overlapping them):",
        "",
        "| scene | " + " | ".join(stages) + " |",
        "|---|" + "---:|" * len(stages),
    ]
    for row in report["throughput"]:
        cells = " | ".join(f"{row['stages_s'].get(stage, 0.0):.2f}" for stage in stages)
        lines.append(f"| {row['name']} | {cells} |")
    small = report["throughput"][0]
    bare = small["bare"]
    lines += [
        "",
        "## The pipeline against the bare model passes",
        "",
        f"On {small['name']}: the forward of all {bare['tiles']} tiles ({bare['batches']} batches, "
        f"`no_grad`) and the backward of the {bare['hot_tiles']} hot tiles (`autograd.grad` of the "
        "summed target logits w.r.t. the target layer's output), on the batches the pipeline "
        "itself formed.",
        "",
        "| | s | Mpx/s |",
        "|---|---:|---:|",
        f"| forward, every tile | {bare['forward_s']:.2f} | |",
        f"| backward, hot tiles | {bare['backward_s']:.3f} | |",
        f"| bare passes | {bare['bare_s']:.2f} | {bare['mpx_per_s']:.3g} |",
        f"| whole pipeline | {small['seconds']:.2f} | {small['mpx_per_s']:.3g} |",
        "",
        f"Pipeline throughput × bare: **{bare['pipeline_x_bare']:.2f}**.",
        "",
        "## The prescreen",
        "",
        f"On {report['prescreen']['scene']} (no ship):",
        "",
        "| min_score | s | Mpx/s | tiles | hot tiles |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in report["prescreen"]["runs"]:
        lines.append(
            f"| {row['min_score']} | {row['seconds']:.1f} | {row['mpx_per_s']:.3g} "
            f"| {row['tiles']} | {row['hot_tiles']} |"
        )
    lines += [
        "",
        f"Speed-up of the prescreen: **{report['prescreen']['speed_up']:.2f}×**.",
        "",
        "## Boxes against the truth",
        "",
        f"{work['accuracy_size']}² scenes, {work['seeds']} seed(s) per profile, counts summed over "
        "the seeds. P/R/F1 at the default threshold, and the threshold of the best F1 with its "
        "F1. `iou`: IoU ≥ 0.5; `hit`: the box contains the ship's centre.",
        "",
        "| profile | ships | boxes | iou P / R / F1 | iou best τ: F1 | hit P / R / F1 "
        "| hit best τ: F1 | PxAP |",
        "|---|---:|---:|---|---|---|---|---|",
    ]
    for profile, entry in report["accuracy"].items():
        cells = []
        for criterion in ("iou", "hit"):
            default, best = entry[criterion]["default"], entry[criterion]["best"]
            cells.append(
                f"{default['precision']:.2f} / {default['recall']:.2f} / {default['f1']:.2f}"
            )
            cells.append(f"{best['threshold']:.2f}: {best['f1']:.2f}")
        pxap = ", ".join("—" if v is None else f"{v:.2f}" for v in entry["pxap"])
        lines.append(
            f"| {profile} | {entry['truth_boxes']} | {entry['boxes_at_threshold']} "
            f"| {' | '.join(cells)} | {pxap} |"
        )
    lines += ["", "## The issue's targets (measured, not asserted)", ""]
    for row in report["criteria"]:
        verdict = {True: "met", False: "**NOT met**", None: "not measured"}[row["met"]]
        value = "—" if row["value"] is None else row["value"]
        lines.append(f"- {row['target']}: {value} (limit {row['limit']}), {verdict}.")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench"), help="writes OUT/results/")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="a small, fast smoke run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all cores)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help=f"throughput scene sides (2048 8192); above {PIECE}, multiples of it",
    )
    parser.add_argument("--accuracy-size", type=int, default=None, help="prescreen and accuracy "
                        "scene side (2048)")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=None, help="accuracy seeds per profile (2)")
    args = parser.parse_args(argv)
    try:
        args.device = str(resolve_device(args.device))
    except InputError as exc:  # an unknown device, or cuda without one
        parser.error(f"--device: {exc}")
    args.sizes = args.sizes or ([512] if args.quick else [2048, 8192])
    if any(size > PIECE and size % PIECE for size in args.sizes):
        parser.error(f"--sizes above {PIECE} must be multiples of {PIECE}")
    args.accuracy_size = args.accuracy_size or (512 if args.quick else 2048)
    args.seeds = args.seeds or (1 if args.quick else 2)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    write_report(args.out, f"scene_{torch.device(args.device).type}", run(args), markdown)


if __name__ == "__main__":
    main()
