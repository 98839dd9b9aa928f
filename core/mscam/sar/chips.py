"""Labelled chips from synthetic scenes, to train and evaluate a SAR ship classifier.

Four classes a ship detector must tell apart — ``ship``, ``sea``, ``land``, ``bright`` (a bright
non-ship) — and inside each, *families* (:data:`~mscam.sar.world.FAMILIES`: whole ships, parts of
long hulls, ships by the coast; sea; land, coast, harbours, towns; platforms, wind farms, buoys,
rocks, islands, ghosts) so training can leave one out and test on it. Scenes come from the wide
world of :mod:`mscam.sar.world`. Every chip carries the pixel boxes of the ships inside it (so a
CAM's localisation can be scored), its family, ship length, polarisation and pixel spacing.
Chips never touch a scene's nodata, and non-ship chips keep clear of ships' sidelobes.

>>> chips = build_chips(4, chip_size=64, seed=0)
>>> chips.x.shape, chips.class_names
((16, 2, 64, 64), ('ship', 'sea', 'land', 'bright'))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mscam.errors import InputError
from mscam.sar.profiles import PIXEL_M
from mscam.sar.synth import POLARISATIONS, SyntheticScene, synthesize_scene
from mscam.sar.windows import SceneWindows, overlaps, record_kind, window_sums
from mscam.sar.world import (
    CHIP_CLASSES,
    FAMILIES,
    FAMILY_WEIGHTS,
    KINDS,
    RECIPE,
    family_quotas,
    random_scene_arguments,
    render_scene,
)

#: Profiles cycled through by the ``classic`` world (the builder before families existed).
CHIP_PROFILES: tuple[str, ...] = ("coastal", "calm", "dense", "rough", "empty")


@dataclass
class ChipSet:
    """Chips ``x`` (N, 2, S, S) float32 σ0 in dB (co-pol, cross-pol: VV, VH or HH, HV),
    ``labels`` (N,) indices into ``class_names``, ``boxes[i]`` (k, 4) int inclusive pixel boxes
    (x0, y0, x1, y1) of the ships in chip i, ``origins`` (N, 3) = scene index, x0, y0 of each chip
    in its scene, and ``scenes`` = the :func:`synthesize_scene` keyword arguments of each scene
    index, so any chip can be traced back to its scene. ``families`` (N,) names what each chip
    shows (:data:`FAMILIES`), ``lengths_m`` (N,) the length of a ship chip's ship (NaN for other
    chips), ``polarisation`` (N,) its co-polarisation ("VV" or "HH") and ``pixel_spacing`` (N,)
    its metres per pixel."""

    x: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    boxes: list[np.ndarray]
    origins: np.ndarray
    scenes: list[dict[str, Any]]
    families: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U12"))
    lengths_m: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    polarisation: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U2"))
    pixel_spacing: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        n = len(self)
        if self.families.shape[0] != n:  # built by older code: fill in what it did not say
            self.families = np.array([self.class_names[i] for i in self.labels], "<U12")
        if self.lengths_m.shape[0] != n:
            self.lengths_m = np.full(n, np.nan, np.float32)
        if self.polarisation.shape[0] != n:
            self.polarisation = np.full(n, "VV", "<U2")
        if self.pixel_spacing.shape[0] != n:
            self.pixel_spacing = np.full(n, PIXEL_M, np.float32)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: np.ndarray | Iterable[int]) -> ChipSet:
        """The chips at ``index`` (e.g. ``chips.subset(chips.families != "rock")``)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return ChipSet(
            x=self.x[index],
            labels=self.labels[index],
            class_names=self.class_names,
            boxes=[self.boxes[i] for i in index],
            origins=self.origins[index],
            scenes=self.scenes,
            families=self.families[index],
            lengths_m=self.lengths_m[index],
            polarisation=self.polarisation[index],
            pixel_spacing=self.pixel_spacing[index],
        )


_Found = tuple[int, np.ndarray, np.ndarray, int, int, float]
#: Families whose target is a point-like return that must stand out of the local clutter.
_POINT_FAMILIES = ("platform", "windfarm", "buoy", "rock", "ghost", "land_ghost")


