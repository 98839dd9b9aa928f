"""The bundled models (dual-pol and single-pol): safe loading, small files, which one a scene gets
from its band roles, that they classify fresh synthetic chips, and that the recipe is
deterministic."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from mscam.cli import main
from mscam.errors import InputError
from mscam.models import (
    DEFAULT_CARD_PATH,
    DUAL_POL_CARD_PATH,
    FINE_DUAL_POL_CARD_PATH,
    FINE_SINGLE_POL_CARD_PATH,
    SINGLE_POL_CARD_PATH,
    choose_bundled_model,
    load_model,
)
from mscam.models.select import bundled_model_for, match_roles
from mscam.sar.chips import build_chips
from mscam.scene.pipeline import SceneSettings, explain_scene
from mscam.scene.preprocess import ScenePreprocessor
from mscam.scene.raster import RasterReader, write_geotiff
from mscam.scene.spacing import DetailProbe, scene_detail
from mscam.training import CARD_VERSION, TrainConfig, to_input, train
from osgeo import gdal

BUNDLED = {"dual": DUAL_POL_CARD_PATH, "single": SINGLE_POL_CARD_PATH}
FINE = {"dual": FINE_DUAL_POL_CARD_PATH, "single": FINE_SINGLE_POL_CARD_PATH}
ALL_BUNDLED = {
    **BUNDLED,
    "fine_dual": FINE_DUAL_POL_CARD_PATH,
    "fine_single": FINE_SINGLE_POL_CARD_PATH,
}
UTM = (500000.0, 10.0, 0.0, 6000000.0, 0.0, -10.0)


def scene_with_bands(path: Path, roles: list[str], size: int = 96, spacing: float = 10.0) -> Path:
    """A small dB GeoTIFF at ``spacing`` metres whose band k has description roles[k] and the
    constant value -k - 20, so the band a preprocessor picks can be told from its values."""
    array = np.stack([np.full((size, size), -20.0 - k, np.float32) for k in range(len(roles))])
    write_geotiff(
        path,
        array,
        geotransform=(UTM[0], spacing, 0.0, UTM[3], 0.0, -spacing),
        projection="EPSG:32633",
        band_descriptions=roles,
        nodata=float("nan"),
    )
    return path


@pytest.mark.parametrize("kind", list(ALL_BUNDLED))
def test_bundled_models_load_safely_and_are_small(kind: str) -> None:
    path = ALL_BUNDLED[kind]
    loaded = load_model(path)  # weights_only loading, as every load is
    card = loaded.card
    weights = path.parent / card.weights
    assert weights.stat().st_size < 10_000_000
    assert torch.load(weights, weights_only=True).keys() == loaded.model.state_dict().keys()
    assert card.input_channels == (["CO", "CROSS"] if kind.endswith("dual") else ["CO"])
    fine = kind.startswith("fine")
    assert card.name.endswith("-fine") == fine and ("averaged" in card.description) == fine
    assert card.training["config"]["fine_fraction"] == (1.0 if fine else 0.0)
    assert card.architecture == "compact-fcn" and card.target_classes == ["ship"]
    assert card.pixel_spacing == 10.0 and card.accepts_spacing(10.0)
    assert card.training["gradient_spread"] > 0.1


def test_load_model_without_a_card_is_the_dual_pol_model() -> None:
    assert DEFAULT_CARD_PATH == DUAL_POL_CARD_PATH
    assert load_model().card.input_channels == ["CO", "CROSS"]


@pytest.mark.parametrize(
    ("roles", "kind", "picked"),
    [
        (["VV", "VH"], "dual", [0, 1]),
        (["HV", "HH"], "dual", [1, 0]),
        (["VV"], "single", [0]),
        (["HH"], "single", [0]),
    ],
)
def test_model_choice_from_a_real_geotiff(tmp_path, roles, kind, picked) -> None:
    path = scene_with_bands(tmp_path / "scene.tif", roles)
    with RasterReader(path) as reader:
        choice = bundled_model_for(reader.info)
        assert choice.path == BUNDLED[kind] and choice.kind == f"{kind}-pol"
        assert choice.note.startswith(f"auto: {kind}-pol (scene has ")
        card = load_model(choice.path).card
        preprocessor = ScenePreprocessor(reader, card)
        assert preprocessor.band_indices == picked
        channels, valid = preprocessor.read(0, 0, 8, 8)
    # Each channel holds its band's constant, windowed as the card says (CO: -30..10 dB).
    expected = [
        (-20.0 - k - w[0]) / (w[1] - w[0]) for k, w in zip(picked, card.preprocessing["windows"])
    ]
    assert valid.all()
    np.testing.assert_allclose(channels[:, 0, 0], expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("roles", "spacing", "override", "path"),
    [
        (["VV", "VH"], 3.0, None, FINE_DUAL_POL_CARD_PATH),
        (["HH"], 1.0, None, FINE_SINGLE_POL_CARD_PATH),
        (["VV"], 7.0, None, SINGLE_POL_CARD_PATH),  # averaged 1.4×: closer to a 10 m product
        (["VV"], 6.5, None, FINE_SINGLE_POL_CARD_PATH),
        (["VV"], 40.0, None, SINGLE_POL_CARD_PATH),  # coarser scenes are interpolated, not averaged
        (["VV"], 3.0, 10.0, SINGLE_POL_CARD_PATH),  # --pixel-spacing is the user's word
        (["VV", "VH"], 10.0, 3.0, FINE_DUAL_POL_CARD_PATH),
    ],
)
def test_a_scene_finer_than_the_model_accepts_gets_the_averaged_twin(
    tmp_path, roles, spacing, override, path
) -> None:
    scene = scene_with_bands(tmp_path / "scene.tif", roles, spacing=spacing)
    with RasterReader(scene) as reader:
        spacing = DetailProbe(reader, None, override).spacing
        choice = bundled_model_for(reader.info, pixel_spacing=spacing)
    assert choice.path == path and choice.finer == (path in FINE.values())
    if choice.finer:
        at = override or spacing
        assert choice.note.endswith(f", at {at:.3g} m)") and "for finer scenes" in choice.note
    else:
        assert "finer" not in choice.note
    # The twin reads the same bands as its 10 m model and works at the same spacing.
    twin, plain = (
        load_model(FINE[choice.kind.split("-")[0]]).card,
        load_model(BUNDLED[choice.kind.split("-")[0]]).card,
    )
    assert twin.input_channels == plain.input_channels
    assert (twin.pixel_spacing, twin.spacing_range) == (plain.pixel_spacing, plain.spacing_range)


def test_a_fine_scene_without_a_model_runs_with_the_averaged_twin_and_says_so(tmp_path) -> None:
    rng = np.random.default_rng(1)
    array = (-22 + rng.normal(0, 1, (1, 192, 192))).astype(np.float32)
    array[0, 90:96, 40:110] = 8.0  # a 210 m hull at 3 m
    scene = tmp_path / "vv3m.tif"
    write_geotiff(
        scene,
        array,
        geotransform=(UTM[0], 3.0, 0.0, UTM[3], 0.0, -3.0),
        projection="EPSG:32633",
        band_descriptions=["VV"],
    )
    explain_scene(scene, tmp_path / "heat.tif", settings=SceneSettings(device="cpu"))
    heat = gdal.Open(str(tmp_path / "heat.tif"))
    tags = heat.GetMetadata()
    assert (
        tags["MSCAM_MODEL_CHOICE"]
        == "auto: single-pol for finer scenes (scene has VV only, at 3 m)"
    )
    assert tags["MSCAM_MODEL"].startswith("mscam-sar-ships-single-fine")
    assert (heat.RasterXSize, heat.RasterYSize) == (192, 192)  # outputs on the input's grid
    # The same kind of scene imaged at 10 m and warped to 3 m holds 10 m detail: the 10 m model.
    coarse = tmp_path / "vv10m.tif"
    write_geotiff(
        coarse, array[:, ::3, ::3].copy(), geotransform=UTM, projection="EPSG:32633",
        band_descriptions=["VV"],
    )  # fmt: skip
    warped = tmp_path / "vv10m_as_3m.tif"
    gdal.Warp(str(warped), str(coarse), xRes=3.0, yRes=3.0, resampleAlg="bilinear")
    with RasterReader(warped) as reader:
        detail = scene_detail(reader, 1, 3.0)
        choice = bundled_model_for(reader.info, pixel_spacing=3.0, detail=detail)
    assert detail.oversampled and detail.detail > 6.7
    assert choice.path == SINGLE_POL_CARD_PATH and not choice.finer
    with RasterReader(scene) as reader:
        detail = scene_detail(reader, 1, 3.0)
        assert not detail.oversampled
        assert bundled_model_for(reader.info, pixel_spacing=3.0, detail=detail).finer
    # The pipeline measures it too: the warped scene runs with the 10 m model, decimated.
    explain_scene(warped, tmp_path / "heat_w.tif", settings=SceneSettings(device="cpu"))
    tags = gdal.Open(str(tmp_path / "heat_w.tif")).GetMetadata()
    assert tags["MSCAM_MODEL_CHOICE"] == "auto: single-pol (scene has VV only)"


def test_cross_pol_only_scene_is_one_clear_error(tmp_path) -> None:
    path = scene_with_bands(tmp_path / "vh.tif", ["VH"])
    with RasterReader(path) as reader, pytest.raises(InputError) as exc:
        bundled_model_for(reader.info)
    message = str(exc.value)
    assert "\n" not in message and "cross-polarised" in message and "VH" in message


def test_choice_and_role_matching_rules() -> None:
    assert choose_bundled_model(["VV", "VH", "HH", "HV"]).note == "auto: dual-pol (scene has VV+VH)"
    assert choose_bundled_model(["HH", "band2"]).kind == "single-pol"
    with pytest.raises(InputError, match="no polarisation role"):
        choose_bundled_model(["band1"])
    assert match_roles(["CO", "CROSS"], ["HH", "VV", "VH"]) == [1, 2]  # one transmit pol
    assert match_roles(["CO", "CROSS"], ["HH", "VH"]) == [0, 1]  # mixed, when nothing else
    assert match_roles(["VV", "VH"], ["HH", "HV"]) is None  # explicit roles stay explicit
    assert match_roles(["CO"], ["VH", "HV"]) is None


def test_cross_pol_band_is_never_taken_by_position(tmp_path) -> None:
    path = scene_with_bands(tmp_path / "vh.tif", ["VH"])
    with RasterReader(path) as reader, pytest.raises(InputError, match="needs bands CO"):
        ScenePreprocessor(reader, load_model(SINGLE_POL_CARD_PATH).card)


def test_vv_only_scene_runs_with_the_single_pol_model_and_says_so(tmp_path, caplog) -> None:
    rng = np.random.default_rng(0)
    array = (-22 + rng.normal(0, 1, (1, 96, 96))).astype(np.float32)
    array[0, 40:44, 30:50] = 8.0  # a bright hull
    scene = tmp_path / "vv.tif"
    write_geotiff(scene, array, geotransform=UTM, projection="EPSG:32633", band_descriptions=["VV"])
    with caplog.at_level(logging.INFO, logger="mscam"):
        explain_scene(scene, tmp_path / "heat.tif", settings=SceneSettings(device="cpu"))
    tags = gdal.Open(str(tmp_path / "heat.tif")).GetMetadata()
    assert tags["MSCAM_MODEL_CHOICE"] == "auto: single-pol (scene has VV only)"
    assert tags["MSCAM_MODEL"].startswith("mscam-sar-ships-single")
    assert "auto: single-pol (scene has VV only)" in caplog.text
    # --model overrides the choice, and then there is no choice to report.
    explain_scene(
        scene,
        tmp_path / "heat2.tif",
        settings=SceneSettings(device="cpu", model=str(SINGLE_POL_CARD_PATH)),
    )
    assert "MSCAM_MODEL_CHOICE" not in gdal.Open(str(tmp_path / "heat2.tif")).GetMetadata()


@pytest.mark.parametrize("kind", list(ALL_BUNDLED))
def test_bundled_models_classify_unseen_chips(kind: str) -> None:
    loaded = load_model(ALL_BUNDLED[kind])
    card = loaded.card
    # Scenes never trained on, VV- and HH-flavoured (for the twins: rendered finer and averaged
    # to ~10 m). The world's dim and filled hulls make ships hard: the 2.2.0 cards report held-out
    # ship recall 0.83 (dual) and 0.76 (single); on these 40 ship chips 0.75 and 0.65.
    fine = card.training["config"]["fine_fraction"]
    chips = build_chips(
        40, chip_size=card.chip_size, seed=424242, polarisation="random", fine_fraction=fine
    )
    assert set(chips.polarisation) == {"VV", "HH"}
    assert list(chips.class_names) == card.classes
    polarisation = kind.removeprefix("fine_")
    with torch.no_grad():
        predicted = loaded.model(to_input(chips.x, polarisation)).argmax(1)
    labels = torch.as_tensor(chips.labels)
    ship, sea = card.classes.index("ship"), card.classes.index("sea")
    assert float((predicted == labels).float().mean()) >= 0.7
    assert float((predicted[labels == sea] == sea).float().mean()) >= 0.9
    assert float((predicted[labels == ship] == ship).float().mean()) >= 0.6


def test_training_recipe_is_deterministic_for_a_seed(tmp_path) -> None:
    config = TrainConfig(
        polarisation="single",
        width=4,
        train_per_class=8,
        test_per_class=4,
        epochs=1,
        batch=16,
        mine_scenes=1,
        mine_size=192,
        finetune_epochs=1,
    )
    first, card, report = train(config, tmp_path / "a", chip_cache=tmp_path / "chips")
    assert len(list((tmp_path / "chips").glob("chips-*.npz"))) == 2  # training and held-out
    # the same recipe from the command line, with another card version
    flags = "--polarisation single --width 4 --train-per-class 8 --test-per-class 4 --epochs 1 "
    flags += "--batch 16 --mine-scenes 1 --mine-size 192 --finetune-epochs 1 --card-version 2.2.0"
    argv = ["train", "--out", str(tmp_path / "b"), "--chip-cache", str(tmp_path / "chips")]
    assert main([*argv, *flags.split()]) == 0
    second = load_model(tmp_path / "b")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert (card.version, second.card.version) == (CARD_VERSION, "2.2.0")
    assert card.classes == ["ship", "sea", "land", "bright"] and card.input_channels == ["CO"]
    assert (tmp_path / "a" / "card.json").exists() and (tmp_path / "a" / "weights.pt").exists()
    assert sum(map(sum, report.confusion)) == 4 * 4
    assert load_model(tmp_path / "a").card.training["config"]["seed"] == 0
