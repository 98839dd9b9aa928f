"""Scale-out on Dask: one large scene (windows spread over workers) and an archive (scenes spread
over workers), against the single-process pipeline, with a paper projection for Sentinel-1.

- **Archive**: 8 `coastal` scenes of 2048² (`synthesize_scene`, seeds 0-7), through
  `explain_scene` one after another in one process, and through `mscam batch`'s `run_batch` on a
  `LocalCluster` of 1 and 2 worker processes.
- **Large scene**: one 8192² scene, a 4 × 4 mosaic of the archive's scenes (each used twice:
  content per pixel as in the archive, and no second synthesis), through `explain_scene` and
  through `explain_scene_distributed` on 1 and 2 workers.

Every run is a fresh process (`--child`): its seconds exclude starting the cluster (reported
apart) and importing torch, and include everything else (model loads, reading, CNN, CAM, mosaic,
COG, boxes). Workers and the single process get one torch thread each (`--threads`), so N workers
use N cores; the single process is also timed with every core. Peak memory is `ru_maxrss` of the
main process and of each worker process. The per-tile cost of the single-process run feeds the
projection: an IW GRD scene of 25 000 × 16 800 pixels (10 m) cut into the pipeline's tiles, on N
workers at the measured 2-worker efficiency (an assumption beyond 2: no cluster was measured).

The load average of the machine is recorded before and after: on a machine other jobs load,
timings and speed-ups measure the contention, not mscam, and the report says so.

    python bench/bench_dask.py --out bench            # writes bench/results/dask_cpu.{json,md}
    python bench/bench_dask.py --out /tmp/b --quick   # 4 scenes of 512², a 1024² mosaic (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import machine_info, machine_line, write_mosaic, write_report

PROFILE = "coastal"
#: A Sentinel-1 IW GRD (high resolution) scene: ~250 km × ~170 km at 10 m pixel spacing.
S1_IW_GRD = (25_000, 16_800)
PROJECTED_WORKERS = (1, 16, 64, 256)
PROJECTED_SCENES = (1, 60, 10_000)  # a scene; a year over a port (6-day repeat); an archive


def say(message: str) -> None:
    print(f"bench_dask: {message}", file=sys.stderr, flush=True)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- scenes ---------------------------------------------------------------------------------------


def make_scenes(folder: Path, side: int, count: int, mosaic: int) -> tuple[list[str], str]:
    """`count` scenes of `side`² (seeds 0…) and a `mosaic × mosaic` mosaic of them."""
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene

    scenes = []
    for seed in range(count):
        path = folder / "archive" / f"{PROFILE}-{side}-s{seed}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_scene(synthesize_scene(side, PROFILE, seed), path, path.with_suffix(".gpkg"))
        scenes.append(str(path))
    big = folder / f"{PROFILE}-{side * mosaic}-mosaic.tif"
    write_mosaic(str(big), (scenes[k % count] for k in range(mosaic * mosaic)), mosaic, side)
    return scenes, str(big)


# -- one run, in a fresh process -----------------------------------------------------------------


def child(config: dict[str, Any]) -> dict[str, Any]:
    import torch
    from mscam.scene.pipeline import SceneSettings, explain_scene

    torch.set_num_threads(config["threads"])
    settings = SceneSettings(threads=config["threads"], device="cpu")
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"rss_before_mib": round(_rss_mib())}
    if config["workers"] == 0:
        start = time.perf_counter()
        tiles = hot = boxes = 0
        for scene in config["scenes"]:
            stem = Path(scene).stem
            result = explain_scene(
                scene, out / f"{stem}.heatmap.tif", out / f"{stem}.boxes.gpkg", settings
            )
            tiles, hot, boxes = tiles + result.tiles, hot + result.hot_tiles, boxes + result.n_boxes
        record.update(seconds=time.perf_counter() - start, worker_peak_mib=[])
    else:
        from mscam.scene.batch import run_batch
        from mscam.scene.distributed import dask_client, explain_scene_distributed

        start = time.perf_counter()
        with dask_client(workers=config["workers"]) as client:
            client.run(lambda: __import__("mscam.scene.batch") and None)  # imports torch
            record["cluster_start_seconds"] = round(time.perf_counter() - start, 1)
            start = time.perf_counter()
            if config["kind"] == "scene":
                scene = config["scenes"][0]
                result = explain_scene_distributed(
                    scene, out / "heat.tif", out / "boxes.gpkg", settings, client=client
                )
                tiles, hot, boxes = result.tiles, result.hot_tiles, result.n_boxes
            else:
                rows = run_batch(config["scenes"], out, settings, client=client, force=True)
                failed = [row.error for row in rows if row.status != "ok"]
                if failed:
                    raise RuntimeError(f"scenes failed: {failed}")
                tiles = sum(row.tiles for row in rows)
                hot = sum(row.hot_tiles for row in rows)
                boxes = sum(row.boxes for row in rows)
            record["seconds"] = time.perf_counter() - start
            peaks = client.run(_rss_mib)
            record["worker_peak_mib"] = sorted(round(v) for v in peaks.values())
    record.update(tiles=tiles, hot_tiles=hot, boxes=boxes, main_peak_mib=round(_rss_mib()))
    return record


def in_fresh_process(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"run {config['label']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the benchmark --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    side, count, mosaic = (512, 4, 2) if args.quick else (2048, 8, 4)
    report: dict[str, Any] = {
        "machine": machine_info("cpu"),
        "quick": args.quick,
        "archive": f"{count} {PROFILE} scenes of {side}²",
        "scene": f"one {side * mosaic}² scene ({mosaic}×{mosaic} mosaic of the archive's)",
        "runs": [],
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as folder:
        say(f"synthesizing {count} scenes of {side}² and a {side * mosaic}² mosaic")
        scenes, big = make_scenes(Path(folder), side, count, mosaic)
        plans = []
        for kind in ("archive", "scene"):
            plans.append((kind, 0, 1))
            if not args.quick and cores > 1:
                plans.append((kind, 0, cores))
            plans += [(kind, workers, 1) for workers in args.workers]
        for number, (kind, workers, threads) in enumerate(plans):
            label = f"{kind}, " + (
                f"{workers} worker{'s' * (workers > 1)}" if workers else f"1 process, {threads} th"
            )
            say(f"{label} …")
            config = {
                "label": label,
                "kind": kind,
                "workers": workers,
                "threads": threads,
                "scenes": scenes if kind == "archive" else [big],
                "out": str(Path(folder) / f"out-{number}"),
            }
            load = os.getloadavg()[0]
            record = in_fresh_process(config)
            record.update(kind=kind, workers=workers, threads=threads, label=label)
            record["load_average_during"] = round((load + os.getloadavg()[0]) / 2, 2)
            say(f"{label}: {record['seconds']:.1f} s, {record['tiles']} tiles")
            report["runs"].append(record)
    report["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    report["seconds"] = round(time.perf_counter() - started)
    report["projection"] = projection(report)
    return report


def projection(report: dict[str, Any]) -> dict[str, Any]:
    """Hours for Sentinel-1 IW GRD scenes from the measured per-tile cost of one worker thread."""
    from mscam.scene.tiling import TileGrid

    single = [r for r in report["runs"] if r["workers"] == 0 and r["threads"] == 1]
    tiles = sum(r["tiles"] for r in single)
    per_tile = sum(r["seconds"] for r in single) / tiles
    two = {r["kind"]: r for r in report["runs"] if r["workers"] == 2}
    one = {r["kind"]: r for r in report["runs"] if r["workers"] == 1}
    efficiency = None
    if "archive" in two and "archive" in one:
        efficiency = min(1.0, one["archive"]["seconds"] / two["archive"]["seconds"] / 2)
    scene_tiles = len(TileGrid(*S1_IW_GRD, 64, 0.25))
    hours = {}
    for n in PROJECTED_WORKERS:
        rate = n * (1.0 if n == 1 or efficiency is None else efficiency)
        hours[n] = {s: s * scene_tiles * per_tile / rate / 3600 for s in PROJECTED_SCENES}
    return {
        "seconds_per_tile": per_tile,
        "hot_fraction": sum(r["hot_tiles"] for r in single) / tiles,
        "s1_tiles_per_scene": scene_tiles,
        "two_worker_efficiency": efficiency,
        "hours": hours,
    }


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    cores = machine["logical_cores"]
    loads = [r["load_average_during"] for r in report["runs"]]
    loaded = max([*loads, machine["load_average_at_start"][0]]) > cores
    lines = [
        "# Scale-out on Dask (cpu)" + (" — quick smoke run" if report["quick"] else ""),
        "",
        f"Archive: {report['archive']}; large scene: {report['scene']}. Bundled default model, "
        "ms-cam, default settings, one torch thread per worker process (and per single process "
        "unless stated). Each run in a fresh process; cluster start-up not included in the "
        f"seconds. Whole benchmark: {report['seconds']} s.",
        "",
        machine_line(machine),
        f"Load average at the end: {report['load_average_at_end']}.",
        "",
    ]
    if loaded:
        lines += [
            f"**The machine was loaded** (load average up to {max(loads):.1f} on {cores} cores "
            "during the runs, other jobs running): the seconds below measure the contention as "
            "much as mscam, and the speed-ups are not a property of the method. Rerun "
            "`make bench` (or `python bench/bench_dask.py --out bench`) on an idle machine "
            "before quoting them.",
            "",
        ]
    lines += [
        "| run | s | speed-up | tiles | hot | boxes | main peak (MiB) | worker peaks (MiB) "
        "| cluster start (s) | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {
        r["kind"]: r["seconds"] for r in report["runs"] if r["workers"] == 0 and r["threads"] == 1
    }
    for r in report["runs"]:
        peaks = ", ".join(str(p) for p in r["worker_peak_mib"]) or "—"
        lines.append(
            f"| {r['label']} | {r['seconds']:.1f} | {base[r['kind']] / r['seconds']:.2f}× "
            f"| {r['tiles']} | {r['hot_tiles']} | {r['boxes']} | {r['main_peak_mib']} | {peaks} "
            f"| {r.get('cluster_start_seconds', '—')} | {r['load_average_during']} |"
        )
    p = report["projection"]
    eff = p["two_worker_efficiency"]
    lines += [
        "",
        "Speed-up: against the single process with one torch thread on the same input.",
        "",
        "## Paper projection: Sentinel-1 IW GRD",
        "",
        f"Measured: {p['seconds_per_tile'] * 1000:.2f} ms per tile on one thread (single-process "
        f"runs above, {p['hot_fraction']:.1%} of the tiles hot: the backward pass and the CAM "
        f"cost only on those, so a busier sea costs more). A {S1_IW_GRD[0]:,} × "
        f"{S1_IW_GRD[1]:,} px IW GRD scene is {p['s1_tiles_per_scene']:,} tiles of 64 px at "
        "overlap 0.25. Hours on N one-thread workers, "
        + (
            f"at the measured 2-worker efficiency ({eff:.0%}) for N > 1"
            if eff is not None
            else "assuming linear scaling (no 2-worker run)"
        )
        + "; the efficiency of a real cluster beyond 2 workers (network, shared storage) is not "
        "measured here:",
        "",
        "| workers | " + " | ".join(f"{s:,} scene{'s' * (s > 1)}" for s in PROJECTED_SCENES) + " |",
        "|---:|" + "---:|" * len(PROJECTED_SCENES),
    ]
    for n, row in p["hours"].items():
        cells = " | ".join(_duration(row[s]) for s in PROJECTED_SCENES)
        lines.append(f"| {n} | {cells} |")
    return "\n".join(lines) + "\n"


def _duration(hours: float) -> str:
    if hours * 60 < 1:
        return f"{hours * 3600:.0f} s"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:,.1f} h"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench"), help="writes OUT/results/")
    parser.add_argument("--quick", action="store_true", help="small scenes: a smoke run")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="cluster sizes (1 2)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    report = run(args)
    write_report(args.out, "dask_cpu" + ("_quick" if args.quick else ""), report, markdown)


if __name__ == "__main__":
    main()