def _stands_out(scene: SyntheticScene, item: dict[str, Any], margin_db: float = 6.0) -> bool:
    """Whether a point target's peak is ``margin_db`` above the median co-pol clutter within
    12 px of it."""
    h, w = scene.shape
    x0, y0, x1, y1 = (int(v) for v in item["box"])
    window = scene.vv_db[max(y0 - 12, 0) : min(y1 + 13, h), max(x0 - 12, 0) : min(x1 + 13, w)]
    values = window[np.isfinite(window)]
    if values.size == 0:
        return False
    local = 10 * math.log10(float(np.median(np.power(10.0, values / 10.0))))
    return float(item["peak_db"]) >= local + margin_db


def _harvest(
    scene: SyntheticScene,
    where: SceneWindows,
    need: Mapping[str, int],
    caps: Mapping[str, int],
    length_range: tuple[float, float],
) -> dict[str, list[tuple[int, int, float]]]:
    """Chip positions (x, y, ship length or NaN) per family that this scene can give."""
    s = where.size
    spots: dict[str, list[tuple[int, int, float]]] = {f: [] for f in need}
    lo, hi = length_range
    wants_ship = any(need.get(f, 0) > 0 for f in ("ship", "ship_coastal", "ship_partial"))
    for k in where.rng.permutation(len(scene.ships)) if wants_ship else []:
        ship = scene.ships[k]
        length = float(ship["length_m"])
        if not lo <= length <= hi:
            continue
        if ship.get("averaged") and not _stands_out(scene, ship, 3.0):
            continue  # a small boat averaged into the clutter is no longer a ship to see
        x0, y0, x1, y1 = ship["box"]
        fits = x1 - x0 + 5 <= s and y1 - y0 + 5 <= s
        spot = where.around(ship["box"], pad=2, avoid_ships=False) if fits else None
        if spot is not None:
            x, y = spot
            land = window_sums(where.land, np.array([x]), np.array([y]), s)[0]
            family = "ship_coastal" if (ship.get("moored") or land > 0) else "ship"
            if len(spots.get(family, [])) < min(need.get(family, 0), caps.get(family, 0)):
                spots[family].append((x, y, length))
        if len(spots.get("ship_partial", [])) < min(
            need.get("ship_partial", 0), caps.get("ship_partial", 0)
        ):
            cut = where.partial(int(k))
            if cut is not None:
                spots["ship_partial"].append((*cut, length))
    for family, (low, high) in (("sea", (0.0, 0.0)), ("land", (0.3, 1.0)), ("coast", (0.03, 0.3))):
        count = min(need.get(family, 0), caps.get(family, 0))
        spots[family] = [(x, y, math.nan) for x, y in where.by_land(count, low, high)]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in scene.hard_negatives:
        by_kind.setdefault(record_kind(item), []).append(item)
    for family, kinds in KINDS.items():
        count = min(need.get(family, 0), caps.get(family, 0))
        items = [item for kind in kinds for item in by_kind.get(kind, [])]
        if family in _POINT_FAMILIES:
            # A buoy or a ghost lost in rough clutter would be a sea chip labelled bright.
            items = [item for item in items if _stands_out(scene, item)]
        if count <= 0 or not items:
            continue
        order = where.rng.permutation(len(items))
        for i in np.concatenate([order, order])[: 3 * count]:  # up to two chips per object
            if len(spots[family]) >= count:
                break
            # A ghost of the coast is a hard negative at sea: keep its chips mostly sea.
            max_land = 0.15 if family == "land_ghost" else 1.0
            spot = where.around(tuple(int(v) for v in items[i]["box"]), 2, True, max_land)
            if spot is not None:
                spots[family].append((*spot, math.nan))
    return spots


