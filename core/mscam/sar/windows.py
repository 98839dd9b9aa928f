"""Where chips may be cut from a synthetic scene: window tests by integral images, vectorised.

Used by :mod:`mscam.sar.chips`: windows inside valid data, with a given land share, around a
target, cutting a long hull, clear of ships' sidelobes and of offshore hard negatives.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mscam.sar.synth import SyntheticScene
from mscam.sar.targets import sidelobe_margin

#: Hard negatives that sit at sea: they must not appear in sea, land or coast chips.
OFFSHORE_KINDS = ("platform", "turbine", "buoy", "ghost", "rock")


def integral(mask: np.ndarray) -> np.ndarray:
    return np.pad(mask.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))


def window_sums(integral: np.ndarray, xs: np.ndarray, ys: np.ndarray, size: int) -> np.ndarray:
    return (
        integral[ys + size, xs + size]
        - integral[ys, xs + size]
        - integral[ys + size, xs]
        + integral[ys, xs]
    )


def overlaps(xs: np.ndarray, ys: np.ndarray, size: int, boxes: np.ndarray) -> np.ndarray:
    """Whether each chip (xs, ys, size) intersects any inclusive box (E, 4)."""
    if boxes.size == 0:
        return np.zeros(xs.shape, bool)
    return (
        (xs[:, None] <= boxes[None, :, 2])
        & (xs[:, None] + size - 1 >= boxes[None, :, 0])
        & (ys[:, None] <= boxes[None, :, 3])
        & (ys[:, None] + size - 1 >= boxes[None, :, 1])
    ).any(axis=1)


def record_kind(item: dict[str, Any]) -> str:
    return f"ghost:{item.get('source', 'target')}" if item["kind"] == "ghost" else item["kind"]


def hull_points(ship: dict[str, Any], spacing: float) -> np.ndarray:
    """(n, 2) pixel positions sampling a ship's hull: its centre line and both sides."""
    length, beam = ship["length_m"] / spacing, ship["beam_m"] / spacing
    rad = math.radians(ship["heading_deg"])
    ux, uy, nx, ny = math.sin(rad), -math.cos(rad), math.cos(rad), math.sin(rad)
    t = np.linspace(-0.5, 0.5, max(int(2 * length) + 2, 3))[:, None] * length
    b = np.array([-0.5, 0.0, 0.5])[None, :] * beam
    xs = ship["x"] + t * ux + b * nx
    ys = ship["y"] + t * uy + b * ny
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


