"""Chip builder: shapes, classes, ship boxes and what each class may and may not contain."""

from __future__ import annotations

import time

import numpy as np
import pytest
from mscam.errors import InputError
from mscam.sar.chips import CHIP_CLASSES, ChipSet, build_chips
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
        inside = [
            b for b in boxes if b[0] >= 2 and b[1] >= 2 and b[2] <= SIZE - 3 and b[3] <= SIZE - 3
        ]
        assert inside, "a ship chip holds one whole ship with a margin"
        x0, y0, x1, y1 = max(inside, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        assert chips.x[i, 0, y0 : y1 + 1, x0 : x1 + 1].max() >= 4.5  # peaks are ≥ +5 dB
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
        name = chips.class_names[chips.labels[i]]
        if name == "sea":
            assert land == 0.0
        elif name == "land":
            assert land >= 0.3
        elif name == "bright":
            assert any(
                x <= n["x"] < x + SIZE and y <= n["y"] < y + SIZE for n in scene.hard_negatives
            )


def test_bright_chips_are_brighter_than_sea(chips: ChipSet) -> None:
    peak_sea = chips.x[by_class(chips, "sea"), 0].max(axis=(1, 2))
    peak_bright = chips.x[by_class(chips, "bright"), 0].max(axis=(1, 2))
    assert np.median(peak_bright) > np.median(peak_sea) + 5
    assert peak_sea.max() < 5.0  # no target hides in a sea chip


def test_determinism() -> None:
    first, again, other = build_chips(3, seed=5), build_chips(3, seed=5), build_chips(3, seed=6)
    np.testing.assert_array_equal(first.x, again.x)
    assert all(np.array_equal(a, b) for a, b in zip(first.boxes, again.boxes))
    assert not np.array_equal(first.x, other.x)


def test_fast_enough_for_training_sets() -> None:
    started = time.perf_counter()
    chips = build_chips(150, chip_size=SIZE, seed=1)
    elapsed = time.perf_counter() - started
    assert len(chips) == 600
    assert elapsed < 15.0, f"600 chips took {elapsed:.1f} s"


def test_bad_arguments() -> None:
    with pytest.raises(InputError):
        build_chips(0)
    with pytest.raises(InputError):
        build_chips(2, chip_size=256, scene_size=256)
