"""The method comparison on SAR: every CAM method and every MS-CAM option, with the default model.

What `make eval` runs (`python bench/eval/run_eval.py --out bench/eval`). Everything is held out
from training (the default model was trained on chips of seeds 0 and 10000):

- **Chips** (`build_chips(n, chip_size=64, seed=777000)`, n per class): the ship chips with their
  ship boxes give the WSOL numbers, GT-known (maps of the ship class): MaxBoxAcc, its τ,
  MaxBoxAccV2, Top-1 Loc (the model's predictions), GT-known Loc, PxAP (the ship boxes as masks),
  and the whole BoxAcc(τ) curve, the pixel-threshold analysis. Faithfulness on a subset of the
  ship chips (ship class): Average Drop, Increase in Confidence, deletion and insertion AUC,
  occlusion and conservation drops; and, where cheap, on land and bright chips (their true class).
  Sea chips are left out of the faithfulness tests: the baseline that removed pixels take is the
  per-channel mean of the held-out sea chips (model input units), so removing sea changes nothing.
- **Time per tile** of every variant on this CPU, a batch of 64 ship chips (median of rounds).
- **Scenes** (profiles calm, coastal, dense; 1024² pixels; seeds 777001 and 777002): the scene
  pipeline with its default settings per variant (`explain_scene`), scored with
  `evaluate_scene`: PxAP, the best F1 and its threshold for both criteria (IoU ≥ 0.5, hit), F1 at
  the default threshold 0.5. F1 is also pooled over the scenes (true positives, predictions and
  truths summed per threshold).
- **Why**: which variants give identical maps on this model, how much the target layer's
  gradient varies in space, the pointing game and MaxBoxAcc by ship size, and an image-only
  reference map `s(I)` (no model at all) that shows how much of the localisation the image gate
  alone gives.
- **Sanity controls** (Adebayo et al. 2018; WSOL on the ship chips only): every method on a fully
  randomised copy of the model (`mscam.eval.sanity.fully_randomised`, each layer re-initialised
  as at construction), `s(I)`, `s(Grad-CAM)·s(I)`, and MS-CAM with `ω_ele` replaced by its
  per-channel spatial mean. A method's localisation counts as the model's only where the 95 %
  paired-bootstrap interval of its difference to each of its controls (its own randomised-model
  maps, `s(I)`, `s(Grad-CAM)·s(I)`) lies above 0.

Writes `results.json` (everything, the curves included), `results.md` (the tables, machine, seeds,
sizes, baseline), `boxacc_curve.png`, `scene_f1_curve.png` and `examples.png`.

    python bench/eval/run_eval.py --out bench/eval          # the full run (~15 min on 2 cores)
    python bench/eval/run_eval.py --out /tmp/e --quick      # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mscam
import numpy as np
import torch
from eval_report import markdown, plots  # bench/eval/eval_report.py: the tables and the plots
from mscam.cam.self_matching import matching_image
from mscam.eval import (
    IOU_DELTAS_V2,
    THRESHOLDS,
    average_drop_increase,
    best_ious,
    box_accuracy,
    evaluate_scene,
    occlusion_conservation,
    perturbation_curve,
    pxap,
)
from mscam.eval.sanity import ChannelMeanMSCAM, fully_randomised, image_gated_gradcam, spearman
from mscam.models import load_model
from mscam.sar.chips import build_chips
from mscam.training import to_input
from torch import Tensor, nn

CHIP_SEED = 777_000  # never used in training (seeds 0 and 10000)
SCENE_SEEDS = (777_001, 777_002)
SCENE_PROFILES = ("calm", "coastal", "dense")
DEFAULT_SCENE_THRESHOLD = 0.5  # SceneSettings().threshold
REFERENCE = "image"  # the image-only reference map s(I): no model
RANDOM = "random:"  # a method on the fully randomised model: `random:grad-cam`
GATED = "grad-cam*image"  # the control s(Grad-CAM)·s(I)
MEAN_ELE = "ms-cam[ele=channel-mean]"  # MS-CAM with ω_ele replaced by its channel mean
SHIP, SEA = "ship", "sea"


@dataclass(frozen=True)
class Variant:
    """A method with options (the defaults when empty), or the image-only reference."""

    method: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        if not self.options:
            return self.method
        return f"{self.method}[{','.join(f'{k}={v}' for k, v in self.options)}]"

    @property
    def kind(self) -> str:
        if self.method == REFERENCE:
            return "reference"
        if self.method.startswith(RANDOM) or self.method in (GATED, MEAN_ELE):
            return "control"
        return "option" if self.options else "method"

    def explainer(self, model: nn.Module, layer: str, batch_size: int = 64) -> Any:
        return mscam.create_explainer(
            self.method, model, layer, batch_size=batch_size, **dict(self.options)
        )


def variants() -> list[Variant]:
    """Every method with its defaults, MS-CAM with each non-default option, Self-Matching CAM
    with Grad-CAM's weights, and the image-only reference."""
    out = [Variant(method) for method in mscam.METHODS]
    for name, value in (
        ("channel_weight", "xgrad-cam"),
        ("channel_weight", "grad-cam++"),
        ("channel_weight", "relu-mean"),
        ("channel_norm", False),
        ("matching", "separate"),
        ("match_size", 16),
        ("match_size", 32),
    ):
        out.append(Variant("ms-cam", ((name, value),)))
    out.append(Variant("self-matching", (("channel_weight", "grad-cam"),)))
    out.append(Variant(REFERENCE))
    return out