class SceneWindows:
    """Where chips of each family may be cut from one scene (all window tests vectorised)."""

    def __init__(self, scene: SyntheticScene, size: int, rng: np.random.Generator) -> None:
        self.scene, self.size, self.rng = scene, size, rng
        self.invalid = integral(~scene.valid_mask)
        self.land = integral(scene.land_mask)
        resolution = scene.resolution_m[0] / scene.pixel_spacing
        alpha = scene.sidelobe_alpha
        self.ship_boxes = np.array([s["box"] for s in scene.ships], np.int64).reshape(-1, 4)
        # Ships' exclusion zones reach as far as their sidelobes stand out of the sea.
        margins = np.array(
            [sidelobe_margin(s["peak_db"], resolution, alpha) for s in scene.ships], np.int64
        )
        self.ship_zones = self.ship_boxes + margins[:, None] * np.array([-1, -1, 1, 1])
        offshore = [n for n in scene.hard_negatives if n["kind"] in OFFSHORE_KINDS]
        zones = [
            np.add(
                n["box"],
                np.multiply([-1, -1, 1, 1], sidelobe_margin(n["peak_db"], resolution, alpha)),
            )
            for n in offshore
        ]
        self.offshore_zones = np.array(zones, np.int64).reshape(-1, 4)
        self.hulls = [hull_points(s, scene.pixel_spacing) for s in scene.ships]

    def valid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Whether each window (xs, ys) lies inside the scene and its valid data."""
        h, w = self.scene.shape
        inside = (xs >= 0) & (ys >= 0) & (xs <= w - self.size) & (ys <= h - self.size)
        xs, ys = np.clip(xs, 0, w - self.size), np.clip(ys, 0, h - self.size)
        return inside & (window_sums(self.invalid, xs, ys, self.size) == 0)

    def _random_windows(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.scene.shape
        xs = self.rng.integers(0, w - self.size + 1, count)
        ys = self.rng.integers(0, h - self.size + 1, count)
        keep = self.valid(xs, ys) & ~overlaps(xs, ys, self.size, self.ship_zones)
        keep &= ~overlaps(xs, ys, self.size, self.offshore_zones)
        return xs[keep], ys[keep]

    def by_land(self, count: int, low: float, high: float) -> list[tuple[int, int]]:
        """Windows with a land share in [low, high], clear of ships and offshore targets."""
        if count <= 0:
            return []
        xs, ys = self._random_windows(count * 20)
        land = window_sums(self.land, xs, ys, self.size) / self.size**2
        keep = (land >= low) & (land <= high)
        return list(zip(xs[keep].tolist(), ys[keep].tolist()))[:count]

    def around(
        self,
        box: tuple[int, int, int, int],
        pad: int,
        avoid_ships: bool = True,
        max_land: float = 1.0,
    ) -> tuple[int, int] | None:
        """A random window holding ``box`` with ``pad`` pixels to spare (or, for a box larger
        than a chip, its centre with a quarter chip to spare), inside valid data, with at most
        ``max_land`` of it on land."""
        s = self.size
        if box[2] - box[0] + 1 + 2 * pad > s or box[3] - box[1] + 1 + 2 * pad > s:
            cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
            box, pad = (cx, cy, cx, cy), s // 4
        xs = self.rng.integers(box[2] + pad - s + 1, box[0] - pad, 12, endpoint=True)
        ys = self.rng.integers(box[3] + pad - s + 1, box[1] - pad, 12, endpoint=True)
        keep = self.valid(xs, ys)
        if avoid_ships:
            keep &= ~overlaps(xs, ys, s, self.ship_zones)
        if max_land < 1.0:
            xs_, ys_ = (
                np.clip(xs, 0, self.scene.shape[1] - s),
                np.clip(ys, 0, self.scene.shape[0] - s),
            )
            keep &= window_sums(self.land, xs_, ys_, s) <= max_land * s * s
        hits = np.flatnonzero(keep)
        return (int(xs[hits[0]]), int(ys[hits[0]])) if hits.size else None

    def partial(self, k: int) -> tuple[int, int] | None:
        """A window cutting ship ``k``'s hull: 30–85 % of its samples inside, ≥ 6 px of it."""
        hull, s = self.hulls[k], self.size
        ship = self.scene.ships[k]
        length_px = ship["length_m"] / self.scene.pixel_spacing
        if length_px < 12:
            return None
        n = 12
        t = self.rng.uniform(-0.5, 0.5, n)
        anchor = hull[(np.clip(t + 0.5, 0, 0.999) * (len(hull) // 3)).astype(int) * 3 + 1]
        xs = (anchor[:, 0] - self.rng.uniform(0.1, 0.9, n) * s).astype(np.int64)
        ys = (anchor[:, 1] - self.rng.uniform(0.1, 0.9, n) * s).astype(np.int64)
        inside = (
            (hull[None, :, 0] >= xs[:, None])
            & (hull[None, :, 0] < xs[:, None] + s)
            & (hull[None, :, 1] >= ys[:, None])
            & (hull[None, :, 1] < ys[:, None] + s)
        ).mean(axis=1)
        keep = self.valid(xs, ys) & (inside >= 0.3) & (inside <= 0.85)
        keep &= inside * length_px >= 6
        hits = np.flatnonzero(keep)
        return (int(xs[hits[0]]), int(ys[hits[0]])) if hits.size else None

    def ships_in(self, x: int, y: int) -> tuple[np.ndarray, list[int]]:
        """Boxes (chip coordinates) of the ships in the window and their indices: a ship wholly
        inside keeps its truth box; one cut by the edge gets the box of its hull's part inside."""
        s = self.size
        b = self.ship_boxes
        hit = (b[:, 0] <= x + s - 1) & (b[:, 2] >= x) & (b[:, 1] <= y + s - 1) & (b[:, 3] >= y)
        boxes, index = [], []
        for k in np.flatnonzero(hit):
            x0, y0, x1, y1 = b[k]
            if x0 >= x and y0 >= y and x1 <= x + s - 1 and y1 <= y + s - 1:
                boxes.append((x0 - x, y0 - y, x1 - x, y1 - y))
            else:
                hull = self.hulls[k]
                inside = (
                    (hull[:, 0] >= x) & (hull[:, 0] < x + s) & (hull[:, 1] >= y)
                    & (hull[:, 1] < y + s)
                )  # fmt: skip
                if not inside.any():
                    continue
                px, py = hull[inside, 0] - x, hull[inside, 1] - y
                boxes.append((int(px.min()), int(py.min()), int(px.max()), int(py.max())))
            index.append(int(k))
        return np.array(boxes, np.int32).reshape(-1, 4), index
