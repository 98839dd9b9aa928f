"""Pixel spacing: read from the georeferencing, worked at the model's spacing, mapped back."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from mscam.cli import build_parser
from mscam.errors import InputError
from mscam.models import ModelCard
from mscam.scene.heatmap_writer import HEATMAP_NODATA, heatmap_tags
from mscam.scene.pipeline import SceneJob, SceneSettings, explain_scene
from mscam.scene.raster import GCP, RasterReader, open_raster_info, write_geotiff
from mscam.scene.resample import WorkingGrid, map_back, open_working_scene
from mscam.scene.spacing import scene_pixel_spacing
from mscam.scene.vector import read_boxes
from scene_helpers import ARCH_FILE, bright_card, sea_scene, write_scene

gdal = pytest.importorskip("osgeo.gdal")

WGS84_A = 6378137.0
WGS84_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
DEGREE = math.pi / 180


def spacing_of(tmp_path: Path, **georef) -> tuple[float, float, str] | None:
    path = write_geotiff(tmp_path / "r.tif", np.zeros((4, 6), np.float32), **georef)
    spacing = scene_pixel_spacing(open_raster_info(tmp_path / "r.tif" if path is None else path))
    return None if spacing is None else (spacing.x, spacing.y, spacing.source)


# -- spacing from the georeferencing --------------------------------------------------------------


def test_spacing_of_a_projected_grid_is_its_step_in_metres(tmp_path):
    utm = (500000.0, 10.0, 0.0, 6000000.0, 0.0, -12.5)
    assert spacing_of(tmp_path, geotransform=utm, projection="EPSG:32633") == (
        10.0,
        12.5,
        "geotransform",
    )
    # North Carolina State Plane in US survey feet: 30 ft steps are 30 · 1200/3937 m.
    feet = (1000.0, 30.0, 0.0, 2000.0, 0.0, -30.0)
    x, y, _ = spacing_of(tmp_path, geotransform=feet, projection="EPSG:2264")
    assert x == pytest.approx(30 * 1200 / 3937, rel=1e-12) and y == x


def test_spacing_of_a_geographic_grid_at_the_equator_and_at_60_degrees(tmp_path):
    step = 1e-4  # degrees
    equator = (10.0, step, 0.0, 0.0 + 2 * step, 0.0, -step)  # 4 rows: centred on latitude 0
    x, y, _ = spacing_of(tmp_path, geotransform=equator, projection="EPSG:4326")
    assert x == pytest.approx(step * DEGREE * WGS84_A, rel=1e-12)
    assert y == pytest.approx(step * DEGREE * WGS84_A * (1 - WGS84_E2), rel=1e-12)
    # Published WGS84 lengths of a degree at 60°: 55 800 m of longitude, 111 412 m of latitude.
    north = (10.0, step, 0.0, 60.0 + 2 * step, 0.0, -step)
    x, y, _ = spacing_of(tmp_path, geotransform=north, projection="EPSG:4326")
    assert x == pytest.approx(55800.0 * step, abs=1e-4)
    assert y == pytest.approx(111412.0 * step, abs=1e-4)


def test_spacing_of_a_rotated_grid_is_the_length_of_its_steps(tmp_path):
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    rotated = (500000.0, 5.0 * c, 20.0 * s, 6000000.0, 5.0 * s, -20.0 * c)
    x, y, _ = spacing_of(tmp_path, geotransform=rotated, projection="EPSG:32633")
    assert (x, y) == (pytest.approx(5.0, abs=1e-12), pytest.approx(20.0, abs=1e-12))


def gcp_grid(pixel_to_ground) -> list[GCP]:
    return [
        GCP(p, r, *pixel_to_ground(p, r)) for p in (0.0, 300.0, 600.0) for r in (0.0, 200.0, 400.0)
    ]


def test_spacing_of_gcps_is_ground_distance_over_pixel_distance(tmp_path):
    c, s = math.cos(math.radians(-12)), math.sin(math.radians(-12))
    utm = gcp_grid(lambda p, r: (500000 + 10 * c * p - 12 * s * r, 6e6 + 10 * s * p - 12 * c * r))
    x, y, source = spacing_of(tmp_path, gcps=utm, gcp_projection="EPSG:32633")
    assert source == "gcps"
    assert (x, y) == (pytest.approx(10.0, rel=1e-9), pytest.approx(12.0, rel=1e-9))
    # Geographic GCPs (longitude, latitude) centred on the equator.
    step = 1e-4
    geographic = gcp_grid(lambda p, r: (20.0 + step * p, step * (200.0 - r)))
    x, y, _ = spacing_of(tmp_path, gcps=geographic, gcp_projection="EPSG:4326")
    assert x == pytest.approx(step * DEGREE * WGS84_A, rel=1e-9)
    assert y == pytest.approx(step * DEGREE * WGS84_A * (1 - WGS84_E2), rel=1e-9)


def test_spacing_is_unknown_without_georeferencing_in_a_crs(tmp_path):
    assert spacing_of(tmp_path) is None
    assert spacing_of(tmp_path, geotransform=(0, 10, 0, 0, 0, -10)) is None  # no CRS: no units


# -- the working grid -----------------------------------------------------------------------------


def card_at(folder: Path, spacing: float | None, **fields) -> Path:
    """The bright test card, with `pixel_spacing` set (a copy beside the same weights)."""
    source = bright_card(folder / "source")
    data = json.loads(source.read_text())
    if spacing is not None:
        data.update(pixel_spacing=spacing, **fields)
    target = folder / f"at-{spacing}"
    target.mkdir(exist_ok=True)
    (target / "card.json").write_text(json.dumps(data))
    shutil.copy(source.parent / data["weights"], target / data["weights"])
    return target / "card.json"


def loaded_card(spacing: float | None, **fields) -> ModelCard:
    data = dict(
        name="t",
        version="1",
        architecture="compact-cnn",
        architecture_kwargs={},
        classes=["sea", "ship"],
        target_classes=["ship"],
        input_channels=["VV"],
        input_units="dB",
        preprocessing={"type": "none"},
        chip_size=64,
        target_layer="block4",
        weights="w.pt",
        description="",
    )
    if spacing is not None:
        data.update(pixel_spacing=spacing, **fields)
    return ModelCard.from_dict(data)


def info_at(tmp_path: Path, spacing: float, width=900, height=600):
    geotransform = (500000.0, spacing, 0.0, 6e6, 0.0, -spacing)
    scene = write_scene(
        tmp_path / f"s{spacing}.tif", sea_scene(height, width), geotransform=geotransform
    )
    return open_raster_info(scene)


def test_working_grid_plan(tmp_path, caplog):
    info3 = info_at(tmp_path, 3.0)
    # No spacing on the card: the scene as it is, whatever its spacing.
    assert not WorkingGrid.plan(info3, loaded_card(None)).resampled
    grid = WorkingGrid.plan(info3, loaded_card(10.0))
    assert grid.size == (270, 180) and grid.spacing == (10.0, 10.0)
    assert grid.tags() == {"pixel_spacing": "3.0", "working_spacing": "10.0"}
    # Within the card's range: as it is.
    assert not WorkingGrid.plan(info3, loaded_card(10.0, spacing_range=[2.5, 12.0])).resampled
    assert not WorkingGrid.plan(info_at(tmp_path, 11.0), loaded_card(10.0)).resampled
    # The user's spacing wins over the georeferencing.
    assert WorkingGrid.plan(info3, loaded_card(10.0), override=5.0).size == (450, 300)
    # Coarser than the model: enlarged, with a warning.
    with caplog.at_level(logging.WARNING):
        coarse = WorkingGrid.plan(info_at(tmp_path, 40.0, 90, 60), loaded_card(10.0))
    assert coarse.size == (360, 240) and "coarser" in caplog.text
    caplog.clear()
    # Unknown spacing: as it is, with a warning.
    bare = tmp_path / "bare.tif"
    write_geotiff(bare, np.zeros((2, 50, 60), np.float32))
    with caplog.at_level(logging.WARNING):
        unknown = WorkingGrid.plan(open_raster_info(bare), loaded_card(10.0))
    assert not unknown.resampled and "unknown" in caplog.text
    assert unknown.tags() == {"pixel_spacing": "unknown", "working_spacing": "unknown"}


def test_working_scene_averages_in_linear_power_and_leaves_nodata_out(tmp_path):
    rng = np.random.default_rng(1)
    db = rng.uniform(-30, 0, (2, 6, 9)).astype(np.float32)
    db[0, 0, :2] = -9999.0  # nodata in the first working pixel of band 1
    db[:, 3:, 6:] = -9999.0  # a working pixel that is all nodata
    path = tmp_path / "db.tif"
    write_geotiff(path, db, geotransform=(0, 1, 0, 0, 0, -1), projection="EPSG:32633", nodata=-9999)
    reader = RasterReader(path)
    grid = WorkingGrid((9, 6), (3, 2), None)
    working = open_working_scene(reader, {0: "dB", 1: "dB"}, grid, "average").read(0, 0, 3, 2)
    power = np.where(db == -9999.0, np.nan, 10 ** (db.astype(np.float64) / 10))
    blocks = power.reshape(2, 2, 3, 3, 3).transpose(0, 1, 3, 2, 4).reshape(2, 2, 3, 9)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = 10 * np.log10(np.nanmean(blocks, axis=-1))
    np.testing.assert_allclose(working, expected, rtol=1e-5)
    assert np.isnan(working[:, 1, 2]).all()
    # Amplitude and DN: the root of the mean square; DN 0 is no data.
    dn = np.array([[0, 3, 4, 4], [0, 0, 1, 7]], np.uint16)
    path = tmp_path / "dn.tif"
    write_geotiff(path, dn, geotransform=(0, 1, 0, 0, 0, -1), projection="EPSG:32633")
    grid = WorkingGrid((4, 2), (2, 1), None)
    working = open_working_scene(RasterReader(path), {0: "DN"}, grid, "average")
    values = working.read(0, 0, 2, 1)[0, 0]
    np.testing.assert_allclose(values, [3.0, math.sqrt((16 + 16 + 1 + 49) / 4)], rtol=1e-6)


# -- map-back -------------------------------------------------------------------------------------


def test_map_back_is_bilinear_on_the_input_grid(tmp_path):
    # A working heatmap that is a linear ramp; the input grid is 4× finer.
    wx, wy, factor = 8, 6, 4
    u, v = np.meshgrid(np.arange(wx), np.arange(wy))
    ramp = (0.1 + 0.05 * u + 0.02 * v).astype(np.float32)
    ramp[5, 0] = HEATMAP_NODATA
    working = tmp_path / "working.tif"
    write_geotiff(working, ramp, nodata=HEATMAP_NODATA)
    width, height = wx * factor, wy * factor
    out = np.full((height, width), np.nan, np.float32)

    def sink(y0, rows):
        out[y0 : y0 + len(rows)] = rows

    valid = np.ones((height, width), bool)
    valid[:, -3:] = False
    map_back(working, (width, height), sink, lambda y0, n: valid[y0 : y0 + n], strip_rows=5)
    # Working-pixel coordinates of the input's pixel centres; the ramp there, clamped at edges.
    x = np.clip((np.arange(width) + 0.5) / factor - 0.5, 0, wx - 1)
    y = np.clip((np.arange(height) + 0.5) / factor - 0.5, 0, wy - 1)
    expected = 0.1 + 0.05 * x[None, :] + 0.02 * y[:, None]
    far = np.ones_like(valid)
    far[-2 * factor :, : 2 * factor] = False  # around the nodata working pixel
    np.testing.assert_allclose(out[valid & far], expected[valid & far], atol=1e-6)
    assert (out[~valid] == HEATMAP_NODATA).all()
    assert (out[valid] >= 0).all()  # the nodata working pixel never leaks in as -1


# -- the pipeline ---------------------------------------------------------------------------------


def settings(card: Path, **kw) -> SceneSettings:
    return SceneSettings(model=str(card), architecture_file=str(ARCH_FILE), **kw)


@pytest.fixture(scope="module")
def cards(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("cards")
    return {spacing: card_at(folder, spacing) for spacing in (None, 10.0)}


def read(path: Path) -> tuple[np.ndarray, object, str, tuple[int, int]]:
    ds = gdal.Open(str(path))
    return ds.ReadAsArray(), ds.GetGeoTransform(), ds.GetProjection(), ds.GetGCPCount()


def test_a_scene_at_the_models_spacing_gives_the_same_heatmap_as_before(tmp_path, cards):
    scene = write_scene(tmp_path / "s.tif", sea_scene(200, 300, targets=[(100, 80, 112, 90)]))
    explain_scene(scene, tmp_path / "plain.tif", settings=settings(cards[None]))
    explain_scene(scene, tmp_path / "at10.tif", settings=settings(cards[10.0]))
    plain, at10 = read(tmp_path / "plain.tif"), read(tmp_path / "at10.tif")
    assert np.array_equal(plain[0], at10[0]) and plain[1:] == at10[1:]
    tags = heatmap_tags(tmp_path / "at10.tif")
    assert (tags["pixel_spacing"], tags["working_spacing"]) == ("10.0", "10.0")


@pytest.mark.parametrize("spacing", [3.0, 40.0])
def test_a_scene_at_another_spacing_is_worked_at_10_m_and_mapped_back(tmp_path, cards, spacing):
    # The same 120 m × 120 m bright target on calm sea, at 3 m or at 40 m (3 pixels).
    height, width = (600, 900) if spacing == 3.0 else (45, 68)
    x0, y0 = int(1500 / spacing), int(1200 / spacing)
    side = round(120 / spacing)
    array = sea_scene(height, width, targets=[(x0, y0, x0 + side, y0 + side)])
    array[:, :10, :] = np.nan  # a nodata margin
    geotransform = (500000.0, spacing, 0.0, 6e6, 0.0, -spacing)
    scene = write_scene(tmp_path / "s.tif", array, geotransform=geotransform)
    boxes = tmp_path / "b.gpkg"
    result = explain_scene(scene, tmp_path / "h.tif", boxes, settings(cards[10.0]))
    heat, gt, projection, _ = read(tmp_path / "h.tif")
    source = gdal.Open(str(scene))
    assert heat.shape == (height, width)
    assert gt == geotransform and projection == source.GetProjection()
    assert (heat[:10] == HEATMAP_NODATA).all() and (heat[10:] >= 0).all()
    tags = heatmap_tags(tmp_path / "h.tif")
    assert (tags["pixel_spacing"], tags["working_spacing"]) == (f"{spacing}", "10.0")
    # The box is the target's, to within a working pixel (the heat is interpolated from 10 m).
    assert result.n_boxes == 1
    (box,) = read_boxes(boxes)
    edges = [box[f"px_{name}"] for name in ("x0", "y0", "x1", "y1")]
    tolerance = math.ceil(10 / spacing) + 1
    target = [x0, y0, x0 + side - 1, y0 + side - 1]
    assert np.abs(np.subtract(edges, target)).max() <= tolerance, (edges, target)


def test_a_gcp_located_scene_keeps_its_gcps_and_the_user_spacing_wins(tmp_path, cards):
    gcps = gcp_grid(lambda p, r: (500000 + 3 * p, 6e6 - 3 * r))
    array = sea_scene(300, 450, targets=[(300, 200, 340, 240)])
    scene = write_scene(tmp_path / "s.tif", array, gcps=gcps, gcp_projection="EPSG:32633")
    explain_scene(scene, tmp_path / "h.tif", settings=settings(cards[10.0]))
    heat, _, _, n_gcps = read(tmp_path / "h.tif")
    assert heat.shape == (300, 450) and n_gcps == len(gcps)
    tags = heatmap_tags(tmp_path / "h.tif")
    assert (tags["pixel_spacing"], tags["working_spacing"]) == ("3.0", "10.0")
    explain_scene(scene, tmp_path / "u.tif", settings=settings(cards[10.0], pixel_spacing=10.0))
    assert heatmap_tags(tmp_path / "u.tif")["pixel_spacing"] == "10.0"
    assert read(tmp_path / "u.tif")[0].shape == (300, 450)


def test_cli_pixel_spacing_flag(tmp_path, cards, capsys):
    # The flag as the command line parses it, run in this process (no second torch import).
    scene = tmp_path / "bare.tif"
    write_geotiff(scene, sea_scene(120, 150), band_descriptions=["VV", "VH"])
    command = ["explain", str(scene), "--quiet", "--model", str(cards[10.0])]
    command += ["--architecture-file", str(ARCH_FILE), "--heatmap"]
    args = build_parser().parse_args([*command, str(tmp_path / "h.tif"), "--pixel-spacing", "5"])
    assert args.run(args) == 0
    tags = heatmap_tags(tmp_path / "h.tif")
    assert (tags["pixel_spacing"], tags["working_spacing"]) == ("5.0", "10.0")
    assert gdal.Open(str(tmp_path / "h.tif")).RasterXSize == 150
    args = build_parser().parse_args([*command, str(tmp_path / "x.tif"), "--pixel-spacing", "0"])
    with pytest.raises(InputError, match="pixel spacing must be positive"):
        args.run(args)
    assert not (tmp_path / "x.tif").exists()


def _sea_tif(path: Path, spacing: float, resolution: float | None = None) -> Path:
    """A speckled sea scene (mscam.sar, no targets) at ``spacing`` metres, VV+VH in dB."""
    from mscam.sar.synth import scene_profile, synthesize_scene

    scene = synthesize_scene(
        256, scene_profile("calm"), seed=3, n_ships=0, pixel_spacing=spacing, nodata_border=False,
        resolution_m=(resolution or 2 * spacing,) * 2, looks=4.0,
    )  # fmt: skip
    gt = (500000.0, spacing, 0.0, 6000000.0, 0.0, -spacing)
    write_geotiff(
        path, np.stack([scene.vv_db, scene.vh_db]), geotransform=gt, projection="EPSG:32633",
        band_descriptions=["VV", "VH"],
    )  # fmt: skip
    return path


def test_speckle_correlation_tells_a_resampled_scene_from_a_fine_one(tmp_path, caplog):
    from mscam.scene.spacing import resolved_spacing, speckle_correlation_px

    native = _sea_tif(tmp_path / "s10.tif", 10.0)
    fine = _sea_tif(tmp_path / "s3.tif", 3.0, resolution=3.0)
    warped = tmp_path / "warped3.tif"
    gdal.Warp(str(warped), str(native), xRes=3.0, yRes=3.0, resampleAlg="bilinear")
    lengths = {}
    for name, path in (("native", native), ("fine", fine), ("warped", warped)):
        with RasterReader(path) as reader:
            lengths[name] = speckle_correlation_px(reader, 1)
    assert lengths["native"] < 0.8 and lengths["fine"] < 0.8
    assert lengths["warped"] > 1.2
    assert resolved_spacing(3.0, lengths["fine"]) < 6.0  # detail at about its pixels
    assert resolved_spacing(3.0, lengths["warped"]) > 6.7  # a 10 m scene in 3 m pixels
    assert resolved_spacing(3.0, None) == 3.0
    # The pipeline decimates the warped scene to the model's spacing (averaging it again would
    # blur it twice) and averages the fine one.
    for path, decimated in ((warped, True), (fine, False)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="mscam"):
            job = SceneJob(path, SceneSettings(device="cpu"))
        assert job.working.shrinks and job.probe.oversampled() == decimated
        assert ("decimated to the model's spacing (nearest)" in caplog.text) == decimated
    # A constant band says nothing: None, and the pixel spacing stands.
    flat = tmp_path / "flat.tif"
    write_geotiff(flat, np.full((1, 64, 64), -20.0, np.float32), geotransform=(0, 3, 0, 0, 0, -3))
    with RasterReader(flat) as reader:
        assert speckle_correlation_px(reader, 1) is None
