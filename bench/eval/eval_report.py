"""The tables (results.md) and the plots (PNG) of bench/eval/run_eval.py's report.

matplotlib is imported only by `plots` (Debian's python3-matplotlib serves); without it the
plots are skipped with a message and the tables are still written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT = "ms-cam"
REFERENCE = "image"
RANDOM = "random:"
GATED = "grad-cam*image"
MEAN_ELE = "ms-cam[ele=channel-mean]"
UNRANKED = ("reference", "control")
#: τ values shown in the BoxAcc(τ) table.
TABLE_TAUS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def label(key: str, row: dict[str, Any]) -> str:
    if row["kind"] == "reference":
        return "image s(I) (reference, no model)"
    if row["kind"] == "control":
        return f"*control*: {control_name(key)}"
    if key == DEFAULT:
        return "**ms-cam** (default)"
    return key


def control_name(key: str) -> str:
    if key.startswith(RANDOM):
        return f"{key[len(RANDOM) :]} on the random model"
    return {
        GATED: "s(Grad-CAM)·s(I)",
        MEAN_ELE: "MS-CAM, ω_ele = its channel mean",
        REFERENCE: "image s(I)",
    }.get(key, key)


def table(
    rows: list[tuple[str, dict[str, Any]]],
    columns: Sequence[tuple[str, Callable[[dict[str, Any]], Any], int, str]],
) -> list[str]:
    """A markdown table; columns are (header, getter, digits, better) with better in
    {"high", "low", ""}: the best value of a column among the methods (not the reference or the
    controls) is bold."""
    header = ["variant", *(c[0] for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best: dict[int, float] = {}
    for j, (_, get, digits, better) in enumerate(columns):
        values = [get(r) for k, r in rows if r["kind"] not in UNRANKED]
        values = [round(v, digits) for v in values if isinstance(v, float)]
        if better and values:
            best[j] = max(values) if better == "high" else min(values)
    for key, row in rows:
        cells = [label(key, row)]
        for j, (_, get, digits, _) in enumerate(columns):
            value = get(row)
            text = fmt(value, digits)
            if (
                j in best
                and isinstance(value, float)
                and row["kind"] not in UNRANKED
                and round(value, digits) == best[j]
            ):
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _get(*path: str) -> Callable[[dict[str, Any]], Any]:
    def get(row: dict[str, Any]) -> Any:
        value: Any = row
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    return get


def _share(value: float | None) -> str:
    return "an unknown share" if value is None else f"{100 * value:.0f} %"


def _tp(row: dict[str, Any], criterion: str) -> str | None:
    scores = row.get("scene", {}).get(criterion, {})
    if "tp_at_best" not in scores:
        return None
    return f"{scores['tp_at_best']} / {scores['predictions_at_best']}"


def markdown(report: dict[str, Any]) -> str:
    s, m, a = report["settings"], report["machine"], report["analysis"]
    rows = list(report["variants"].items())
    control_rows = list(report.get("controls", {}).items())
    f = s["faithfulness"]
    ships_per_scene = ", ".join(f"{sc['name']}: {sc['ships']}" for sc in s["scenes"])
    lines = ["# Method comparison on SAR: every CAM method and every MS-CAM option", ""]
    if s["quick"]:
        lines += ["**Quick smoke run: too few chips and scenes to mean anything.**", ""]
    during_timing = s["timing"].get("other_jobs_cpu_share")
    during_run = m.get("other_jobs_cpu_share")
    if max(during_timing or 0, during_run or 0) > 0.1:
        lines += [
            f"**The CPU was shared with other jobs during this run**: other processes used "
            f"{100 * (during_timing or 0):.0f} % of the CPU while the times per tile were "
            f"measured and {100 * (during_run or 0):.0f} % over the whole run. The times per "
            "tile and per scene are inflated and noisy: compare them only within this table, "
            "and rerun `make eval` on an idle machine for timings. Every other number is "
            "deterministic (fixed seeds) and does not depend on the load.",
            "",
        ]
    lines += [
        f"Made by `make eval` (`bench/eval/run_eval.py`) in {report['seconds']:.0f} s on "
        f"{m['date']}. Model: {s['model']}, {s.get('model_card', 'the bundled default')}.",
        "",
        "- **Chips** (held out: training used seeds 0 and 10000): "
        f"`build_chips({s['chips_per_class']}, chip_size=64, seed={s['chip_seed']})`, "
        f"{s['chips_per_class']} chips per class; "
        f"{s['ship_chips']} ship chips with {s['ship_boxes']} ship boxes (box area median "
        f"{s['ship_box_area_px']['median']:g} px, 10–90 % {s['ship_box_area_px']['p10']:g}–"
        f"{s['ship_box_area_px']['p90']:g} px, of 64 × 64 = 4096). The model is right on "
        f"{100 * s['model_accuracy_on_chips']:.1f} % of all chips and calls "
        f"{100 * s['ship_chips_predicted_ship']:.1f} % of the ship chips `ship`.",
        "- **WSOL**: maps of the ship class (GT-known); Top-1 Loc with the model's predictions; "
        "v1 boxes = the largest 8-connected component of `s ≥ τ·max(s)`, τ ∈ {0, 0.01, …, 0.99}; "
        "MaxBoxAcc at δ = 0.5, MaxBoxAccV2 over δ ∈ {0.3, 0.5, 0.7} (every component's box); "
        "PxAP with the ship boxes as masks. *Pointing*: the map's maximum lies in a ship box. "
        "*Small / large*: MaxBoxAcc of the ship chips whose largest box has at most / more than "
        "the median area.",
        f"- **Faithfulness**: {f['groups']['ship']} ship chips (ship class) for every test; "
        f"{f['groups'].get('land', 0)} land and {f['groups'].get('bright', 0)} bright chips "
        "(their true class) also for Average Drop, Increase in Confidence, occlusion and "
        "conservation. Removed pixels take the **baseline: the per-channel mean of the "
        f"{s['chips_per_class']} held-out sea chips in model input units**, "
        f"{', '.join(f'{v:.4f}' for v in f['baseline_values'])} (VV, VH; = "
        f"{', '.join(f'{v:.1f} dB' for v in f['baseline_db'])}). Average Drop's explained image "
        f"is `map·x + (1 − map)·baseline`; deletion/insertion in {f['steps']} steps "
        f"({4096 // f['steps']} pixels a step); occlusion/conservation at map ≥ "
        f"{f['evidence_level']}. Sea chips are left out: with the sea mean as baseline, removing "
        "sea changes nothing.",
        f"- **Scenes**: {', '.join(sorted({sc['profile'] for sc in s['scenes']}))}, seeds "
        f"{', '.join(str(sd) for sd in sorted({sc['seed'] for sc in s['scenes']}))}, "
        f"{s['scenes'][0]['size']}² pixels, {sum(sc['ships'] for sc in s['scenes'])} ships "
        f"({ships_per_scene}); "
        f"`explain_scene` with {s['scene_settings']}; `evaluate_scene` against the truth. "
        f"Score-CAM on seeds {s['score_cam_scene_seeds']}.",
        f"- **Machine**: {m['cpu']}, {m['logical_cores']} logical cores, torch {m['torch']} with "
        f"{m['torch_threads']} threads, Python {m['python']}; load average "
        f"{m['load_average_at_start']} at the start and {m.get('load_average_at_end')} at the "
        f"end (this run's own threads included); other processes used "
        f"{_share(m.get('other_jobs_cpu_share'))} of the CPU during the run and "
        f"{_share(s['timing'].get('other_jobs_cpu_share'))} during the timing. "
        "Time per tile: a batch of "
        f"{s['timing']['batch']} ship chips, median of {s['timing']['rounds']} rounds after a "
        f"warm-up (Score-CAM: one round); a bare forward pass takes "
        f"{s['timing']['forward_ms_per_tile']['ms_per_tile']:.3f} ms per tile.",
        "",
        "## Localisation on ship chips (WSOL)",
        "",
        "Best of each column in bold (the image reference and the controls are not ranked). "
        "*Δ vs default*: MaxBoxAcc minus MS-CAM default's, with the 95 % interval of a paired "
        f"bootstrap over the ship chips ({a.get('bootstrap_resamples')} resamples, τ chosen again "
        "in each). *Beats controls?*: whether the method's MaxBoxAcc / PxAP beats every sanity "
        "control (its own maps on a randomised model, s(I), s(Grad-CAM)·s(I)), with 95 % "
        "confidence; see *Sanity controls* below. Only a *yes* is localisation the model did.",
        "",
    ]
    w = "wsol"
    vs = a.get("vs_default", {})

    def delta(key: str) -> str | None:
        if key not in vs:
            return None
        d, (low, high) = vs[key]["d_max_box_acc"], vs[key]["d_max_box_acc_ci95"]
        return f"{d:+.3f} [{low:+.3f}, {high:+.3f}]"

    verdicts = a.get("controls", {})

    def beats(key: str) -> str | None:
        if key not in verdicts:
            return None
        v = verdicts[key]
        return " / ".join(
            "yes" if v[f"beats_controls_{metric}"] else "no" for metric in ("max_box_acc", "pxap")
        )

    rows_with_keys = [(k, {**r, "_key": k}) for k, r in rows + control_rows]
    lines += table(rows_with_keys, [
        ("MaxBoxAcc", _get(w, "max_box_acc"), 3, "high"),
        ("Δ vs default [95 % CI]", lambda r: delta(r["_key"]), 3, ""),
        ("best τ", _get(w, "best_threshold"), 2, ""),
        ("MaxBoxAccV2", _get(w, "max_box_acc_v2"), 3, "high"),
        ("Top-1 Loc", _get(w, "top1_loc"), 3, "high"),
        ("GT-known Loc", _get(w, "gt_known_loc"), 3, "high"),
        ("PxAP", _get(w, "pxap"), 3, "high"),
        ("pointing", _get(w, "pointing_game"), 3, "high"),
        ("MaxBoxAcc small", _get(w, "max_box_acc_small"), 3, "high"),
        ("MaxBoxAcc large", _get(w, "max_box_acc_large"), 3, "high"),
        ("ms / tile", _get("time", "ms_per_tile"), 2, "low"),
        ("beats controls? (MaxBoxAcc / PxAP)", lambda r: beats(r["_key"]), 0, ""),
    ])  # fmt: skip
    lines += sanity_section(report, control_rows)
    lines += [
        "",
        "## BoxAcc(τ) at δ = 0.5: the pixel-threshold analysis",
        "",
        "![BoxAcc(τ)](boxacc_curve.png)",
        "",
    ]
    taus = np.asarray(s["wsol"]["thresholds"])
    picks = [int(np.argmin(np.abs(taus - t))) for t in TABLE_TAUS]
    lines += table(
        rows,
        [(f"τ={taus[i]:g}", (lambda r, i=i: r["wsol"]["box_acc"][i]), 3, "high") for i in picks],
    )
    g = f["groups"]
    lines += [
        "",
        f"## Faithfulness on ship chips (ship class, n = {g['ship']})",
        "",
        "↓ lower is better, ↑ higher is better. Drops in %, AUCs of the ship probability.",
        "",
    ]
    lines += table(rows, [
        ("Average Drop ↓", _get("faithfulness", "ship", "average_drop"), 2, "low"),
        ("Increase in Conf. ↑", _get("faithfulness", "ship", "increase_in_confidence"), 1,
         "high"),
        ("deletion AUC ↓", _get("faithfulness", "ship", "deletion_auc"), 3, "low"),
        ("insertion AUC ↑", _get("faithfulness", "ship", "insertion_auc"), 3, "high"),
        ("occlusion drop ↑", _get("faithfulness", "ship", "occlusion_drop"), 1, "high"),
        ("conservation drop ↓", _get("faithfulness", "ship", "conservation_drop"), 1, "low"),
    ])  # fmt: skip
    lines += [
        "",
        f"## Faithfulness on land ({g.get('land', 0)}) and bright ({g.get('bright', 0)}) chips "
        "(their true class)",
        "",
        "These numbers are set by the baseline more than by the maps: whatever a map keeps, "
        "the rest of a land chip becomes sea (Average Drop ≈ 100 % and conservation drop 100 % "
        "for every method), and a bright target on a flat sea-mean background looks *more* like "
        "the `bright` class (Increase in Confidence ≈ 90 %; conservation drops of −1000 % and "
        "more are rises of a small probability). Only the occlusion drops tell the methods "
        "apart here.",
        "",
    ]
    lines += table(rows, [
        ("land: AD ↓", _get("faithfulness", "land", "average_drop"), 1, "low"),
        ("land: occlusion ↑", _get("faithfulness", "land", "occlusion_drop"), 1, "high"),
        ("land: conservation ↓", _get("faithfulness", "land", "conservation_drop"), 1, "low"),
        ("bright: AD ↓", _get("faithfulness", "bright", "average_drop"), 1, "low"),
        ("bright: IC ↑", _get("faithfulness", "bright", "increase_in_confidence"), 1, "high"),
        ("bright: occlusion ↑", _get("faithfulness", "bright", "occlusion_drop"), 1, "high"),
        ("bright: conservation ↓", _get("faithfulness", "bright", "conservation_drop"), 0,
         "low"),
    ])  # fmt: skip
    scene_rows = [(k, r) for k, r in rows if "scene" in r]
    lines += [
        "",
        "## Scenes (the scene pipeline with its default settings)",
        "",
        "F1 pooled over the scenes (true positives, predictions and truths summed per threshold "
        "0.05, 0.10, …, 0.95); *iou*: a box matches a ship at IoU ≥ 0.5, *hit*: the box contains "
        "the ship's centre. PxAP: mean over the scenes. The heatmap is `p(ship) · s(CAM)` per "
        "tile: the model's prescreen decides which tiles are hot, the CAM only where in the tile.",
        "",
        "![scene F1](scene_f1_curve.png)",
        "",
    ]
    lines += table(scene_rows, [
        ("PxAP", _get("scene", "mean_pxap"), 3, "high"),
        ("best F1 iou", _get("scene", "iou", "best_f1"), 3, "high"),
        ("at τ", _get("scene", "iou", "best_threshold"), 2, ""),
        ("TP / boxes there", lambda r: _tp(r, "iou"), 0, ""),
        ("F1 iou @0.5", _get("scene", "iou", "f1_at_default"), 3, "high"),
        ("best F1 hit", _get("scene", "hit", "best_f1"), 3, "high"),
        ("at τ", _get("scene", "hit", "best_threshold"), 2, ""),
        ("TP / boxes there", lambda r: _tp(r, "hit"), 0, ""),
        ("F1 hit @0.5", _get("scene", "hit", "f1_at_default"), 3, "high"),
        ("s / scene", _get("scene", "seconds_per_scene"), 1, "low"),
    ])  # fmt: skip
    if scene_rows:
        names = [sc["scene"] for sc in scene_rows[0][1]["scene"]["scenes"]]
        lines += ["", "PxAP per scene:", ""]
        lines += table(scene_rows, [
            (name, (lambda r, n=name: next((sc["pxap"] for sc in r["scene"]["scenes"]
                                             if sc["scene"] == n), None)), 3, "high")
            for name in names
        ])  # fmt: skip
    lines += ["", "## What explains the numbers", ""]
    groups = a["identical_ship_maps"]
    if groups:
        lines.append(
            "- **Identical maps** on the ship chips (max difference ≤ 1e-4): "
            + "; ".join(" = ".join(group) for group in groups)
            + "."
        )
    spread = a["gradient"]["max_relative_spatial_range"]
    if spread < 1e-6:
        spread_text = "0 (exactly constant)" if spread == 0 else f"{spread:.2g}"
        negative = a.get("ship_fc_weights_negative_share")
        lines.append(
            f"- The gradient `∂y_ship/∂A` at the target layer varies over space by at most "
            f"{spread_text} of its largest magnitude: the head "
            "is global average pooling and a linear layer, so `g_k = w_ship,k / (h·w)` is one "
            "number per channel. Grad-CAM, XGrad-CAM and HiResCAM reduce to the same map, and "
            "MS-CAM's element-wise weight `ReLU(g)` only keeps or drops whole channels"
            + (f" ({100 * negative:.0f} % of the ship weights are negative)." if negative else ".")
        )
    else:
        lines.append(
            f"- The gradient `∂y_ship/∂A` at the target layer varies over space (its largest "
            f"range within a channel is {spread:.2g} of its largest magnitude): the layers above "
            "the target layer keep spatial structure, so MS-CAM's element-wise weight `ReLU(g)` "
            "carries spatial information."
        )
    h, wd = a["feature_map_size"]
    lines.append(
        f"- The target layer's map is {h}×{wd} for a 64-pixel chip: one cell spans "
        f"{64 // h}×{64 // wd} pixels, more than the median ship box "
        f"({s['ship_box_area_px']['median']:g} px). A map upsampled from it cannot outline a "
        "small ship; the image gate `s(I)` of the self-matching methods brings the pixel detail."
    )
    if vs:
        lines += ["", "Differences to MS-CAM default on the ship chips (paired bootstrap, 95 %):",
                  "", "| variant | Δ MaxBoxAcc | 95 % CI | Δ pointing | 95 % CI |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for key, d in vs.items():
            (a0, a1), (p0, p1) = d["d_max_box_acc_ci95"], d["d_pointing_ci95"]
            lines.append(
                f"| {key} | {d['d_max_box_acc']:+.3f} | [{a0:+.3f}, {a1:+.3f}] | "
                f"{d['d_pointing']:+.3f} | [{p0:+.3f}, {p1:+.3f}] |"
            )
    lines.append("")
    return "\n".join(lines)


def _interval(d: dict[str, Any] | None, metric: str) -> str | None:
    if d is None or f"d_{metric}" not in d:
        return None
    low, high = d[f"d_{metric}_ci95"]
    mark = "" if low > 0 else " ✗"
    return f"{d[f'd_{metric}']:+.3f} [{low:+.3f}, {high:+.3f}]{mark}"


def _names(keys: Sequence[str]) -> str:
    return ", ".join(keys) if keys else "none"


def sanity_section(report: dict[str, Any], control_rows: list[tuple[str, dict[str, Any]]]) -> list:
    """The sanity controls: their own numbers, each method against them, and what they show."""
    a, variants = report["analysis"], {**report["variants"], **report.get("controls", {})}
    verdicts = a.get("controls")
    if not verdicts:
        return []
    randomised = a.get("random_model", {})
    lines = [
        "",
        "## Sanity controls: is the localisation the model's? (Adebayo et al. 2018)",
        "",
        "An explanation that does not change when the model's weights are destroyed does not "
        "explain the model. Controls, on the same ship chips and boxes: **every method on a "
        "fully randomised copy of the model** (every layer re-initialised as at construction, "
        f"seed {randomised.get('seed')}; BatchNorm statistics reset), **the image alone s(I)**, "
        "**s(Grad-CAM)·s(I)**, and **MS-CAM with ω_ele replaced by its per-channel spatial "
        "mean** (the element-wise weight's spatial pattern removed). The randomised model is "
        f"right on {100 * randomised.get('accuracy_on_chips', 0):.1f} % of the chips (4 classes) "
        f"and calls {100 * randomised.get('ship_chips_predicted_ship', 0):.1f} % of the ship "
        "chips `ship`: its function is destroyed. *Spearman*: rank correlation of each chip's "
        "map on the random model with its map on the trained model, mean over the chips (1: "
        "the same ranking; Adebayo et al. read a high value as failing the check). Controls are "
        "scored on the chips only, not on the scenes (the scene pipeline's prescreen needs the "
        "trained model).",
        "",
    ]
    lines += table(control_rows, [
        ("MaxBoxAcc", _get("wsol", "max_box_acc"), 3, ""),
        ("PxAP", _get("wsol", "pxap"), 3, ""),
        ("pointing", _get("wsol", "pointing_game"), 3, ""),
        ("Spearman with trained", _get("spearman_with_trained"), 2, ""),
    ])  # fmt: skip
    for metric, title in (("max_box_acc", "MaxBoxAcc"), ("pxap", "PxAP")):
        lines += [
            "",
            f"{title} of each method minus each control's (paired bootstrap over the ship chips, "
            f"95 % interval; ✗: the interval does not lie above 0):",
            "",
            f"| method | {title} | vs own maps, random model | vs s(I) | vs s(Grad-CAM)·s(I) | "
            "beats controls? |",
            "|---|---|---|---|---|---|",
        ]
        for key, v in verdicts.items():
            own = v["vs"].get(RANDOM + key.partition("[")[0])
            cells = [
                key,
                fmt(variants[key]["wsol"][metric]),
                _interval(own, metric),
                _interval(v["vs"].get(REFERENCE), metric),
                _interval(v["vs"].get(GATED), metric),
                "**yes**" if v[f"beats_controls_{metric}"] else "no",
            ]
            lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
    lines += ["", "What the controls show:", ""]
    rho = {
        k[len(RANDOM) :]: r.get("spearman_with_trained")
        for k, r in control_rows
        if k.startswith(RANDOM)
    }
    shown = ", ".join(f"{k} {fmt(v, 2)}" for k, v in rho.items())
    lines.append(f"- Spearman of the maps on the random model with the trained maps: {shown}.")
    kept = [k for k, v in rho.items() if v is not None and v >= 0.5]
    if kept:
        lines.append(
            f"- {_names(kept)} keep a rank correlation of 0.5 or more with their trained maps "
            "after every weight is destroyed: much of what they show is the image, not the model."
        )
    for metric, title in (("max_box_acc", "MaxBoxAcc"), ("pxap", "PxAP")):
        passed = [k for k, v in verdicts.items() if v[f"beats_controls_{metric}"]]
        lost = [
            k
            for k, v in verdicts.items()
            if not v[f"beats_controls_{metric}"]
            and any(d[f"d_{metric}_ci95"][1] < 0 for c, d in v["vs"].items() if c != MEAN_ELE)
        ]
        line = f"- {title}: methods that beat every control: **{_names(passed)}**."
        if lost:
            line += (
                f" Worse than at least one control (the whole interval below 0): {_names(lost)}."
            )
        lines.append(line)
    image = variants.get(REFERENCE, {}).get("wsol", {})
    gated = variants.get(GATED, {}).get("wsol", {})
    if image and gated:
        lines.append(
            f"- The image alone, s(I), reaches MaxBoxAcc {fmt(image.get('max_box_acc'))} and "
            f"PxAP {fmt(image.get('pxap'))}; s(Grad-CAM)·s(I) {fmt(gated.get('max_box_acc'))} and "
            f"{fmt(gated.get('pxap'))}."
        )
    mean_ele = verdicts.get(DEFAULT, {}).get("vs", {}).get(MEAN_ELE)
    if mean_ele is not None:
        same = any(DEFAULT in g and MEAN_ELE in g for g in a.get("identical_ship_maps", []))
        if same:
            lines.append(
                "- MS-CAM's maps are identical to the ablation with ω_ele replaced by its "
                "channel mean: on this model the element-wise weight adds nothing."
            )
        else:
            lines.append(
                "- MS-CAM minus the ablation with ω_ele replaced by its channel mean: MaxBoxAcc "
                f"{_interval(mean_ele, 'max_box_acc')}, PxAP {_interval(mean_ele, 'pxap')} "
                "(above 0: the element-wise weight's spatial pattern helps)."
            )
    passed_any = [
        k
        for k, v in verdicts.items()
        if v["beats_controls_max_box_acc"] or v["beats_controls_pxap"]
    ]
    if passed_any:
        lines.append(
            f"- So only {_names(passed_any)} localise ships beyond what the image and a random "
            "model give; every other method's localisation numbers above do not measure the model."
        )
    else:
        lines.append(
            "- So no method localises ships measurably better than the image and a random model "
            "do: on this model the localisation numbers above measure the image, not the model."
        )
    return lines


# -- plots -----------------------------------------------------------------------------------------

COLOURS = {
    "ms-cam": "black",
    "self-matching": "tab:blue",
    "grad-cam": "tab:orange",
    "grad-cam++": "tab:green",
    "xgrad-cam": "tab:red",
    "layer-cam": "tab:purple",
    "hires-cam": "tab:brown",
    "score-cam": "tab:pink",
    REFERENCE: "tab:gray",
}
OPTION_COLOURS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:olive",
    "tab:cyan",
    "tab:pink",
)


def short(key: str) -> str:
    """A legend label: MS-CAM's options by their symbol, the reference by what it is."""
    if key == DEFAULT:
        return "MS-CAM default"
    if key == REFERENCE:
        return "image s(I), no model"
    method, _, options = key.partition("[")
    names = {"ms-cam": "MS-CAM", "self-matching": "Self-Matching"}
    if not options:
        return key
    text = options.rstrip("]")
    for old, new in (
        ("channel_weight=", "ω_cha="),
        ("channel_norm=False", "no channel norm"),
        ("matching=separate", "separate matching"),
        ("match_size=", "Q="),
    ):
        text = text.replace(old, new)
    return f"{names.get(method, method)} {text}"


