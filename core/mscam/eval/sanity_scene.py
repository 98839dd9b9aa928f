"""The sanity check on a scene's hottest tiles (`mscam sanity`, Processing `mscam:sanity`), and
its figure.

`scene_sanity` scores every tile of the scene with the model (tiled and preprocessed by the scene
pipeline), keeps the `tiles` of highest target-class probability, runs `sanity.sanity_check` on
them (masks from the truth boxes when given) and writes `sanity.json` and `sanity.png`, both or
neither. `sanity_figure` draws one row per method: the hottest tile's image `s(I)` then its map at
every stage (matplotlib, or numpy and GDAL's PNG driver without it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mscam.cam import METHODS
from mscam.eval.sanity import DEFAULT_SANITY_METHODS, Progress, SanityReport, sanity_check

# -- a scene: its hottest tiles --------------------------------------------------------------------


@dataclass
class SceneSanity:
    json_path: Path
    png_path: Path
    report: dict[str, Any]


def scene_sanity(
    scene: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model: str | None = None,
    methods: Sequence[str] | None = None,
    tiles: int = 16,
    truth: str | os.PathLike[str] | None = None,
    seed: int = 0,
    device: str = "auto",
    architecture_file: str | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SceneSanity:
    """The sanity check on the `tiles` hottest tiles of a scene (highest target-class probability,
    tiled and preprocessed by the scene pipeline): writes `out_dir/sanity.json` and
    `out_dir/sanity.png`, both or neither.
    """
    from mscam.errors import InputError, OutputError
    from mscam.scene.pipeline import SceneJob, SceneSettings

    methods = list(methods or DEFAULT_SANITY_METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method {unknown[0]!r}; choose from: {', '.join(METHODS)}")
    if tiles < 1:
        raise InputError(f"tiles must be at least 1, got {tiles}")
    if truth is not None and not str(truth).startswith("/vsi") and not Path(truth).exists():
        raise InputError(f"truth {truth} does not exist")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder")
    if not out.absolute().parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {out.parent} does not exist")
    say = progress or (lambda fraction, message: None)
    job = SceneJob(
        scene,
        SceneSettings(
            model=model, method="grad-cam", device=device, architecture_file=architecture_file
        ),
    )
    card = job.loaded.card
    chips, places, probabilities = _hottest_tiles(job, tiles, say, cancel)
    if not len(chips):
        raise InputError(f"{scene}: no tile with enough valid pixels to check")
    masks = None
    if truth is not None:
        from mscam.eval.scene import truth_pixel_boxes

        boxes, _, _ = truth_pixel_boxes(truth, job.reader.info)
        masks = _tile_masks(boxes, places, chips.shape[-2:])
    x = torch.from_numpy(chips).to(job.device)
    sanity = sanity_check(
        job.loaded.model,
        x,
        methods,
        job.target_index,
        card.target_layer,
        masks=masks,
        seed=seed,
        batch_size=job.batch,
        progress=lambda f, m: say(0.3 + 0.65 * f, m),
        cancel=cancel,
    )
    document = {
        "input": str(scene),
        "model": {
            "name": card.name,
            "version": card.version,
            "architecture": card.architecture,
            "card": str(job.loaded.card_path),
            "target_layer": card.target_layer,
            "target_class": job.target_class,
        },
        "seed": seed,
        "similarity": "Spearman rank correlation with the trained model's map, mean over tiles "
        "(tiles where a map is constant are left out and counted in constant_tiles)",
        "randomisation": "cascading, output side first; each block re-initialised as at "
        "construction (reset_parameters), BatchNorm statistics reset",
        "tiles": [
            {"x0": t.x0, "y0": t.y0, "x1": t.x1, "y1": t.y1, "probability": float(p)}
            for t, p in zip(places, probabilities)
        ],
        "truth": None if truth is None else str(truth),
        **sanity.to_dict(),
    }
    document = _rounded(document)
    title = (
        f"{card.name} {card.version}: cascading randomisation on the hottest tile of "
        f"{Path(scene).name} (p={probabilities[0]:.2f}); ρ: Spearman vs trained, mean over "
        f"{len(chips)} tiles"
    )
    say(0.97, "writing")
    json_path, png_path = out / "sanity.json", out / "sanity.png"
    created = not out.exists()
    out.mkdir(exist_ok=True)
    temporary = [out / ".sanity.json.part", out / ".sanity.png.part"]
    try:
        temporary[0].write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
        sanity_figure(sanity, temporary[1], title)
        os.replace(temporary[0], json_path)
        os.replace(temporary[1], png_path)
    except BaseException as exc:
        for path in temporary:
            path.unlink(missing_ok=True)
        if created:
            out.rmdir()
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {out}: {exc}") from None
        raise
    say(1.0, "done")
    return SceneSanity(json_path, png_path, document)


def _hottest_tiles(job: Any, count: int, say: Progress, cancel: Callable[[], bool] | None):
    """The `count` tiles of highest target-class probability: chips, places, probabilities."""
    keep_chips: list[np.ndarray] = []
    keep_places: list[Any] = []
    keep_p = np.empty(0, np.float32)
    windows = job.windows()
    for index, window in enumerate(windows):
        if cancel is not None and cancel():
            from mscam.errors import Cancelled

            raise Cancelled("cancelled")
        prepared = job.prepare_window(window)
        scores = []
        for start in range(0, len(prepared.places), job.batch):
            batch = torch.from_numpy(prepared.chips[start : start + job.batch]).to(job.device)
            with torch.no_grad():
                logits = job.model(batch.contiguous(memory_format=torch.channels_last))
            scores.append(torch.softmax(logits.float(), 1)[:, job.target_index].cpu().numpy())
        if scores:
            keep_p = np.concatenate([keep_p, *scores])
            keep_chips += list(prepared.chips)
            keep_places += prepared.places
            order = np.argsort(-keep_p, kind="stable")[:count]
            keep_p = keep_p[order]
            keep_chips = [keep_chips[i] for i in order]
            keep_places = [keep_places[i] for i in order]
        say(0.3 * (index + 1) / len(windows), f"scoring tiles: window {index + 1}/{len(windows)}")
    chips = np.stack(keep_chips) if keep_chips else np.empty((0, 1, 1, 1), np.float32)
    return chips, keep_places, keep_p


def _tile_masks(boxes: np.ndarray, places: Sequence[Any], size: tuple[int, int]) -> np.ndarray:
    """Truth boxes (inclusive pixel boxes of the scene) as masks of each tile."""
    masks = np.zeros((len(places), *size), bool)
    for mask, tile in zip(masks, places):
        for x0, y0, x1, y1 in np.asarray(boxes).reshape(-1, 4):
            c0, c1 = max(x0, tile.x0) - tile.x0, min(x1 + 1, tile.x1) - tile.x0
            r0, r1 = max(y0, tile.y0) - tile.y0, min(y1 + 1, tile.y1) - tile.y0
            if c1 > c0 and r1 > r0:
                mask[r0:r1, c0:c1] = True
    return masks


def _rounded(value: Any, digits: int = 4) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# -- the figure ------------------------------------------------------------------------------------


def sanity_figure(report: SanityReport, path: str | os.PathLike[str], title: str = "") -> None:
    """A PNG: one row per method, the hottest tile's image `s(I)` then its map at every stage.

    matplotlib draws it when importable; otherwise the panels are composed with numpy and written
    with GDAL's PNG driver (no labels).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        _plain_figure(report, Path(path))
        return
    methods, stages = list(report.maps), report.stages
    rows, cols = len(methods), len(stages) + 1
    figure = Figure(figsize=(1.55 * cols, 1.65 * rows + 0.6), layout="constrained")
    grid = figure.subplots(rows, cols, squeeze=False)
    for i, method in enumerate(methods):
        rho = report.methods[method]["spearman"]
        panels = [("image s(I)", report.image[0], "gray")]
        panels += [
            (f"{stage}\nρ={_text(rho[j])}", report.maps[method][j][0], "inferno")
            for j, stage in enumerate(stages)
        ]
        for j, (name, image, cmap) in enumerate(panels):
            axes = grid[i, j]
            axes.imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(name if j else ("image s(I)" if i == 0 else ""), fontsize=7)
            if j == 0:
                axes.set_ylabel(method, fontsize=8, fontweight="bold")
    if title:
        figure.suptitle(title, fontsize=8)
    figure.savefig(path, dpi=100, format="png")


