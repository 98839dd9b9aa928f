"""`mscam synth OUT.tif --truth TRUTH.gpkg --profile P --size N --seed S`: a synthetic scene."""

from __future__ import annotations

import argparse
import sys
import time

from mscam.errors import InputError
from mscam.sar.synth import PROFILES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="a synthetic Sentinel-1-like SAR scene with its ship truth",
        description="Synthesize a Sentinel-1 IW GRD-like dual-pol (VV, VH) scene with known "
        "ships and hard negatives, and write it as a GeoTIFF plus a GeoPackage of ship boxes.",
    )
    parser.add_argument("output", help="output GeoTIFF")
    parser.add_argument("--truth", required=True, help="output GeoPackage of ship boxes")
    parser.add_argument(
        "--profile", default="coastal", help=f"scene kind: {', '.join(PROFILES)} (default coastal)"
    )
    parser.add_argument(
        "--size", default="1024", help="side in 10 m pixels, or HEIGHTxWIDTH (default 1024)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--units", default="dB", help="dB (float32) or DN (UInt16; default dB)")
    parser.add_argument(
        "--geometry",
        default="map",
        help="map (north-up UTM) or gcp (rotated, GCPs only; default map)",
    )
    parser.add_argument("--quicklook", help="also write a grey PNG of VV with the ship boxes")
    parser.set_defaults(run=run)


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` → (512, 512); ``"400x600"`` → (400, 600)."""
    parts = text.lower().split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        raise InputError(f"--size must be N or HEIGHTxWIDTH, got {text!r}") from None
    if len(sides) == 1:
        return sides[0], sides[0]
    if len(sides) == 2:
        return sides[0], sides[1]
    raise InputError(f"--size must be N or HEIGHTxWIDTH, got {text!r}")


def run(args: argparse.Namespace) -> int:
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene

    if args.profile not in PROFILES:
        raise InputError(f"unknown profile {args.profile!r}; choose {', '.join(PROFILES)}")
    if args.units not in ("dB", "DN"):
        raise InputError(f"--units must be dB or DN, got {args.units!r}")
    if args.geometry not in ("map", "gcp"):
        raise InputError(f"--geometry must be map or gcp, got {args.geometry!r}")
    size = parse_size(args.size)
    started = time.perf_counter()
    print(
        f"mscam synth: {args.profile} scene, {size[0]}×{size[1]} px, seed {args.seed} …",
        file=sys.stderr,
    )
    scene = synthesize_scene(size, args.profile, args.seed)
    write_scene(scene, args.output, args.truth, units=args.units, geometry=args.geometry)
    if args.quicklook:
        from mscam.sar.quicklook import quicklook_png

        quicklook_png(scene.vv_db, args.quicklook, boxes=[s["box"] for s in scene.ships])
    kinds: dict[str, int] = {}
    for item in scene.hard_negatives:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    negatives = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    print(
        f"mscam synth: wrote {args.output} ({args.units}, {args.geometry} geometry) and "
        f"{args.truth}: {len(scene.ships)} ships; hard negatives: {negatives}; "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return 0
