"""The bundled models (dual-pol and single-pol): safe loading, small files, which one a scene gets
from its band roles, that they classify fresh synthetic chips, and that the recipe is
deterministic."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from mscam.errors import InputError
from mscam.models import (
    DEFAULT_CARD_PATH,
    DUAL_POL_CARD_PATH,
    SINGLE_POL_CARD_PATH,
    choose_bundled_model,
    load_model,
)
from mscam.models.select import bundled_model_for, match_roles
from mscam.sar.chips import build_chips
from mscam.scene.pipeline import SceneSettings, explain_scene
from mscam.scene.preprocess import ScenePreprocessor
from mscam.scene.raster import RasterReader, write_geotiff
from mscam.training import TrainConfig, to_input, train
from osgeo import gdal

BUNDLED = {"dual": DUAL_POL_CARD_PATH, "single": SINGLE_POL_CARD_PATH}
UTM = (500000.0, 10.0, 0.0, 6000000.0, 0.0, -10.0)


def scene_with_bands(path: Path, roles: list[str], size: int = 96) -> Path:
    """A small dB GeoTIFF whose band k has description roles[k] and the constant value -k - 20,
    so the band a preprocessor picks can be told from its values."""
    array = np.stack([np.full((size, size), -20.0 - k, np.float32) for k in range(len(roles))])
    write_geotiff(
        path,
        array,
        geotransform=UTM,
        projection="EPSG:32633",
        band_descriptions=roles,
        nodata=float("nan"),
    )
    return path


@pytest.mark.parametrize("kind", ["dual", "single"])
def test_bundled_models_load_safely_and_are_small(kind: str) -> None:
    path = BUNDLED[kind]
    loaded = load_model(path)  # weights_only loading, as every load is
    card = loaded.card
    weights = path.parent / card.weights
    assert weights.stat().st_size < 10_000_000
    assert torch.load(weights, weights_only=True).keys() == loaded.model.state_dict().keys()
    assert card.input_channels == (["CO", "CROSS"] if kind == "dual" else ["CO"])
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


@pytest.mark.parametrize("kind", ["dual", "single"])
def test_bundled_models_classify_unseen_chips(kind: str) -> None:
    loaded = load_model(BUNDLED[kind])
    card = loaded.card
    # Scenes never trained on, VV- and HH-flavoured. The world's dim and filled hulls make ships
    # hard: the 2.2.0 cards report held-out ship recall 0.83 (dual) and 0.76 (single); on these 40
    # ship chips 0.75 and 0.65.
    chips = build_chips(40, chip_size=card.chip_size, seed=424242, polarisation="random")
    assert set(chips.polarisation) == {"VV", "HH"}
    assert list(chips.class_names) == card.classes
    with torch.no_grad():
        predicted = loaded.model(to_input(chips.x, kind)).argmax(1)
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
    second, _, _ = train(config, tmp_path / "b", chip_cache=tmp_path / "chips")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert card.classes == ["ship", "sea", "land", "bright"] and card.input_channels == ["CO"]
    assert (tmp_path / "a" / "card.json").exists() and (tmp_path / "a" / "weights.pt").exists()
    assert sum(map(sum, report.confusion)) == 4 * 4
    assert load_model(tmp_path / "a").card.training["config"]["seed"] == 0