def build_chips(
    n_per_class: int,
    chip_size: int = 64,
    seed: int = 0,
    *,
    scene_size: int = 256,
    profiles: tuple[str, ...] = CHIP_PROFILES,
    max_scenes: int = 10_000,
    polarisation: str = "VV",
    pixel_spacing: float | tuple[float, float] = PIXEL_M,
    ship_length_range: tuple[float, float] = (15.0, 400.0),
    exclude_families: Iterable[str] = (),
    family_weights: Mapping[str, float] | None = None,
    world: str = "wide",
    fine_fraction: float = 0.0,
) -> ChipSet:
    """Cut ``n_per_class`` chips of each class in :data:`CHIP_CLASSES` from synthetic scenes.

    ``world="wide"`` (default): scenes of ``scene_size`` pixels drawn by
    :func:`random_scene_arguments` (open sea, coast, wind farm), each class's chips split over
    its :data:`FAMILIES` by ``family_weights`` (default :data:`FAMILY_WEIGHTS`), without the
    families in ``exclude_families`` (their share goes to the rest of their class; a class whose
    families are all excluded gets no chips). Ships are ``ship_length_range`` metres long
    (flat-ish), ``polarisation`` is ``"VV"``, ``"HH"`` or ``"random"`` (per scene) and
    ``pixel_spacing`` a value or a (lo, hi) range of metres (per scene); a share
    ``fine_fraction`` of the scenes is rendered 2–4× finer and averaged back to it
    (:func:`~mscam.sar.world.render_scene`).
    ``world="classic"``: the former builder (10 m, VV, scenes cycling through ``profiles``).
    Chips come from many scenes; same arguments, same chips; grouped by class in class order.
    """
    if n_per_class < 1 or chip_size < 16 or scene_size < 2 * chip_size:
        raise InputError("need n_per_class ≥ 1, chip_size ≥ 16 and scene_size ≥ 2 × chip_size")
    if polarisation not in (*POLARISATIONS, "random"):
        raise InputError(f"polarisation must be VV, HH or random, got {polarisation!r}")
    spacings = pixel_spacing if isinstance(pixel_spacing, tuple) else (pixel_spacing,) * 2
    if not 0.5 <= spacings[0] <= spacings[1] <= 100.0:
        raise InputError(f"pixel spacing must be 0.5–100 m (lo ≤ hi), got {pixel_spacing}")
    if not 0.0 <= fine_fraction <= 1.0:
        raise InputError(f"fine_fraction must be in [0, 1], got {fine_fraction}")
    lo, hi = ship_length_range
    if not 1.0 <= lo <= hi:
        raise InputError(f"ship_length_range must be (lo, hi) with 1 ≤ lo ≤ hi, got {(lo, hi)}")
    excluded = set(exclude_families)
    unknown = excluded - set(FAMILIES)
    if unknown:
        raise InputError(f"unknown chip families {sorted(unknown)}; choose from {list(FAMILIES)}")
    if world == "classic":
        return _build_classic(n_per_class, chip_size, seed, scene_size, profiles, max_scenes)
    if world != "wide":
        raise InputError(f"world must be wide or classic, got {world!r}")
    weights = {**FAMILY_WEIGHTS, **(family_weights or {})}
    weights = {f: (0.0 if f in excluded else float(weights.get(f, 0.0))) for f in FAMILIES}
    quotas = family_quotas(n_per_class, weights)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x57494445]))
    found: dict[str, list[_Found]] = {f: [] for f in quotas}
    scenes: list[dict[str, Any]] = []
    tries: dict[str, int] = {}
    # Each family's chips come from ≥ ~6 scenes; random windows at most ~ a scene's area each.
    area_cap = max(2, (scene_size // chip_size) ** 2)
    caps = {f: max(1, min(math.ceil(q / 6), area_cap)) for f, q in quotas.items()}
    while True:
        need = {f: q - len(found[f]) for f, q in quotas.items() if len(found[f]) < q}
        if not need:
            break
        if len(scenes) >= max_scenes:
            raise InputError(
                f"could not fill chip families {sorted(need)} from {max_scenes} scenes"
            )
        neediest = max(need, key=lambda f: (need[f] / quotas[f], -list(FAMILIES).index(f)))
        tries[neediest] = tries.get(neediest, 0) + 1
        if tries[neediest] > 60 + 4 * quotas[neediest]:
            raise InputError(
                f"could not fill chip family {neediest!r} at chip size {chip_size}, scene size "
                f"{scene_size}, pixel spacing {pixel_spacing} (exclude it, or change them)"
            )
        recipe = RECIPE[neediest]
        ships_wanted = any(f in need for f in ("ship", "ship_coastal", "ship_partial"))
        area = (scene_size / 256) ** 2
        n_ships = int(rng.integers(4, 12) * area) + 1 if ships_wanted else 0
        arguments = random_scene_arguments(
            recipe,
            rng,
            size=scene_size,
            polarisation=polarisation,
            pixel_spacing=pixel_spacing,
            ship_length_range=(lo, hi),
            n_ships=n_ships,
            fine_fraction=fine_fraction,
        )
        scene = render_scene(arguments)
        index = len(scenes)
        scenes.append(arguments)
        where = SceneWindows(scene, chip_size, rng)
        for family, places in _harvest(scene, where, need, caps, (lo, hi)).items():
            for x, y, length in places[: quotas[family] - len(found[family])]:
                chip = np.stack(
                    [
                        scene.vv_db[y : y + chip_size, x : x + chip_size],
                        scene.vh_db[y : y + chip_size, x : x + chip_size],
                    ]
                )
                boxes, _ = where.ships_in(x, y)
                found[family].append((index, chip, boxes, x, y, length))
    rows = [
        (label, family, item)
        for label, name in enumerate(CHIP_CLASSES)
        for family in FAMILIES
        if FAMILIES[family] == name
        for item in found.get(family, [])
    ]
    if not rows:
        raise InputError("every chip family is excluded")
    return _assemble(rows, scenes)


def _assemble(rows: list[tuple[int, str, _Found]], scenes: list[dict[str, Any]]) -> ChipSet:
    """A :class:`ChipSet` from (label, family, found chip) rows."""
    found = [item for _, _, item in rows]
    return ChipSet(
        x=np.stack([item[1] for item in found]).astype(np.float32),
        labels=np.array([label for label, _, _ in rows], np.int64),
        class_names=CHIP_CLASSES,
        boxes=[item[2] for item in found],
        origins=np.array([(item[0], item[3], item[4]) for item in found], np.int64),
        scenes=scenes,
        families=np.array([family for _, family, _ in rows], "<U12"),
        lengths_m=np.array([item[5] for item in found], np.float32),
        polarisation=np.array([scenes[item[0]].get("polarisation", "VV") for item in found], "<U2"),
        pixel_spacing=np.array(
            [
                scenes[item[0]].get("pixel_spacing", PIXEL_M) * scenes[item[0]].get("average", 1)
                for item in found
            ],
            np.float32,
        ),
    )


def _build_classic(
    n_per_class: int,
    chip_size: int,
    seed: int,
    scene_size: int,
    profiles: tuple[str, ...],
    max_scenes: int,
) -> ChipSet:
    """The former builder: 10 m VV scenes cycling through ``profiles``, one family per class
    (ship, sea, land, bright)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x43484950]))
    cap = max(4, math.ceil(n_per_class / 16))
    found: dict[str, list[_Found]] = {name: [] for name in CHIP_CLASSES}
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
        where = SceneWindows(scene, chip_size, rng)
        spots: dict[str, list[tuple[int, int, float]]] = {"ship": [], "sea": [], "land": []}
        for ship in scene.ships:
            spot = where.around(ship["box"], pad=2, avoid_ships=False)
            if spot is not None:
                spots["ship"].append((*spot, float(ship["length_m"])))
        spots["sea"] = [(x, y, math.nan) for x, y in where.by_land(cap, 0.0, 0.0)]
        spots["land"] = [(x, y, math.nan) for x, y in where.by_land(cap, 0.3, 1.0)]
        spots["bright"] = []
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for item in scene.hard_negatives:
            by_kind.setdefault(item["kind"], []).append(item)
        for _ in range(cap * 3 if by_kind else 0):
            if len(spots["bright"]) >= cap:
                break
            kind = sorted(by_kind)[int(rng.integers(len(by_kind)))]
            item = by_kind[kind][int(rng.integers(len(by_kind[kind])))]
            spot = where.around(tuple(int(v) for v in item["box"]), pad=2)
            if spot is not None:
                spots["bright"].append((*spot, math.nan))
        for name, places in spots.items():
            for x, y, length in places[: n_per_class - len(found[name])]:
                chip = np.stack(
                    [
                        scene.vv_db[y : y + chip_size, x : x + chip_size],
                        scene.vh_db[y : y + chip_size, x : x + chip_size],
                    ]
                )
                found[name].append((index, chip, where.ships_in(x, y)[0], x, y, length))
    rows = [(label, name, item) for label, name in enumerate(CHIP_CLASSES) for item in found[name]]
    return _assemble(rows, scenes)


#: Families of :func:`scene_tiles` (the class each one is).
TILE_FAMILIES: dict[str, str] = {
    "tile_ship": "ship",
    "tile_sea": "sea",
    "tile_land": "land",
    "tile_bright": "bright",
}
#: Hard negatives that make a tile ``bright`` (as the chip families do).
_BRIGHT_KINDS = ("platform", "turbine", "buoy", "rock", "ghost", "island")


def scene_tiles(
    scene: SyntheticScene,
    chip_size: int = 64,
    stride: int | None = None,
    *,
    min_hull_px: float = 4.0,
    scene_arguments: dict[str, Any] | None = None,
) -> ChipSet:
    """Every tile of ``scene`` on a regular grid (as the scene pipeline cuts it; ``stride``
    defaults to half a chip), labelled from the truth: to mine hard negatives with a model and
    to test on tiles that cut ships anywhere.

    A tile is ``ship`` (family ``tile_ship``) when at least ``min_hull_px`` pixels of a ship's
    hull lie inside, else ``bright`` when a platform, turbine, buoy, rock, ghost or island
    touches it, else ``land`` with ≥ 3 % land, else ``sea``. Tiles touching nodata, and tiles
    with only a sliver of a hull or a ship's sidelobes, are left out (their label is moot).
    ``scene_arguments`` (the scene's :func:`synthesize_scene` arguments) goes to ``scenes``.
    """
    stride = stride or chip_size // 2
    h, w = scene.shape
    if chip_size < 16 or stride < 1 or h < chip_size or w < chip_size:
        raise InputError("need chip_size ≥ 16, stride ≥ 1 and a scene at least one chip wide")
    where = SceneWindows(scene, chip_size, np.random.default_rng(0))
    gx, gy = np.meshgrid(
        np.arange(0, w - chip_size + 1, stride), np.arange(0, h - chip_size + 1, stride)
    )
    xs, ys = gx.ravel(), gy.ravel()
    s = chip_size
    hull_px = np.zeros(xs.shape, np.float32)
    for ship, hull in zip(scene.ships, where.hulls):
        inside = (
            (hull[None, :, 0] >= xs[:, None]) & (hull[None, :, 0] < xs[:, None] + s)
            & (hull[None, :, 1] >= ys[:, None]) & (hull[None, :, 1] < ys[:, None] + s)
        ).mean(axis=1)  # fmt: skip
        hull_px = np.maximum(hull_px, inside * ship["length_m"] / scene.pixel_spacing)
    bright_boxes = np.array(
        [n["box"] for n in scene.hard_negatives if n["kind"] in _BRIGHT_KINDS], np.int64
    ).reshape(-1, 4)
    ship = hull_px >= min_hull_px
    near_ship = overlaps(xs, ys, s, where.ship_zones)
    bright = overlaps(xs, ys, s, bright_boxes)
    land = window_sums(where.land, xs, ys, s) >= 0.03 * s * s
    keep = where.valid(xs, ys) & (ship | ~near_ship)
    label = np.where(ship, 0, np.where(bright, 3, np.where(land, 2, 1)))
    rows: list[tuple[int, str, _Found]] = []
    for k in np.flatnonzero(keep):
        x, y = int(xs[k]), int(ys[k])
        boxes, index = where.ships_in(x, y)
        chip = np.stack([scene.vv_db[y : y + s, x : x + s], scene.vh_db[y : y + s, x : x + s]])
        length = max((scene.ships[i]["length_m"] for i in index), default=math.nan)
        name = CHIP_CLASSES[int(label[k])]
        found = (0, chip, boxes, x, y, float(length) if ship[k] else math.nan)
        rows.append((int(label[k]), f"tile_{name}", found))
    rows.sort(key=lambda row: row[0])
    if not rows:
        raise InputError("the scene has no tile clear of nodata")
    arguments = scene_arguments or {
        "size": scene.shape, "profile": scene.profile, "seed": scene.seed,
        "polarisation": scene.polarisation, "pixel_spacing": scene.pixel_spacing,
    }  # fmt: skip
    return _assemble(rows, [arguments])
