"""Held-out scene benchmark: does mscam's ship evidence hold on scenes nobody tuned it to?

The scenes come from ``heldout_generator.py`` — a generator that shares no code with
``mscam.sar`` and has other habits — with seeds used nowhere else. Each variant runs through the
product exactly as a user would (``mscam explain SCENE --heatmap H --boxes B``, all defaults,
``--extra-args`` appended) and its ``boxes.gpkg`` is scored against the truth, which never enters
the scene file. A variant whose command fails is a result (exit code and error line), not a crash.

Scores, per variant, in the scene's pixel coordinates:

- box F1: a predicted box matches a ship if it holds the ship's centre or overlaps the ship's
  axis-aligned box at IoU ≥ 0.1; greedy one-to-one matching, highest IoU first. Platforms,
  turbines and buoys are not ships: a box on them is a false positive.
- F1 at IoU ≥ 0.5 (the same matching with IoU ≥ 0.5 as the only criterion);
- recall per ship length band (< 50, 50–100, 100–200, ≥ 200 m) and for ships ≥ 100 m;
- false boxes per 4 Mpx (the criterion on the empty-sea variant).

    python bench/eval/heldout.py --out bench/eval/heldout            # all variants, ~minutes
    python bench/eval/heldout.py --quick --out /tmp/ho               # small scenes, ~1 minute
    python bench/eval/heldout.py --only coastal,vv-only --extra-args "--model my/card.json"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import heldout_generator as gen  # noqa: E402

CACHE = ROOT / "build" / "heldout"
LENGTH_BANDS = ((0.0, 50.0, "<50 m"), (50.0, 100.0, "50-100 m"), (100.0, 200.0, "100-200 m"))
LENGTH_BANDS += ((200.0, math.inf, ">=200 m"),)
LOOSE_IOU = 0.1
STRICT_IOU = 0.5


@dataclass(frozen=True)
class SceneSpec:
    """A generated scene (one truth) that one or more variants write in their own form."""

    name: str
    recipe: gen.Recipe
    seed: int
    epsg: int
    origin: tuple[float, float]


@dataclass(frozen=True)
class Variant:
    name: str
    scene: str  # SceneSpec name
    description: str
    units: str = "dB"
    bands: tuple[str, ...] | None = None  # None: every band of the scene
    gcps: bool = False
    targets: tuple[tuple[str, str, float], ...] = ()  # (metric, ">=" or "<=", value)
    warp_m: float | None = None  # the file warped (bilinear) to this pixel spacing


DUAL_TARGETS = (("f1", ">=", 0.85), ("f1_iou50", ">=", 0.5), ("recall_ge100", ">=", 0.9))
SINGLE_TARGETS = (("f1", ">=", 0.8), ("recall_ge100", ">=", 0.9))


def scene_specs(quick: bool, seed_set: int = 0) -> dict[str, SceneSpec]:
    """The scenes. Seeds 7301–7305 appear nowhere else in the repository; ``seed_set`` k adds
    1000·k to them: a fresh set of the same kinds of scenes, for a check nobody tuned to."""
    base = 1000 * seed_set
    n = 1024 if quick else 2048

    def k(full: int, small: int) -> int:
        return small if quick else full

    specs = [
        SceneSpec(
            "open",
            gen.Recipe("open", n, n_ships=k(40, 12), n_platforms=k(4, 2), n_buoys=k(12, 4)),
            base + 7301,
            32631,
            (499_980.0, 5_900_020.0),
        ),
        SceneSpec(
            "coastal",
            gen.Recipe(
                "coastal",
                n,
                n_ships=k(30, 8),
                n_platforms=k(3, 1),
                n_buoys=k(15, 4),
                nodata_edges=True,
            ),
            base + 7302,
            32630,
            (399_960.0, 6_240_000.0),
        ),
        SceneSpec(
            "empty",
            gen.Recipe(
                "open",
                n,
                n_ships=0,
                n_platforms=k(8, 3),
                n_buoys=k(30, 8),
                turbine_grid=(k(4, 2), k(6, 3)),
            ),
            base + 7303,
            32632,
            (300_000.0, 6_500_000.0),
        ),
        SceneSpec(
            "single",  # VV and HH of the same far-range scene: HH sea is darker there
            gen.Recipe(
                "open",
                n,
                n_ships=k(40, 12),
                n_platforms=k(4, 2),
                n_buoys=k(12, 4),
                bands=("VV", "HH"),
                incidence_range=(38.0, 46.0),
            ),
            base + 7304,
            32617,
            (600_000.0, 4_400_000.0),
        ),
        SceneSpec(
            "open-3m",
            gen.Recipe(
                "open",
                k(3072, 1536),
                pixel_m=3.0,
                n_ships=k(22, 6),
                n_platforms=k(2, 1),
                n_buoys=k(6, 2),
                resolution_m=(3.3, 3.6),
                looks_range=(2.0, 4.0),
                incidence_range=(29.0, 40.0),
            ),
            base + 7305,
            32633,
            (420_000.0, 6_010_000.0),
        ),
    ]
    return {s.name: s for s in specs}


VARIANTS = [
    Variant("opensea", "open", "open sea, VV+VH σ0 dB Float32, UTM 10 m", targets=DUAL_TARGETS),
    Variant(
        "coastal",
        "coastal",
        "coast + harbour, VV+VH σ0 dB, UTM 10 m, NaN borders",
        targets=DUAL_TARGETS,
    ),
    Variant(
        "coastal-dn",
        "coastal",
        "the coastal scene as UInt16 DN (A = 600, 0 = no data)",
        units="DN",
        targets=DUAL_TARGETS,
    ),
    Variant(
        "coastal-gcp",
        "coastal",
        "the coastal scene, dB, located by 11×11 GCPs (EPSG:4326)",
        gcps=True,
        targets=DUAL_TARGETS,
    ),
    Variant(
        "empty",
        "empty",
        "sea without ships: platforms, turbines, buoys (VV+VH dB)",
        targets=(("false_per_4mpx", "<=", 1.0),),
    ),
    Variant(
        "vv-only",
        "single",
        "open sea far range, VV only (dB)",
        bands=("VV",),
        targets=SINGLE_TARGETS,
    ),
    Variant(
        "hh-only", "single", "the same scene, HH only (dB)", bands=("HH",), targets=SINGLE_TARGETS
    ),
    Variant(
        "opensea-3m",
        "open-3m",
        "open sea generated at 3 m, VV+VH dB, UTM 3 m",
        targets=(("f1", ">=", 0.75), ("recall_ge100", ">=", 0.9)),
    ),
    Variant(
        "opensea-warped-3m",
        "open",
        "the open-sea scene warped to 3 m (bilinear, dB): 10 m detail in 3 m pixels",
        targets=(("f1", ">=", 0.75),),
        warp_m=3.0,
    ),
    Variant(
        "vv-only-3m",
        "open-3m",
        "the 3 m scene, VV only (dB): single-pol high-resolution SAR",
        bands=("VV",),
        targets=(("f1", ">=", 0.75),),
    ),
]


# ---------------------------------------------------------------- scenes and truth


def generator_key() -> str:
    """The generator's version and a hash of its source: a changed generator makes new scenes."""
    source = (HERE / "heldout_generator.py").read_bytes()
    return f"{gen.GENERATOR_VERSION}-{hashlib.sha1(source).hexdigest()[:8]}"