def _text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _plain_figure(report: SanityReport, path: Path) -> None:
    from osgeo import gdal

    from mscam.scene.raster import using_gdal

    height, width = report.image.shape[-2:]
    gap = 4
    methods = list(report.maps)
    cols = len(report.stages) + 1
    canvas = np.full(
        (3, len(methods) * (height + gap) + gap, cols * (width + gap) + gap), 255, np.uint8
    )
    # A few anchors of an inferno-like ramp: dark purple → red → yellow.
    anchors = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]])
    for i, method in enumerate(methods):
        panels = [np.repeat(report.image[0][None] * 255, 3, axis=0)]
        for stage_maps in report.maps[method]:
            levels = np.clip(stage_maps[0], 0, 1) * (len(anchors) - 1)
            panels.append(
                np.stack(
                    [np.interp(levels, np.arange(len(anchors)), anchors[:, c]) for c in range(3)]
                )
            )
        for j, panel in enumerate(panels):
            y, x = gap + i * (height + gap), gap + j * (width + gap)
            canvas[:, y : y + height, x : x + width] = panel.round().astype(np.uint8)
    with using_gdal():
        memory = gdal.GetDriverByName("MEM").Create("", canvas.shape[2], canvas.shape[1], 3)
        for band in range(3):
            memory.GetRasterBand(band + 1).WriteArray(canvas[band])
        gdal.GetDriverByName("PNG").CreateCopy(str(path), memory)
        xml = Path(f"{path}.aux.xml")
        xml.unlink(missing_ok=True)
