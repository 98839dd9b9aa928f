"""Every CAM method on the tile around one point of a scene: the QGIS "compare methods here" view.

The tile is made as the scene pipeline makes its tiles (`SceneJob`): the same model (the bundled
one chosen for the scene's polarisations when none is given, BatchNorm folded), the same band
roles and units (detected, or the `units`/`bands` overrides), the same working grid (a scene
outside the model's pixel spacing is worked on at the model's spacing) and the same
preprocessing. So the tile's class probabilities are the ones the scene run gives that tile.

The maps are min-maxed per method (each on its own [0, 1] scale): the view compares where each
method looks, not how hot the scene heatmap would be (that is `probability · map`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from mscam.errors import InputError


@dataclass
class Comparison:
    """Class probabilities, one map per method, and what they were computed on."""

    probabilities: dict[str, float]  # class name → softmax probability
    maps: dict[str, np.ndarray]  # method → (h, w) float32 in [0, 1], min-maxed per method
    seconds: dict[str, float]  # method → time spent
    image: np.ndarray  # (h, w) float32 in [0, 1]: the first model channel, for display
    window: tuple[int, int, int, int]  # x0, y0, width, height in the raster's pixels
    target_class: str
    model_name: str
    #: The tile on the grid the model worked on (x0, y0, width, height): `window` unless the
    #: scene was resampled to the model's pixel spacing.
    working_window: tuple[int, int, int, int] | None = None
    #: The tile's corners in the raster's CRS (clockwise from top left); None without
    #: georeferencing.
    corners: list[tuple[float, float]] | None = None


def tile_window(
    col: float, row: float, tile: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """The tile × tile window centred on (col, row), moved inside the raster (smaller when the
    raster is)."""
    w, h = min(tile, width), min(tile, height)
    x0 = int(np.clip(round(col - w / 2), 0, width - w))
    y0 = int(np.clip(round(row - h / 2), 0, height - h))
    return x0, y0, w, h


def explain_point(
    scene: str | os.PathLike,
    x: float,
    y: float,
    *,
    model: str | None = None,
    methods: list[str] | None = None,
    target_class: str | None = None,
    tile: int | None = None,
    device: str = "cpu",
    architecture_file: str | None = None,
    units: str | None = None,
    bands: tuple[str, ...] | str | None = None,
    pixel_spacing: float | None = None,
) -> Comparison:
    """Class probabilities and every method's map for the tile around (x, y) of `scene`.

    (x, y) is in the raster's CRS (map coordinates), or (column, row) when the raster has no
    georeferencing. `model` None is the bundled model for the scene's polarisations; `tile` None
    the card's chip size; `methods` None all of `mscam.METHODS`; `units`, `bands` and
    `pixel_spacing` as for `explain_scene`.
    """
    import torch

    from mscam.cam import METHODS, create_explainer
    from mscam.scene.pipeline import SceneJob, SceneSettings
    from mscam.scene.settings import split_bands

    scene = os.fspath(scene)
    if isinstance(bands, str):  # "VV,VH" as a front end has it
        bands = split_bands(bands)
    job = SceneJob(
        scene,
        SceneSettings(
            model=model,
            target_class=target_class,
            tile=tile,
            device=device,
            units=units,
            bands=bands,
            architecture_file=architecture_file,
            pixel_spacing=pixel_spacing,
        ),
    )
    info = job.input_reader.info
    col, row, mapper = _pixel(info, x, y)
    if not (0 <= col < info.width and 0 <= row < info.height):
        raise InputError(f"point ({x:.6g}, {y:.6g}) is outside {scene}")
    # The tile is cut on the grid the model works on (the working grid, if any).
    fx, fy = (w / n for w, n in zip(job.working.size, job.working.input_size))
    grid = job.reader.info
    working = tile_window(col * fx, row * fy, job.grid.tile, grid.width, grid.height)
    chip, _valid = job.preprocessor.read(*working)
    chip = np.nan_to_num(chip, nan=0.0).astype(np.float32)
    card = job.loaded.card
    batch = torch.from_numpy(chip)[None].to(job.device)
    batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        logits = job.model(batch)
    probabilities = torch.softmax(logits.float(), dim=1)[0].cpu().numpy()
    maps, seconds = {}, {}
    for method in methods or list(METHODS):
        started = time.perf_counter()
        explainer = create_explainer(method, job.model, card.target_layer)
        maps[method] = explainer.compute(batch, job.target_index).maps[0].detach().cpu().numpy()
        seconds[method] = time.perf_counter() - started
    shown = chip[0]
    span = float(shown.max() - shown.min())
    image = (shown - shown.min()) / span if span > 0 else np.zeros_like(shown)
    window = _input_window(working, fx, fy, info.width, info.height)
    return Comparison(
        probabilities={name: float(p) for name, p in zip(card.classes, probabilities)},
        maps=maps,
        seconds=seconds,
        image=image.astype(np.float32),
        window=window,
        target_class=job.target_class,
        model_name=f"{card.name} {card.version}",
        working_window=working,
        corners=None if mapper is None else _corners(mapper, window),
    )


def _pixel(info, x: float, y: float):
    """(column, row) of map point (x, y), and the mapper (None: no georeferencing, (x, y) are
    pixel coordinates already)."""
    from mscam.scene.raster import PixelMapper

    if info.geotransform is None and len(info.gcps) < 3:
        return float(x), float(y), None
    mapper = PixelMapper(info)
    col, row = (float(v) for v in mapper.map_to_pixel(np.array(x), np.array(y)))
    return col, row, mapper


def _input_window(working, fx: float, fy: float, width: int, height: int):
    """A working-grid window (x0, y0, w, h) on the input's grid."""
    x0, y0, w, h = working
    if (fx, fy) == (1.0, 1.0):
        return working
    ix0, iy0 = math.floor(x0 / fx), math.floor(y0 / fy)
    ix1, iy1 = min(width, math.ceil((x0 + w) / fx)), min(height, math.ceil((y0 + h) / fy))
    return ix0, iy0, ix1 - ix0, iy1 - iy0


def _corners(mapper, window) -> list[tuple[float, float]]:
    x0, y0, w, h = window
    cols = np.array([x0, x0 + w, x0 + w, x0], dtype=float)
    rows = np.array([y0, y0, y0 + h, y0 + h], dtype=float)
    xs, ys = mapper.pixel_to_map(cols, rows)
    return [(float(a), float(b)) for a, b in zip(xs, ys)]
