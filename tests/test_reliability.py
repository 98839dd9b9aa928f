"""Issue 14: never destroy an input, never exit 0 with a wrong answer, never a traceback.

Every test here uses real files (GeoTIFFs, VRTs, zip and gzip archives, links, GeoPackages) and
the real pipeline; the SIGTERM test runs `python -m mscam explain` and signals it mid-run.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mscam.cam import create_explainer
from mscam.cli import main
from mscam.errors import InputError, ModelError, OutputError
from mscam.models import ModelCard, load_model, save_model
from mscam.models.loading import _import_user_file
from mscam.radiometry.units import db_to_linear, detect_units
from mscam.scene.outputs import StagedOutputs, input_files, remove_stale_scratch, scratch_path
from mscam.scene.pipeline import SceneSettings, explain_scene
from mscam.scene.raster import RasterReader, write_geotiff
from scene_helpers import ARCH_FILE, UTM, bright_card, sea_scene, write_scene

gdal = pytest.importorskip("osgeo.gdal")

TARGETS = [(30, 40, 40, 48), (100, 70, 110, 80)]


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> Path:
    return bright_card(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def scene_db() -> np.ndarray:
    return sea_scene(120, 160, targets=TARGETS)


def settings(card: Path, **kw) -> SceneSettings:
    return SceneSettings(model=str(card), architecture_file=str(ARCH_FILE), **kw)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def heat(path: Path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray()


def hidden(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, card, scene_db) -> np.ndarray:
    """The heatmap of the plain float dB scene: what every other encoding must give."""
    folder = tmp_path_factory.mktemp("reference")
    scene = write_scene(folder / "scene.tif", scene_db)
    explain_scene(scene, folder / "heat.tif", None, settings(card))
    return heat(folder / "heat.tif")


# -- outputs never replace an input ---------------------------------------------------------------


def test_heatmap_onto_a_vrt_source_is_refused_and_the_source_kept(tmp_path, card, scene_db):
    source = write_scene(tmp_path / "src.tif", scene_db)
    vrt = tmp_path / "in.vrt"
    gdal.BuildVRT(str(vrt), [str(source)]).FlushCache()
    nested = tmp_path / "nested.vrt"
    gdal.BuildVRT(str(nested), [str(vrt)]).FlushCache()
    before = digest(source)
    for scene in (vrt, nested):
        with pytest.raises(OutputError, match="which the input reads"):
            explain_scene(scene, source, None, settings(card))
    assert digest(source) == before


@pytest.mark.parametrize("kind", ["zip", "gzip"])
def test_heatmap_onto_the_archive_behind_a_vsi_path_is_refused(tmp_path, card, scene_db, kind):
    source = write_scene(tmp_path / "scene.tif", scene_db)
    if kind == "zip":
        archive = tmp_path / "scene.zip"
        with zipfile.ZipFile(archive, "w") as handle:
            handle.write(source, "scene.tif")
        path = f"/vsizip/{archive}/scene.tif"  # GDAL's usual absolute form: /vsizip//abs/…
    else:
        archive = tmp_path / "scene.tif.gz"
        archive.write_bytes(gzip.compress(source.read_bytes()))
        path = f"/vsigzip/{archive}"
    assert path.startswith(("/vsizip//", "/vsigzip//"))
    before = digest(archive)
    with pytest.raises(OutputError, match="which the input reads"):
        explain_scene(path, archive, None, settings(card))
    assert digest(archive) == before


def test_vsi_absolute_paths_pass_through_untouched(tmp_path, card, scene_db, reference):
    source = write_scene(tmp_path / "scene.tif", scene_db)
    archive = tmp_path / "scene.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(source, "scene.tif")
    out = tmp_path / "heat.tif"
    explain_scene(f"/vsizip/{archive}/scene.tif", out, None, settings(card))
    np.testing.assert_array_equal(heat(out), reference)
    assert input_files(f"/vsizip/{archive}/scene.tif") == {str(archive.resolve())}


@pytest.mark.parametrize("link", ["hard", "symbolic", "symbolic-folder"])
def test_heatmap_onto_a_link_to_the_input_is_refused(tmp_path, card, scene_db, link):
    source = write_scene(tmp_path / "scene.tif", scene_db)
    if link == "hard":
        target = tmp_path / "alias.tif"
        os.link(source, target)
    elif link == "symbolic":
        target = tmp_path / "alias.tif"
        target.symlink_to(source)
    else:
        (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
        target = tmp_path / "alias" / "scene.tif"
    before = digest(source)
    vrt = tmp_path / "in.vrt"
    gdal.BuildVRT(str(vrt), [str(source)]).FlushCache()
    with pytest.raises(OutputError, match="input reads"):
        explain_scene(vrt, target, None, settings(card))
    assert digest(source) == before


def test_heatmap_and_boxes_on_one_path_are_refused(tmp_path, card, scene_db):
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    out = tmp_path / "out.tif"
    with pytest.raises(OutputError, match="same file"):
        explain_scene(scene, out, out, settings(card))
    assert not out.exists()


def test_localize_and_evaluate_never_write_onto_their_inputs(tmp_path, card, scene_db, capsys):
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    heatmap, boxes = tmp_path / "heat.tif", tmp_path / "boxes.gpkg"
    explain_scene(scene, heatmap, boxes, settings(card))
    kept = {path: digest(path) for path in (heatmap, boxes)}
    common = [str(heatmap)]
    cases = [
        ["localize", *common, "--boxes", str(heatmap), "--threshold", "0.5"],
        ["evaluate", *common, "--truth", str(boxes), "--json", str(heatmap)],
        ["evaluate", *common, "--truth", str(boxes), "--json", str(boxes)],
        ["evaluate", *common, "--truth", str(boxes), "--plot", str(boxes)],
        ["evaluate", *common, "--truth", str(boxes), "--json", str(tmp_path / "a.json"),
         "--plot", str(tmp_path / "a.json")],
    ]  # fmt: skip
    for argv in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("mscam: error:") and "\n" not in err, err
    assert {path: digest(path) for path in kept} == kept
    assert not (tmp_path / "a.json").exists()


def test_localize_refuses_a_raster_that_is_no_mscam_heatmap(tmp_path, scene_db, capsys):
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    assert main(["localize", str(scene), "--boxes", str(tmp_path / "b.gpkg")]) == 1
    assert "not an mscam heatmap" in capsys.readouterr().err
    assert not (tmp_path / "b.gpkg").exists()


def test_unwritable_boxes_fail_before_any_work_and_keep_previous_outputs(tmp_path, card, scene_db):
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    heatmap, boxes = tmp_path / "heat.tif", tmp_path / "boxes.gpkg"
    explain_scene(scene, heatmap, boxes, settings(card))
    kept = {path: digest(path) for path in (heatmap, boxes)}
    folder = tmp_path / "folder.gpkg"
    folder.mkdir()
    progress = []  # reported after every window: empty if refused before any work
    with pytest.raises(OutputError, match="is a folder"):
        explain_scene(
            scene, heatmap, folder, settings(card), progress=lambda *a: progress.append(a)
        )
    with pytest.raises(OutputError, match="is a folder"):
        explain_scene(scene, folder, boxes, settings(card), progress=lambda *a: progress.append(a))
    assert progress == []
    assert {path: digest(path) for path in kept} == kept
    assert hidden(tmp_path) == []


def test_a_run_failing_midway_keeps_the_previous_pair(tmp_path, card, scene_db):
    """A model that outputs NaN fails on its first batch: the old heatmap and boxes stay."""
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    heatmap, boxes = tmp_path / "heat.tif", tmp_path / "boxes.gpkg"
    explain_scene(scene, heatmap, boxes, settings(card))
    kept = {path: digest(path) for path in (heatmap, boxes)}
    nan_card = nan_output_card(tmp_path / "nan")
    with pytest.raises(ModelError, match="not finite"):
        explain_scene(
            scene,
            heatmap,
            boxes,
            SceneSettings(model=str(nan_card), architecture_file=str(nan_card.parent / "a.py")),
        )
    assert {path: digest(path) for path in kept} == kept
    assert hidden(tmp_path) == []


def test_staged_outputs_replace_the_pair_together_or_not_at_all(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.gpkg"
    a.write_text("old a")
    b.write_text("old b")
    with pytest.raises(RuntimeError), StagedOutputs() as staged:
        Path(staged.add(a)).write_text("new a")
        Path(staged.add(b)).write_text("new b")
        raise RuntimeError("killed before the renames")
    assert (a.read_text(), b.read_text()) == ("old a", "old b") and hidden(tmp_path) == []
    with StagedOutputs() as staged:
        Path(staged.add(a)).write_text("new a")
        Path(staged.add(b)).write_text("new b")
        staged.commit()
    assert (a.read_text(), b.read_text()) == ("new a", "new b") and hidden(tmp_path) == []


def test_stale_scratch_of_a_dead_process_is_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    stale = [f".heat.{pid}.0a1b2c3d.tmp.tif", f"..heat.{pid}.0a1b2c3d.tmp.{pid}.ff.scratch.tif",
             f".boxes.{pid}.12345678.tmp.gpkg-wal"]  # fmt: skip
    for name in stale:
        (tmp_path / name).write_text("x")
    live = Path(scratch_path(tmp_path / "heat.tif"))
    live.write_text("mine")
    (tmp_path / ".hidden.txt").write_text("not ours")
    assert sorted(remove_stale_scratch(tmp_path)) == sorted(stale)
    assert hidden(tmp_path) == sorted([".hidden.txt", live.name])


def test_sigterm_mid_run_cleans_up_and_exits_143(tmp_path, card):
    scene = write_scene(tmp_path / "scene.tif", sea_scene(640, 640, targets=TARGETS))
    out = tmp_path / "out"
    out.mkdir()
    (out / "heat.tif").write_text("previous heatmap")
    (out / "boxes.gpkg").write_text("previous boxes")
    before = digest(scene)
    argv = [sys.executable, "-m", "mscam", "explain", str(scene), "--heatmap",
            str(out / "heat.tif"), "--boxes", str(out / "boxes.gpkg"), "--model", str(card),
            "--architecture-file", str(ARCH_FILE), "--quiet", "--batch", "1"]  # fmt: skip
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not any("scratch" in name for name in os.listdir(out)):  # the run is writing rows
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=240)
    assert process.returncode == 143, err
    assert "Traceback" not in err and err.strip().endswith("mscam: terminated")
    assert hidden(out) == []
    assert (out / "heat.tif").read_text() == "previous heatmap"
    assert (out / "boxes.gpkg").read_text() == "previous boxes"
    assert digest(scene) == before


# -- right answers --------------------------------------------------------------------------------


def test_gdal_scale_and_offset_are_honoured(tmp_path, card, scene_db, reference):
    """An Int16 band of dB×100 with scale 0.01 (and an offset) is dB, not DN."""
    raw = np.round((scene_db + 5.0) * 100).astype(np.int16)
    path = tmp_path / "scaled.tif"
    write_geotiff(path, raw, UTM, "EPSG:32633", band_descriptions=["VV", "VH"], nodata=-32768)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for index in (1, 2):
        ds.GetRasterBand(index).SetScale(0.01)
        ds.GetRasterBand(index).SetOffset(-5.0)
    ds = None
    explain_scene(path, tmp_path / "heat.tif", None, settings(card))
    np.testing.assert_allclose(heat(tmp_path / "heat.tif"), reference, atol=0.02)


def test_the_unit_type_decides_the_units(tmp_path, card, scene_db, reference):
    """dB values in a file whose name says 'linear', the band's unit type 'dB': dB wins; and
    linear σ0 whose description says dB but unit type 'sigma0' is linear."""
    db_file = tmp_path / "scene_linear.tif"
    write_geotiff(db_file, scene_db, UTM, "EPSG:32633", band_descriptions=["VV", "VH"],
                  band_units=["dB", "dB"])  # fmt: skip
    explain_scene(db_file, tmp_path / "a.tif", None, settings(card))
    np.testing.assert_allclose(heat(tmp_path / "a.tif"), reference, atol=1e-5)
    linear = db_to_linear(scene_db).astype(np.float32)
    lin_file = tmp_path / "scene.tif"
    write_geotiff(lin_file, linear, UTM, "EPSG:32633", band_descriptions=["VV_dB", "VH_dB"],
                  band_units=["sigma0", "sigma0"])  # fmt: skip
    explain_scene(lin_file, tmp_path / "b.tif", None, settings(card))
    np.testing.assert_allclose(heat(tmp_path / "b.tif"), reference, atol=1e-4)
    assert detect_units("float32", unit_type="dB", description="linear") == "dB"
    assert detect_units("float32", description="Sigma0_VV_dB") == "dB"


def test_complex_slc_is_read_as_its_magnitude(tmp_path, card, scene_db, reference, caplog):
    amplitude = np.sqrt(db_to_linear(scene_db))
    phase = np.random.default_rng(1).uniform(-np.pi, np.pi, scene_db.shape)
    slc = (amplitude * np.exp(1j * phase)).astype(np.complex64)
    slc[:, :5, :] = 0  # nodata rows
    path = write_scene(tmp_path / "slc.tif", slc)
    ds = gdal.Open(str(path), gdal.GA_Update)
    for index in (1, 2):
        ds.GetRasterBand(index).SetNoDataValue(0)
    ds = None
    with caplog.at_level("INFO"):
        explain_scene(path, tmp_path / "heat.tif", None, settings(card))
    assert "magnitude" in caplog.text
    result = heat(tmp_path / "heat.tif")
    assert (result[:5] == -1).all()  # nodata kept
    np.testing.assert_allclose(result[5:], reference[5:], atol=0.02)
    assert RasterReader(path).read(0, 10, 4, 1).dtype == np.float32


def test_infinite_pixels_never_give_nan_heat(tmp_path):
    folder = tmp_path / "model"
    card_path = bright_card(folder)
    card = ModelCard.load(card_path, external_architecture=True)
    ModelCard(**{**card.to_dict(), "preprocessing": {"type": "none"}}).save(card_path)
    array = sea_scene(120, 160, targets=TARGETS)
    array[0, 50:60, 50:60] = np.inf
    array[1, 10:12, 10:90] = -np.inf
    scene = write_scene(tmp_path / "scene.tif", array)
    explain_scene(scene, tmp_path / "heat.tif", None, settings(card_path))
    result = heat(tmp_path / "heat.tif")
    assert np.isfinite(result).all()
    assert ((result == -1) | ((result >= 0) & (result <= 1))).all()
    assert (result[50:60, 50:60] == -1).all() and (result[10:12, 10:90] == -1).all()


def nan_output_card(folder: Path) -> Path:
    """A model with finite weights whose logits are NaN on any input."""
    folder.mkdir()
    arch = folder / "a.py"
    arch.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class NaNNet(nn.Module):\n"
        "    def __init__(self, in_channels=2, num_classes=2):\n"
        "        super().__init__()\n"
        "        self.features = nn.Conv2d(in_channels, 4, 3, padding=1)\n"
        "        self.fc = nn.Linear(4, num_classes)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.features(x).mean((2, 3))) * float('nan')\n"
    )
    network = _import_user_file(arch, "NaNNet").NaNNet(2, 2)
    card = ModelCard.load(bright_card(folder / "base"), external_architecture=True)
    card = ModelCard(**{**card.to_dict(), "architecture": "NaNNet", "target_layer": "features"})
    return save_model(network, card, folder)


def test_nan_weights_are_refused_at_load(tmp_path):
    card_path = bright_card(tmp_path)
    weights = tmp_path / "weights.pt"
    state = torch.load(weights, weights_only=True)
    state["fc.weight"][0, 0] = float("nan")
    torch.save(state, weights)
    with pytest.raises(ModelError, match=r"NaN or inf values in fc\.weight"):
        load_model(card_path, architecture_file=ARCH_FILE)


def test_a_model_with_non_finite_output_is_an_error_not_nan_heat(tmp_path, scene_db):
    card_path = nan_output_card(tmp_path / "model")
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    with pytest.raises(ModelError, match="not finite"):
        explain_scene(
            scene,
            tmp_path / "heat.tif",
            None,
            SceneSettings(model=str(card_path), architecture_file=str(card_path.parent / "a.py")),
        )
    assert not (tmp_path / "heat.tif").exists() and hidden(tmp_path) == []


def test_explicit_polarisations_must_match_unless_mapped(tmp_path, scene_db, reference):
    card_path = bright_card(tmp_path / "model")
    card = ModelCard.load(card_path, external_architecture=True)
    ModelCard(**{**card.to_dict(), "input_channels": ["HH", "HV"]}).save(card_path)
    scene = write_scene(tmp_path / "scene.tif", scene_db)  # bands labelled VV, VH
    with pytest.raises(InputError, match="needs bands HH, HV"):
        explain_scene(scene, tmp_path / "heat.tif", None, settings(card_path))
    explain_scene(scene, tmp_path / "heat.tif", None, settings(card_path, bands=("HH", "HV")))
    np.testing.assert_array_equal(heat(tmp_path / "heat.tif"), reference)


def test_tags_record_the_tile_actually_used(tmp_path, card, scene_db):
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    explain_scene(scene, tmp_path / "heat.tif", None, settings(card, tile=100000))
    tags = gdal.Open(str(tmp_path / "heat.tif")).GetMetadata()
    assert tags["MSCAM_TILE"] == "160x120"


def test_a_tile_too_small_for_the_target_layer_is_refused(tmp_path, scene_db):
    folder = tmp_path / "model"
    folder.mkdir()
    arch = folder / "pooled.py"
    arch.write_text(
        "from torch import nn\n\n"
        "def Pooled(in_channels=2, num_classes=2):\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.MaxPool2d(16),\n"
        "        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))\n"
    )
    base = ModelCard.load(bright_card(folder / "base"), external_architecture=True)
    card = ModelCard(**{**base.to_dict(), "architecture": "Pooled", "target_layer": "1"})
    card_path = save_model(_import_user_file(arch, "Pooled").Pooled(2, 2), card, folder)
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    run = SceneSettings(model=str(card_path), architecture_file=str(arch), tile=16)
    with pytest.raises(InputError, match="1x1 map"):
        explain_scene(scene, tmp_path / "heat.tif", None, run)


# -- one line, and limits -------------------------------------------------------------------------


BAD_OPTIONS = [
    ("ms-cam", "channel_weight=nope", "grad-cam, grad-cam++"),
    ("ms-cam", "matching=sideways", "product, separate"),
    ("ms-cam", "match_size=0", "match_size"),
    ("ms-cam", "match_size=-5", "match_size"),
    ("ms-cam", "match_size=abc", "match_size"),
    ("ms-cam", "match_size=(0,5)", "match_size"),
    ("ms-cam", "match_size=100000", "2048"),
    ("ms-cam", "channel_norm=maybe", "True or False"),
    ("ms-cam", "batch_size=0", "batch_size"),
    ("ms-cam", "max_elements=-1", "max_elements"),
    ("ms-cam", "score_batch=4", "it takes: channel_weight"),
    ("score-cam", "score_batch=abc", "score_batch"),
    ("grad-cam", "channel_weight=grad-cam", "it takes: batch_size, max_elements"),
    ("self-matching", "match_size=(8,)", "match_size"),
]


@pytest.mark.parametrize(("method", "option", "named"), BAD_OPTIONS)
def test_bad_options_are_one_line_naming_what_is_allowed(
    tmp_path, scene_db, method, option, named, capsys
):
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    argv = ["explain", str(scene), "--heatmap", str(tmp_path / "h.tif"), "--method", method]
    assert main([*argv, "--option", option]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mscam: error:") and "\n" not in err and named in err, err
    assert os.listdir(tmp_path) == ["scene.tif"]


def test_good_options_are_accepted_and_normalised():
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2))  # fmt: skip
    cam = create_explainer("ms-cam", net, "1", channel_norm="false", match_size=(8, 16))
    assert cam.channel_norm is False and cam.match_size == (8, 16)
    with pytest.raises(ValueError, match="match_size"):  # InputError is a ValueError
        create_explainer("ms-cam", net, "1", match_size=100000)


def test_overlap_and_batch_are_bounded_and_many_tiles_warned(tmp_path, card, scene_db, caplog):
    with pytest.raises(InputError, match="overlap"):
        settings(card, overlap=0.99)
    with pytest.raises(InputError, match="batch"):
        settings(card, batch=100000)
    with pytest.raises(InputError, match="threads"):
        settings(card, threads=100000)
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    with pytest.raises(InputError, match="--batch 1024 or less"):
        explain_scene(scene, tmp_path / "h.tif", None, settings(card, batch=2000))
    small = write_scene(tmp_path / "small.tif", scene_db[:, :40, :48])
    with caplog.at_level("WARNING"):
        explain_scene(small, tmp_path / "h.tif", None, settings(card, overlap=0.9, tile=16))
    assert "makes 221 tiles of 16x16 (25x the 9 of no overlap)" in caplog.text


def test_cards_asking_for_too_much_are_refused(tmp_path):
    card_path = bright_card(tmp_path / "m")
    data = ModelCard.load(card_path, external_architecture=True).to_dict()
    with pytest.raises(ModelError, match="chip_size' must be at most 4096"):
        ModelCard(**{**data, "chip_size": 100000})
    wide = {**data, "architecture": "compact-cnn", "architecture_kwargs": {"width": 100000},
            "target_layer": "block4"}  # fmt: skip
    (tmp_path / "wide.json").write_text(__import__("json").dumps(wide))
    shutil.copy(tmp_path / "m" / "weights.pt", tmp_path / "weights.pt")
    with pytest.raises(ModelError, match="parameters, more than"):
        load_model(tmp_path / "wide.json")
    (tmp_path / "nested.json").write_text("[" * 200_000)
    with pytest.raises(ModelError, match="nests too deeply"):
        ModelCard.load(tmp_path / "nested.json")
    (tmp_path / "huge.json").write_text(" " * (2**20 + 10) + "{}")
    with pytest.raises(ModelError, match="over 1024 KiB"):
        ModelCard.load(tmp_path / "huge.json")


def test_gdal_messages_never_reach_stderr_raw(tmp_path):
    code = (
        "import logging, threading\n"
        "from mscam.cli import gdal_messages_logged\n"
        "from osgeo import gdal\n"
        "logging.basicConfig(level=logging.DEBUG, format='log: %(message)s')\n"
        "gdal.DontUseExceptions()\n"
        "with gdal_messages_logged():\n"
        f"    gdal.Open('{tmp_path}/missing.tif')\n"
        # the scene pipeline reads in a second thread: its messages are routed too
        f"    t = threading.Thread(target=gdal.Open, args=('{tmp_path}/other.tif',))\n"
        "    t.start(); t.join()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr and done.stderr.count("log: GDAL error 4") == 2


def test_the_next_run_removes_what_a_killed_run_left(tmp_path, card, scene_db):
    """SIGKILL cannot be caught: its scratch files go on the next run into the same folder."""
    killed = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(killed.stdout)
    left = [f".heat.{pid}.0a1b2c3d.tmp.tif", f"..heat.{pid}.0a1b2c3d.tmp.{pid}.9f.scratch.tif"]
    for name in left:
        (tmp_path / name).write_text("x")
    scene = write_scene(tmp_path / "scene.tif", scene_db)
    explain_scene(scene, tmp_path / "heat.tif", None, settings(card))
    assert hidden(tmp_path) == []


def test_a_kill_between_the_renames_never_pairs_a_new_heatmap_with_old_boxes(tmp_path):
    """SIGKILL right after the heatmap's rename (the worst instant): the old boxes are already
    gone, so the folder holds the new heatmap and no boxes, never a mismatched pair."""
    a, b = tmp_path / "heat.tif", tmp_path / "boxes.gpkg"
    a.write_text("old heat")
    b.write_text("old boxes")
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from mscam.scene.outputs import StagedOutputs\n"
        "a, b = map(Path, sys.argv[1:])\n"
        "rename = os.replace\n"
        "def rename_then_die(src, dst):\n"
        "    rename(src, dst)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "with StagedOutputs() as staged:\n"
        "    Path(staged.add(a)).write_text('new heat')\n"
        "    Path(staged.add(b)).write_text('new boxes')\n"
        "    os.replace = rename_then_die\n"
        "    staged.commit()\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(a), str(b)], capture_output=True)
    assert done.returncode == -signal.SIGKILL
    assert a.read_text() == "new heat" and not b.exists()
    remove_stale_scratch(tmp_path)  # what the next run does
    assert hidden(tmp_path) == []


def test_error_messages_are_one_line_whatever_gdal_says():
    # GDAL 3.10 (Debian 13) appends "\nMay be caused by: …" to its errors; 3.6 does not.
    from mscam.errors import InputError, OutputError

    error = InputError("cannot open raster x.tif: TIFFReadDirectory\nMay be caused by:  x.tif")
    assert str(error) == "cannot open raster x.tif: TIFFReadDirectory May be caused by: x.tif"
    assert isinstance(error, ValueError)
    assert str(OutputError("cannot write\n y")) == "cannot write y"
