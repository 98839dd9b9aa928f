"""Tiles per second of every CAM method against the bare forward and forward+backward passes.

The workload: a batch of 64 two-channel 128×128 tiles through mscam's ResNet-18 for SAR chips
(`resnet18-sar`, about 11 M parameters), CAMs at `layer4`. Next to every method (and every MS-CAM
option) the same model and batch are timed

- forward only, under `no_grad` (what an inference pass costs), and
- forward+backward, the usual training-style pass and the yardstick of the issue ("MS-CAM costs at
  most 1.5× forward+backward"): parameters require gradients, `loss = logits.gather(target).sum()`,
  `loss.backward()`.

Score-CAM needs K extra forwards per tile (K = 512 channels here), so it is timed on a smaller
batch (4 tiles); its tiles/s and ratio are per tile, with that batch size written beside them.

Timings are medians over rounds run after warmup rounds; the torch thread count is set and
recorded. On the CPU the peak memory of one call above the resident set before it is measured in
a fresh process per method (Linux's VmHWM, reset through /proc/self/clear_refs); on CUDA it is
torch's peak allocation.

    python bench/bench_cam.py --out bench             # writes bench/results/cam_cpu.{json,md}
    python bench/bench_cam.py --out bench --device cuda
    python bench/bench_cam.py --out /tmp/b --quick    # a small smoke run (seconds)
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mscam
import torch
from torch import nn
from workload import (
    ARCHITECTURE,
    TARGET_LAYER,
    build_model,
    machine_info,
    machine_line,
    make_batch,
    set_threads,
    significant,
    summary,
    time_rounds,
    write_report,
)

MS_CAM_LIMIT = 1.5  # the bound on MS-CAM / forward+backward
BASELINES = ("forward", "forward+backward")
# Every MS-CAM option of the README, one at a time; the other methods run with their defaults.
MS_CAM_VARIANTS: tuple[dict[str, Any], ...] = (
    {"channel_weight": "xgrad-cam"},
    {"channel_weight": "grad-cam++"},
    {"channel_weight": "relu-mean"},
    {"channel_norm": False},
    {"matching": "separate"},
    {"match_size": 32},
)


@dataclass(frozen=True)
class Workload:
    batch: int
    size: int
    width: int
    threads: int
    device: str


@dataclass(frozen=True)
class Job:
    """One timed thing: a baseline pass, or a CAM method with options, on `batch` tiles."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    batch: int = 0

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        return f"{self.name} ({', '.join(f'{k}={v}' for k, v in self.options.items())})"


def jobs_to_run(batch: int, score_batch: int) -> list[Job]:
    jobs = [Job(name, batch=batch) for name in BASELINES]
    for method in mscam.METHODS:
        if method == "score-cam":
            continue  # timed on its own batch, after the others
        jobs.append(Job(method, batch=batch))
        if method == "ms-cam":
            jobs += [Job(method, dict(options), batch) for options in MS_CAM_VARIANTS]
    if "score-cam" in mscam.METHODS:
        jobs.append(Job("score-cam", batch=score_batch))
    return jobs


