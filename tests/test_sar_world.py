"""The widened synthetic world: polarisation, pixel spacing, ship sizes and headings, hard
negatives, harbours, calibration and looks, chip families and hold-outs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mscam.errors import InputError
from mscam.radiometry.units import db_to_linear, linear_to_db
from mscam.sar.chips import FAMILIES, build_chips
from mscam.sar.synth import (
    average_scene,
    polarisation_ratio_db,
    scene_profile,
    synthesize_scene,
)
from mscam.sar.targets import HullStyle, render_ship
from mscam.sar.world import random_scene_arguments, render_scene

#: Open sea with a constant wind and nothing on it but what a test asks for.
PLAIN_SEA = scene_profile(
    "rough", nu=None, swell_db=0.0, streak_db=0.0, calm_fraction=0.0, wind_var=0.0,
    island_density=0.0, buoy_density=0.0, platform_density=0.0, wake_probability=0.0,
    ghost_probability=0.0,
)  # fmt: skip


def median_db(db: np.ndarray) -> float:
    return float(linear_to_db(np.median(db_to_linear(db[np.isfinite(db)]))))


def test_hh_sea_is_darker_than_vv_and_more_so_at_high_incidence() -> None:
    assert polarisation_ratio_db(0.0) == pytest.approx(0.0, abs=1e-6)
    ratios = polarisation_ratio_db(np.array([20.0, 30.0, 40.0, 45.0]))
    assert np.all(np.diff(ratios) > 0) and 0.5 < ratios[0] < 1.5 and 3.0 < ratios[-1] < 4.0
    kwargs = {"n_ships": 0, "incidence_deg": (20.0, 46.0)}
    vv = synthesize_scene(256, PLAIN_SEA, seed=5, polarisation="VV", **kwargs)
    hh = synthesize_scene(256, PLAIN_SEA, seed=5, polarisation="HH", **kwargs)
    assert (vv.band_names, hh.band_names) == (("VV", "VH"), ("HH", "HV"))
    near, far = slice(8, 60), slice(196, 248)
    gap_near = median_db(vv.vv_db[:, near]) - median_db(hh.vv_db[:, near])
    gap_far = median_db(vv.vv_db[:, far]) - median_db(hh.vv_db[:, far])
    assert 0.3 < gap_near < gap_far and gap_far - gap_near > 1.0
    # The cross-polarised band does not change with the co-polarisation.
    np.testing.assert_array_equal(vv.vh_db, hh.vh_db)


def test_random_polarisation_is_drawn_from_the_seed() -> None:
    pols = {
        synthesize_scene(64, "calm", seed=s, polarisation="random").polarisation for s in range(8)
    }
    assert pols == {"VV", "HH"}
    first = synthesize_scene(96, "dense", seed=3, polarisation="random", pixel_spacing=8.0)
    again = synthesize_scene(96, "dense", seed=3, polarisation="random", pixel_spacing=8.0)
    np.testing.assert_array_equal(first.vv_db, again.vv_db)
    assert first.ships == again.ships and first.polarisation == again.polarisation


@pytest.mark.parametrize("heading", [0.0, 37.0, 90.0, 128.0, 211.0, 333.0])
def test_rendered_hull_follows_its_heading(heading: float) -> None:
    # Second moments of the noise-free render (pixels within 25 dB of the peak): the hull's
    # long axis points along the heading (clockwise from up), whatever the angle.
    patch = render_ship(80.0, 80.0, 30.0, 4.0, heading, 20.0, np.random.default_rng(1))
    ys, xs = np.nonzero(patch.intensity > patch.intensity.max() * 10**-2.5)
    x, y = xs - xs.mean(), ys - ys.mean()
    axis = 0.5 * math.degrees(math.atan2(2 * (x * y).mean(), (x * x).mean() - (y * y).mean()))
    rad = math.radians(heading)
    expected = math.degrees(math.atan2(-math.cos(rad), math.sin(rad)))
    assert abs((axis - expected + 90) % 180 - 90) < 10


def test_a_filled_hull_returns_from_the_whole_deck_not_one_bright_cross() -> None:
    # Noise-free renders of the same 60 × 10 px ship, heading 90° (along x), peak 20 dB, 3 m
    # pixels (resolution 1 px: the hull is resolved). Classic: a hull line 15–25 dB under the
    # superstructure; filled, with a superstructure no brighter than the deck: bright everywhere.
    def render(style):
        patches = [
            render_ship(100.0, 100.0, 60.0, 10.0, 90.0, 20.0, np.random.default_rng(s),
                        (1.0, 1.0), 0.75, style)
            for s in range(6)
        ]  # fmt: skip
        out = []
        for patch in patches:
            db = linear_to_db(patch.intensity)
            ys, xs = np.mgrid[: db.shape[0], : db.shape[1]]
            xs, ys = xs + patch.x0 + 0.5 - 100.0, ys + patch.y0 + 0.5 - 100.0
            deck = (np.abs(xs) < 25) & (np.abs(ys) < 3)
            out.append((np.median(db[deck]), np.mean(db[deck] > 20.0 - 10.0)))
        return np.array(out)

    classic = render(None)
    filled = render(HullStyle(fill=2.0, superstructure_db=0.0))
    # The deck's median sits 15+ dB nearer the peak (measured ~27 dB), and a good part of the
    # deck is within 10 dB of the peak (measured ~0.32 against ~0.02).
    assert np.median(filled[:, 0]) - np.median(classic[:, 0]) > 15.0
    assert filled[:, 1].mean() > 0.2 > 0.05 > classic[:, 1].mean()


def test_the_widened_world_draws_both_hull_styles_and_a_wide_brightness() -> None:
    from mscam.sar.world import random_scene_arguments

    rng = np.random.default_rng(0)
    arguments = random_scene_arguments("open", rng, size=512, n_ships=40)
    assert arguments["profile"].filled_hull_fraction == 0.5
    assert 1.0 <= arguments["looks"] <= 32.0
    looks = [random_scene_arguments("open", rng)["looks"] for _ in range(200)]
    assert min(looks) < 2.0 and max(looks) > 16.0  # log-uniform over [1, 32]
    scene = synthesize_scene(**arguments)
    peaks = np.array([s["peak_db"] for s in scene.ships if s["length_m"] >= 100])
    assert len(peaks) >= 10 and np.ptp(peaks) > 10.0  # long ships dim and bright
    # A plain profile draws no hull style: its scenes stay exactly what they were.
    assert scene_profile("calm").filled_hull_fraction == 0.0


def test_ship_lengths_span_the_requested_range_at_any_heading() -> None:
    scene = synthesize_scene(
        512, PLAIN_SEA, seed=2, n_ships=30, ship_length_m=(150.0, 400.0), pixel_spacing=12.0
    )
    lengths = np.array([s["length_m"] for s in scene.ships])
    headings = np.array([s["heading_deg"] for s in scene.ships])
    assert len(lengths) >= 15
    assert lengths.min() >= 150.0 and lengths.max() <= 400.0 and np.ptp(lengths) > 150
    assert len(set((headings // 45).astype(int).tolist())) >= 6  # any heading


@pytest.mark.parametrize("spacing", [5.0, 10.0, 15.0])
def test_a_ship_spans_length_over_spacing_pixels(spacing: float) -> None:
    scene = synthesize_scene(
        160, PLAIN_SEA, seed=4, n_ships=1, ship_length_m=(300.0, 300.0), pixel_spacing=spacing
    )
    (ship,) = scene.ships
    assert scene.geotransform[1] == spacing and scene.pixel_spacing == spacing
    # Bright pixels (15 dB over the sea) projected on the ship's axis span ~ L / spacing.
    sea = median_db(scene.vv_db)
    ys, xs = np.nonzero(np.nan_to_num(scene.vv_db, nan=-99) > sea + 15)
    rad = math.radians(ship["heading_deg"])
    along = (xs + 0.5 - ship["x"]) * math.sin(rad) - (ys + 0.5 - ship["y"]) * math.cos(rad)
    across = (xs + 0.5 - ship["x"]) * math.cos(rad) + (ys + 0.5 - ship["y"]) * math.sin(rad)
    on_hull = np.abs(across) < 3 * 20 / spacing  # not the sidelobe cross far off the hull
    span = np.ptp(along[on_hull & (np.abs(along) < 300 / spacing)])
    assert 0.75 * 300 / spacing < span < 300 / spacing + 4 * 20 / spacing


def test_calibration_offset_and_looks() -> None:
    base = synthesize_scene(128, PLAIN_SEA, seed=6, n_ships=2)
    shifted = synthesize_scene(128, PLAIN_SEA, seed=6, n_ships=2, calibration_db=1.5)
    valid = base.valid_mask
    np.testing.assert_allclose(shifted.vv_db[valid] - base.vv_db[valid], 1.5, atol=1e-3)
    assert [s["peak_db"] - 1.5 for s in shifted.ships] == pytest.approx(
        [s["peak_db"] for s in base.ships]
    )
    # Fewer looks, spikier speckle: ENL of a strip of homogeneous sea follows ``looks``.
    for looks in (1.0, 2.0, 8.0):
        scene = synthesize_scene(256, PLAIN_SEA, seed=7, n_ships=0, looks=looks)
        strip = db_to_linear(scene.vv_db[:, 100:104][scene.valid_mask[:, 100:104]])
        assert strip.mean() ** 2 / strip.var() == pytest.approx(looks, rel=0.2)


def test_hard_negatives_and_harbours_of_the_wide_world() -> None:
    profile = scene_profile(
        "coastal", harbours=2, moored_fraction=1.0, rock_density=2.0, offscene_ghost_density=1.0,
        land_ghost_probability=1.0, dim_ship_fraction=1.0, kelvin_probability=1.0, seam_db=1.0,
    )  # fmt: skip
    scene = synthesize_scene(384, profile, seed=3, n_ships=10, ship_length_m=(20.0, 120.0))
    kinds = {n["kind"] for n in scene.hard_negatives}
    sources = {n.get("source") for n in scene.hard_negatives if n["kind"] == "ghost"}
    assert {"quay", "rock", "ghost"} <= kinds and {"offscene", "land"} <= sources
    moored = [s for s in scene.ships if s["moored"]]
    assert moored
    for ship in moored:  # alongside a quay: land within a few pixels, none under the hull
        x0, y0, x1, y1 = ship["box"]
        assert scene.land_mask[y0 - 3 : y1 + 4, x0 - 3 : x1 + 4].any()
        assert scene.land_mask[int(ship["y"]), int(ship["x"])] == 0
    for quay in (n for n in scene.hard_negatives if n["kind"] == "quay"):
        x0, y0, x1, y1 = quay["box"]
        assert scene.land_mask[y0 : y1 + 1, x0 : x1 + 1].any()


def test_chip_families_exclusions_and_length_band() -> None:
    chips = build_chips(
        10,
        seed=4,
        exclude_families=("rock", "windfarm", "ship_partial", "harbour"),
        ship_length_range=(200.0, 400.0),
        polarisation="HH",
        pixel_spacing=(8.0, 12.0),
    )
    assert np.bincount(chips.labels).tolist() == [10, 10, 10, 10]
    assert not {"rock", "windfarm", "ship_partial", "harbour"} & set(chips.families.tolist())
    assert {"platform", "buoy", "island", "ghost", "land_ghost"} <= set(chips.families.tolist())
    ships = chips.labels == 0
    assert np.all((chips.lengths_m[ships] >= 200) & (chips.lengths_m[ships] <= 400))
    assert np.isnan(chips.lengths_m[~ships]).all()
    assert set(chips.polarisation.tolist()) == {"HH"}
    assert 8.0 <= chips.pixel_spacing.min() < chips.pixel_spacing.max() <= 12.0
    # A subset keeps every per-chip array aligned.
    sea = chips.subset(chips.families == "sea")
    assert len(sea) == 10 and len(sea.boxes) == 10 and set(sea.families.tolist()) == {"sea"}


def test_large_ships_fill_their_chips() -> None:
    chips = build_chips(6, seed=8, ship_length_range=(250.0, 400.0))
    whole = np.flatnonzero(np.isin(chips.families, ["ship", "ship_coastal"]))
    assert whole.size
    for i in whole:
        # The biggest box in the chip is the chip's ship: ≥ 25 px along its longer side.
        sides = [max(b[2] - b[0], b[3] - b[1]) + 1 for b in chips.boxes[i]]
        assert max(sides) >= 0.7 * 250 / 10 / math.sqrt(2)


def test_bad_world_arguments() -> None:
    with pytest.raises(InputError, match="polarisation"):
        synthesize_scene(64, "calm", polarisation="VH")
    with pytest.raises(InputError, match="pixel spacing"):
        synthesize_scene(64, "calm", pixel_spacing=0.0)
    with pytest.raises(InputError, match="unknown chip families"):
        build_chips(2, exclude_families=("whale",))
    with pytest.raises(InputError, match="ship_length_range"):
        build_chips(2, ship_length_range=(300.0, 100.0))
    with pytest.raises(InputError, match="world"):
        build_chips(2, world="flat")
    assert set(FAMILIES.values()) == {"ship", "sea", "land", "bright"}


def test_hh_scene_file_says_hh_and_hv(tmp_path) -> None:
    pytest.importorskip("osgeo")
    from mscam.radiometry.units import detect_band_roles
    from mscam.sar.synth_io import write_scene
    from mscam.scene.raster import open_raster_info

    scene = synthesize_scene(96, "dense", seed=1, polarisation="HH", pixel_spacing=8.0)
    write_scene(scene, tmp_path / "hh.tif", tmp_path / "hh.gpkg")
    info = open_raster_info(tmp_path / "hh.tif")
    assert info.descriptions == ("HH", "HV") and info.geotransform[1] == 8.0
    assert detect_band_roles(2, descriptions=info.descriptions) == ("HH", "HV")


def test_wind_farm_is_a_lattice_at_the_asked_spacing() -> None:
    profile = scene_profile("empty", land_fraction=0.0, turbine_spacing_m=(400.0, 400.0))
    scene = synthesize_scene(320, profile, seed=2, pixel_spacing=8.0)
    turbines = np.array([(n["x"], n["y"]) for n in scene.hard_negatives if n["kind"] == "turbine"])
    assert len(turbines) >= 6
    gaps = np.hypot(*(turbines[:, None, :] - turbines[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(gaps, np.inf)
    np.testing.assert_allclose(gaps.min(axis=1), 400.0 / 8.0, rtol=1e-6)


def test_scene_tiles_cover_the_scene_and_are_labelled_from_the_truth() -> None:
    from mscam.sar.chips import TILE_FAMILIES, scene_tiles

    scene = synthesize_scene(256, "dense", seed=2, n_ships=6, ship_length_m=(80.0, 300.0))
    tiles = scene_tiles(scene, 64, 32)
    assert set(tiles.families.tolist()) <= set(TILE_FAMILIES)
    assert np.all(tiles.origins[:, 1:] % 32 == 0) and len(tiles) <= 7 * 7
    for i in range(len(tiles)):
        _, x, y = tiles.origins[i]
        np.testing.assert_array_equal(tiles.x[i, 0], scene.vv_db[y : y + 64, x : x + 64])
        is_ship = tiles.class_names[tiles.labels[i]] == "ship"
        assert is_ship == (tiles.boxes[i].shape[0] > 0)
        assert is_ship == np.isfinite(tiles.lengths_m[i])
    assert (tiles.labels == 0).sum() >= 4


def test_correlated_speckle_keeps_its_looks() -> None:
    from mscam.sar.fields import speckle

    rng = np.random.default_rng(3)
    for looks in (1.0, 4.0):
        plain, smooth = speckle((192, 192), looks, rng), speckle((192, 192), looks, rng, 1.0)
        for field in (plain, smooth):
            assert field.mean() == pytest.approx(1.0, abs=0.03)
            assert field.mean() ** 2 / field.var() == pytest.approx(looks, rel=0.1)
        neighbours = [
            np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1] for f in (plain, smooth)
        ]
        assert abs(neighbours[0]) < 0.05 and neighbours[1] > 0.4


def test_sidelobe_weighting_sets_the_cross() -> None:
    from mscam.sar.targets import render_scatterers

    one = (np.array([20.5]), np.array([20.5]), np.array([1.0 + 0j]))  # on a pixel centre
    levels = []
    for alpha in (1.0, 0.75, 0.55):
        patch = render_scatterers(*one, margin=16, alpha=alpha).intensity
        row = patch[16]  # the scatterer's row (y 20, in a window from y 4)
        centre = int(np.argmax(row))
        levels.append(10 * np.log10(row[centre + 5 : centre + 13].max() / row[centre]))
    # Sidelobes beyond 2.5 resolutions: unweighted ~-18 dB; S-1 weighting ~-22; near Hamming -40.
    assert -20.0 < levels[0] < -15.0
    assert levels[0] > levels[1] + 3 and levels[1] > levels[2] + 10


def test_every_family_fills_at_a_fine_pixel_spacing() -> None:
    # At 5 m a 256 px scene is 1.3 km: wind farms and harbours must still fit in pieces.
    chips = build_chips(10, seed=6, pixel_spacing=5.0, polarisation="random")
    assert set(chips.families.tolist()) == set(FAMILIES)
    assert np.all(chips.pixel_spacing == 5.0)


def test_averaging_a_scene_means_linear_power_per_block_and_scales_its_truth() -> None:
    scene = synthesize_scene(
        64, PLAIN_SEA, seed=11, n_ships=2, pixel_spacing=2.5, nodata_border=False
    )
    scene.vv_db[:4, :4] = linear_to_db(np.arange(1.0, 17.0).reshape(4, 4))
    scene.valid_mask[60:62, 0:3] = False
    scene.vv_db[60:62, 0:3] = np.nan
    coarse = average_scene(scene, 4)
    assert coarse.shape == (16, 16) and coarse.pixel_spacing == 10.0
    # The first block: mean of 1..16 in linear power (8.5), not the mean of the dB values.
    assert coarse.vv_db[0, 0] == pytest.approx(float(linear_to_db(8.5)), abs=1e-5)
    blocks = db_to_linear(scene.vh_db).reshape(16, 4, 16, 4).mean(axis=(1, 3))
    ok = coarse.valid_mask
    assert np.allclose(db_to_linear(coarse.vh_db[ok]), blocks[ok], rtol=1e-5)
    # A block with any nodata is nodata: rows 60–61 fall in block row 15, columns 0–2 in 0.
    assert not coarse.valid_mask[15, 0] and np.isnan(coarse.vv_db[15, 0])
    assert coarse.geotransform[1] == scene.geotransform[1] * 4 == 10.0
    assert coarse.looks == scene.looks * 16
    for fine, ship in zip(scene.ships, coarse.ships):
        assert ship["box"] == tuple(v // 4 for v in fine["box"])
        assert ship["x"] == pytest.approx((fine["x"] + 0.5) / 4 - 0.5)
        x0, y0, x1, y1 = ship["box"]
        peak = float(np.nanmax(coarse.vv_db[y0 : y1 + 1, x0 : x1 + 1]))
        assert ship["peak_db"] == pytest.approx(peak)
        assert ship["averaged"] == 4
    assert average_scene(scene, 1) is scene
    with pytest.raises(InputError):
        average_scene(scene, 0)


def test_a_share_of_the_world_is_rendered_finer_and_averaged_back() -> None:
    plain = random_scene_arguments("open", np.random.default_rng(4), pixel_spacing=(8.5, 11.5))
    same = random_scene_arguments(
        "open", np.random.default_rng(4), pixel_spacing=(8.5, 11.5), fine_fraction=0.0
    )
    assert "average" not in plain and repr(plain) == repr(same)
    factors = []
    for seed in range(6):
        args = random_scene_arguments(
            "open", np.random.default_rng(seed), size=128, pixel_spacing=(8.5, 11.5),
            n_ships=3, fine_fraction=1.0,
        )  # fmt: skip
        factor = args["average"]
        factors.append(factor)
        assert 2 <= factor <= 4 and args["size"] == 128 * factor
        # Targets as sharp as the fine pixels: 1–2.6 fine pixels of resolution.
        assert args["pixel_spacing"] <= min(args["resolution_m"]) <= 2.6 * args["pixel_spacing"]
        scene = render_scene(args)
        assert scene.shape == (128, 128)
        assert 8.5 <= scene.pixel_spacing <= 11.5
    assert len(set(factors)) > 1
    chips = build_chips(3, chip_size=32, seed=2, scene_size=128, fine_fraction=1.0)
    assert np.all((chips.pixel_spacing >= 8.5) & (chips.pixel_spacing <= 11.5))
    with pytest.raises(InputError, match="fine_fraction"):
        build_chips(3, chip_size=32, fine_fraction=1.5)
