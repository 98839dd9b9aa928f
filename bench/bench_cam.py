"""Tiles per second of every CAM method against the bare passes, at several layer resolutions.

The workloads (`workload.CASES`), each a batch of two-channel tiles through a seeded model:

- mscam's ResNet-18 for SAR chips (`resnet18-sar`, 11 M parameters) at `layer4` (8×8×512) and
  at `layer3` (16×16×256), 64 tiles of 128 px;
- issue 13's plain 4-block CNN (2→32→64→128→128 channels) at its last ReLU, 32×32×128, 64
  tiles of 128 px;
- a slim VGG at its last ReLU, a `conv5`-like 14×14×512 map, 32 tiles of 112 px.

Next to every method (and every MS-CAM option) the same model and batch are timed, in the same
interleaved rounds:

- `forward`: the forward under `no_grad` (what an inference pass costs);
- `forward+backward`: the usual training-style pass: parameters require gradients,
  `loss = logits.gather(target).sum()`, `loss.backward()`;
- `forward+backward to target`: the least a gradient CAM needs, and the yardstick of issue 13
  ("MS-CAM within 1.5× of bare forward+backward"): the forward with autograd on and
  `torch.autograd.grad(loss, A)` for the target layer's output `A` (captured by a forward hook),
  no parameter gradients;
- `pytorch-grad-cam` (Grad-CAM, maps at input size) when that library is importable: run this
  script with `.venv-bench/bin/python` (`make bench` does) to time it side by side.

Score-CAM needs K extra forwards per tile (K = the target layer's channels), so it is timed on a
smaller batch, written beside it; its tiles/s and ratios are per tile.

Timings are medians over rounds run after warmup rounds; the torch thread count is set and
recorded. On the CPU the peak memory of one call above the resident set before it is measured in
a fresh process per job (Linux's VmHWM, reset through /proc/self/clear_refs); on CUDA it is
torch's peak allocation. On CUDA (`--device cuda`) the model and tiles are channels-last, the
batch is copied from pinned host memory with non-blocking copies inside every timed call, and
`--autocast bf16|fp16` runs the forwards under autocast (the CAM arithmetic stays float32).

    python bench/bench_cam.py --out bench             # writes bench/results/cam_cpu.{json,md}
    python bench/bench_cam.py --out bench --device cuda
    python bench/bench_cam.py --out /tmp/b --quick    # a small smoke run (seconds)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

import mscam
import torch
from torch import nn
from workload import (
    CASES,
    QUICK_CASES,
    Case,
    machine_info,
    machine_line,
    make_batch,
    set_threads,
    significant,
    summary,
    time_rounds,
    write_report,
)

MS_CAM_LIMIT = 1.5  # issue 13's bound on MS-CAM / forward+backward to the target layer
PUBLIC_LIMIT = 1.3  # mscam's Grad-CAM at least this much faster than pytorch-grad-cam's
FORWARD, FORWARD_BACKWARD, TO_TARGET = "forward", "forward+backward", "forward+backward to target"
BASELINES = (FORWARD, FORWARD_BACKWARD, TO_TARGET)
PUBLIC = "pytorch-grad-cam"
# Every MS-CAM option of the README, one at a time; the other methods run with their defaults.
MS_CAM_VARIANTS: tuple[dict[str, Any], ...] = (
    {"channel_weight": "xgrad-cam"},
    {"channel_weight": "grad-cam++"},
    {"channel_weight": "relu-mean"},
    {"channel_norm": False},
    {"matching": "separate"},
    {"match_size": 32},
)
CORE_METHODS = ("ms-cam", "self-matching", "grad-cam")
# Whose peak memory is measured (a fresh process each); `--memory all` measures every job.
MEMORY_JOBS = (*BASELINES, "ms-cam", "self-matching", "grad-cam")


@dataclass(frozen=True)
class Settings:
    """How the jobs run: device, threads, and the GPU options."""

    device: str
    threads: int
    autocast: str | None = None  # "bf16" or "fp16": the forwards under autocast


@dataclass(frozen=True)
class Job:
    """One timed thing: a baseline pass, a CAM method with options, or a public library's
    Grad-CAM, on `batch` tiles."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    batch: int = 0

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        return f"{self.name} ({', '.join(f'{k}={v}' for k, v in self.options.items())})"


