"""Prescreen and threshold sweep: box F1 (hit criterion) against min-score and threshold.

Why the pipeline's defaults are min-score 0.5 and threshold 0.5: 1024² synthetic scenes (two seeds
each of calm, coastal, dense, and empty for false alarms) with the bundled model and MS-CAM.
Accuracy only (deterministic), so the machine's load does not matter. Writes
bench/results/min_score_sweep.txt:

    .venv/bin/python bench/sweep_min_score.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mscam.eval.scene import evaluate_scene
from mscam.sar.synth import synthesize_scene
from mscam.sar.synth_io import write_scene
from mscam.scene.pipeline import SceneSettings, explain_scene

PROFILES = ("calm", "coastal", "dense", "empty")
SEEDS = (101, 102)
MIN_SCORES = (0.5, 0.7, 0.8, 0.9)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
OUT = Path(__file__).parent / "results" / "min_score_sweep.txt"


def main() -> None:
    lines = [
        "# bench/sweep_min_score.py: bundled model, ms-cam, 1024² scenes, seeds "
        f"{', '.join(map(str, SEEDS))}.",
        "# min_score profile ships | per threshold: F1 (precision, recall, boxes), hit criterion",
    ]
    with tempfile.TemporaryDirectory() as folder:
        scenes = []
        for profile in PROFILES:
            for seed in SEEDS:
                scene, truth = (
                    Path(folder, f"{profile}_{seed}.tif"),
                    Path(folder, f"{profile}_{seed}.gpkg"),
                )
                write_scene(synthesize_scene(1024, profile, seed), scene, truth)
                scenes.append((profile, scene, truth))
        heat = Path(folder, "heat.tif")
        for min_score in MIN_SCORES:
            totals: dict[str, dict[str, list[int] | int]] = {}
            for profile, scene, truth in scenes:
                explain_scene(scene, heat, None, SceneSettings(min_score=min_score))
                scores = evaluate_scene(heat, truth, thresholds=list(THRESHOLDS))
                total = totals.setdefault(
                    profile,
                    {"ships": 0, "boxes": [0] * len(THRESHOLDS), "tp": [0] * len(THRESHOLDS)},
                )
                total["ships"] += scores["truth_boxes"]
                for i in range(len(THRESHOLDS)):
                    total["boxes"][i] += scores["predictions"][i]
                    total["tp"][i] += scores["hit"]["tp"][i]
            for profile, total in totals.items():
                cells = []
                for i, threshold in enumerate(THRESHOLDS):
                    precision = total["tp"][i] / max(1, total["boxes"][i])
                    recall = total["tp"][i] / max(1, total["ships"])
                    f1 = (
                        0.0
                        if precision + recall == 0
                        else 2 * precision * recall / (precision + recall)
                    )
                    cells.append(
                        f"t{threshold}: {f1:.2f} ({precision:.2f}, {recall:.2f}, "
                        f"{total['boxes'][i]})"
                    )
                lines.append(f"{min_score} {profile} {total['ships']} | " + " | ".join(cells))
                print(lines[-1], flush=True)
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
