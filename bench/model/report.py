"""The bundled models' summary report, with a family hold-out experiment: bench/model/report.md.

    python bench/model/report.py [--out bench/model] [--holdout windfarm] [--skip-holdout]

Reads the per-model reports `mscam train --report` wrote (bench/model/dual, bench/model/single),
measures the spatial spread of ∂y/∂A at each model's target layer against the former bundled
model (compact-cnn, global average pooling + linear: 0 by construction), and runs the hold-out
experiment: the dual-pol recipe trained twice on the same chips, once with every family and once
without one (default: wind farms), both without hard-negative mining (mined scenes would bring
the family back), then scored on the held-out chips of that family. The training chips come from
the same cache as `make model` (build/chips).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from mscam.models import load_model
from mscam.training import (
    SPACING_RANGE,
    TrainConfig,
    chip_arguments,
    chip_set,
    gradient_spread,
    to_input,
    train,
)

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "chips"
BRIGHT_FAMILIES = ("platform", "windfarm", "buoy", "rock", "island", "ghost", "land_ghost")
MODELS = {
    "dual": ROOT / "core/mscam/models/default",
    "single": ROOT / "core/mscam/models/single_pol",
}


def holdout(family: str, config: TrainConfig, say) -> dict:
    """Train with and without ``family``; score both on the held-out chips of that family."""
    results = {}
    for name, excluded in (("all families", ""), (f"without {family}", family)):
        variant = replace(config, exclude_families=excluded)
        started = time.perf_counter()
        _, _, report = train(variant, progress=say, chip_cache=CACHE)
        scores = report.extra["by_family"].get(family, {})
        results[name] = {
            "seconds": round(time.perf_counter() - started),
            "held_out_accuracy": report.accuracy,
            "family": scores,
            "ship_recall": report.per_class_recall["ship"],
            "by_family": report.extra["by_family"],
        }
    return {"family": family, "config": vars(config), "results": results}


def spreads(n_chips: int = 128) -> dict:
    """Gradient spread of each bundled model and of a compact-cnn on held-out ship chips."""
    from mscam.models import build_architecture

    chips = chip_set(chip_arguments(TrainConfig(), 300, 10_000), CACHE)
    ships = torch.as_tensor(chips.labels == list(chips.class_names).index("ship"))
    x = chips.x[ships.numpy()][:n_chips]
    out = {}
    for kind, folder in MODELS.items():
        loaded = load_model(folder)
        x_in = to_input(x, kind)
        out[kind] = gradient_spread(loaded.model, loaded.card.target_layer, x_in, 0)
    torch.manual_seed(0)
    cnn = build_architecture("compact-cnn", in_channels=2, num_classes=4).eval()
    out["compact-cnn (GAP + linear)"] = gradient_spread(cnn, "block4", to_input(x), 0)
    return out


def markdown(models: dict, spread: dict, hold: dict | None) -> str:
    lines = [
        "# Bundled models",
        "",
        "| model | card roles | held-out accuracy | ship precision | ship recall | "
        "<50 m | 50-100 m | 100-200 m | >=200 m | VV accuracy | HH accuracy | train s |",
        "|---" * 12 + "|",
    ]
    for kind, report in models.items():
        bands = report["ship_recall_by_length"]
        flavour = report["by_flavour"]
        roles = "CO, CROSS" if kind == "dual" else "CO"
        cells = [f"{v['recall']:.3f} ({v['n']})" for v in bands.values()]
        lines.append(
            f"| {kind}-pol | {roles} | {report['accuracy']:.3f} | {report['ship_precision']:.3f} "
            f"| {report['per_class_recall']['ship']:.3f} | " + " | ".join(cells) + " | "
            f"{flavour.get('VV', {}).get('accuracy', float('nan')):.3f} | "
            f"{flavour.get('HH', {}).get('accuracy', float('nan')):.3f} | "
            f"{report['seconds']:.0f} |"
        )
    lines += [
        "",
        "Held-out chips come from scenes of other seeds (same synthetic world, VV- and "
        f"HH-flavoured, pixel spacing {SPACING_RANGE[0]}-{SPACING_RANGE[1]} m); recall by "
        "ship length counts (n) ship chips per band. Per-model details: `dual/report.md`, "
        "`single/report.md`.",
        "",
        "## Spatial spread of the gradient at the CAM target layer",
        "",
        "Mean over held-out ship chips and channels of std_ij(g) / mean_ij |g|, "
        "g = ∂y_ship/∂A at the target layer. 0 means ∂y/∂A is one constant per channel, so "
        "MS-CAM's element-wise weight ReLU(g) carries no spatial information.",
        "",
        "| model | target layer above | spread |",
        "|---|---|---|",
    ]
    above = {
        "dual": "conv3x3-BN-ReLU, conv3x3-ReLU, 1x1 class maps, LSE pooling",
        "single": "conv3x3-BN-ReLU, conv3x3-ReLU, 1x1 class maps, LSE pooling",
    }
    for name, value in spread.items():
        lines.append(
            f"| {name} | {above.get(name, 'global average pooling + linear')} | {value:.3f} |"
        )
    if hold is not None:
        family = hold["family"]
        lines += [
            "",
            f"## Family hold-out: {family}",
            "",
            (
                f"The dual-pol recipe ({hold['config']['epochs']} epochs, no hard-negative "
                f"mining) trained on the same chips with and without the `{family}` family; "
                "scored"
                if "note" not in hold
                else "Scored"
            )
            + f" on the held-out `{family}` chips (other scenes). 'Not called ship' is "
            "what matters to a ship detector; 'right class' is the chip's own class.",
            "",
            f"| training | {family} chips | not called ship | right class | other bright "
            "families: not called ship | all held-out accuracy | ship recall |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, result in hold["results"].items():
            fam = result["family"]
            others = [
                value["ship_decision_right"]
                for other, value in result.get("by_family", {}).items()
                if other in BRIGHT_FAMILIES and other != family
            ]
            seen = f"{sum(others) / len(others):.3f}" if others else "–"
            lines.append(
                f"| {name} | {fam.get('n', 0)} | {fam.get('ship_decision_right', float('nan')):.3f}"
                f" | {fam.get('correct_class', float('nan')):.3f} | {seen} | "
                f"{result['held_out_accuracy']:.3f} | {result['ship_recall']:.3f} |"
            )
        if hold.get("note"):
            lines += ["", hold["note"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "model")
    parser.add_argument("--holdout", default="windfarm", help="chip family to hold out")
    parser.add_argument("--holdout-epochs", type=int, default=4)
    parser.add_argument(
        "--skip-holdout", action="store_true", help="reuse holdout.json instead of training"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    models = {kind: json.loads((args.out / kind / "report.json").read_text()) for kind in MODELS}
    hold_path = args.out / "holdout.json"
    hold = None
    if args.skip_holdout:
        hold = json.loads(hold_path.read_text()) if hold_path.is_file() else None
    else:
        config = TrainConfig(epochs=args.holdout_epochs, mine_scenes=0, finetune_epochs=0)
        hold = holdout(args.holdout, config, say)
        hold_path.write_text(json.dumps(hold, indent=1) + "\n")
    spread = spreads()
    (args.out / "spread.json").write_text(json.dumps(spread, indent=1) + "\n")
    (args.out / "report.md").write_text(markdown(models, spread, hold))
    print(f"{args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
