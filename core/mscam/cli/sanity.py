"""`mscam sanity INPUT --out DIR [--model CARD] [--method M …] [--tiles N]`: sanity controls."""

from __future__ import annotations

import argparse

from mscam.cam import METHODS
from mscam.cli.explain import add_setting
from mscam.eval.sanity import DEFAULT_SANITY_METHODS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sanity",
        help="do the explanations depend on the model? cascading weight randomisation",
        description="Take the hottest tiles of a SAR scene (highest target-class probability), "
        "re-initialise the model's blocks from the output down one at a time (Adebayo et al. "
        "2018) and compare each method's maps with the trained model's (Spearman rank "
        "correlation). Writes DIR/sanity.json and DIR/sanity.png. A method whose maps stay the "
        "same on a randomised model does not explain the model.",
    )
    parser.add_argument("input", help="SAR raster (GeoTIFF, VRT, SAFE …) readable by GDAL")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (made if missing)"
    )
    add_setting(parser, "model")
    add_setting(parser, "architecture_file")
    parser.add_argument(
        "--method",
        nargs="+",
        action="extend",
        metavar="M",
        help=f"methods to check (default: all but score-cam): {', '.join(METHODS)}",
    )
    parser.add_argument(
        "--tiles", type=int, default=16, help="how many of the hottest tiles (default 16)"
    )
    parser.add_argument(
        "--truth", help="GeoPackage of target boxes: adds PxAP per stage (optional)"
    )
    parser.add_argument("--seed", type=int, default=0, help="randomisation seed (default 0)")
    add_setting(parser, "device")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mscam.cli.explain import stderr_progress
    from mscam.eval.sanity_scene import scene_sanity

    result = scene_sanity(
        args.input,
        args.out,
        model=args.model,
        methods=args.method or DEFAULT_SANITY_METHODS,
        tiles=args.tiles,
        truth=args.truth,
        seed=args.seed,
        device=args.device,
        architecture_file=args.architecture_file,
        progress=stderr_progress(args.quiet),
    )
    report = result.report
    print(f"sanity: {result.json_path} and {result.png_path} ({len(report['tiles'])} tiles)")
    print("Spearman with the trained maps at stage 'all' (fully randomised):")
    for method, row in report["methods"].items():
        value = row["spearman"][-1]
        print(f"  {method:<14} {'—' if value is None else f'{value:+.2f}'}")
    return 0
