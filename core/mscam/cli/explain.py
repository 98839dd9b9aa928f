"""`mscam explain INPUT --heatmap OUT.tif [--boxes OUT.gpkg] …`: the scene pipeline."""

from __future__ import annotations

import argparse
import ast
import sys

from mscam.errors import InputError
from mscam.scene.settings import SETTINGS, split_bands


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
    """Every option that decides a scene's result (shared with `mscam batch`): one flag per
    entry of `mscam.scene.settings.SETTINGS` that has one, in the table's order."""
    for setting in SETTINGS.values():
        if setting.cli_flag is not None:
            add_setting(parser, setting.name)


#: `add_setting(..., default=RUN)`: no default of the table's; None, so that the caller takes the
#: value the heatmap's run used (`mscam localize`).
RUN = object()


def add_setting(
    parser: argparse.ArgumentParser, name: str, help: str | None = None, default: object = None
) -> None:
    """The flag of `SETTINGS[name]`: its type, default, choices and range as the table says
    (`help` replaces the table's words, not the range and default it adds; `default=RUN`: the
    flag defaults to None and the help says "default: the run's")."""
    setting = SETTINGS[name]
    text = help or setting.help
    if setting.range_text():
        text += f"; {'in ' if setting.maximum is not None else ''}{setting.range_text()}"
    if default is RUN:
        text += " (default: the run's, from the heatmap's tags)"
    elif setting.default not in (None, ()):
        text += f" (default {setting.default})"
    options: dict = {"dest": setting.name, "help": text, "metavar": setting.metavar}
    if name == "method_options":
        options.update(action="append", default=[])
    else:
        options.update(type=setting.kind, default=None if default is RUN else setting.default)
    if setting.choices and not setting.open_choices and setting.case_sensitive:
        options["choices"] = list(setting.choices)  # the others: checked by SceneSettings
    parser.add_argument(setting.cli_flag, **options)


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
    """The `SceneSettings` of the flags `add_scene_options` added (from the table: one value per
    setting with a flag; the KEY=VALUE options and the VV,VH bands parsed)."""
    from mscam.scene.settings import SceneSettings

    values = {}
    for setting in SETTINGS.values():
        if setting.cli_flag is None or not hasattr(args, setting.name):
            continue
        value = getattr(args, setting.name)
        if setting.name == "method_options":
            value = parse_options(value)
        elif setting.name == "bands":
            value = split_bands(value)
        values[setting.name] = value
    return SceneSettings(**values)


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
