"""`mscam localize HEATMAP --boxes OUT.gpkg [--threshold F] [--scene SCENE]`: boxes again,
without the CNN."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "localize",
        help="localisation boxes from an existing heatmap at another threshold",
        description="Boxes from a heatmap written by `mscam explain`: the hot regions "
        "(heat >= threshold), a region per peak and, with --scene, one box per ship fitted to "
        "the ship's bright pixels against the local sea clutter, as `mscam explain --boxes` "
        "does. Without --scene a box is a peak's heat region.",
    )
    parser.add_argument("heatmap", help="heatmap GeoTIFF written by `mscam explain`")
    parser.add_argument("--boxes", required=True, help="output GeoPackage")
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="heat threshold in (0, 1] (default 0.5)"
    )
    parser.add_argument(
        "--scene", help="the SAR scene the heatmap explains: boxes fit the ships' pixels"
    )
    parser.add_argument(
        "--units", help="the scene's units (dB, linear, amplitude, DN); default: detect"
    )
    parser.add_argument(
        "--bands", help="the scene's band roles in order, e.g. VV,VH; default: detect"
    )
    parser.add_argument(
        "--merge-gap",
        type=int,
        default=3,
        help="hot regions this close (pixels) are examined together; -1: each on its own "
        "(default 3)",
    )
    parser.add_argument("--target-class", help="class name for the boxes; default: the heatmap's")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mscam.errors import InputError
    from mscam.scene.boxes import write_scene_boxes
    from mscam.scene.heatmap_writer import heatmap_tags
    from mscam.scene.outputs import check_outputs

    tags = heatmap_tags(args.heatmap)
    if not tags:  # a raw SAR scene would give boxes of bright sea, with exit 0
        raise InputError(
            f"{args.heatmap} is not an mscam heatmap (it has no MSCAM_ tags); localize reads "
            "the heatmaps `mscam explain` writes"
        )
    check_outputs({"boxes": args.boxes}, [args.heatmap, args.scene])
    n = write_scene_boxes(
        args.heatmap,
        args.boxes,
        args.threshold,
        args.target_class or tags.get("target_class", "target"),
        tags.get("method", "unknown"),
        merge_gap=args.merge_gap,
        scene=args.scene,
        units=args.units,
        bands=tuple(b.strip() for b in args.bands.split(",")) if args.bands else None,
    )
    fit = "fitted to the scene's ships" if args.scene else "heat regions only: no --scene"
    print(f"boxes: {args.boxes} ({n} boxes at threshold {args.threshold}; {fit})")
    return 0
