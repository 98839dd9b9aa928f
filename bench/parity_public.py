"""mscam against the public CAM libraries: the same maps, and how fast Grad-CAM is.

The public implementations: pytorch-grad-cam (PyPI `grad-cam`, module `pytorch_grad_cam`, the
most used) and torchcam (PyPI `torchcam`). They are installed only in the benchmark venv
`.venv-bench` (`make bench-public`), never in the project's `.venv`.

**Parity.** For Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM and Score-CAM, every library
explains the same model, batch and per-tile targets at `layer4`. Each library's *raw* map at the
layer's resolution is taken (pytorch-grad-cam: what its `get_cam_image` returns, captured by
wrapping that method of the instance; torchcam: its `normalized=False` maps), and the common
post-processing is applied to it — ReLU, bilinear resize to the input size with
`align_corners=False`, per-image min-max — written here with `F.interpolate`, independently of
mscam. The result is compared with `mscam.explain(...)` (normalised maps); the report gives the
largest absolute difference per method. pytorch-grad-cam's own end-to-end output (it min-maxes
*before* resizing with `cv2.resize`, then min-maxes again with a 1e-7 guard) is compared too, for
information.

**Speed.** Grad-CAM on 64 two-channel 128×128 tiles with the same model and threads: mscam,
pytorch-grad-cam (its whole call, maps at input size), torchcam (its call plus the resize to the
input size and min-max, so that all three give the same maps), and the bare forward+backward.

pytorch-grad-cam imports torchvision when it is imported, only for helpers that computing a CAM
never calls (`utils.image` takes `Compose`, `Normalize`, `ToTensor` for `preprocess_image`;
`sess` takes `transforms.functional.resize`; `utils.model_targets` uses `torchvision.ops.box_iou`
in a Faster R-CNN target). PyPI's torchvision does not import beside torch 2.13 here, so when
torchvision cannot be imported those names come from a stub module that raises if called; the
CAM classes and their code are pytorch-grad-cam's own, unchanged. The report records which way
it was imported.

    .venv-bench/bin/python bench/parity_public.py --out bench   # bench/results/parity_public.*
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from statistics import median
from types import ModuleType
from typing import Any

# pytorch-grad-cam's Score-CAM draws progress bars; tqdm reads this once, when torch (torch.hub)
# imports it, so it is set before torch.
os.environ.setdefault("TQDM_DISABLE", "1")

import mscam
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from workload import (
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

PARITY_METHODS = ("grad-cam", "grad-cam++", "xgrad-cam", "layer-cam", "hires-cam", "score-cam")
PYTORCH_GRAD_CAM = {
    "grad-cam": "GradCAM",
    "grad-cam++": "GradCAMPlusPlus",
    "xgrad-cam": "XGradCAM",
    "layer-cam": "LayerCAM",
    "hires-cam": "HiResCAM",
    "score-cam": "ScoreCAM",
}
TORCHCAM = {  # torchcam has no HiResCAM
    "grad-cam": "GradCAM",
    "grad-cam++": "GradCAMpp",
    "xgrad-cam": "XGradCAM",
    "layer-cam": "LayerCAM",
    "score-cam": "ScoreCAM",
}
SPEED_LIMIT = 1.3  # mscam's Grad-CAM must be at least this much faster than pytorch-grad-cam's
PARITY_TOLERANCE = 1e-4  # float32 maps in [0, 1]
SCORE_BATCH = 64  # masked images per forward, in every library
# Known, documented differences between a library and the formulas of docs/method.md.
KNOWN_DIFFERENCES = {
    ("pytorch-grad-cam", "score-cam"): "its masks are upsampled with UpsamplingBilinear2d, "
    "i.e. align_corners=True (spec and mscam: align_corners=False), and min-maxed with a +1e-8 "
    "guard; with align_corners=False masks it agrees to 3e-7 (checked)",
    ("torchcam", "score-cam"): "its masks are min-maxed before upsampling, Up(s(A_k)), where the "
    "spec has s(Up(A_k)); a Score-CAM with Up(s(A_k)) masks equals its raw maps to 6e-8 "
    "(checked)",
    ("torchcam", "grad-cam++"): "`alpha[idx][mask].div_(...)` divides a copy made by the boolean "
    "index, so its alpha stays g² and its weights are Σ_ij g²·ReLU(g) (checked to 1e-11); the "
    "denominator it meant, 2g² + Σ_ab(A_ab·g³_ab), also differs from the paper's "
    "2g² + (Σ_ab A_ab)·g³",
}


# -- the libraries --------------------------------------------------------------------------------
def import_pytorch_grad_cam() -> tuple[ModuleType | None, str]:
    """pytorch_grad_cam and how it was imported; None when it is not installed."""
    if find_spec("pytorch_grad_cam") is None:
        return None, "not installed"
    try:
        import_module("torchvision")
        how = "with the real torchvision"
    except Exception:  # not installed, or a build that does not load beside this torch
        _drop_torchvision()
        _stub_torchvision()
        how = "with a torchvision stub (names imported at import time only; none is called)"
    try:
        return import_module("pytorch_grad_cam"), how
    except ImportError as error:
        _drop_torchvision()
        return None, f"not importable: {error}"


def _drop_torchvision() -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "torchvision"]:
        del sys.modules[name]


def _stub_torchvision() -> None:
    def unavailable(name: str) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"torchvision.{name} is a stub in this benchmark")

        return fail

    root = ModuleType("torchvision")
    transforms = ModuleType("torchvision.transforms")
    functional = ModuleType("torchvision.transforms.functional")
    ops = ModuleType("torchvision.ops")
    for name in ("Compose", "Normalize", "ToTensor"):
        setattr(transforms, name, unavailable(f"transforms.{name}"))
    functional.resize = unavailable("transforms.functional.resize")
    ops.box_iou = unavailable("ops.box_iou")
    transforms.functional = functional
    root.transforms, root.ops = transforms, ops
    sys.modules.update(
        {
            "torchvision": root,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
            "torchvision.ops": ops,
        }
    )


def import_torchcam() -> tuple[ModuleType | None, str]:
    if find_spec("torchcam") is None:
        return None, "not installed"
    try:
        return import_module("torchcam.methods"), "torchcam.methods"
    except ImportError as error:
        return None, f"not importable: {error}"


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


# -- the maps -------------------------------------------------------------------------------------
def common_ending(raw: Tensor, size: tuple[int, int]) -> Tensor:
    """ReLU, bilinear resize to `size` (align_corners=False), per-image min-max (0 if constant)."""
    maps = F.interpolate(
        torch.relu(raw.float())[:, None], size=size, mode="bilinear", align_corners=False
    )[:, 0]
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / torch.where(span > 0, span, 1), 0)


def pytorch_grad_cam_maps(
    lib: ModuleType, method: str, model: nn.Module, layer: str, x: Tensor, targets: Tensor
) -> tuple[Tensor, Tensor]:
    """pytorch-grad-cam's raw low-resolution map and its own end-to-end output."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = getattr(lib, PYTORCH_GRAD_CAM[method])(
        model=model, target_layers=[model.get_submodule(layer)]
    )
    cam.batch_size = SCORE_BATCH  # read by its Score-CAM only
    raw: list[Any] = []
    get_cam_image = cam.get_cam_image

    def capture(*args: Any, **kwargs: Any) -> Any:
        raw.append(get_cam_image(*args, **kwargs))
        return raw[-1]

    cam.get_cam_image = capture
    with cam:
        final = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    model.zero_grad(set_to_none=True)  # its backward fills the parameters' .grad
    return torch.as_tensor(raw[0]), torch.as_tensor(final)