def jobs_to_run(case: Case, public: bool, core: bool = False) -> list[Job]:
    """Every method and MS-CAM option, or with `core` only MS-CAM, Self-Matching and Grad-CAM
    with their defaults; the baselines and pytorch-grad-cam's Grad-CAM always."""
    jobs = [Job(name, batch=case.batch) for name in BASELINES]
    for method in mscam.METHODS:
        if method == "score-cam" or (core and method not in CORE_METHODS):
            continue  # Score-CAM is timed on its own batch, after the others
        jobs.append(Job(method, batch=case.batch))
        if method == "ms-cam" and not core:
            jobs += [Job(method, dict(options), case.batch) for options in MS_CAM_VARIANTS]
    if public:
        jobs.append(Job(PUBLIC, batch=case.batch))
    if "score-cam" in mscam.METHODS and not core:
        jobs.append(Job("score-cam", batch=case.score_batch))
    return jobs


def import_public() -> Any:
    """pytorch_grad_cam when it is importable here (the benchmark venv), else None."""
    try:
        from parity_public import import_pytorch_grad_cam
    except ImportError:
        return None
    return import_pytorch_grad_cam()[0]


def prepare(case: Case, settings: Settings) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The case's model on the device, and its batch: on the CPU for a CPU run, else in pinned
    host memory (every timed call copies it to the device, as tiles read from disk would be)."""
    model = case.build(settings.device)
    x, targets = make_batch(case.batch, case.size)
    if torch.device(settings.device).type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last).pin_memory()
    return model, x, targets


def runner(
    job: Job,
    case: Case,
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    settings: Settings,
    public: Any = None,
) -> Callable[[], Any]:
    """A call that does `job` once on the first `job.batch` tiles of `x`."""
    x, targets = x[: job.batch], targets[: job.batch]
    device = torch.device(settings.device)
    cuda = device.type == "cuda"
    autocast = _autocast(device, settings.autocast)

    def to_device() -> tuple[torch.Tensor, torch.Tensor]:
        if not cuda:
            return x, targets
        return x.to(device, non_blocking=True), targets.to(device, non_blocking=True)

    if job.name == FORWARD:

        def forward() -> None:
            xs, _ = to_device()
            with torch.no_grad(), autocast():
                model(xs)

        return forward
    if job.name == FORWARD_BACKWARD:

        def forward_backward() -> None:
            xs, ts = to_device()
            model.zero_grad(set_to_none=True)
            with autocast():
                loss = model(xs).gather(1, ts[:, None]).sum()
            loss.backward()

        return forward_backward
    layer = model.get_submodule(case.target_layer)
    if job.name == TO_TARGET:
        captured: list[torch.Tensor] = []

        def keep(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            captured.append(output)

        def forward_backward_to_target() -> None:
            xs, ts = to_device()
            handle = layer.register_forward_hook(keep)
            try:
                with autocast():
                    loss = model(xs).gather(1, ts[:, None]).sum()
                torch.autograd.grad(loss, captured[-1])
            finally:
                handle.remove()
                captured.clear()

        return forward_backward_to_target
    if job.name == PUBLIC:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        outputs = [ClassifierOutputTarget(int(t)) for t in targets]

        def pytorch_grad_cam() -> Any:
            xs, _ = to_device()
            with public.GradCAM(model=model, target_layers=[layer]) as cam, autocast():
                return cam(input_tensor=xs, targets=outputs)

        return pytorch_grad_cam
    explainer = mscam.create_explainer(job.name, model, case.target_layer, **job.options)

    def explain() -> torch.Tensor:
        xs, ts = to_device()
        with autocast():
            return explainer(xs, ts)

    return explain


def _autocast(device: torch.device, name: str | None) -> Callable[[], Any]:
    if name is None:
        return contextlib.nullcontext
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[name]
    return lambda: torch.autocast(device.type, dtype=dtype)


def peak_memory_mib(job: Job, case: Case, settings: Settings) -> float | None:
    """Peak memory of one call of `job` above what was in use before it, in MiB."""
    if torch.device(settings.device).type == "cuda":
        model, x, targets = prepare(case, settings)
        call = runner(job, case, model, x, targets, settings, import_public())
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call()
        torch.cuda.synchronize()
        return round((torch.cuda.max_memory_allocated() - before) / 2**20, 1)
    # A fresh process per job: the peak resident set is per process.
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(_cpu_peak_in_this_process, (job, case, settings))


def _cpu_peak_in_this_process(job: Job, case: Case, settings: Settings) -> float | None:
    set_threads(settings.threads)
    model, x, targets = prepare(case, settings)
    call = runner(job, case, model, x, targets, settings, import_public())
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


def run_case(case: Case, settings: Settings, args: argparse.Namespace, public: Any) -> dict:
    """Every job of `case` in interleaved rounds, the ratios, and the case's criteria."""
    model, x, targets = prepare(case, settings)
    jobs = jobs_to_run(case, public is not None, args.core)
    main_jobs = [job for job in jobs if job.name != "score-cam"]
    score_jobs = [job for job in jobs if job.name == "score-cam"]
    calls = {job.label: runner(job, case, model, x, targets, settings, public) for job in jobs}
    seconds = time_rounds(
        {job.label: calls[job.label] for job in main_jobs},
        warmup=args.warmup,
        repeats=args.repeats,
        device=settings.device,
    )
    # Score-CAM's masked forwards run in batches of the main batch's shape, warmed up above.
    seconds |= time_rounds(
        {job.label: calls[job.label] for job in score_jobs},
        warmup=0,
        repeats=args.score_repeats,
        device=settings.device,
    )
    load_after = [round(value, 2) for value in os.getloadavg()]

    rows = []
    for job in jobs:
        row = {"name": job.name, "options": job.options, "label": job.label}
        row |= summary(seconds[job.label], job.batch)
        rows.append(row)
    per_tile = {row["label"]: row["median_s"] / row["batch"] for row in rows}
    for row in rows:
        mine = per_tile[row["label"]]
        row["x_forward"] = significant(mine / per_tile[FORWARD])
        row["x_forward_backward"] = significant(mine / per_tile[FORWARD_BACKWARD])
        row["x_to_target"] = significant(mine / per_tile[TO_TARGET])
        # The same ratio within each round (the two ran moments apart, under the same load).
        if row["batch"] == case.batch:
            row["x_to_target_per_round"] = significant(
                median(a / b for a, b in zip(seconds[row["label"]], seconds[TO_TARGET]))
            )
        measure = args.memory == "all" or (args.memory == "some" and row["name"] in MEMORY_JOBS)
        if measure and not row["options"] and row["name"] != PUBLIC:
            job = next(job for job in jobs if job.label == row["label"])
            row["peak_memory_mib"] = peak_memory_mib(job, case, settings)
    activation_shape = _target_shape(model, case, x)
    return {
        "case": case.name,
        "model": case.model,
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "target_layer": case.target_layer,
        "target_shape": activation_shape,
        "batch": case.batch,
        "tile": [x.shape[1], case.size, case.size],
        "score_cam_batch": case.score_batch,
        "load_average_after_timing": load_after,
        "results": rows,
        "criteria": case_criteria(rows),
    }


