"""The engine benchmark runs: a quick smoke run of bench/bench_cam.py reports every method."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mscam
import pytest

BENCH_CAM = Path(__file__).resolve().parents[1] / "bench" / "bench_cam.py"


@pytest.mark.slow
def test_quick_benchmark_reports_every_method_with_positive_throughput(tmp_path):
    run = subprocess.run(
        [sys.executable, str(BENCH_CAM), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "results" / "cam_cpu.json").read_text())
    rows = report["results"]
    baselines = {"forward", "forward+backward", "forward+backward to target"}
    # pytorch-grad-cam's Grad-CAM is timed too where it imports (make bench's .venv-bench).
    assert {*mscam.METHODS, *baselines} <= {row["name"] for row in rows}
    assert {row["name"] for row in rows} <= {*mscam.METHODS, *baselines, "pytorch-grad-cam"}
    assert len([row for row in rows if row["name"] == "ms-cam"]) == 7  # defaults and 6 options
    assert all(row["tiles_per_s"] > 0 and row["x_forward_backward"] > 0 for row in rows)
    assert report["machine"]["torch_threads"] >= 1
    assert (tmp_path / "results" / "cam_cpu.md").read_text().startswith("# CAM engine")
