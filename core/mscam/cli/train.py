"""`mscam train --out DIR`: train the default model's recipe on synthetic SAR chips."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mscam.models.train import TrainConfig

    parser = subparsers.add_parser(
        "train", help="train a ship classifier on synthetic SAR chips (the bundled model's recipe)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for card.json + weights")
    parser.add_argument(
        "--report", type=Path, help="folder for the accuracy report (report.json, report.md)"
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
    classes = report.classes
    lines = [
        f"# Default model: {report.config.architecture}, held-out accuracy {report.accuracy:.3f}",
        "",
        f"Trained in {report.seconds:.0f} s on CPU ({report.config.threads} threads), seed "
        f"{report.config.seed}, {report.config.train_per_class} training and "
        f"{report.config.test_per_class} held-out chips per class (held-out chips come from "
        "scenes of other seeds).",
        "",
        "Confusion matrix (rows: true class, columns: predicted):",
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
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from mscam.models.train import TrainConfig, train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    _, _, report = train(config, args.out, progress=lambda m: print(m, file=sys.stderr))
    if args.report is not None:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / "report.json").write_text(json.dumps(report.to_dict(), indent=1) + "\n")
        (args.report / "report.md").write_text(report_markdown(report))
    print(
        f"model: {args.out / 'card.json'} (held-out accuracy {report.accuracy:.3f}, "
        f"{report.seconds:.0f} s)"
    )
    return 0