def _merged(curves: list[tuple[str, np.ndarray]]) -> list[tuple[list[str], np.ndarray]]:
    """Curves with identical values drawn once, labelled with every key."""
    out: list[tuple[list[str], np.ndarray]] = []
    for key, curve in curves:
        for keys, seen in out:
            if np.array_equal(seen, curve):
                keys.append(key)
                break
        else:
            out.append(([key], curve))
    return out


def plots(report: dict[str, Any], examples: dict[str, Any] | None, out: Path) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: no plots (install python3-matplotlib)")
        return
    boxacc_plot(Figure, report, out / "boxacc_curve.png")
    scene_plot(Figure, report, out / "scene_f1_curve.png")
    if examples is not None:
        examples_plot(Figure, report, examples, out / "examples.png")


def boxacc_plot(figure_class: Any, report: dict[str, Any], path: Path) -> None:
    variants = report["variants"]
    taus = np.asarray(report["settings"]["wsol"]["thresholds"])
    figure = figure_class(figsize=(14, 6.5), layout="constrained")
    left, right = figure.subplots(1, 2, sharey=True)
    panels = (
        (
            left,
            "every method, default options",
            [k for k, r in variants.items() if r["kind"] in ("method", "reference")],
        ),
        (
            right,
            "MS-CAM's options (and Self-Matching with Grad-CAM weights)",
            [DEFAULT] + [k for k, r in variants.items() if r["kind"] == "option"],
        ),
    )
    for axes, title, keys in panels:
        curves = [(k, np.asarray(variants[k]["wsol"]["box_acc"])) for k in keys]
        for index, (group, curve) in enumerate(_merged(curves)):
            head = group[0]
            is_default = DEFAULT in group
            if axes is left:
                colour = COLOURS.get(variants[head]["method"], "tab:gray")
            else:
                colour = "black" if is_default else OPTION_COLOURS[index % len(OPTION_COLOURS)]
            style = ":" if variants[head]["kind"] == "reference" else "-"
            names = [short(k) for k in group]
            best = int(np.argmax(curve))
            joined = " = ".join(names)
            if len(joined) > 48:
                joined = "\n   = ".join(names)
            text = f"{joined}  (max {curve[best]:.3f} at τ={taus[best]:.2f})"
            axes.plot(
                taus,
                curve,
                style,
                color=colour,
                lw=3.2 if is_default else 1.5,
                label=text,
                zorder=3 if is_default else 2,
            )
            axes.plot(taus[best], curve[best], "o", color=colour, ms=6 if is_default else 4)
        axes.set_title(title, fontsize=11)
        axes.set_xlabel("threshold τ (share of the map's maximum)")
        axes.set_xlim(0, 1)
        axes.grid(alpha=0.3)
        axes.legend(
            fontsize=8,
            loc="upper left",
            title_fontsize=8,
            title="a = b: identical curves; dot: the best τ",
        )
    left.set_ylabel("BoxAcc(τ), δ = 0.5 (share of ship chips)")
    s = report["settings"]
    figure.suptitle(
        f"BoxAcc(τ) on {s['ship_chips']} held-out ship chips (seed {s['chip_seed']}), "
        f"{s['model'].split(' (')[0]}: the box of the largest component of s ≥ τ·max(s)",
        fontsize=11,
    )
    figure.savefig(path, dpi=110)


