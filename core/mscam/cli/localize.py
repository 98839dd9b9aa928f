"""`mscam localize HEATMAP --boxes OUT.gpkg [--threshold F] [--scene SCENE]`: boxes again,
without the CNN (`mscam.scene.redraw_boxes`)."""

from __future__ import annotations

import argparse

from mscam.cli.explain import RUN, add_setting


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "localize",
        help="localisation boxes from an existing heatmap at another threshold",
        description="Boxes from a heatmap written by `mscam explain`: the hot regions "
        "(heat >= threshold), a region per peak and, with --scene, one box per ship fitted to "
        "the ship's bright pixels against the local sea clutter, as `mscam explain --boxes` "
        "does. Without --scene a box is a peak's heat region. A box's score is the run's "
        "probability of the tile holding it, so at the run's threshold, with its scene, the "
        "boxes are the run's own (a heatmap written before tile scores were stored: the "
        "peak heat).",
    )
    parser.add_argument("heatmap", help="heatmap GeoTIFF written by `mscam explain`")
    parser.add_argument("--boxes", required=True, help="output GeoPackage")
    add_setting(parser, "threshold", "heat threshold", default=RUN)
    parser.add_argument(
        "--scene", help="the SAR scene the heatmap explains: boxes fit the ships' pixels"
    )
    add_setting(parser, "units", "the scene's units (DN, linear, amplitude, dB); default: detect")
    add_setting(parser, "bands", "the scene's band roles in order, e.g. VV,VH; default: detect")
    add_setting(
        parser,
        "merge_gap",
        "hot regions this close (pixels) are examined together; -1: each on its own",
        default=RUN,
    )
    add_setting(parser, "lattice", default=RUN)
    parser.add_argument("--target-class", help="class name for the boxes; default: the heatmap's")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mscam.scene.api import redraw_boxes, run_threshold
    from mscam.scene.heatmap_writer import heatmap_tags

    n = redraw_boxes(
        args.heatmap,
        args.boxes,
        args.threshold,
        scene=args.scene,
        units=args.units,
        bands=args.bands,
        merge_gap=args.merge_gap,
        target_class=args.target_class,
        lattice=args.lattice,
    )
    if args.threshold is None:
        tags = heatmap_tags(args.heatmap)
        whose = "the run's" if "threshold" in tags else "the default: the heatmap does not say"
        threshold = f"threshold {run_threshold(tags)} ({whose})"
    else:
        threshold = f"threshold {args.threshold}"
    fit = "fitted to the scene's ships" if args.scene else "heat regions only: no --scene"
    print(f"boxes: {args.boxes} ({n} boxes at {threshold}; {fit})")
    return 0
