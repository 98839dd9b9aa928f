"""`mscam batch INPUT... --out DIR [--workers N] [--scheduler ADDRESS] …`: an archive on Dask."""

from __future__ import annotations

import argparse
import sys

from mscam.cli.explain import (
    add_cluster_options,
    add_scene_options,
    scene_settings,
    stderr_progress,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="explain many scenes on a local or remote Dask cluster",
        description="Explain every scene (files, folders of rasters, glob patterns) on Dask "
        "workers: DIR/<stem>.heatmap.tif and DIR/<stem>.boxes.gpkg per scene, then "
        "DIR/boxes.gpkg (every scene's boxes, with a 'scene' field) and DIR/summary.csv. A rerun "
        "skips scenes whose outputs are complete; a failing scene does not stop the others. "
        "Without --scheduler the work runs on a local cluster of --workers processes.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="scene, folder or glob")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--force", action="store_true", help="recompute scenes whose outputs are complete"
    )
    add_scene_options(parser)
    add_cluster_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mscam.scene.batch import expand_inputs, run_batch
    from mscam.scene.distributed import dask_client

    settings = scene_settings(args)
    expand_inputs(args.inputs)  # a name that matches nothing fails before a cluster starts
    with dask_client(args.scheduler, args.workers) as client:
        rows = run_batch(
            args.inputs,
            args.out,
            settings,
            client=client,
            progress=stderr_progress(args.quiet),
            force=args.force,
        )
    for row in rows:
        if row.status == "failed":
            print(f"{row.scene}: failed: {row.error}")
        else:
            detail = f"{row.boxes} boxes" if row.boxes is not None else "boxes unknown"
            seconds = f", {row.seconds:.1f} s" if row.status == "ok" else ""
            print(f"{row.scene}: {row.status} ({detail}{seconds})")
    failed = sum(row.status == "failed" for row in rows)
    print(f"summary: {args.out}/summary.csv; boxes of every scene: {args.out}/boxes.gpkg")
    if failed:
        print(
            f"mscam: error: {failed} of {len(rows)} scenes failed (see summary.csv)",
            file=sys.stderr,
        )
        return 1
    return 0
