"""The method comparison (bench/eval/run_eval.py): a quick run reports every variant with finite
metrics, and its one-pass WSOL numbers are mscam.eval.evaluate_wsol's."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import mscam
import numpy as np
import pytest
import torch
from mscam.eval import evaluate_wsol

EVAL_DIR = Path(__file__).resolve().parents[1] / "bench" / "eval"
RUN_EVAL = EVAL_DIR / "run_eval.py"


def load_run_eval():
    if "run_eval" in sys.modules:
        return sys.modules["run_eval"]
    sys.path.insert(0, str(EVAL_DIR))  # run_eval imports its sibling eval_report
    try:
        spec = importlib.util.spec_from_file_location("run_eval", RUN_EVAL)
        module = importlib.util.module_from_spec(spec)
        sys.modules["run_eval"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EVAL_DIR))


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_one_pass_wsol_numbers_are_evaluate_wsols():
    run_eval = load_run_eval()
    generator = torch.Generator().manual_seed(3)
    maps = torch.rand(12, 32, 32, generator=generator) ** 4
    boxes = [np.array([[i, 3, i + 5, 9]]) for i in range(12)]
    masks = run_eval.box_masks(boxes, 32)
    predicted = np.array([0, 1] * 6)
    mine = run_eval.wsol_metrics(maps, boxes, masks, predicted, 0)
    reference = evaluate_wsol(
        maps, boxes, predicted=predicted, labels=np.zeros(12, int), masks=masks
    ).to_dict()
    for key in ("max_box_acc", "best_threshold", "max_box_acc_v2", "top1_loc", "gt_known_loc"):
        assert mine[key] == pytest.approx(reference[key]), key
    assert mine["pxap"] == pytest.approx(reference["pxap"])
    assert mine["box_acc"] == pytest.approx(reference["box_acc"])
    assert mine["box_acc_v2"].keys() == reference["box_acc_v2"].keys()
    for delta, curve in reference["box_acc_v2"].items():
        assert mine["box_acc_v2"][delta] == pytest.approx(curve), delta


@pytest.mark.slow
def test_quick_evaluation_reports_every_variant_with_finite_metrics(tmp_path):
    # One torch thread: on a shared CPU, two threads contend and the run takes several times longer.
    run = subprocess.run(
        [sys.executable, str(RUN_EVAL), "--quick", "--threads", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["settings"]["quick"] is True
    assert report["settings"]["chip_seed"] not in (0, 10_000)  # held out from training
    variants = report["variants"]
    keys = load_run_eval().variants()
    assert list(variants) == [v.key for v in keys]
    assert set(mscam.METHODS) <= set(variants)
    assert len([k for k in variants if k.startswith("ms-cam[")]) == 7
    assert "image" in variants
    for key, row in variants.items():
        wsol = row["wsol"]
        assert len(wsol["box_acc"]) == 100, key
        assert all(finite(v) for v in wsol["box_acc"]), key
        for name in ("max_box_acc", "best_threshold", "max_box_acc_v2", "top1_loc",
                     "gt_known_loc", "pxap", "pointing_game"):  # fmt: skip
            assert finite(wsol[name]) and 0 <= wsol[name] <= 1, (key, name)
        ship = row["faithfulness"]["ship"]
        for name in ("average_drop", "increase_in_confidence", "deletion_auc", "insertion_auc",
                     "occlusion_drop", "conservation_drop"):  # fmt: skip
            assert finite(ship[name]), (key, name)
        assert finite(row["faithfulness"]["ship+land+bright"]["average_drop"]), key
        if row["kind"] == "reference":
            assert row["time"] is None and "scene" not in row
            continue
        assert row["time"]["ms_per_tile"] > 0, key
        scene = row["scene"]
        assert finite(scene["mean_pxap"]), key
        for criterion in ("iou", "hit"):
            assert 0 <= scene[criterion]["best_f1"] <= 1, (key, criterion)
            assert 0 <= scene[criterion]["f1_at_default"] <= 1, (key, criterion)
            assert scene[criterion]["best_threshold"] in scene["thresholds"], (key, criterion)
    analysis = report["analysis"]
    assert set(analysis["vs_default"]) == set(variants) - {"ms-cam"}
    for key, diff in analysis["vs_default"].items():
        low, high = diff["d_max_box_acc_ci95"]
        assert low <= high and finite(diff["d_pointing"]), key
    # The bundled model's head is convolutional, so the gradient varies over space at the target
    # layer and HiResCAM (g ∘ A) no longer coincides with Grad-CAM (mean(g) · A), as it did under
    # the former global-average-pooling head.
    identical = analysis["identical_ship_maps"]
    # A control may coincide with a variant: on the quick run's chips, model 2.2.0's Self-Matching
    # CAM with Grad-CAM's channel weight equals MS-CAM with ω_ele replaced by its channel mean.
    assert all(set(group) <= set(variants) | set(report["controls"]) for group in identical)
    assert not any({"grad-cam", "hires-cam"} <= set(group) for group in identical)
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# Method comparison on SAR") and "Quick smoke run" in text
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("boxacc_curve.png", "scene_f1_curve.png", "examples.png"):
            assert (tmp_path / name).stat().st_size > 10_000, name
