"""`mscam localize HEATMAP --boxes OUT.gpkg --threshold F`: boxes again, without the CNN."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "localize", help="localisation boxes from an existing heatmap at another threshold"
    )
    parser.add_argument("heatmap", help="heatmap GeoTIFF written by `mscam explain`")
    parser.add_argument("--boxes", required=True, help="output GeoPackage")
    parser.add_argument("--threshold", type=float, required=True, help="heat threshold in (0, 1]")
    parser.add_argument(
        "--merge-gap",
        type=int,
        default=3,
        help="regions this close (pixels) are one box; -1: never merge (default 3)",
    )
    parser.add_argument("--target-class", help="class name for the boxes; default: the heatmap's")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mscam.scene.heatmap_writer import heatmap_tags
    from mscam.scene.pipeline import write_scene_boxes

    tags = heatmap_tags(args.heatmap)
    n = write_scene_boxes(
        args.heatmap,
        args.boxes,
        args.threshold,
        args.target_class or tags.get("target_class", "target"),
        tags.get("method", "unknown"),
        merge_gap=args.merge_gap,
    )
    print(f"boxes: {args.boxes} ({n} boxes at threshold {args.threshold})")
    return 0
