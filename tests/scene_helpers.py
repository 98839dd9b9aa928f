"""Scenes and a model whose evidence is known exactly, shared by the scene and the plugin tests.

`bright_card` saves BrightNet (tests/data/bright_net.py: only bright pixels carry evidence, a tile
holding a bright target scores p(ship) near 1, plain sea about 0.12) as a model card; `sea_scene`
makes VV/VH dB arrays of calm sea with bright rectangular targets; `write_scene` writes one as a
GeoTIFF in UTM 33N (10 m pixels) unless other georeferencing is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mscam.models import ModelCard, save_model
from mscam.models.loading import _import_user_file
from mscam.scene.raster import write_geotiff

ARCH_FILE = Path(__file__).parent / "data" / "bright_net.py"
UTM = (500000.0, 10.0, 0.0, 6000000.0, 0.0, -10.0)


def bright_card(folder: Path) -> Path:
    card = ModelCard(
        name="bright-test",
        version="1",
        architecture="BrightNet",
        architecture_kwargs={},
        classes=["sea", "ship"],
        target_classes=["ship"],
        input_channels=["VV", "VH"],
        input_units="dB",
        preprocessing={"type": "db_window", "windows": [[-30, 10], [-35, 0]]},
        chip_size=64,
        target_layer="features",
        weights="weights.pt",
        description="tests",
    )
    network = _import_user_file(ARCH_FILE, "BrightNet").BrightNet(2, 2)
    return save_model(network, card, folder)


def sea_scene(height=300, width=400, targets=(), seed=0) -> np.ndarray:
    """VV/VH dB: calm sea with mild noise, and bright rectangular targets (x0, y0, x1, y1)."""
    rng = np.random.default_rng(seed)
    scene = np.stack(
        [-20 + rng.normal(0, 1, (height, width)), -27 + rng.normal(0, 1, (height, width))]
    ).astype(np.float32)
    for x0, y0, x1, y1 in targets:
        scene[0, y0:y1, x0:x1] = 5.0
        scene[1, y0:y1, x0:x1] = -5.0
    return scene


def write_scene(path: Path, array: np.ndarray, **georef) -> Path:
    if "gcps" not in georef and georef.get("geotransform", True) is not None:
        georef = {"geotransform": UTM, "projection": "EPSG:32633", **georef}
    georef = {k: v for k, v in georef.items() if v is not None}
    write_geotiff(path, array, band_descriptions=["VV", "VH"], nodata=float("nan"), **georef)
    return path