def torchcam_raw(
    methods: ModuleType, method: str, model: nn.Module, layer: str, x: Tensor, targets: Tensor
) -> Tensor:
    """torchcam's raw (`normalized=False`) low-resolution map."""
    cls = getattr(methods, TORCHCAM[method])
    classes = [int(t) for t in targets]
    if method == "score-cam":
        with cls(model, layer, batch_size=SCORE_BATCH) as extractor:
            with torch.no_grad():
                model(x)
            return extractor(class_idx=classes, normalized=False)[0]
    with cls(model, layer) as extractor:
        scores = model(x)
        return extractor(class_idx=classes, scores=scores, normalized=False)[0]


def parity(
    libraries: dict[str, ModuleType], model: nn.Module, x: Tensor, targets: Tensor, score_tiles: int
) -> list[dict[str, Any]]:
    rows = []
    size = tuple(x.shape[-2:])
    for method in PARITY_METHODS:
        tiles = score_tiles if method == "score-cam" else x.shape[0]
        xs, ts = x[:tiles], targets[:tiles]
        ours = mscam.explain(model, xs, method, TARGET_LAYER, targets=ts)
        for library, lib in libraries.items():
            row: dict[str, Any] = {"method": method, "library": library, "tiles": tiles}
            if library == "pytorch-grad-cam":
                raw, final = pytorch_grad_cam_maps(lib, method, model, TARGET_LAYER, xs, ts)
                row["max_abs_diff_as_returned"] = float((final - ours).abs().max())
            elif method in TORCHCAM:
                raw = torchcam_raw(lib, method, model, TARGET_LAYER, xs, ts)
            else:
                continue
            row["max_abs_diff"] = float((common_ending(raw, size) - ours).abs().max())
            row["within_tolerance"] = row["max_abs_diff"] <= PARITY_TOLERANCE
            row["known_difference"] = KNOWN_DIFFERENCES.get((library, method))
            rows.append(row)
    return rows


