"""Chip builder: shapes, classes, families, ship boxes and what each may and may not contain."""

from __future__ import annotations

import numpy as np
import pytest
from mscam.errors import InputError
from mscam.radiometry.units import db_to_linear, linear_to_db
from mscam.sar.chips import CHIP_CLASSES, FAMILIES, ChipSet, build_chips
from mscam.sar.synth import synthesize_scene

SIZE = 64


@pytest.fixture(scope="module")
def chips() -> ChipSet:
    return build_chips(12, chip_size=SIZE, seed=3)


def by_class(chips: ChipSet, name: str) -> np.ndarray:
    return np.flatnonzero(chips.labels == chips.class_names.index(name))


def test_shapes_and_classes(chips: ChipSet) -> None:
    assert chips.class_names == CHIP_CLASSES == ("ship", "sea", "land", "bright")
    assert chips.x.shape == (48, 2, SIZE, SIZE) and chips.x.dtype == np.float32
    assert np.bincount(chips.labels).tolist() == [12, 12, 12, 12]
    assert len(chips) == len(chips.boxes) == chips.origins.shape[0] == 48
    assert not np.isnan(chips.x).any()
    # VV above VH on average, as in every scene.
    assert chips.x[:, 0].mean() > chips.x[:, 1].mean() + 3


def test_ship_chips_contain_their_ship(chips: ChipSet) -> None:
    centres = []
    for i in by_class(chips, "ship"):
        boxes = chips.boxes[i]
        assert boxes.shape[0] >= 1
        if chips.families[i] == "ship_partial":
            # Part of a long hull, cut by the chip's edge: its box touches the edge.
            assert any(
                b[0] == 0 or b[1] == 0 or b[2] == SIZE - 1 or b[3] == SIZE - 1 for b in boxes
            )
            continue
        inside = [
            b for b in boxes if b[0] >= 2 and b[1] >= 2 and b[2] <= SIZE - 3 and b[3] <= SIZE - 3
        ]
        assert inside, "a whole-ship chip holds one whole ship with a margin"
        x0, y0, x1, y1 = max(inside, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        # Even a dim boat stands ≥ 6 dB above the chip's median clutter.
        median = float(linear_to_db(np.median(db_to_linear(chips.x[i, 0]))))
        assert chips.x[i, 0, y0 : y1 + 1, x0 : x1 + 1].max() >= median + 6.0
        centres.append(((x0 + x1) / 2, (y0 + y1) / 2))
    # Placed at random, not always in the middle.
    assert np.ptp(np.array(centres), axis=0).min() > 10


def test_non_ship_chips_have_no_ship(chips: ChipSet) -> None:
    for name in ("sea", "land", "bright"):
        assert all(chips.boxes[i].shape == (0, 4) for i in by_class(chips, name))


def test_class_contents_by_tracing_chips_to_their_scenes(chips: ChipSet) -> None:
    cache: dict[int, object] = {}
    for i in range(len(chips)):
        scene_index, x, y = chips.origins[i]
        if scene_index not in cache:
            cache[scene_index] = synthesize_scene(**chips.scenes[scene_index])
        scene = cache[scene_index]
        window = (slice(y, y + SIZE), slice(x, x + SIZE))
        np.testing.assert_array_equal(chips.x[i, 0], scene.vv_db[window])
        land = scene.land_mask[window].mean()
        family = chips.families[i]
        assert chips.class_names[chips.labels[i]] == FAMILIES[family]
        assert chips.polarisation[i] == scene.polarisation
        if family == "sea":
            assert land == 0.0
        elif family == "land":
            assert land >= 0.3
        elif family == "coast":
            assert 0.03 <= land <= 0.3
        elif FAMILIES[family] == "bright":
            kinds = {
                "windfarm": {"turbine"}, "ghost": {"ghost:target", "ghost:offscene"},
                "land_ghost": {"ghost:land"},
            }.get(family, {family})  # fmt: skip
            inside = [
                n for n in scene.hard_negatives
                if _overlap((x, y, x + SIZE - 1, y + SIZE - 1), n["box"])
            ]  # fmt: skip
            assert kinds & {_kind(n) for n in inside}, family
        if FAMILIES[family] == "ship":
            lengths = [s["length_m"] for s in scene.ships]
            assert np.isclose(chips.lengths_m[i], lengths, rtol=1e-6).any()
        else:
            assert np.isnan(chips.lengths_m[i])


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _kind(item: dict) -> str:
    return f"ghost:{item['source']}" if item["kind"] == "ghost" else item["kind"]


def test_bright_chips_are_brighter_than_sea(chips: ChipSet) -> None:
    def contrast(index: np.ndarray) -> np.ndarray:
        x = chips.x[index, 0]
        median = linear_to_db(np.median(db_to_linear(x), axis=(1, 2)))
        return x.max(axis=(1, 2)) - median

    sea, bright = contrast(by_class(chips, "sea")), contrast(by_class(chips, "bright"))
    assert np.median(bright) > np.median(sea) + 5
    # Every point-like hard negative stands out of its clutter (none is plain sea).
    points = np.flatnonzero(np.isin(chips.families, ["platform", "windfarm", "buoy", "rock"]))
    assert points.size and contrast(points).min() > 5.0
    assert sea.max() < 20.0  # no target hides in a sea chip: only clutter spikes


def test_determinism() -> None:
    first, again, other = build_chips(3, seed=5), build_chips(3, seed=5), build_chips(3, seed=6)
    np.testing.assert_array_equal(first.x, again.x)
    assert all(np.array_equal(a, b) for a, b in zip(first.boxes, again.boxes))
    assert not np.array_equal(first.x, other.x)


def test_every_family_comes_from_several_scenes(chips: ChipSet) -> None:
    # Every family is present, and each family's chips are spread over scenes, not one.
    assert set(chips.families.tolist()) == set(FAMILIES)
    for family in ("ship", "sea", "land"):
        scenes = chips.origins[chips.families == family, 0]
        assert len(set(scenes.tolist())) >= 2, family


def test_bad_arguments() -> None:
    with pytest.raises(InputError):
        build_chips(0)
    with pytest.raises(InputError):
        build_chips(2, chip_size=256, scene_size=256)
