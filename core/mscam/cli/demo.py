"""`mscam demo`: the main job, end to end, on a synthetic scene with the bundled model.

It synthesises a coastal Sentinel-1-like scene with known ships, explains it with MS-CAM and the
bundled default model (heatmap COG + boxes GeoPackage), scores the boxes against the truth and
draws a quicklook PNG of the scene with the heatmap, the predicted boxes (cyan) and the truth
(amber).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="synthesise a scene, explain it with the bundled model, draw a quicklook"
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--profile", default="coastal", help="scene profile (default coastal)")
    parser.add_argument("--size", type=int, default=1024, help="scene side in pixels")
    parser.add_argument("--seed", type=int, default=7, help="scene seed")
    parser.add_argument("--method", default="ms-cam", help="CAM method (default ms-cam)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mscam.eval.scene import evaluate_scene
    from mscam.sar.quicklook import heat_overlay_png
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene
    from mscam.scene.pipeline import SceneSettings, explain_scene
    from mscam.scene.raster import read_window
    from mscam.scene.vector import read_boxes

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    scene_path, truth_path = out / "scene.tif", out / "truth.gpkg"
    heatmap_path, boxes_path = out / "heatmap.tif", out / "boxes.gpkg"
    say = lambda message: print(f"mscam demo: {message}", file=sys.stderr)  # noqa: E731

    say(f"synthesising a {args.size}² {args.profile} scene (seed {args.seed}) → {scene_path}")
    scene = synthesize_scene(args.size, args.profile, args.seed)
    write_scene(scene, scene_path, truth_path)
    say(f"explaining it with {args.method} and the bundled model")
    settings = SceneSettings(method=args.method, device=args.device)
    result = explain_scene(scene_path, heatmap_path, boxes_path, settings)
    say(
        f"{result.tiles} tiles ({result.hot_tiles} hot) in {result.seconds:.1f} s on "
        f"{result.device}: {result.n_boxes} boxes"
    )
    scores = evaluate_scene(
        heatmap_path, truth_path, thresholds=[settings.threshold], scene=scene_path
    )
    (out / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
    heat = read_window(heatmap_path, 0, 0, scene.vv_db.shape[1], scene.vv_db.shape[0])[0]
    predicted = [(b["px_x0"], b["px_y0"], b["px_x1"], b["px_y1"]) for b in read_boxes(boxes_path)]
    truth = [ship["box"] for ship in scene.ships]
    heat_overlay_png(scene.vv_db, heat, out / "quicklook.png", predicted, truth)
    iou, hit = scores["best"]["iou"], scores["best"]["hit"]
    print(
        f"heatmap:   {heatmap_path}\nboxes:     {boxes_path} ({result.n_boxes})\n"
        f"truth:     {truth_path} ({len(truth)} ships)\n"
        f"quicklook: {out / 'quicklook.png'}\n"
        f"at threshold {settings.threshold}: recall {iou['recall']:.2f}, precision "
        f"{iou['precision']:.2f} (IoU >= 0.5); recall {hit['recall']:.2f}, precision "
        f"{hit['precision']:.2f} (box holds the ship's centre); pixel AP {scores['pxap']:.2f}"
    )
    return 0