def controls() -> list[Variant]:
    """The sanity controls beside `s(I)`: every method on the fully randomised model,
    `s(Grad-CAM)·s(I)` and MS-CAM with `ω_ele` replaced by its per-channel mean."""
    return [Variant(RANDOM + m) for m in mscam.METHODS] + [Variant(GATED), Variant(MEAN_ELE)]


# -- small helpers ---------------------------------------------------------------------------------


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats (also inside lists and dicts) rounded for the JSON; None and ints kept."""
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError("a metric is not finite")
        return round(value, digits)
    if isinstance(value, np.integer):
        return int(value)
    return value


def machine_info(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def evenly(indices: np.ndarray, count: int) -> np.ndarray:
    """`count` indices spread evenly over `indices` (all of them when there are fewer)."""
    if count >= len(indices):
        return indices
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(int)]


def box_masks(boxes: Sequence[np.ndarray], size: int) -> np.ndarray:
    masks = np.zeros((len(boxes), size, size), bool)
    for mask, chip_boxes in zip(masks, boxes):
        for x0, y0, x1, y1 in chip_boxes:
            mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return masks


def predict(model: nn.Module, x: Tensor, batch: int = 256) -> Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])


def image_maps(x: Tensor) -> Tensor:
    """The reference map: `s(I)`, the min-maxed mean of the input channels (MS-CAM's image gate)."""
    return matching_image(x, tuple(x.shape[-2:]))


def compute_maps(
    variant: Variant,
    model: nn.Module,
    layer: str,
    x: Tensor,
    targets: Tensor,
    random_model: nn.Module | None = None,
):
    if variant.method == REFERENCE:
        return image_maps(x)
    if variant.method == GATED:
        return image_gated_gradcam(compute_maps(Variant("grad-cam"), model, layer, x, targets), x)
    if variant.method == MEAN_ELE:
        return ChannelMeanMSCAM(model, layer, batch_size=64).compute(x, targets).maps.detach()
    if variant.method.startswith(RANDOM):
        assert random_model is not None
        base = Variant(variant.method[len(RANDOM) :])
        return compute_maps(base, random_model, layer, x, targets)
    return variant.explainer(model, layer).compute(x, targets).maps.detach()


def pixel_histograms(maps: Tensor, masks: np.ndarray) -> np.ndarray:
    """Per chip, how many ship (index 0) and other (1) pixels pass exactly k thresholds of the
    PxAP grid: (N, 2, T + 1), so the PxAP of any resample of chips is a weighted sum (the
    histograms of `mscam.eval.PixelPRCurve`, kept per chip)."""
    values = maps.detach().cpu().double().numpy()
    out = np.zeros((len(values), 2, len(THRESHOLDS) + 1), np.int64)
    for chip, value, mask in zip(out, values, masks):
        passed = np.searchsorted(THRESHOLDS, value, side="right")
        chip[0] = np.bincount(passed[mask], minlength=len(THRESHOLDS) + 1)
        chip[1] = np.bincount(passed[~mask], minlength=len(THRESHOLDS) + 1)
    return out


def pxap_of_histograms(histograms: np.ndarray) -> np.ndarray:
    """PxAP (`mscam.eval.pxap`'s formula) of summed histograms (..., 2, T + 1)."""
    tp = np.cumsum(histograms[..., 0, ::-1], axis=-1)[..., ::-1][..., 1:]
    fp = np.cumsum(histograms[..., 1, ::-1], axis=-1)[..., ::-1][..., 1:]
    positives = histograms[..., 0, :].sum(axis=-1, keepdims=True)
    predicted = tp + fp
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 1.0)
    recall = tp / np.maximum(positives, 1)
    precision, recall = precision[..., ::-1], recall[..., ::-1]
    steps = np.diff(recall, axis=-1, prepend=0.0)
    return np.sum(precision * steps, axis=-1)


# -- WSOL ------------------------------------------------------------------------------------------