def ensure_scene(spec: SceneSpec, variants: list[Variant], cache: Path) -> Path:
    """Generate ``spec`` once and write every variant's file; cached by generator and seed."""
    r = spec.recipe
    key = f"{generator_key()}-{spec.name}-s{spec.seed}-{r.size}px-{r.pixel_m:g}m"
    folder = cache / key
    wanted = [folder / f"{v.name}.tif" for v in variants]
    done = [folder / "truth.json", folder / "land.tif", *wanted]
    if all(p.exists() for p in done):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    scene = gen.generate(r, spec.seed)
    for v, path in zip(variants, wanted):
        partial = path.with_suffix(f".{os.getpid()}.partial.tif")  # runs may share the cache
        gen.write_geotiff(
            str(partial),
            scene,
            units=v.units,
            epsg=spec.epsg,
            origin=spec.origin,
            gcp_grid=11 if v.gcps else 0,
            bands=v.bands,
        )
        if v.warp_m:
            from osgeo import gdal

            warped = path.with_suffix(f".{os.getpid()}.warped.tif")
            gdal.Warp(
                str(warped), str(partial), xRes=v.warp_m, yRes=v.warp_m, resampleAlg="bilinear"
            )
            os.replace(warped, partial)
        os.replace(partial, path)
    truth = {
        "scene": spec.name,
        "seed": spec.seed,
        "generator": generator_key(),
        "meta": scene.meta,
        "shape": list(scene.shape),
        "objects": [o.to_json() for o in scene.objects],
    }
    write_truth_gpkg(folder / "truth.gpkg", truth, spec)
    write_land_mask(folder / "land.tif", scene.land)
    partial = folder / f"truth.{os.getpid()}.partial.json"
    partial.write_text(json.dumps(truth, indent=1))
    os.replace(partial, folder / "truth.json")
    return folder