# -- the speed of Grad-CAM ------------------------------------------------------------------------
def grad_cam_jobs(
    libraries: dict[str, ModuleType], model: nn.Module, x: Tensor, targets: Tensor
) -> dict[str, Callable[[], Any]]:
    """One call each that turns the batch into Grad-CAM maps at input size, in [0, 1]."""
    size = tuple(x.shape[-2:])
    jobs: dict[str, Callable[[], Any]] = {
        "mscam": lambda: mscam.explain(model, x, "grad-cam", TARGET_LAYER, targets=targets)
    }
    if "pytorch-grad-cam" in libraries:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        lib = libraries["pytorch-grad-cam"]
        outputs = [ClassifierOutputTarget(int(t)) for t in targets]

        def pytorch_grad_cam() -> Any:
            with lib.GradCAM(model=model, target_layers=[model.get_submodule(TARGET_LAYER)]) as cam:
                return cam(input_tensor=x, targets=outputs)

        jobs["pytorch-grad-cam"] = pytorch_grad_cam
    if "torchcam" in libraries:
        methods, classes = libraries["torchcam"], [int(t) for t in targets]

        def torchcam() -> Tensor:
            with methods.GradCAM(model, TARGET_LAYER) as extractor:
                raw = extractor(class_idx=classes, scores=model(x), normalized=False)[0]
            return common_ending(raw, size)

        jobs["torchcam (+ resize, min-max)"] = torchcam

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        model(x).gather(1, targets[:, None]).sum().backward()

    jobs["forward+backward (bare)"] = forward_backward
    return jobs


def speed_ratios(slower: list[float], faster: list[float]) -> dict[str, float]:
    """How many times `faster`'s time `slower` takes, three ways: the ratio of the medians, the
    median of the ratios within each round (the two ran moments apart, under the same load),
    and the ratio of the best runs."""
    return {
        "of_medians": significant(median(slower) / median(faster)),
        "median_of_rounds": significant(median(s / f for s, f in zip(slower, faster))),
        "of_best": significant(min(slower) / min(faster)),
    }


# -- the report -----------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = set_threads(args.threads)
    machine = machine_info("cpu")
    grad_cam, grad_cam_how = import_pytorch_grad_cam()
    torchcam, torchcam_how = import_torchcam()
    libraries = {
        name: lib
        for name, lib in (("pytorch-grad-cam", grad_cam), ("torchcam", torchcam))
        if lib is not None
    }
    model = build_model(args.width)
    x, targets = make_batch(args.parity_batch, args.size)
    parity_rows = parity(libraries, model, x, targets, args.score_tiles)

    x, targets = make_batch(args.speed_batch, args.size)
    seconds = time_rounds(
        grad_cam_jobs(libraries, model, x, targets), warmup=args.warmup, repeats=args.repeats
    )
    machine["load_average_after_timing"] = [round(value, 2) for value in os.getloadavg()]
    speed = {name: summary(runs, args.speed_batch) for name, runs in seconds.items()}
    ratios = None
    if "pytorch-grad-cam" in speed:
        ratios = speed_ratios(seconds["pytorch-grad-cam"], seconds["mscam"])
    cv2_threads = None
    if "cv2" in sys.modules:
        cv2_threads = sys.modules["cv2"].getNumThreads()
    return {
        "machine": machine,
        "libraries": {
            "pytorch-grad-cam": {"version": package_version("grad-cam"), "import": grad_cam_how},
            "torchcam": {"version": package_version("torchcam"), "import": torchcam_how},
            "mscam": {"version": mscam.__version__},
            "opencv_threads": cv2_threads,
        },
        "workload": {
            "model": "resnet18-sar",
            "width": args.width,
            "target_layer": TARGET_LAYER,
            "tile": [x.shape[1], args.size, args.size],
            "parity_batch": args.parity_batch,
            "score_cam_tiles": args.score_tiles,
            "speed_batch": args.speed_batch,
            "threads": threads,
            "warmup_rounds": args.warmup,
            "repeats": args.repeats,
            "quick": args.quick,
        },
        "parity": parity_rows,
        "parity_tolerance": PARITY_TOLERANCE,
        "grad_cam_speed": speed,
        "criterion": {
            "statement": f"mscam's Grad-CAM at least {SPEED_LIMIT}x as fast as pytorch-grad-cam",
            "pytorch_grad_cam_over_mscam": ratios,
            "met": None if ratios is None else min(ratios.values()) >= SPEED_LIMIT,
        },
    }


