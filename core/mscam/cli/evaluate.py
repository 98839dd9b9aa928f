"""`mscam evaluate HEATMAP --truth TRUTH [--json OUT] [--plot OUT.png]`: scores against truth."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="localisation scores of a heatmap against ground-truth boxes (JSON)",
        description="Score a heatmap against ground-truth boxes: pixel AP (PxAP) with the boxes "
        "as masks, and box precision, recall and F1 per threshold under two criteria (iou: "
        "IoU >= 0.5; hit: the box contains the truth centre). Writes JSON to --json or, without "
        "it, to stdout (the summary then goes to stderr).",
    )
    parser.add_argument("heatmap", help="heatmap GeoTIFF written by `mscam explain`")
    parser.add_argument("--truth", required=True, help="GeoPackage of ground-truth boxes")
    parser.add_argument("--layer", help="layer of the truth GeoPackage (default: the first)")
    parser.add_argument(
        "--scene",
        help="the SAR scene the heatmap explains: boxes fitted to the ships' bright pixels, as "
        "`mscam explain` draws them (default: the peaks' heat regions)",
    )
    parser.add_argument(
        "--json",
        dest="json_out",
        metavar="OUT.json",
        help="write the scores here (default: stdout)",
    )
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        help="plot precision, recall and F1 against the threshold (matplotlib)",
    )
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        metavar="T",
        help="box thresholds in (0, 1] (default 0.05 0.10 … 0.95)",
    )
    parser.set_defaults(run=run)


def summary(result: dict[str, Any]) -> str:
    """A few lines for a human: truth count, PxAP, the best threshold per criterion."""
    pxap = result["pxap"]
    lines = [
        f"truth boxes: {result['truth_boxes']}"
        + (f" ({result['truth_outside']} outside the heatmap)" if result["truth_outside"] else ""),
        f"PxAP: {'n/a (no truth pixel)' if pxap is None else f'{pxap:.4f}'}",
    ]
    for name, best in result["best"].items():
        lines.append(
            f"best F1 ({name}: {result['criteria'][name]}): {best['f1']:.3f} at threshold "
            f"{best['threshold']:g} (precision {best['precision']:.3f}, recall "
            f"{best['recall']:.3f}, {best['predictions']} boxes)"
        )
    return "\n".join(lines)


def plot_curves(result: dict[str, Any], path: str) -> bool:
    """Precision, recall and F1 against the threshold, per criterion, as a PNG at ``path``.

    Returns False (with a warning) when matplotlib is not installed: the plot is optional.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: no plot written (install python3-matplotlib)")
        return False
    from mscam.scene.raster import atomic_output

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    colours = {"precision": "tab:blue", "recall": "tab:orange", "f1": "tab:green"}
    styles = {"iou": "-", "hit": "--"}
    for name, style in styles.items():
        for key, colour in colours.items():
            axes.plot(
                result["thresholds"],
                result[name][key],
                style,
                color=colour,
                marker=".",
                label=f"{key} ({name})",
            )
        best = result["best"][name]
        axes.axvline(best["threshold"], color="grey", linestyle=style, linewidth=0.8)
    pxap = result["pxap"]
    axes.set(
        xlabel="heat threshold",
        ylabel="score",
        ylim=(-0.02, 1.02),
        title="boxes vs truth" + ("" if pxap is None else f" — PxAP {pxap:.3f}"),
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", ncol=2)
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    return True


def run(args: argparse.Namespace) -> int:
    from mscam.eval.scene import evaluate_scene
    from mscam.scene.outputs import check_outputs
    from mscam.scene.raster import atomic_output

    # Before the scoring: the outputs are writable, distinct, and neither is an input.
    inputs = [args.heatmap, args.truth] + ([args.scene] if args.scene else [])
    check_outputs({"--json": args.json_out, "--plot": args.plot}, inputs)
    result = evaluate_scene(
        args.heatmap, args.truth, args.thresholds, layer=args.layer, scene=args.scene
    )
    text = json.dumps(result, indent=2)
    if args.json_out:
        with atomic_output(args.json_out) as temporary:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        print(summary(result))
        print(f"scores: {args.json_out}")
    else:
        print(summary(result), file=sys.stderr)
        print(text)
    if args.plot and plot_curves(result, args.plot):
        print(f"plot: {args.plot}", file=sys.stdout if args.json_out else sys.stderr)
    return 0
