"""Labelled chips from synthetic scenes, to train and evaluate a SAR ship classifier.

Four classes, each a situation a ship detector must tell apart:

* ``ship``: one ship fully inside, at a random (not always central) position;
* ``sea``: open-sea clutter only (calm to rough, by cycling the scene profiles);
* ``land``: at least 30 % land (coast, farmland, forest, towns), no ship, no offshore structure;
* ``bright``: a bright non-ship (platform, turbine, buoy, azimuth ghost, island, urban point).

Every chip carries the pixel boxes of the ships inside it, so a CAM's localisation can be scored.
Chips never touch a scene's nodata, and non-ship chips keep clear of ships' sidelobes.

>>> chips = build_chips(4, chip_size=64, seed=0)
>>> chips.x.shape, chips.class_names
((16, 2, 64, 64), ('ship', 'sea', 'land', 'bright'))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mscam.errors import InputError
from mscam.sar.synth import SyntheticScene, synthesize_scene
from mscam.sar.targets import sidelobe_margin

CHIP_CLASSES: tuple[str, ...] = ("ship", "sea", "land", "bright")
#: Profiles cycled through, so sea chips range from calm to rough and land chips exist.
CHIP_PROFILES: tuple[str, ...] = ("coastal", "calm", "dense", "rough", "empty")
#: Hard negatives that sit at sea: they must not appear in sea or land chips.
OFFSHORE_KINDS = ("platform", "turbine", "buoy", "ghost")


@dataclass
class ChipSet:
    """Chips ``x`` (N, 2, S, S) float32 σ0 in dB (VV, VH), ``labels`` (N,) indices into
    ``class_names``, ``boxes[i]`` (k, 4) int inclusive pixel boxes (x0, y0, x1, y1) of the ships
    in chip i, ``origins`` (N, 3) = scene index, x0, y0 of each chip in its scene, and
    ``scenes`` = the :func:`synthesize_scene` arguments (size, profile, seed, n_ships) of each
    scene index, so any chip can be traced back to its scene."""

    x: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    boxes: list[np.ndarray]
    origins: np.ndarray
    scenes: list[dict[str, Any]]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _integral(mask: np.ndarray) -> np.ndarray:
    return np.pad(mask.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def _window_sums(integral: np.ndarray, xs: np.ndarray, ys: np.ndarray, size: int) -> np.ndarray:
    return (
        integral[ys + size, xs + size]
        - integral[ys, xs + size]
        - integral[ys + size, xs]
        + integral[ys, xs]
    )


def _overlaps(xs: np.ndarray, ys: np.ndarray, size: int, boxes: np.ndarray) -> np.ndarray:
    """Whether each chip (xs, ys, size) intersects any inclusive box (E, 4)."""
    if boxes.size == 0:
        return np.zeros(xs.shape, bool)
    return (
        (xs[:, None] <= boxes[None, :, 2])
        & (xs[:, None] + size - 1 >= boxes[None, :, 0])
        & (ys[:, None] <= boxes[None, :, 3])
        & (ys[:, None] + size - 1 >= boxes[None, :, 1])
    ).any(axis=1)


def _contains(x: int, y: int, size: int, box: tuple[int, int, int, int], pad: int = 0) -> bool:
    return (
        box[0] - pad >= x
        and box[1] - pad >= y
        and box[2] + pad <= x + size - 1
        and box[3] + pad <= y + size - 1
    )


class _SceneChips:
    """Where chips of each class may be cut from one scene."""

    def __init__(self, scene: SyntheticScene, size: int, rng: np.random.Generator) -> None:
        self.scene, self.size, self.rng = scene, size, rng
        self.invalid = _integral(~scene.valid_mask)
        self.land = _integral(scene.land_mask)
        self.ship_boxes = np.array([s["box"] for s in scene.ships], np.int64).reshape(-1, 4)
        # Ships' exclusion zones reach as far as their sidelobes stand out of the sea.
        margins = np.array([sidelobe_margin(s["peak_db"]) for s in scene.ships], np.int64)
        self.ship_zones = self.ship_boxes + margins[:, None] * np.array([-1, -1, 1, 1])
        offshore = [n for n in scene.hard_negatives if n["kind"] in OFFSHORE_KINDS]
        zones = [
            np.add(n["box"], np.multiply([-1, -1, 1, 1], sidelobe_margin(n["peak_db"])))
            for n in offshore
        ]
        self.offshore_zones = np.array(zones, np.int64).reshape(-1, 4)

    def _random_windows(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.scene.shape
        xs = self.rng.integers(0, w - self.size + 1, count)
        ys = self.rng.integers(0, h - self.size + 1, count)
        keep = _window_sums(self.invalid, xs, ys, self.size) == 0
        keep &= ~_overlaps(xs, ys, self.size, self.ship_zones)
        return xs[keep], ys[keep]

    def sea(self, count: int) -> list[tuple[int, int]]:
        xs, ys = self._random_windows(count * 20)
        keep = _window_sums(self.land, xs, ys, self.size) == 0
        keep &= ~_overlaps(xs, ys, self.size, self.offshore_zones)
        return list(zip(xs[keep].tolist(), ys[keep].tolist()))[:count]

    def land_windows(self, count: int) -> list[tuple[int, int]]:
        xs, ys = self._random_windows(count * 20)
        keep = _window_sums(self.land, xs, ys, self.size) >= 0.3 * self.size**2
        keep &= ~_overlaps(xs, ys, self.size, self.offshore_zones)
        return list(zip(xs[keep].tolist(), ys[keep].tolist()))[:count]

    def around(self, box: tuple[int, int, int, int], pad: int) -> tuple[int, int] | None:
        """A random window holding ``box`` with ``pad`` pixels to spare, inside valid data."""
        h, w = self.scene.shape
        low_x, high_x = max(box[2] + pad - self.size + 1, 0), min(box[0] - pad, w - self.size)
        low_y, high_y = max(box[3] + pad - self.size + 1, 0), min(box[1] - pad, h - self.size)
        if low_x > high_x or low_y > high_y:
            return None
        for _ in range(10):
            x = int(self.rng.integers(low_x, high_x + 1))
            y = int(self.rng.integers(low_y, high_y + 1))
            if _window_sums(self.invalid, np.array([x]), np.array([y]), self.size)[0] == 0:
                return x, y
        return None

    def bright(self, count: int) -> list[tuple[int, int]]:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for item in self.scene.hard_negatives:
            by_kind.setdefault(item["kind"], []).append(item)
        found: list[tuple[int, int]] = []
        for _ in range(count * 3):
            if len(found) >= count or not by_kind:
                break
            kind = sorted(by_kind)[int(self.rng.integers(len(by_kind)))]
            item = by_kind[kind][int(self.rng.integers(len(by_kind[kind])))]
            spot = self.around(tuple(int(v) for v in item["box"]), pad=2)
            if (
                spot
                and not _overlaps(
                    np.array([spot[0]]), np.array([spot[1]]), self.size, self.ship_zones
                )[0]
            ):
                found.append(spot)
        return found

    def ships_in(self, x: int, y: int) -> np.ndarray:
        """Ship boxes intersecting the window, clipped to it, in chip coordinates."""
        b = self.ship_boxes
        s = self.size
        hit = (b[:, 0] <= x + s - 1) & (b[:, 2] >= x) & (b[:, 1] <= y + s - 1) & (b[:, 3] >= y)
        clipped = np.stack(
            [
                np.maximum(b[hit, 0] - x, 0),
                np.maximum(b[hit, 1] - y, 0),
                np.minimum(b[hit, 2] - x, s - 1),
                np.minimum(b[hit, 3] - y, s - 1),
            ],
            axis=1,
        )
        return clipped.astype(np.int32).reshape(-1, 4)


def build_chips(
    n_per_class: int,
    chip_size: int = 64,
    seed: int = 0,
    *,
    scene_size: int = 512,
    profiles: tuple[str, ...] = CHIP_PROFILES,
    max_scenes: int = 10_000,
) -> ChipSet:
    """Cut ``n_per_class`` chips of each class in :data:`CHIP_CLASSES` from synthetic scenes.

    Scenes of ``scene_size`` pixels cycle through ``profiles`` with seeds derived from ``seed``;
    each scene gives at most ~1/16 of a class's quota (so chips come from many scenes) and each
    ship one chip. Same arguments, same chips. Chips are grouped by class in class order.
    """
    if n_per_class < 1 or chip_size < 16 or scene_size < 2 * chip_size:
        raise InputError("need n_per_class ≥ 1, chip_size ≥ 16 and scene_size ≥ 2 × chip_size")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x43484950]))
    cap = max(4, math.ceil(n_per_class / 16))
    found: dict[str, list[tuple[int, np.ndarray, np.ndarray, int, int]]] = {
        name: [] for name in CHIP_CLASSES
    }
    scenes: list[dict[str, Any]] = []
    while any(len(v) < n_per_class for v in found.values()):
        if len(scenes) >= max_scenes:
            raise InputError(f"could not fill every chip class from {max_scenes} scenes")
        profile = profiles[len(scenes) % len(profiles)]
        scene_seed = int(rng.integers(2**31))
        ships_needed = len(found["ship"]) < n_per_class and profile != "empty"
        arguments = {
            "size": scene_size,
            "profile": profile,
            "seed": scene_seed,
            "n_ships": int(rng.integers(8, 20)) if ships_needed else None,
        }
        scene = synthesize_scene(**arguments)
        index = len(scenes)
        scenes.append(arguments)
        where = _SceneChips(scene, chip_size, rng)
        spots: dict[str, list[tuple[int, int]]] = {
            "ship": [p for p in (where.around(s["box"], pad=2) for s in scene.ships) if p],
            "sea": where.sea(cap),
            "land": where.land_windows(cap),
            "bright": where.bright(cap),
        }
        for name, places in spots.items():
            for x, y in places[: n_per_class - len(found[name])]:
                chip = np.stack(
                    [
                        scene.vv_db[y : y + chip_size, x : x + chip_size],
                        scene.vh_db[y : y + chip_size, x : x + chip_size],
                    ]
                )
                found[name].append((index, chip, where.ships_in(x, y), x, y))
    rows = [(label, item) for label, name in enumerate(CHIP_CLASSES) for item in found[name]]
    return ChipSet(
        x=np.stack([item[1] for _, item in rows]).astype(np.float32),
        labels=np.array([label for label, _ in rows], np.int64),
        class_names=CHIP_CLASSES,
        boxes=[item[2] for _, item in rows],
        origins=np.array([(item[0], item[3], item[4]) for _, item in rows], np.int64),
        scenes=scenes,
    )