def _target_shape(model: nn.Module, case: Case, x: torch.Tensor) -> list[int]:
    shape: list[int] = []
    handle = model.get_submodule(case.target_layer).register_forward_hook(
        lambda module, inputs, output: shape.extend(output.shape[1:])
    )
    try:
        with torch.no_grad():
            model(x[:1].to(next(model.parameters()).device))
    finally:
        handle.remove()
    return shape


def case_criteria(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_label = {row["label"]: row for row in rows}
    ms_cam, matching = by_label["ms-cam"], by_label["self-matching"]
    worst = max((r for r in rows if r["name"] == "ms-cam"), key=lambda r: r["x_to_target"])
    criteria: dict[str, Any] = {
        "ms_cam_x_to_target": ms_cam["x_to_target"],
        "ms_cam_x_to_target_per_round": ms_cam["x_to_target_per_round"],
        "self_matching_x_to_target": matching["x_to_target"],
        "self_matching_x_to_target_per_round": matching["x_to_target_per_round"],
        "met": max(ms_cam["x_to_target"], matching["x_to_target"]) <= MS_CAM_LIMIT,
        "slowest_ms_cam_option": worst["label"],
        "slowest_ms_cam_option_x_to_target": worst["x_to_target"],
    }
    if PUBLIC in by_label:
        ours, theirs = by_label["grad-cam"], by_label[PUBLIC]
        criteria["pytorch_grad_cam_over_mscam"] = significant(theirs["median_s"] / ours["median_s"])
        criteria["public_met"] = criteria["pytorch_grad_cam_over_mscam"] >= PUBLIC_LIMIT
    return criteria


def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = set_threads(args.threads)
    machine = machine_info(args.device)
    settings = Settings(args.device, threads, args.autocast)
    public = import_public() if args.public else None
    cases = [run_case(case, settings, args, public) for case in args.cases]
    machine["load_average_after_timing"] = [round(value, 2) for value in os.getloadavg()]
    return {
        "machine": machine,
        "workload": {
            **asdict(settings),
            "dtype": "float32",
            "pytorch_grad_cam": None if public is None else _public_version(),
            "warmup_rounds": args.warmup,
            "repeats": args.repeats,
            "score_cam_repeats": args.score_repeats,
            "memory": args.memory,
            "core_only": args.core,
            "quick": args.quick,
        },
        "cases": cases,
        # The first case's rows, where earlier reports had them.
        "results": cases[0]["results"],
        "criterion": {
            "statement": f"MS-CAM and Self-Matching CAM cost at most {MS_CAM_LIMIT}x the bare "
            "forward+backward to the target layer; mscam's Grad-CAM at least "
            f"{PUBLIC_LIMIT}x as fast as pytorch-grad-cam's",
            "met": all(case["criteria"]["met"] for case in cases),
            "public_met": _all_or_none(case["criteria"].get("public_met") for case in cases),
        },
    }


def _all_or_none(values: Any) -> bool | None:
    known = [value for value in values if value is not None]
    return all(known) if known else None


def _public_version() -> str | None:
    from parity_public import package_version

    return package_version("grad-cam")


def markdown(report: dict[str, Any]) -> str:
    work, crit = report["workload"], report["criterion"]
    public = work["pytorch_grad_cam"]
    gpu = f", autocast {work['autocast']} for the forwards" if work.get("autocast") else ""
    lines = [
        f"# CAM engine throughput ({work['device']})",
        "",
        f"Median of {work['repeats']} interleaved rounds after {work['warmup_rounds']} warmup "
        f"rounds (Score-CAM: {work['score_cam_repeats']} runs); float32{gpu}. "
        + (
            f"pytorch-grad-cam {public} is timed in the same rounds. "
            if public
            else "pytorch-grad-cam was not importable (run with `.venv-bench/bin/python`). "
        )
        + f"Load average after all timings: {report['machine']['load_average_after_timing']}."
        + (" **Quick smoke run: not a measurement.**" if work["quick"] else ""),
        "",
        machine_line(report["machine"]),
        "",
        "`forward` runs under `no_grad`; `forward+backward` is `logits.gather(target).sum()"
        ".backward()` with parameters requiring gradients; `forward+backward to target` (the "
        "yardstick, × target) is the forward with autograd and `torch.autograd.grad` of the same "
        "sum with respect to the target layer's output, no parameter gradients: the least a "
        "gradient CAM computes. tiles/s and the ratios use the median time per tile; "
        "× target per round is the median of the ratios within each round, where the load was "
        "the same for both. The best run shows how much the machine's load varied.",
    ]
    summary_rows = [
        "",
        "## Summary",
        "",
        "| case | target map | MS-CAM × target | Self-Matching × target | Grad-CAM × target "
        "| pytorch-grad-cam ÷ mscam Grad-CAM |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case in report["cases"]:
        rows = {row["label"]: row for row in case["results"]}
        ratio = case["criteria"].get("pytorch_grad_cam_over_mscam")
        summary_rows.append(
            f"| {case['case']} | {'×'.join(map(str, case['target_shape']))} "
            f"| {_figure(rows['ms-cam']['x_to_target'])} "
            f"| {_figure(rows['self-matching']['x_to_target'])} "
            f"| {_figure(rows['grad-cam']['x_to_target'])} "
            f"| {'—' if ratio is None else f'{ratio:.2f}'} |"
        )
    lines += summary_rows
    for case in report["cases"]:
        lines += _case_table(case)
    verdict = "met" if crit["met"] else "NOT met"
    lines += ["", f"Criterion — {crit['statement']}: MS-CAM and Self-Matching **{verdict}**"]
    if crit["public_met"] is not None:
        lines[-1] += (
            f", Grad-CAM against pytorch-grad-cam **{'met' if crit['public_met'] else 'NOT met'}**"
        )
    lines[-1] += " (every case above)."
    return "\n".join([*lines, ""])


def _case_table(case: dict[str, Any]) -> list[str]:
    tile = "×".join(str(v) for v in case["tile"])
    crit = case["criteria"]
    lines = [
        "",
        f"## {case['case']}",
        "",
        f"{case['batch']} tiles of {tile}, `{case['model']}` "
        f"({case['model_parameters'] / 1e6:.2f} M parameters), target layer "
        f"`{case['target_layer']}` ({'×'.join(map(str, case['target_shape']))}); Score-CAM on "
        f"{case['score_cam_batch']} tiles. Load average after this case: "
        f"{case['load_average_after_timing']}.",
        "",
        "| method | options | tiles/call | median s/call | best s/call | tiles/s | × forward "
        "| × forward+backward | × target | × target per round | peak extra memory (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in case["results"]:
        options = ", ".join(f"`{k}={v}`" for k, v in row["options"].items()) or "defaults"
        if row["name"] in BASELINES or row["name"] == PUBLIC:
            options = "—" if row["name"] in BASELINES else "Grad-CAM"
        memory = row.get("peak_memory_mib")
        per_round = row.get("x_to_target_per_round")
        lines.append(
            f"| {row['name']} | {options} | {row['batch']} | {row['median_s']:.3f} "
            f"| {row['best_s']:.3f} "
            f"| {_figure(row['tiles_per_s'])} | {_figure(row['x_forward'])} "
            f"| {_figure(row['x_forward_backward'])} | {_figure(row['x_to_target'])} "
            f"| {'—' if per_round is None else _figure(per_round)} "
            f"| {'—' if memory is None else f'{memory:.0f}'} |"
        )
    verdict = "met" if crit["met"] else "NOT met"
    lines += [
        "",
        f"MS-CAM {crit['ms_cam_x_to_target']:.2f}× and Self-Matching "
        f"{crit['self_matching_x_to_target']:.2f}× the forward+backward to the target layer "
        f"(≤ {MS_CAM_LIMIT}: **{verdict}**); slowest MS-CAM option: "
        f"{crit['slowest_ms_cam_option']}, {crit['slowest_ms_cam_option_x_to_target']:.2f}×.",
    ]
    if "pytorch_grad_cam_over_mscam" in crit:
        verdict = "met" if crit["public_met"] else "NOT met"
        lines[-1] += (
            f" pytorch-grad-cam's Grad-CAM takes {crit['pytorch_grad_cam_over_mscam']:.2f}× "
            f"mscam's time (≥ {PUBLIC_LIMIT}: **{verdict}**)."
        )
    return lines


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
    parser.add_argument(
        "--cases", type=int, nargs="+", default=None, help="which cases, by index (all)"
    )
    parser.add_argument(
        "--memory",
        choices=("all", "some", "none"),
        default=None,
        help="peak memory of every job, of the baselines and default MS-CAM, Self-Matching and "
        "Grad-CAM (some, the default), or none",
    )
    parser.add_argument("--no-memory", dest="memory", action="store_const", const="none")
    parser.add_argument(
        "--no-public", dest="public", action="store_false", help="skip pytorch-grad-cam"
    )
    parser.add_argument(
        "--autocast", choices=("bf16", "fp16"), default=None, help="the forwards under autocast"
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="tiles per call in every case (its own)"
    )
    parser.add_argument(
        "--core",
        action="store_true",
        help="only MS-CAM, Self-Matching and Grad-CAM (defaults) beside the baselines",
    )
    parser.add_argument("--suffix", default="", help="appended to the result files' stem")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    quick = args.quick
    cases = QUICK_CASES if quick else CASES
    try:
        args.cases = [cases[i] for i in args.cases] if args.cases else list(cases)
    except IndexError:
        parser.error(f"--cases: indices 0 to {len(cases) - 1}")
    if args.batch is not None:
        if args.batch < 1:
            parser.error("--batch: at least 1")
        args.cases = [replace(case, batch=args.batch) for case in args.cases]
    args.repeats = args.repeats or (1 if quick else 5)
    args.warmup = (1 if quick else 2) if args.warmup is None else args.warmup
    args.score_repeats = 1 if quick else 3
    args.memory = args.memory or ("none" if quick else "some")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    stem = f"cam_{torch.device(args.device).type}{args.suffix}"
    write_report(args.out, stem, run(args), markdown)


if __name__ == "__main__":
    main()