def markdown(report: dict[str, Any]) -> str:
    libs, work, crit = report["libraries"], report["workload"], report["criterion"]
    tile = "×".join(str(v) for v in work["tile"])
    lines = [
        "# mscam against the public CAM implementations",
        "",
        f"pytorch-grad-cam {libs['pytorch-grad-cam']['version']} "
        f"({libs['pytorch-grad-cam']['import']}); torchcam {libs['torchcam']['version']} "
        f"({libs['torchcam']['import']}); mscam {libs['mscam']['version']}."
        + (" **Quick smoke run: not a measurement.**" if work["quick"] else ""),
        "",
        machine_line(report["machine"]),
        "",
        "## Parity after the common post-processing",
        "",
        f"`{work['model']}` (width {work['width']}, random seeded weights), target "
        f"`{work['target_layer']}`, {work['parity_batch']} tiles of {tile} with per-tile targets "
        f"(Score-CAM: the first {work['score_cam_tiles']}). Each library's raw map at the layer's "
        "resolution → ReLU → bilinear resize (`align_corners=False`) → per-image min-max, "
        "against mscam's maps. Last column: pytorch-grad-cam's own output (min-max, then "
        "`cv2.resize`, then min-max again) against mscam's, for information.",
        "",
        f"| method | library | tiles | max abs diff | within {report['parity_tolerance']:g} "
        "| known difference | as returned |",
        "|---|---|---:|---:|---|---|---:|",
    ]
    for row in report["parity"]:
        returned = row.get("max_abs_diff_as_returned")
        lines.append(
            f"| {row['method']} | {row['library']} | {row['tiles']} | {row['max_abs_diff']:.2e} "
            f"| {'yes' if row['within_tolerance'] else 'no'} | {row['known_difference'] or '—'} "
            f"| {'—' if returned is None else f'{returned:.2e}'} |"
        )
    lines += [
        "",
        "## Grad-CAM speed",
        "",
        f"{work['speed_batch']} tiles of {tile}, same model, {work['threads']} torch threads; "
        f"median of {work['repeats']} interleaved rounds after {work['warmup_rounds']} warmup "
        "rounds. Every call returns maps at input size in [0, 1]. Load average after the "
        f"timings: {report['machine']['load_average_after_timing']}.",
        "",
        "| implementation | median s/batch | best s/batch | tiles/s | runs (s) |",
        "|---|---:|---:|---:|---|",
    ]
    for name, row in report["grad_cam_speed"].items():
        runs = ", ".join(f"{value:.3f}" for value in row["runs_s"])
        lines.append(
            f"| {name} | {row['median_s']:.3f} | {row['best_s']:.3f} | {row['tiles_per_s']:.1f} "
            f"| {runs} |"
        )
    ratios = crit["pytorch_grad_cam_over_mscam"]
    if ratios is not None:
        verdict = "met" if crit["met"] else "NOT met"
        lines += [
            "",
            f"Criterion — {crit['statement']}: pytorch-grad-cam takes "
            f"{ratios['of_medians']:.2f}× mscam's time (ratio of the medians; "
            f"{ratios['median_of_rounds']:.2f}× as the median of the per-round ratios, "
            f"{ratios['of_best']:.2f}× between the best runs), **{verdict}** (all three ≥ "
            f"{SPEED_LIMIT}).",
        ]
    return "\n".join([*lines, ""])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench"), help="writes OUT/results/")
    parser.add_argument("--quick", action="store_true", help="a small, fast smoke run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all cores)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (7)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds (2)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.width, args.size = (8, 64) if quick else (64, 128)
    args.parity_batch, args.score_tiles, args.speed_batch = (4, 2, 8) if quick else (8, 2, 64)
    args.repeats = args.repeats or (1 if quick else 7)
    args.warmup = (1 if quick else 2) if args.warmup is None else args.warmup
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    write_report(args.out, "parity_public", run(args), markdown)


if __name__ == "__main__":
    main()