def scene_plot(figure_class: Any, report: dict[str, Any], path: Path) -> None:
    variants = {k: r for k, r in report["variants"].items() if "scene" in r}
    if not variants:
        return
    figure = figure_class(figsize=(14, 5.5), layout="constrained")
    panels = figure.subplots(1, 2, sharey=True)
    criteria = {"iou": "F1, IoU ≥ 0.5", "hit": "F1, box contains the ship centre"}
    keys = [k for k, r in variants.items() if r["kind"] == "method"]
    for axes, (criterion, title) in zip(panels, criteria.items()):
        curves = [(k, np.asarray(variants[k]["scene"][criterion]["f1"])) for k in keys]
        taus = np.asarray(variants[keys[0]]["scene"]["thresholds"])
        for group, curve in _merged(curves):
            is_default = DEFAULT in group
            colour = COLOURS.get(group[0], "tab:gray")
            best = int(np.argmax(curve))
            names = [short(k) for k in group]
            axes.plot(
                taus,
                curve,
                "-",
                color=colour,
                lw=3.2 if is_default else 1.5,
                label=f"{' = '.join(names)}  (best {curve[best]:.2f} at {taus[best]:.2f})",
                zorder=3 if is_default else 2,
            )
        axes.axvline(0.5, color="gray", ls="--", lw=1)
        axes.set_title(title, fontsize=11)
        axes.set_xlabel("heatmap threshold")
        axes.set_xlim(0, 1)
        axes.grid(alpha=0.3)
        axes.legend(
            fontsize=8,
            loc="upper right" if criterion == "iou" else "lower left",
            title="a = b: identical curves",
            title_fontsize=8,
        )
    panels[0].set_ylabel("F1 pooled over the scenes")
    scenes = report["settings"]["scenes"]
    figure.suptitle(
        f"Scene F1 against the heatmap threshold: {len(scenes)} scenes "
        f"({', '.join(sorted({sc['profile'] for sc in scenes}))}, {scenes[0]['size']}²), "
        f"{sum(sc['ships'] for sc in scenes)} ships; dashed: the default threshold 0.5",
        fontsize=11,
    )
    figure.savefig(path, dpi=110)