def runner(job: Job, model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> Callable[[], Any]:
    """A call that does `job` once on the first `job.batch` tiles of `x`."""
    x, targets = x[: job.batch], targets[: job.batch]
    if job.name == "forward":

        def forward() -> None:
            with torch.no_grad():
                model(x)

        return forward
    if job.name == "forward+backward":

        def forward_backward() -> None:
            model.zero_grad(set_to_none=True)
            loss = model(x).gather(1, targets[:, None]).sum()
            loss.backward()

        return forward_backward
    explainer = mscam.create_explainer(job.name, model, TARGET_LAYER, **job.options)
    return lambda: explainer(x, targets)


def peak_memory_mib(job: Job, workload: Workload) -> float | None:
    """Peak memory of one call of `job` above what was in use before it, in MiB."""
    if torch.device(workload.device).type == "cuda":
        model = build_model(workload.width, device=workload.device)
        x, targets = make_batch(workload.batch, workload.size, device=workload.device)
        call = runner(job, model, x, targets)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call()
        torch.cuda.synchronize()
        return round((torch.cuda.max_memory_allocated() - before) / 2**20, 1)
    # A fresh process per job: the peak resident set is per process.
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(_cpu_peak_in_this_process, (job, workload))


def _cpu_peak_in_this_process(job: Job, workload: Workload) -> float | None:
    set_threads(workload.threads)
    model = build_model(workload.width)
    x, targets = make_batch(workload.batch, workload.size)
    call = runner(job, model, x, targets)
    gc.collect()
    before = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    except OSError:
        return None
    call()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return None
    return round((peak - before) / 1024, 1)


def _status_kib(key: str) -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = set_threads(args.threads)
    machine = machine_info(args.device)
    workload = Workload(args.batch, args.size, args.width, threads, args.device)
    model = build_model(args.width, device=args.device)
    x, targets = make_batch(args.batch, args.size, device=args.device)
    jobs = jobs_to_run(args.batch, args.score_batch)
    main_jobs = [job for job in jobs if job.name != "score-cam"]
    score_jobs = [job for job in jobs if job.name == "score-cam"]

    seconds = time_rounds(
        {job.label: runner(job, model, x, targets) for job in main_jobs},
        warmup=args.warmup,
        repeats=args.repeats,
        device=args.device,
    )
    # Score-CAM's masked forwards run in batches of the main batch's shape, warmed up above.
    seconds |= time_rounds(
        {job.label: runner(job, model, x, targets) for job in score_jobs},
        warmup=0,
        repeats=args.score_repeats,
        device=args.device,
    )
    machine["load_average_after_timing"] = [round(value, 2) for value in os.getloadavg()]

    rows = []
    for job in jobs:
        row = {"name": job.name, "options": job.options, "label": job.label}
        row |= summary(seconds[job.label], job.batch)
        rows.append(row)
    per_tile = {row["label"]: row["median_s"] / row["batch"] for row in rows}
    for row in rows:
        mine = per_tile[row["label"]]
        row["x_forward"] = significant(mine / per_tile["forward"])
        row["x_forward_backward"] = significant(mine / per_tile["forward+backward"])
        if args.memory:
            job = next(job for job in jobs if job.label == row["label"])
            row["peak_memory_mib"] = peak_memory_mib(job, workload)

    ms_cam = [row for row in rows if row["name"] == "ms-cam"]
    default = next(row for row in ms_cam if not row["options"])
    worst = max(ms_cam, key=lambda row: row["x_forward_backward"])
    parameters = sum(p.numel() for p in model.parameters())
    return {
        "machine": machine,
        "workload": {
            **asdict(workload),
            "model": ARCHITECTURE,
            "model_parameters": parameters,
            "target_layer": TARGET_LAYER,
            "tile": [x.shape[1], args.size, args.size],
            "dtype": str(x.dtype).replace("torch.", ""),
            "score_cam_batch": args.score_batch,
            "warmup_rounds": args.warmup,
            "repeats": args.repeats,
            "score_cam_repeats": args.score_repeats,
            "quick": args.quick,
        },
        "results": rows,
        "criterion": {
            "statement": f"MS-CAM costs at most {MS_CAM_LIMIT}x the bare forward+backward",
            "ms_cam_x_forward_backward": default["x_forward_backward"],
            "met": default["x_forward_backward"] <= MS_CAM_LIMIT,
            "slowest_ms_cam_option": worst["label"],
            "slowest_ms_cam_option_x_forward_backward": worst["x_forward_backward"],
        },
    }


def markdown(report: dict[str, Any]) -> str:
    work, crit = report["workload"], report["criterion"]
    tile = "×".join(str(v) for v in work["tile"])
    lines = [
        f"# CAM engine throughput ({work['device']})",
        "",
        f"Workload: {work['batch']} tiles of {tile} ({work['dtype']}), `{work['model']}` "
        f"({work['model_parameters'] / 1e6:.1f} M parameters), target layer "
        f"`{work['target_layer']}`; Score-CAM on {work['score_cam_batch']} tiles. Median of "
        f"{work['repeats']} interleaved rounds after {work['warmup_rounds']} warmup rounds "
        f"(Score-CAM: {work['score_cam_repeats']} runs). Load average after the timings: "
        f"{report['machine']['load_average_after_timing']}."
        + (" **Quick smoke run: not a measurement.**" if work["quick"] else ""),
        "",
        machine_line(report["machine"]),
        "",
        "`forward` runs under `no_grad`; `forward+backward` is `logits.gather(target).sum()."
        "backward()` with parameters requiring gradients. tiles/s and the ratios use the median "
        "time per tile; the best run is given to show how much the machine's load varied.",
        "",
        "| method | options | tiles/call | median s/call | best s/call | tiles/s | × forward "
        "| × forward+backward | peak extra memory (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["results"]:
        options = ", ".join(f"`{k}={v}`" for k, v in row["options"].items()) or "defaults"
        if row["name"] in BASELINES:
            options = "—"
        memory = row.get("peak_memory_mib")
        lines.append(
            f"| {row['name']} | {options} | {row['batch']} | {row['median_s']:.3f} "
            f"| {row['best_s']:.3f} "
            f"| {_figure(row['tiles_per_s'])} | {_figure(row['x_forward'])} "
            f"| {_figure(row['x_forward_backward'])} "
            f"| {'—' if memory is None else f'{memory:.0f}'} |"
        )
    verdict = "met" if crit["met"] else "NOT met"
    lines += [
        "",
        f"Criterion — {crit['statement']}: MS-CAM (defaults) is "
        f"{crit['ms_cam_x_forward_backward']:.2f}× forward+backward, **{verdict}**. Slowest "
        f"MS-CAM option: {crit['slowest_ms_cam_option']}, "
        f"{crit['slowest_ms_cam_option_x_forward_backward']:.2f}×.",
        "",
    ]
    return "\n".join(lines)


def _figure(value: float) -> str:
    """Two decimals for ordinary values, three significant digits for small ones."""
    return f"{value:.2f}" if value >= 1 else f"{value:.3g}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench"), help="writes OUT/results/")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--quick", action="store_true", help="a small, fast smoke run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all cores)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (5)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds (2)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", default=None)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    quick = args.quick
    args.batch, args.size, args.width = (4, 64, 8) if quick else (64, 128, 64)
    args.score_batch = 2 if quick else 4
    args.repeats = args.repeats or (1 if quick else 5)
    args.warmup = (1 if quick else 2) if args.warmup is None else args.warmup
    args.score_repeats = 1 if quick else 3
    args.memory = (not quick) if args.memory is None else args.memory
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    write_report(args.out, f"cam_{torch.device(args.device).type}", run(args), markdown)


if __name__ == "__main__":
    main()