def write_land_mask(path: Path, land: np.ndarray) -> None:
    """Land (1) and sea (0) on the scene's pixel grid: to sort false boxes by where they fall."""
    from osgeo import gdal

    partial = path.with_suffix(f".{os.getpid()}.partial.tif")
    h, w = land.shape
    ds = gdal.GetDriverByName("GTiff").Create(
        str(partial), w, h, 1, gdal.GDT_Byte, ["COMPRESS=DEFLATE", "TILED=YES"]
    )
    ds.GetRasterBand(1).WriteArray(land.astype(np.uint8))
    ds = None
    os.replace(partial, path)


def read_land_mask(folder: Path) -> np.ndarray | None:
    from osgeo import gdal

    if not (folder / "land.tif").exists():
        return None
    ds = gdal.Open(str(folder / "land.tif"))
    return ds.GetRasterBand(1).ReadAsArray().astype(bool)


def write_truth_gpkg(path: Path, truth: dict[str, Any], spec: SceneSpec) -> None:
    """The truth as oriented polygons in the scene's UTM grid, to look at in QGIS."""
    from osgeo import ogr, osr

    partial = path.with_suffix(f".{os.getpid()}.partial.gpkg")
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(partial))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(spec.epsg)
    layer = source.CreateLayer("truth", srs, ogr.wkbPolygon)
    fields = {"kind": ogr.OFTString, "length_m": ogr.OFTReal, "heading_deg": ogr.OFTReal}
    fields.update({"moored": ogr.OFTInteger, "cx_px": ogr.OFTReal, "cy_px": ogr.OFTReal})
    for name, kind in fields.items():
        layer.CreateField(ogr.FieldDefn(name, kind))
    x0, y0, px = spec.origin[0], spec.origin[1], spec.recipe.pixel_m
    for o in truth["objects"]:
        feature = ogr.Feature(layer.GetLayerDefn())
        for name, key in (("kind", "kind"), ("length_m", "length_m"), ("cx_px", "cx")):
            feature.SetField(name, o[key])
        feature.SetField("heading_deg", o["heading_deg"])
        feature.SetField("moored", int(o["moored"]))
        feature.SetField("cy_px", o["cy"])
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in [*o["corners_px"], o["corners_px"][0]]:
            ring.AddPoint_2D(x0 + x * px, y0 - y * px)
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(ring)
        feature.SetGeometry(polygon)
        layer.CreateFeature(feature)
    source = None
    os.replace(partial, path)


# ---------------------------------------------------------------- scoring


Box = tuple[float, float, float, float]  # x0, y0, x1, y1, half-open pixel coordinates


