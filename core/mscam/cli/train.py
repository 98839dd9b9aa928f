"""`mscam train --out DIR [--polarisation dual|single]`: train a bundled model's recipe on
synthetic SAR chips."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mscam.training import CARD_VERSION, TrainConfig

    parser = subparsers.add_parser(
        "train", help="train a ship classifier on synthetic SAR chips (the bundled models' recipe)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for card.json + weights")
    parser.add_argument(
        "--report", type=Path, help="folder for the accuracy report (report.json, report.md)"
    )
    parser.add_argument(
        "--chip-cache",
        type=Path,
        help="folder keeping the built chip sets, so the next model of the same chips skips "
        "building them (e.g. build/chips)",
    )
    parser.add_argument(
        "--card-version", default=CARD_VERSION, help=f"the card's version (default {CARD_VERSION})"
    )
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(getattr(defaults, f.name)),
            default=getattr(defaults, f.name),
            help=f"(default {f.default})",
        )
    parser.set_defaults(run=run)


def report_markdown(report) -> str:
    classes, config, extra = report.classes, report.config, report.extra
    lines = [
        f"# Bundled {config.polarisation}-pol model"
        f"{' for finer scenes (averaged renders)' if config.fine_fraction >= 1 else ''}: "
        f"{config.architecture}, held-out accuracy {report.accuracy:.3f}",
        "",
        f"Trained in {report.seconds:.0f} s on CPU ({config.threads} threads; chips built in "
        f"{extra.get('chips_seconds', 0):.0f} s), seed {config.seed}, {config.train_per_class} "
        f"training and {config.test_per_class} held-out chips per class (held-out chips come "
        f"from scenes of other seeds), {config.epochs} epochs, then {config.finetune_epochs} "
        f"fine-tuning epochs with {extra['hard_negatives']['mined']} hard negatives mined from "
        f"{extra['hard_negatives']['tiles']} ship-free tiles of {config.mine_scenes} whole scenes.",
        "",
        "Confusion matrix on held-out chips (rows: true class, columns: predicted):",
        "",
        "| true \\ predicted | " + " | ".join(classes) + " | recall |",
        "|---" * (len(classes) + 2) + "|",
    ]
    for name, row in zip(classes, report.confusion):
        lines.append(
            f"| {name} | "
            + " | ".join(str(v) for v in row)
            + f" | {report.per_class_recall[name]:.3f} |"
        )
    lines += ["", f"Ship precision {extra['ship_precision']:.3f}.", ""]
    if extra.get("ship_recall_by_length"):
        lines += ["Ship recall by length:", "", "| length | ships | recall |", "|---|---|---|"]
        for band, value in extra["ship_recall_by_length"].items():
            recall = "–" if value["recall"] is None else f"{value['recall']:.3f}"
            lines.append(f"| {band} | {value['n']} | {recall} |")
        lines.append("")
    if extra.get("by_flavour"):
        lines += ["By polarisation flavour:", "", "| flavour | chips | accuracy | ship recall |"]
        lines.append("|---|---|---|---|")
        for flavour, value in extra["by_flavour"].items():
            recall = "–" if value["ship_recall"] is None else f"{value['ship_recall']:.3f}"
            lines.append(f"| {flavour} | {value['n']} | {value['accuracy']:.3f} | {recall} |")
        lines.append("")
    lines.append(
        f"Spatial spread of ∂y_ship/∂A at the target layer: {extra['gradient_spread']:.3f} "
        "(mean over held-out ship chips and channels of std_ij(g) / mean_ij |g|; 0 when the "
        "gradient is constant within each channel, as under global average pooling + linear)."
    )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from mscam.training import TrainConfig, train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    _, _, report = train(
        config,
        args.out,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        chip_cache=args.chip_cache,
        version=args.card_version,
    )
    if args.report is not None:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / "report.json").write_text(json.dumps(report.to_dict(), indent=1) + "\n")
        (args.report / "report.md").write_text(report_markdown(report))
    print(
        f"model: {args.out / 'card.json'} (held-out accuracy {report.accuracy:.3f}, "
        f"{report.seconds:.0f} s)"
    )
    return 0
