"""`mscam explain INPUT --heatmap OUT.tif [--boxes OUT.gpkg] …`: the scene pipeline."""

from __future__ import annotations

import argparse
import ast
import sys

from mscam.cam import METHODS
from mscam.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="heatmap of a CNN's evidence over a SAR scene, and localisation boxes",
        description="Tile a SAR scene, run the CNN and a CAM method on every tile, blend the tile "
        "maps into a georeferenced heatmap (COG) and, with --boxes, write the hot regions as "
        "boxes (GeoPackage).",
    )
    parser.add_argument("input", help="SAR raster (GeoTIFF, VRT, SAFE …) readable by GDAL")
    parser.add_argument("--heatmap", required=True, help="output heatmap GeoTIFF (COG)")
    parser.add_argument("--boxes", help="output GeoPackage of localisation boxes")
    add_scene_options(parser)
    add_cluster_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(run=run)


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """--scheduler and --workers: where the work runs (shared with `mscam batch`)."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a Dask scheduler (tcp://host:8786) whose workers do the work; they read the "
        "inputs by path, so these must be at the same path on every worker",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="Dask worker processes: without --scheduler, a local cluster of N (explain "
        "without either runs in this process); with it, wait until N workers have joined",
    )


def add_scene_options(parser: argparse.ArgumentParser) -> None:
    """Every option that decides a scene's result (shared with `mscam batch`)."""
    parser.add_argument("--model", help="model card (JSON) or its folder; default: bundled model")
    parser.add_argument(
        "--architecture-file", help="Python file defining the card's architecture (runs its code)"
    )
    parser.add_argument("--method", default="ms-cam", choices=list(METHODS))
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method option, e.g. channel_weight=xgrad-cam (repeatable)",
    )
    parser.add_argument("--target-class", help="class to explain; default: the card's first")
    parser.add_argument("--tile", type=int, help="tile size in pixels; default: the card's chip")
    parser.add_argument("--overlap", type=float, default=0.25, help="tile overlap (default 0.25)")
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="heat threshold of the boxes (default 0.5)"
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.5,
        help="target-class probability a tile needs to get a CAM (default 0.5)",
    )
    parser.add_argument(
        "--merge-gap",
        type=int,
        default=3,
        help="regions this close (pixels) are one box; -1: never merge (default 3)",
    )
    parser.add_argument(
        "--batch", type=int, help="tiles per batch (default: 16 on CPU, 128 on a GPU)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    parser.add_argument("--units", help="input units (dB, linear, amplitude, DN); default: detect")
    parser.add_argument("--bands", help="band roles in order, e.g. VV,VH; default: detect")
    parser.add_argument(
        "--pixel-spacing",
        type=float,
        metavar="M",
        help="the scene's pixel spacing in metres; default: from its georeferencing",
    )


def parse_options(pairs: list[str]) -> tuple[tuple[str, object], ...]:
    """`KEY=VALUE` pairs; values are Python literals where they parse (8, (16, 16), False)."""
    options = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--option needs KEY=VALUE, got {pair!r}")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        options.append((key.strip().replace("-", "_"), parsed))
    return tuple(options)


def stderr_progress(quiet: bool):
    def report(fraction: float, message: str) -> None:
        if not quiet:
            print(f"\rmscam: {fraction:6.1%} {message:<40}", end="", file=sys.stderr, flush=True)
            if fraction >= 1.0:
                print(file=sys.stderr)

    return report


def scene_settings(args: argparse.Namespace):
    """The `SceneSettings` of the options `add_scene_options` added."""
    from mscam.scene.pipeline import SceneSettings

    return SceneSettings(
        model=args.model,
        method=args.method,
        method_options=parse_options(args.option),
        target_class=args.target_class,
        tile=args.tile,
        overlap=args.overlap,
        threshold=args.threshold,
        min_score=args.min_score,
        batch=args.batch,
        device=args.device,
        units=args.units,
        bands=tuple(b.strip() for b in args.bands.split(",")) if args.bands else None,
        architecture_file=args.architecture_file,
        merge_gap=args.merge_gap,
        threads=args.threads,
        pixel_spacing=args.pixel_spacing,
    )


def run(args: argparse.Namespace) -> int:
    from mscam.scene.pipeline import explain_scene

    settings = scene_settings(args)
    progress = stderr_progress(args.quiet)
    if args.scheduler or args.workers:
        from mscam.scene.distributed import dask_client, explain_scene_distributed

        with dask_client(args.scheduler, args.workers) as client:
            result = explain_scene_distributed(
                args.input, args.heatmap, args.boxes, settings, client=client, progress=progress
            )
    else:
        result = explain_scene(args.input, args.heatmap, args.boxes, settings, progress=progress)
    print(
        f"heatmap: {result.heatmap} ({result.tiles} tiles, {result.hot_tiles} hot, "
        f"{result.skipped_tiles} skipped as nodata, {result.seconds:.1f} s on {result.device})"
    )
    if result.boxes is not None:
        print(f"boxes: {result.boxes} ({result.n_boxes} {result.target_class} boxes)")
    return 0