def box_iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def contains(box: Box, x: float, y: float) -> bool:
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def match(
    predicted: list[Box],
    truth_boxes: list[Box],
    truth_centres: list[tuple[float, float]],
    min_iou: float,
    centre_counts: bool,
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching: eligible pairs by IoU (then centre-holding), best first."""
    pairs = []
    for i, p in enumerate(predicted):
        for j, (t, (cx, cy)) in enumerate(zip(truth_boxes, truth_centres)):
            iou = box_iou(p, t)
            held = centre_counts and contains(p, cx, cy)
            if iou >= min_iou or held:
                pairs.append((-iou, -int(held), i, j))
    pairs.sort()
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for _, _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def prf(tp: int, n_pred: int, n_truth: int) -> dict[str, float | None]:
    fp, fn = n_pred - tp, n_truth - tp
    return {
        "precision": tp / n_pred if n_pred else None,
        "recall": tp / n_truth if n_truth else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if n_truth else None,
    }


def score(
    predicted: list[Box],
    objects: list[dict[str, Any]],
    pixels: int,
    land: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of one variant from predicted pixel boxes and the truth objects.

    ``land`` (optional, True on land): false boxes whose centre is on land are counted apart.
    """
    ships = [o for o in objects if o["kind"] == "ship"]
    others = [o for o in objects if o["kind"] != "ship"]
    boxes = [tuple(o["bbox_px"]) for o in ships]
    centres = [(o["cx"], o["cy"]) for o in ships]
    loose = match(predicted, boxes, centres, LOOSE_IOU, centre_counts=True)
    strict = match(predicted, boxes, centres, STRICT_IOU, centre_counts=False)
    hit = {j for _, j in loose}
    matched_pred = {i for i, _ in loose}
    # each false box in one place, first that applies: a non-ship, a ship that already has its
    # box (a split or duplicate box), land, else sea clutter
    where = {"non_ship": 0, "ship_again": 0, "land": 0, "sea": 0}
    for i, p in enumerate(predicted):
        if i in matched_pred:
            continue
        if any(
            contains(p, o["cx"], o["cy"]) or box_iou(p, tuple(o["bbox_px"])) >= LOOSE_IOU
            for o in others
        ):
            where["non_ship"] += 1
        elif any(box_iou(p, t) > 0 for t in boxes):
            where["ship_again"] += 1
        elif (
            land is not None
            and land[
                min(max(int((p[1] + p[3]) / 2), 0), land.shape[0] - 1),
                min(max(int((p[0] + p[2]) / 2), 0), land.shape[1] - 1),
            ]
        ):
            where["land"] += 1
        else:
            where["sea"] += 1
    by_length = {}
    for lo, hi, label in LENGTH_BANDS:
        idx = [j for j, o in enumerate(ships) if lo <= o["length_m"] < hi]
        by_length[label] = {
            "ships": len(idx),
            "found": sum(j in hit for j in idx),
            "recall": sum(j in hit for j in idx) / len(idx) if idx else None,
        }
    big = [j for j, o in enumerate(ships) if o["length_m"] >= 100.0]
    moored = [j for j, o in enumerate(ships) if o.get("moored")]
    loose_s = prf(len(loose), len(predicted), len(ships))
    strict_s = prf(len(strict), len(predicted), len(ships))
    fp = len(predicted) - len(loose)
    return {
        "ships": len(ships),
        "non_ships": len(others),
        "boxes": len(predicted),
        "tp": len(loose),
        "fp": fp,
        "fn": len(ships) - len(loose),
        **loose_s,
        "tp_iou50": len(strict),
        "precision_iou50": strict_s["precision"],
        "recall_iou50": strict_s["recall"],
        "f1_iou50": strict_s["f1"],
        "recall_by_length": by_length,
        "recall_ge100": sum(j in hit for j in big) / len(big) if big else None,
        "ships_ge100": len(big),
        "recall_moored": sum(j in hit for j in moored) / len(moored) if moored else None,
        "fp_on_non_ships": where["non_ship"],
        "fp_where": where,
        "false_per_4mpx": fp / (pixels / 4e6),
        "missed": [
            {k: ships[j][k] for k in ("cx", "cy", "length_m", "moored", "peak_db")}
            for j in range(len(ships))
            if j not in hit
        ],
    }


def read_predicted(boxes_path: Path, scene_path: Path) -> list[Box]:
    """Pixel boxes of the product's GeoPackage (px_* fields, else the geometry mapped back)."""
    from osgeo import gdal, ogr

    gdal.UseExceptions()
    ds = ogr.Open(str(boxes_path))
    layer = ds.GetLayer(0)
    names = [
        layer.GetLayerDefn().GetFieldDefn(i).GetName()
        for i in range(layer.GetLayerDefn().GetFieldCount())
    ]
    has_px = all(f"px_{k}" in names for k in ("x0", "y0", "x1", "y1"))
    transformer = None
    out: list[Box] = []
    for feature in layer:
        if has_px:  # inclusive pixel indices
            out.append(
                (
                    float(feature["px_x0"]),
                    float(feature["px_y0"]),
                    float(feature["px_x1"]) + 1.0,
                    float(feature["px_y1"]) + 1.0,
                )
            )
            continue
        if transformer is None:
            scene = gdal.Open(str(scene_path))
            transformer = (scene, gdal.Transformer(scene, None, []))
        ring = feature.GetGeometryRef().GetGeometryRef(0)
        pts = [
            transformer[1].TransformPoint(1, *ring.GetPoint_2D(k))[1]
            for k in range(ring.GetPointCount())
        ]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        out.append((min(xs), min(ys), max(xs), max(ys)))
    return out


# ---------------------------------------------------------------- running the product


def mscam_command() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "mscam"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mscam"]


def heatmap_tags(path: Path) -> dict[str, str]:
    from osgeo import gdal

    try:
        ds = gdal.Open(str(path))
        return {k: v for k, v in (ds.GetMetadata() or {}).items() if k.startswith("MSCAM_")}
    except RuntimeError:
        return {}


def run_variant(
    variant: Variant, scene_path: Path, truth: dict[str, Any], work: Path, extra: list[str]
) -> dict[str, Any]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    heat, boxes = work / "heat.tif", work / "boxes.gpkg"
    cmd = [*mscam_command(), "explain", str(scene_path), "--heatmap", str(heat)]
    cmd += ["--boxes", str(boxes), *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    h, w = truth["shape"]
    result: dict[str, Any] = {
        "variant": variant.name,
        "description": variant.description,
        "scene": truth["scene"],
        "seed": truth["seed"],
        "size": [w, h]
        if not variant.warp_m
        else [round(n * truth["meta"]["pixel_m"] / variant.warp_m) for n in (w, h)],
        "pixel_m": variant.warp_m or truth["meta"]["pixel_m"],
        "bands": list(variant.bands or truth["meta"]["bands"]),
        "units": variant.units,
        "georeferencing": "GCPs (EPSG:4326)" if variant.gcps else "geotransform (UTM)",
        "command": " ".join(["mscam", *cmd[len(mscam_command()) :]]).replace(str(ROOT) + "/", ""),
        "exit_code": proc.returncode,
        "seconds": round(seconds, 1),
    }
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()]
        result["error"] = (errors or lines or ["(no message)"])[-1].strip()[-300:]
        return result
    result["tags"] = heatmap_tags(heat)
    predicted = read_predicted(boxes, scene_path)
    if variant.warp_m:  # boxes on the warped grid → the scene's own pixels, where the truth is
        f = variant.warp_m / truth["meta"]["pixel_m"]
        predicted = [(x0 * f, y0 * f, x1 * f, y1 * f) for x0, y0, x1, y1 in predicted]
    land = read_land_mask(scene_path.parent)
    result.update(score(predicted, truth["objects"], w * h, land))
    result["_predicted"] = predicted
    return result


# ---------------------------------------------------------------- reporting


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def short_error(line: str) -> str:
    """The error line with the cached scene's path reduced to its file name."""
    return re.sub(r"\S*/([^/\s]+\.tif)", r"\1", line)


def check_targets(variant: Variant, result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for metric, op, value in variant.targets:
        measured = result.get(metric)
        if result.get("exit_code") != 0:
            met = False
        elif measured is None:
            met = None
        else:
            met = measured >= value if op == ">=" else measured <= value
        rows.append({"metric": metric, "op": op, "target": value, "measured": measured, "met": met})
    return rows


def write_report(out: Path, name: str, title: str, results: list[dict], context: dict) -> None:
    lines = [
        f"# {title}",
        "",
        "Scenes from `bench/eval/heldout_generator.py` (a generator that shares no code with",
        f"`mscam.sar`; seeds {context.get('seeds', '7301–7305')}, used nowhere else), each run"
        " through",
        "`mscam explain SCENE --heatmap H --boxes B` with all defaults"
        + (f" plus `{context['extra_args']}`" if context["extra_args"] else "")
        + ", scored in pixel coordinates.",
        "A box matches a ship if it holds the ship's centre or has IoU ≥ 0.1 with its box (greedy,",
        "one-to-one); boxes on platforms, turbines and buoys are false. F1@0.5: IoU ≥ 0.5 only.",
        "",
        f"Run {context['date']} on {context['machine']}; benchmark at commit {context['commit']};"
        f" generator {context['generator']}; {'quick' if context['quick'] else 'full'} set;"
        f" whole run {context['seconds']:.0f} s; mscam from {context['mscam_from']}.",
        "",
        "| variant | scene | ships | boxes | P | R | F1 | F1@0.5 | R ≥100 m | false/4 Mpx"
        " | model | s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        size = f"{r['size'][0]}² {r['pixel_m']:g} m {'+'.join(r['bands'])} {r['units']}"
        if r["exit_code"] != 0:
            lines.append(
                f"| {r['variant']} | {size} | – | – | – | – | **failed** (exit {r['exit_code']}) |"
                f" – | – | – | `{short_error(r['error'])}` | {r['seconds']} |"
            )
            continue
        tags = r.get("tags", {})
        model = tags.get("MSCAM_MODEL", "?")
        if "MSCAM_WORKING_SPACING" in tags:
            model += f" @ {float(tags['MSCAM_WORKING_SPACING']):g} m"
        lines.append(
            f"| {r['variant']} | {size} | {r['ships']} | {r['boxes']} | {_fmt(r['precision'])} |"
            f" {_fmt(r['recall'])} | **{_fmt(r['f1'])}** | {_fmt(r['f1_iou50'])} |"
            f" {_fmt(r['recall_ge100'])} | {_fmt(r['false_per_4mpx'], 1)} | {model} |"
            f" {r['seconds']} |"
        )
    pooled_found = pooled_ships = 0
    seen = set()
    for r in results:
        if r["exit_code"] == 0 and r.get("ships") and r["scene"] not in seen:
            seen.add(r["scene"])
            pooled_ships += r["ships_ge100"]
            pooled_found += round((r["recall_ge100"] or 0.0) * r["ships_ge100"])
    if pooled_ships:
        lines += [
            "",
            f"Ships ≥ 100 m found, each scene counted once (its first variant that ran):"
            f" {pooled_found}/{pooled_ships} = {pooled_found / pooled_ships:.3f}"
            f" ({', '.join(sorted(seen))}).",
        ]
    lines += ["", "## Targets (issue 10)", "", "| variant | metric | target | measured | met |"]
    lines += ["|---|---|---|---:|---|"]
    for r in results:
        for t in r["targets"]:
            met = {True: "yes", False: "**no**", None: "–"}[t["met"]]
            measured = "failed" if r["exit_code"] != 0 else _fmt(t["measured"])
            target = f"{t['op']} {t['target']:g}"
            lines.append(f"| {r['variant']} | {t['metric']} | {target} | {measured} | {met} |")
    lines += ["", "## Recall per ship length", ""]
    lines += ["| variant | " + " | ".join(b[2] for b in LENGTH_BANDS) + " | moored |"]
    lines += ["|---|" + "---:|" * (len(LENGTH_BANDS) + 1)]
    for r in results:
        if r["exit_code"] != 0 or not r["ships"]:
            continue
        cells = []
        for _, _, label in LENGTH_BANDS:
            b = r["recall_by_length"][label]
            cells.append(
                f"{_fmt(b['recall'], 2)} ({b['found']}/{b['ships']})" if b["ships"] else "–"
            )
        cells.append(_fmt(r["recall_moored"], 2))
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    lines += ["", "## Scenes", "", "| variant | what | georeferencing | incidence | wind | looks |"]
    lines += ["|---|---|---|---|---:|---:|"]
    for r in results:
        m = r["meta"]
        lines.append(
            f"| {r['variant']} | {r['description']} | {r['georeferencing']} |"
            f" {m['incidence_deg'][0]}–{m['incidence_deg'][1]}° | {m['wind_ms']} m/s |"
            f" {m['looks']} |"
        )
    lines += ["", "## Where the false boxes are", ""]
    lines += ["Each false box counted once, in the first place that applies."]
    lines += [
        "",
        "| variant | false boxes | on platforms, turbines, buoys | a second box on a ship",
    ]
    lines[-1] += " | on land | at sea |"
    lines += ["|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if r["exit_code"] != 0:
            continue
        w = r["fp_where"]
        lines.append(
            f"| {r['variant']} | {r['fp']} | {w['non_ship']} | {w['ship_again']} | {w['land']}"
            f" | {w['sea']} |"
        )
    lines.append("")
    (out / f"{name}.md").write_text("\n".join(lines))


def quicklook(path: Path, scene_path: Path, truth: dict, result: dict, crop=None) -> None:
    """Scene (VV dB, grey) with truth ships (amber; missed: red), non-ships (magenta) and the
    predicted boxes (cyan)."""
    from osgeo import gdal
    from PIL import Image, ImageDraw

    ds = gdal.Open(str(scene_path))
    band = ds.GetRasterBand(1)
    x0, y0, w, h = crop or (0, 0, ds.RasterXSize, ds.RasterYSize)
    data = band.ReadAsArray(x0, y0, w, h).astype(np.float32)
    factor = max(1, math.ceil(max(w, h) / 1024))
    if factor > 1:  # mean of linear σ0 over blocks, then dB again
        hh, ww = (h // factor) * factor, (w // factor) * factor
        lin = 10 ** (data[:hh, :ww] / 10)
        data = 10 * np.log10(lin.reshape(hh // factor, factor, ww // factor, factor).mean((1, 3)))
    # a palette image (64 greys + the outline colours) keeps the PNG small
    grey = np.clip((np.nan_to_num(data, nan=-30.0) + 25.0) / 30.0 * 63, 0, 63).astype(np.uint8)
    img = Image.fromarray(grey, mode="L").convert("P")
    colours = {"ship": (255, 190, 0), "missed": (255, 40, 40), "other": (255, 0, 255)}
    colours["box"] = (0, 230, 255)
    palette = [v for i in range(64) for v in (i * 4, i * 4, i * 4)]
    index = {}
    for k, rgb in colours.items():
        index[k] = len(palette) // 3
        palette += list(rgb)
    img.putpalette(palette + [0] * (768 - len(palette)))
    draw = ImageDraw.Draw(img)

    def tr(x, y):
        return ((x - x0) / factor, (y - y0) / factor)

    missed = {(m["cx"], m["cy"]) for m in result.get("missed", [])}
    for o in truth["objects"]:
        colour = index["other"]
        if o["kind"] == "ship":
            colour = index["missed"] if (o["cx"], o["cy"]) in missed else index["ship"]
        pts = [tr(x, y) for x, y in o["corners_px"]]
        draw.polygon(pts, outline=colour)
    for b in result.get("_predicted", []):
        draw.rectangle([tr(b[0] - 1, b[1] - 1), tr(b[2] + 1, b[3] + 1)], outline=index["box"])
    img.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "heldout")
    parser.add_argument("--quick", action="store_true", help="smaller scenes (about 1 minute)")
    parser.add_argument("--only", default="", help="comma-separated variants")
    parser.add_argument("--extra-args", default="", help="appended to `mscam explain`")
    parser.add_argument("--name", default="results", help="report name: NAME.md, NAME.json")
    parser.add_argument("--title", default="Held-out scene benchmark")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument(
        "--seed-set", type=int, default=0, help="k > 0: fresh scenes, seeds + 1000·k"
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's heatmap and boxes")
    parser.add_argument(
        "--rerender", action="store_true", help="only rewrite NAME.md from NAME.json in --out"
    )
    args = parser.parse_args(argv)
    if args.rerender:
        stored = json.loads((args.out / f"{args.name}.json").read_text())
        write_report(args.out, args.name, args.title, stored["variants"], stored["context"])
        return 0

    chosen = [v for v in VARIANTS if not args.only or v.name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - {v.name for v in VARIANTS}
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(sorted(unknown))}")
    specs = scene_specs(args.quick, args.seed_set)
    extra = shlex.split(args.extra_args)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runs = args.cache / "runs" / f"{args.name}-{'quick' if args.quick else 'full'}-{os.getpid()}"
    results = []
    folders: dict[str, Path] = {}
    for variant in chosen:
        spec = specs[variant.scene]
        if spec.name not in folders:
            siblings = [v for v in VARIANTS if v.scene == spec.name]
            print(f"heldout: scene {spec.name} (seed {spec.seed})", file=sys.stderr, flush=True)
            folders[spec.name] = ensure_scene(spec, siblings, args.cache)
        folder = folders[spec.name]
        truth = json.loads((folder / "truth.json").read_text())
        scene_path = folder / f"{variant.name}.tif"
        work = runs / variant.name
        print(f"heldout: {variant.name}: mscam explain …", file=sys.stderr, flush=True)
        result = run_variant(variant, scene_path, truth, work, extra)
        result["meta"] = truth["meta"]
        result["targets"] = check_targets(variant, result)
        result["scene_path"] = (
            str(scene_path.relative_to(ROOT))
            if scene_path.is_relative_to(ROOT)
            else str(scene_path)
        )
        summary = (
            f"F1 {_fmt(result.get('f1'))} F1@0.5 {_fmt(result.get('f1_iou50'))}"
            f" boxes {result.get('boxes')} ships {result.get('ships')}"
            if result["exit_code"] == 0
            else f"failed: {result['error']}"
        )
        print(f"heldout: {variant.name}: {summary} ({result['seconds']} s)", file=sys.stderr)
        results.append(result)
        if variant.name == "coastal" and result["exit_code"] == 0:
            quicklook(args.out / f"{args.name}_coastal.png", scene_path, truth, result)
            m = truth["meta"].get("harbour_px")
            if m:
                cx, cy = (m[0] + m[2]) // 2, (m[1] + m[3]) // 2
                h, w = truth["shape"]
                crop = (min(max(0, cx - 256), w - 512), min(max(0, cy - 256), h - 512), 512, 512)
                quicklook(args.out / f"{args.name}_harbour.png", scene_path, truth, result, crop)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    context = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "commit": commit,
        "generator": generator_key(),
        "quick": args.quick,
        "seeds": f"{7301 + 1000 * args.seed_set}–{7305 + 1000 * args.seed_set}",
        "extra_args": args.extra_args,
        "mscam_from": os.environ.get("PYTHONPATH") or "the working tree (editable install)",
        "seconds": time.perf_counter() - start,
    }
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    (args.out / f"{args.name}.json").write_text(
        json.dumps({"context": context, "variants": clean}, indent=1)
    )
    write_report(args.out, args.name, args.title, clean, context)
    print(f"heldout: wrote {args.out / (args.name + '.md')}", file=sys.stderr)
    if args.keep:
        print(f"heldout: heatmaps and boxes kept in {runs}", file=sys.stderr)
    else:
        shutil.rmtree(runs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