def wsol_metrics(
    maps: Tensor,
    boxes: Sequence[np.ndarray],
    masks: np.ndarray,
    predicted: np.ndarray,
    label: int,
    per_chip: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The numbers of `mscam.eval.evaluate_wsol` (same definitions, same τ grid) from one
    labelling pass, plus the pointing game and MaxBoxAcc by ship size. `per_chip`, when given,
    receives each chip's best v1 IoU per τ (`v1`, (N, T)) and pointing hit (`pointing`, (N,))."""
    v1, v2 = best_ious(maps, boxes)
    curve = box_accuracy(v1, 0.5)
    best = int(np.argmax(curve))
    v2_curves = {f"{d:g}": box_accuracy(v2, d) for d in IOU_DELTAS_V2}
    correct = predicted == label
    flat = maps.flatten(1).argmax(dim=1).cpu().numpy()
    rows, cols = flat // maps.shape[-1], flat % maps.shape[-1]
    pointing = np.array([masks[i, rows[i], cols[i]] for i in range(len(masks))])
    areas = np.array([((b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)).max() for b in boxes])
    small = areas <= np.median(areas)
    if per_chip is not None:
        per_chip.update(v1=v1, pointing=pointing)
    return {
        "max_box_acc": float(curve[best]),
        "best_threshold": float(THRESHOLDS[best]),
        "max_box_acc_v2": float(np.mean([c.max() for c in v2_curves.values()])),
        "top1_loc": float(np.mean(correct & (v1[:, best] >= 0.5))),
        "gt_known_loc": float(curve[best]),
        "pxap": pxap(maps, masks),
        "box_acc": curve.tolist(),
        "box_acc_v2": {d: c.tolist() for d, c in v2_curves.items()},
        "mean_iou_at_best": float(v1[:, best].mean()),
        "pointing_game": float(pointing.mean()),
        "max_box_acc_small": float(box_accuracy(v1[small], 0.5).max()),
        "max_box_acc_large": float(box_accuracy(v1[~small], 0.5).max()) if (~small).any() else 0.0,
        "small_area_max_px": int(np.median(areas)),
    }


# -- faithfulness ----------------------------------------------------------------------------------


def faithfulness(
    model: nn.Module,
    x: Tensor,
    maps: Tensor,
    targets: Tensor,
    groups: dict[str, np.ndarray],
    baseline: Tensor,
    steps: int,
    deletion_group: str,
) -> dict[str, dict[str, float]]:
    """Faithfulness numbers per group of samples (index arrays into `x`), one call per test.

    Average Drop, Increase in Confidence, occlusion and conservation for every group; deletion and
    insertion (the costly ones) only for `deletion_group`. Per-group numbers are the library's
    formulas applied to its per-sample scores.
    """
    confidence = average_drop_increase(model, x, maps, targets, baseline=baseline, batch_size=128)
    evidence = occlusion_conservation(model, x, maps, targets, baseline=baseline, batch_size=128)
    chosen = groups[deletion_group]
    curves = {
        mode: perturbation_curve(
            model,
            x[chosen],
            maps[chosen],
            targets[chosen],
            mode=mode,
            steps=steps,
            baseline=baseline,
            batch_size=128,
        )
        for mode in ("deletion", "insertion")
    }
    y, o = confidence.scores.double(), confidence.explained_scores.double()
    tiny = torch.finfo(torch.float64).tiny
    out = {}
    for name, index in groups.items():
        i = torch.as_tensor(index)
        ys = y[i].clamp(min=tiny)
        row = {
            "n": len(index),
            "average_drop": float(100 * (torch.clamp(y[i] - o[i], min=0) / ys).mean()),
            "increase_in_confidence": float(100 * (y[i] < o[i]).double().mean()),
            "occlusion_drop": float(
                100 * ((evidence.scores[i] - evidence.occluded_scores[i]) / ys).mean()
            ),
            "conservation_drop": float(
                100 * ((evidence.scores[i] - evidence.conserved_scores[i]) / ys).mean()
            ),
        }
        if name == deletion_group:
            row["deletion_auc"] = curves["deletion"].auc
            row["insertion_auc"] = curves["insertion"].auc
            row["deletion_curve"] = curves["deletion"].curves.mean(dim=0).tolist()
            row["insertion_curve"] = curves["insertion"].curves.mean(dim=0).tolist()
        out[name] = row
    everything = np.concatenate(list(groups.values()))
    if len(everything) == len(x):  # the per-group formulas against the library's aggregates
        assert (
            abs(
                float(100 * (torch.clamp(y - o, min=0) / y.clamp(min=tiny)).mean())
                - confidence.average_drop
            )
            < 1e-3
        )
    return out


# -- timing ----------------------------------------------------------------------------------------


class OtherJobs:
    """The share of the machine's CPU time that other processes used since creation: from
    /proc/stat (every process) minus this process's own CPU time. None where /proc is missing.

    The load average cannot tell this: it counts this run's own threads too.
    """

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        ticks = [int(v) for v in fields[:8]]
        hz = os.sysconf("SC_CLK_TCK")
        busy = (sum(ticks) - ticks[3] - ticks[4]) / hz  # all but idle and iowait
        own = sum(os.times()[:4])  # user + system, also of waited-for children
        return time.monotonic(), busy, own

    def share(self) -> float | None:
        end = self._read()
        if self.start is None or end is None:
            return None
        wall = (end[0] - self.start[0]) * (os.cpu_count() or 1)
        others = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return min(1.0, max(0.0, others / wall)) if wall > 0 else None


def time_per_tile(
    model: nn.Module,
    layer: str,
    todo: list[Variant],
    x: Tensor,
    target: int,
    repeats: int,
) -> dict[str, dict[str, Any]]:
    """Milliseconds per tile of each variant on the batch `x` (median of `repeats` rounds after a
    warm-up round; the rounds interleave the variants). Score-CAM runs one round, no warm-up; the
    image reference is not timed. The bare forward pass is timed as `forward`."""
    calls: dict[str, Any] = {}
    targets = torch.full((len(x),), target, dtype=torch.long)
    for variant in todo:
        if variant.method == REFERENCE:
            continue
        explainer = variant.explainer(model, layer, batch_size=len(x))
        calls[variant.key] = lambda e=explainer: e.compute(x, targets)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    calls["forward"] = forward
    slow = {key for key in calls if key.startswith("score-cam")}
    seconds: dict[str, list[float]] = {key: [] for key in calls}
    for round_ in range(repeats + 1):
        for key, call in calls.items():
            if key in slow and round_ != 1:
                continue
            start = time.perf_counter()
            call()
            if round_ > 0:
                seconds[key].append(time.perf_counter() - start)
    return {
        key: {
            "ms_per_tile": 1000 * statistics.median(runs) / len(x),
            "min_ms_per_tile": 1000 * min(runs) / len(x),
            "batch": len(x),
            "rounds": len(runs),
        }
        for key, runs in seconds.items()
    }


# -- scenes ----------------------------------------------------------------------------------------


def make_scenes(folder: Path, profiles: Sequence[str], seeds: Sequence[int], size: int):
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene

    scenes = []
    for profile in profiles:
        for seed in seeds:
            scene = synthesize_scene(size, profile, seed)
            name = f"{profile}-{seed}"
            tif, gpkg = folder / f"{name}.tif", folder / f"{name}.gpkg"
            write_scene(scene, tif, gpkg)
            scenes.append(
                {
                    "name": name,
                    "profile": profile,
                    "seed": seed,
                    "size": size,
                    "ships": len(scene.ships),
                    "tif": tif,
                    "truth": gpkg,
                }
            )
    return scenes


def scene_scores(
    variant: Variant, scenes: list[dict[str, Any]], folder: Path, model: str | None = None
) -> dict[str, Any]:
    """`explain_scene` with the default settings and `evaluate_scene` on every scene, and the F1
    curves pooled over the scenes (TP, predictions and truths summed per threshold)."""
    from mscam.scene.pipeline import SceneSettings, explain_scene

    settings = SceneSettings(model=model, method=variant.method, method_options=variant.options)
    per_scene, seconds = [], []
    for scene in scenes:
        heat = folder / f"heat-{scene['name']}.tif"
        result = explain_scene(scene["tif"], heat, None, settings)
        seconds.append(result.seconds)
        scores = evaluate_scene(heat, scene["truth"])
        heat.unlink()
        at_default = scores["thresholds"].index(DEFAULT_SCENE_THRESHOLD)
        per_scene.append({
            "scene": scene["name"],
            "truth_boxes": scores["truth_boxes"],
            "pxap": scores["pxap"],
            "seconds": result.seconds,
            "hot_tiles": result.hot_tiles,
            "tiles": result.tiles,
            "predictions": scores["predictions"],
            **{c: {"tp": scores[c]["tp"], "f1": scores[c]["f1"], "best": scores["best"][c],
                   "f1_at_default": scores[c]["f1"][at_default]} for c in ("iou", "hit")},
        })  # fmt: skip
    thresholds = [float(t) for t in scores["thresholds"]]
    truths = sum(s["truth_boxes"] for s in per_scene)
    predictions = np.sum([s["predictions"] for s in per_scene], axis=0)
    pooled = {}
    for criterion in ("iou", "hit"):
        tp = np.sum([s[criterion]["tp"] for s in per_scene], axis=0)
        precision = np.where(predictions > 0, tp / np.maximum(predictions, 1), 1.0)
        recall = tp / truths if truths else np.ones_like(precision)
        f1 = np.where(
            precision + recall > 0,
            2 * precision * recall / np.maximum(precision + recall, 1e-12),
            0.0,
        )
        best = int(np.argmax(f1))
        pooled[criterion] = {
            "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "best_f1": float(f1[best]), "best_threshold": thresholds[best],
            "f1_at_default": float(f1[thresholds.index(DEFAULT_SCENE_THRESHOLD)]),
            "mean_best_f1": float(np.mean([s[criterion]["best"]["f1"] for s in per_scene])),
            "mean_f1_at_default": float(np.mean([s[criterion]["f1_at_default"]
                                                 for s in per_scene])),
            "tp_at_best": int(tp[best]), "predictions_at_best": int(predictions[best]),
            "tp_at_default": int(tp[thresholds.index(DEFAULT_SCENE_THRESHOLD)]),
        }  # fmt: skip
    pxaps = [s["pxap"] for s in per_scene if s["pxap"] is not None]
    return {
        "scenes": per_scene,
        "thresholds": thresholds,
        "truth_boxes": truths,
        "mean_pxap": float(np.mean(pxaps)) if pxaps else None,
        "seconds_per_scene": float(np.mean(seconds)),
        **pooled,
    }


# -- analysis --------------------------------------------------------------------------------------


def gradient_variation(model: nn.Module, layer: str, x: Tensor, target: int) -> dict[str, float]:
    """How much `g = ∂y_c/∂A` varies over space at the target layer: the largest
    `(max_ij g_k − min_ij g_k) / max_k,ij |g|` over samples and channels. 0 means every channel's
    gradient is a constant, so element-wise weights carry no spatial information."""
    captured: dict[str, Tensor] = {}
    module = model.get_submodule(layer)
    hook = module.register_forward_hook(lambda m, i, o: captured.__setitem__("a", o))
    try:
        with torch.enable_grad():
            logits = model(x.clone().requires_grad_(True))
            (grad,) = torch.autograd.grad(logits[:, target].sum(), captured["a"])
    finally:
        hook.remove()
    flat = grad.flatten(2)
    spread = (flat.amax(dim=2) - flat.amin(dim=2)).amax(dim=1)
    scale = flat.abs().amax(dim=(1, 2)).clamp(min=1e-30)
    return {"max_relative_spatial_range": float((spread / scale).max())}


def paired_bootstrap(
    per_chip: dict[str, dict[str, np.ndarray]],
    reference: str,
    resamples: int,
    seed: int = 0,
    keys: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each variant's (of `keys`, default all) MaxBoxAcc, pointing game and PxAP minus
    `reference`'s, with 95 % percentile intervals of a paired bootstrap over the ship chips (the
    same resampled chips for both, the same resamples for every call; the τ of MaxBoxAcc is
    chosen again in every resample)."""
    n = len(per_chip[reference]["pointing"])
    index = np.random.default_rng(seed).integers(0, n, (resamples, n))
    # How often each chip is drawn in each resample: a resample's mean is a weighted sum.
    weights = np.stack([np.bincount(i, minlength=n) for i in index]).astype(np.float64) / n

    def max_box_acc(v1: np.ndarray) -> np.ndarray:
        return (weights @ (v1 >= 0.5).astype(np.float64)).max(axis=1)

    def pointing(hits: np.ndarray) -> np.ndarray:
        return weights @ hits.astype(np.float64)

    def pixel_ap(histograms: np.ndarray) -> np.ndarray:
        summed = np.einsum("rn,nct->rct", weights * n, histograms.astype(np.float64))
        return pxap_of_histograms(summed)

    base = per_chip[reference]
    base_acc, base_point = max_box_acc(base["v1"]), pointing(base["pointing"])
    base_ap = pixel_ap(base["pixels"]) if "pixels" in base else None
    out = {}
    for key in keys if keys is not None else list(per_chip):
        arrays = per_chip[key]
        if key == reference:
            continue
        d_acc = max_box_acc(arrays["v1"]) - base_acc
        d_point = pointing(arrays["pointing"]) - base_point
        out[key] = {
            "d_max_box_acc": float(box_accuracy(arrays["v1"], 0.5).max()
                                   - box_accuracy(base["v1"], 0.5).max()),
            "d_max_box_acc_ci95": np.percentile(d_acc, [2.5, 97.5]).tolist(),
            "d_pointing": float(arrays["pointing"].mean() - base["pointing"].mean()),
            "d_pointing_ci95": np.percentile(d_point, [2.5, 97.5]).tolist(),
        }  # fmt: skip
        if base_ap is not None and "pixels" in arrays:
            d_ap = pixel_ap(arrays["pixels"]) - base_ap
            out[key]["d_pxap"] = float(
                pxap_of_histograms(arrays["pixels"].sum(axis=0))
                - pxap_of_histograms(base["pixels"].sum(axis=0))
            )
            out[key]["d_pxap_ci95"] = np.percentile(d_ap, [2.5, 97.5]).tolist()
    return out


def control_keys(key: str) -> list[str]:
    """The controls a method's localisation must beat: its own maps on the randomised model and
    the image-only maps; MS-CAM also its channel-mean `ω_ele` ablation."""
    method = key.partition("[")[0]
    keys = [RANDOM + method, REFERENCE, GATED]
    return [*keys, MEAN_ELE] if key == "ms-cam" else keys


def beats_controls(
    per_chip: dict[str, dict[str, np.ndarray]], methods: Sequence[str], resamples: int
) -> dict[str, dict[str, Any]]:
    """For each method: its differences to each control (paired bootstrap) and whether it beats
    them all, per metric: the lower end of every 95 % interval above 0."""
    out = {}
    for key in methods:
        against = {
            control: paired_bootstrap(per_chip, control, resamples, keys=[key])[key]
            for control in control_keys(key)
            if control in per_chip
        }
        # The channel-mean ablation asks whether ω_ele helps MS-CAM, not whether the model does.
        model_controls = {c: d for c, d in against.items() if c != MEAN_ELE}
        out[key] = {
            "vs": against,
            "beats_controls_max_box_acc": all(
                d["d_max_box_acc_ci95"][0] > 0 for d in model_controls.values()
            ),
            "beats_controls_pxap": all(d["d_pxap_ci95"][0] > 0 for d in model_controls.values()),
        }
    return out


def identical_groups(maps: dict[str, Tensor], tolerance: float = 1e-4) -> list[list[str]]:
    """Variants whose ship maps agree everywhere within `tolerance` (groups of two or more)."""
    groups: list[list[str]] = []
    for key, value in maps.items():
        for group in groups:
            if float((maps[group[0]] - value).abs().max()) <= tolerance:
                group.append(key)
                break
        else:
            groups.append([key])
    return [g for g in groups if len(g) > 1]


# -- the run ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole evaluation: the report (JSON-ready) and the example maps for examples.png."""
    started = time.perf_counter()
    whole_run = OtherJobs()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    torch.manual_seed(0)
    machine = machine_info(torch.get_num_threads())
    loaded = load_model(args.model)
    model, card = loaded.model.eval(), loaded.card
    layer, classes = card.target_layer, list(card.classes)
    ship, sea = classes.index(SHIP), classes.index(SEA)

    say(f"chips: build_chips({args.n}, chip_size=64, seed={args.seed})")
    chips = build_chips(args.n, chip_size=64, seed=args.seed)
    assert tuple(chips.class_names) == tuple(classes), (chips.class_names, classes)
    x_all = to_input(chips.x)
    labels = torch.as_tensor(chips.labels)
    predicted = predict(model, x_all).argmax(dim=1)
    ship_index = np.flatnonzero(chips.labels == ship)
    x_ship = x_all[ship_index]
    boxes = [chips.boxes[i] for i in ship_index]
    masks = box_masks(boxes, x_all.shape[-1])
    pred_ship = predicted[ship_index].numpy()
    ship_targets = torch.full((len(ship_index),), ship, dtype=torch.long)

    # The faithfulness baseline: the per-channel mean of the sea chips, in model input units.
    sea_x = x_all[chips.labels == sea]
    baseline = sea_x.mean(dim=(0, 2, 3))
    windows = card.preprocessing["windows"]  # the dB window of each input channel
    baseline_db = [lo + float(v) * (hi - lo) for v, (lo, hi) in zip(baseline, windows)]

    # The faithfulness set: a subset of the ship chips (ship class), plus land and bright chips
    # (their true class). Its ship part reuses the WSOL maps (same chips, same class).
    faith_ship = evenly(np.arange(len(ship_index)), args.faith_ship)
    others = {
        name: evenly(np.flatnonzero(chips.labels == classes.index(name)), args.faith_other)
        for name in ("land", "bright")
    }
    other_index = np.concatenate(list(others.values()))
    x_other, other_targets = x_all[other_index], labels[other_index]
    x_faith = torch.cat([x_ship[faith_ship], x_other])
    faith_targets = torch.cat([ship_targets[faith_ship], other_targets])
    n_ship = len(faith_ship)
    groups = {"ship": np.arange(n_ship)}
    offset = n_ship
    for name, index in others.items():
        groups[name] = np.arange(offset, offset + len(index))
        offset += len(index)
    groups["ship+land+bright"] = np.arange(offset)

    todo = variants()
    say(f"timing {len(todo) - 1} variants on a batch of {min(64, len(x_ship))} ship chips")
    probe = OtherJobs()
    timing = time_per_tile(model, layer, todo, x_ship[:64], ship, args.repeats)
    timing_others = probe.share()

    results: dict[str, dict[str, Any]] = {}
    ship_maps: dict[str, Tensor] = {}
    per_chip: dict[str, dict[str, np.ndarray]] = {}
    for variant in todo:
        tick = time.perf_counter()
        maps = compute_maps(variant, model, layer, x_ship, ship_targets)
        ship_maps[variant.key] = maps
        row: dict[str, Any] = {
            "method": variant.method,
            "options": dict(variant.options),
            "kind": variant.kind,
        }
        per_chip[variant.key] = {"pixels": pixel_histograms(maps, masks)}
        row["wsol"] = wsol_metrics(maps, boxes, masks, pred_ship, ship, per_chip[variant.key])
        assert abs(pxap_of_histograms(per_chip[variant.key]["pixels"].sum(axis=0))
                   - row["wsol"]["pxap"]) < 1e-9  # fmt: skip
        other_maps = compute_maps(variant, model, layer, x_other, other_targets)
        faith_maps = torch.cat([maps[faith_ship], other_maps])
        row["faithfulness"] = faithfulness(
            model, x_faith, faith_maps, faith_targets, groups, baseline, args.steps, "ship"
        )
        row["time"] = timing.get(variant.key)
        row["eval_seconds"] = time.perf_counter() - tick
        results[variant.key] = row
        w = row["wsol"]
        say(
            f"  {variant.key}: MaxBoxAcc {w['max_box_acc']:.3f} at τ {w['best_threshold']:.2f}, "
            f"PxAP {w['pxap']:.3f} ({row['eval_seconds']:.0f} s)"
        )

    say("sanity controls: every method on a fully randomised model, s(Grad-CAM)·s(I), MS-CAM "
        "with ω_ele's channel mean (ship chips, WSOL only)")  # fmt: skip
    random_model = fully_randomised(model, x_ship[:1], seed=args.seed)
    random_predicted = predict(random_model, x_all).argmax(dim=1)
    control_results: dict[str, dict[str, Any]] = {}
    for variant in controls():
        tick = time.perf_counter()
        maps = compute_maps(variant, model, layer, x_ship, ship_targets, random_model)
        ship_maps[variant.key] = maps
        row = {"method": variant.method, "options": {}, "kind": "control"}
        per_chip[variant.key] = {"pixels": pixel_histograms(maps, masks)}
        randomised = variant.method.startswith(RANDOM)
        predictions = random_predicted[ship_index].numpy() if randomised else pred_ship
        row["wsol"] = wsol_metrics(maps, boxes, masks, predictions, ship, per_chip[variant.key])
        if randomised:
            rho = spearman(ship_maps[variant.method[len(RANDOM) :]], maps)
            row["spearman_with_trained"] = (
                float(np.nanmean(rho)) if np.isfinite(rho).any() else None
            )
            row["constant_maps"] = int(np.sum(~np.isfinite(rho)))
        row["eval_seconds"] = time.perf_counter() - tick
        control_results[variant.key] = row
        w = row["wsol"]
        extra = f", Spearman with trained {row['spearman_with_trained']}" if randomised else ""
        say(f"  {variant.key}: MaxBoxAcc {w['max_box_acc']:.3f}, PxAP {w['pxap']:.3f}{extra}")

    scene_info: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mscam-eval-") as tmp:
        folder = Path(tmp)
        say(f"scenes: {', '.join(args.profiles)} × seeds {args.scene_seeds}, {args.scene_size}²")
        scenes = make_scenes(folder, args.profiles, args.scene_seeds, args.scene_size)
        scene_info = [{k: v for k, v in s.items() if k not in ("tif", "truth")} for s in scenes]
        for variant in todo:
            if variant.method == REFERENCE:
                continue
            chosen = scenes
            if variant.method == "score-cam" and args.score_cam_scene_seeds < len(args.scene_seeds):
                keep = set(args.scene_seeds[: args.score_cam_scene_seeds])
                chosen = [s for s in scenes if s["seed"] in keep]
            tick = time.perf_counter()
            scored = scene_scores(variant, chosen, folder, args.model)
            results[variant.key]["scene"] = scored
            say(
                f"  {variant.key}: scene PxAP {scored['mean_pxap']:.3f}, best F1 iou "
                f"{scored['iou']['best_f1']:.3f} / hit {scored['hit']['best_f1']:.3f} "
                f"({time.perf_counter() - tick:.0f} s)"
            )

    fc = getattr(model, "fc", None)
    analysis = {
        "identical_ship_maps": identical_groups(ship_maps),
        "vs_default": paired_bootstrap(
            per_chip, "ms-cam", args.bootstrap, keys=[v.key for v in todo]
        ),
        "controls": beats_controls(
            per_chip, [v.key for v in todo if v.kind == "method"], args.bootstrap
        ),
        "random_model": {
            "seed": args.seed,
            "reinitialisation": "every layer as at construction (reset_parameters); BatchNorm "
            "weight 1, bias 0, running mean 0, variance 1",
            "accuracy_on_chips": float((random_predicted == labels).double().mean()),
            "ship_chips_predicted_ship": float(
                np.mean(random_predicted[ship_index].numpy() == ship)
            ),
        },
        "bootstrap_resamples": args.bootstrap,
        "gradient": gradient_variation(model, layer, x_ship[:64], ship),
        "ship_fc_weights_negative_share": (
            float((fc.weight[ship] < 0).float().mean()) if isinstance(fc, nn.Linear) else None
        ),
        "feature_map_size": list(_feature_size(model, layer, x_ship[:1])),
    }
    areas = np.array([((b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)).max() for b in boxes])
    report = {
        "settings": {
            "quick": args.quick,
            "model": f"{card.name} {card.version} ({card.architecture}, target layer {layer})",
            "model_card": args.model or "the bundled default",
            "classes": classes,
            "chip_seed": args.seed,
            "chips_per_class": args.n,
            "chip_size": 64,
            "ship_chips": len(ship_index),
            "ship_boxes": int(sum(len(b) for b in boxes)),
            "ship_box_area_px": {
                "median": float(np.median(areas)),
                "p10": float(np.percentile(areas, 10)),
                "p90": float(np.percentile(areas, 90)),
            },
            "model_accuracy_on_chips": float((predicted == labels).double().mean()),
            "ship_chips_predicted_ship": float(np.mean(pred_ship == ship)),
            "faithfulness": {
                "groups": {k: len(v) for k, v in groups.items()},
                "targets": "ship chips: ship; land and bright chips: their true class",
                "deletion_insertion": "ship group only",
                "steps": args.steps,
                "baseline": "per-channel mean of the held-out sea chips, model input units",
                "baseline_values": [float(v) for v in baseline],
                "baseline_db": baseline_db,
                "average_drop_explained_image": "map * x + (1 - map) * baseline",
                "evidence_level": 0.8,
            },
            "wsol": {
                "thresholds": THRESHOLDS.tolist(),
                "deltas_v2": list(IOU_DELTAS_V2),
                "targets": "ship class (GT-known); Top-1 with the model's predictions",
                "boxes": "v1: largest component of s >= tau * max(s)",
            },
            "scenes": scene_info,
            "scene_settings": "SceneSettings() defaults: tile 64, overlap 0.25, min_score 0.5, "
            "threshold 0.5",
            "score_cam_scene_seeds": list(args.scene_seeds[: args.score_cam_scene_seeds]),
            "timing": {
                "batch": min(64, len(x_ship)),
                "rounds": args.repeats,
                "score_cam_rounds": 1,
                "forward_ms_per_tile": timing["forward"],
                "other_jobs_cpu_share": timing_others,
            },
        },
        "machine": machine,
        "variants": results,
        "controls": control_results,
        "analysis": analysis,
    }
    machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    machine["other_jobs_cpu_share"] = whole_run.share()
    report["seconds"] = time.perf_counter() - started
    shown = evenly(np.arange(len(ship_index)), 6)
    examples = {
        "vv_db": chips.x[ship_index[shown], 0],
        "boxes": [boxes[i] for i in shown],
        "maps": {
            k: m[shown].numpy()
            for k, m in ship_maps.items()
            if k in results and results[k]["kind"] in ("method", "reference")
        },
    }
    return report, examples


def _feature_size(model: nn.Module, layer: str, x: Tensor) -> tuple[int, int]:
    captured: dict[str, Tensor] = {}
    hook = model.get_submodule(layer).register_forward_hook(
        lambda m, i, o: captured.__setitem__("a", o)
    )
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
    return tuple(captured["a"].shape[-2:])


def say(message: str) -> None:
    print(message, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/eval"))
    parser.add_argument("--model", help="model card or its folder (default: the bundled model)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few chips, one scene")
    parser.add_argument("--n", type=int, default=200, help="chips per class (ship chips: n)")
    parser.add_argument("--seed", type=int, default=CHIP_SEED)
    parser.add_argument(
        "--faith-ship", type=int, default=64, help="ship chips in the faithfulness tests"
    )
    parser.add_argument(
        "--faith-other",
        type=int,
        default=64,
        help="land and bright chips each in the faithfulness tests",
    )
    parser.add_argument("--steps", type=int, default=20, help="deletion/insertion steps")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds")
    parser.add_argument("--scene-size", type=int, default=1024)
    parser.add_argument("--profiles", nargs="+", default=list(SCENE_PROFILES))
    parser.add_argument("--scene-seeds", type=int, nargs="+", default=list(SCENE_SEEDS))
    parser.add_argument(
        "--score-cam-scene-seeds",
        type=int,
        default=2,
        help="how many of the scene seeds Score-CAM runs on",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        help="paired bootstrap resamples for the differences to MS-CAM",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only redraw results.md and the curve plots from results.json",
    )
    args = parser.parse_args(argv)
    if args.replot:
        report = json.loads((args.out / "results.json").read_text())
        (args.out / "results.md").write_text(markdown(report))
        plots(report, None, args.out)
        return 0
    if args.quick:
        args.n, args.faith_ship, args.faith_other, args.steps, args.repeats = 6, 4, 2, 4, 1
        args.bootstrap = 50
        args.scene_size, args.profiles, args.scene_seeds = 192, ["dense"], [SCENE_SEEDS[0]]
    args.score_cam_scene_seeds = max(1, min(args.score_cam_scene_seeds, len(args.scene_seeds)))

    report, examples = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rounded(report), indent=1, allow_nan=False)
    (args.out / "results.json").write_text(text + "\n")
    (args.out / "results.md").write_text(markdown(report))
    if not args.no_plots:
        plots(report, examples, args.out)
    say(f"wrote {args.out}/results.json and results.md in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
