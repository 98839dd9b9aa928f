"""Compare every CAM method on the tile around one point of a scene (no GUI: testable headless).

The tile is read and preprocessed exactly as the scene pipeline reads it, the model runs once for
the class probabilities, then each method explains the chosen class on that same tile. The maps
are min-maxed per method (normalize=True): this view compares where each method looks, not how
hot the scene heatmap would be.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Comparison:
    """Class probabilities, one map per method, and what they were computed on."""

    probabilities: dict[str, float]  # class name → softmax probability
    maps: dict[str, np.ndarray]  # method → (h, w) float32 in [0, 1]
    seconds: dict[str, float]  # method → time spent
    image: np.ndarray  # (h, w) float32 in [0, 1]: the first model channel, for display
    window: tuple[int, int, int, int]  # x0, y0, width, height in raster pixels
    target_class: str
    model_name: str


def tile_window(
    col: float, row: float, tile: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """The tile × tile window centred on (col, row), moved inside the raster (smaller when the
    raster is)."""
    w, h = min(tile, width), min(tile, height)
    x0 = int(np.clip(round(col - w / 2), 0, width - w))
    y0 = int(np.clip(round(row - h / 2), 0, height - h))
    return x0, y0, w, h


def compare_methods(
    raster: str,
    x: float,
    y: float,
    model: str | None = None,
    *,
    methods: list[str] | None = None,
    target_class: str | None = None,
    tile: int | None = None,
    device: str = "cpu",
    architecture_file: str | None = None,
) -> Comparison:
    """Probabilities and every method's map for the tile around map point (x, y) (in the
    raster's CRS) of `raster`. `model` None is the bundled default model; `tile` None the card's
    chip size; `methods` None all of `mscam.METHODS`."""
    import torch
    from mscam.cam import METHODS, create_explainer
    from mscam.errors import InputError
    from mscam.models import load_model
    from mscam.models.select import bundled_model_for
    from mscam.scene.pipeline import resolve_device
    from mscam.scene.preprocess import ScenePreprocessor
    from mscam.scene.raster import PixelMapper, RasterReader

    if model is None:  # the bundled model the scene pipeline would pick (dual- or single-pol)
        with RasterReader(raster) as reader:
            model = bundled_model_for(reader.info).path
    loaded = load_model(model, device=resolve_device(device), architecture_file=architecture_file)
    card = loaded.card
    target_class = target_class or card.target_classes[0]
    target = card.class_index(target_class)
    with RasterReader(raster) as reader:
        info = reader.info
        col, row = (float(v) for v in PixelMapper(info).map_to_pixel(np.array(x), np.array(y)))
        if not (0 <= col < info.width and 0 <= row < info.height):
            raise InputError(f"point ({x:.6g}, {y:.6g}) is outside {raster}")
        window = tile_window(col, row, tile or card.chip_size, info.width, info.height)
        chip, _valid = ScenePreprocessor(reader, card).read(*window)
    chip = np.nan_to_num(chip, nan=0.0).astype(np.float32)
    batch = torch.from_numpy(chip)[None].to(next(loaded.model.parameters()).device)
    with torch.no_grad():
        logits = loaded.model(batch)
    probabilities = torch.softmax(logits.float(), dim=1)[0].cpu().numpy()
    maps, seconds = {}, {}
    for method in methods or list(METHODS):
        started = time.perf_counter()
        explainer = create_explainer(method, loaded.model, card.target_layer)
        maps[method] = explainer.compute(batch, target).maps[0].detach().cpu().numpy()
        seconds[method] = time.perf_counter() - started
    shown = chip[0]
    span = float(shown.max() - shown.min())
    image = (shown - shown.min()) / span if span > 0 else np.zeros_like(shown)
    return Comparison(
        probabilities={name: float(p) for name, p in zip(card.classes, probabilities)},
        maps=maps,
        seconds=seconds,
        image=image.astype(np.float32),
        window=window,
        target_class=target_class,
        model_name=f"{card.name} {card.version}",
    )