def examples_plot(
    figure_class: Any, report: dict[str, Any], examples: dict[str, Any], path: Path
) -> None:
    keys = list(examples["maps"])
    rows, cols = len(examples["vv_db"]), len(keys) + 1
    figure = figure_class(figsize=(1.45 * cols, 1.5 * rows + 0.4), layout="constrained")
    grid = figure.subplots(rows, cols, squeeze=False)
    for i in range(rows):
        panels = [("VV (dB)", examples["vv_db"][i], "gray", (-30, 10))]
        panels += [(k, examples["maps"][k][i], "inferno", (0, 1)) for k in keys]
        for j, (name, image, cmap, (low, high)) in enumerate(panels):
            axes = grid[i, j]
            axes.imshow(image, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            for x0, y0, x1, y1 in examples["boxes"][i]:
                axes.add_patch(_rectangle(x0 - 0.5, y0 - 0.5, x1 - x0 + 1, y1 - y0 + 1))
            axes.set_xticks([])
            axes.set_yticks([])
            if i == 0:
                title = "image s(I)" if name == REFERENCE else name
                axes.set_title(title, fontsize=8, fontweight="bold" if name == DEFAULT else None)
    figure.suptitle(
        "Held-out ship chips: maps of the ship class (cyan: the ship boxes)", fontsize=10
    )
    figure.savefig(path, dpi=100)


def _rectangle(x: float, y: float, width: float, height: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, height, fill=False, edgecolor="cyan", lw=1.0)
