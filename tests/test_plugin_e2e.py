"""End to end: the plugin zip installed into a fresh QGIS profile, driven through qgis_process.

qgis_process's embedded Python finds torch through PYTHONPATH (the venv's site-packages only: the
venv's editable `mscam` is a .pth file, which PYTHONPATH entries do not read), so the engine comes
from the zip's bundled copy. Without the venv on PYTHONPATH there is no torch at all, which is how
a user meets the plugin before installing PyTorch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from scene_helpers import ARCH_FILE, bright_card, sea_scene, write_scene

gdal = pytest.importorskip("osgeo.gdal")
QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # Debian's /usr/bin/qgis_process wrapper is broken
pytestmark = [
    pytest.mark.qgis,
    pytest.mark.slow,
    pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK), reason="no qgis_process.bin"),
]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "mscam_qgis.zip"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package_plugin.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def profile(tmp_path_factory, plugin_zip) -> Path:
    """A fresh QGIS configuration folder with the zip unpacked as a user would install it."""
    config = tmp_path_factory.mktemp("qgis-config")
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(plugin_zip) as archive:
        archive.extractall(plugins)
    done = qgis_process(config, "plugins", "enable", "mscam_qgis")
    assert done.returncode == 0, done.stdout + done.stderr
    return config


def qgis_process(config: Path, *args: str, torch: bool = True) -> subprocess.CompletedProcess:
    site = sysconfig.get_paths()["purelib"]  # the venv's site-packages: torch, numpy<2 from Debian
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "QGIS_PLUGINPATH")
    }
    env.update(
        QGIS_CUSTOM_CONFIG_PATH=str(config),
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=site if torch else "",
    )
    env.setdefault("XDG_RUNTIME_DIR", str(config))
    return subprocess.run(
        [QGIS_PROCESS, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_zip_holds_one_plugin_folder_with_metadata_icon_and_the_engine(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert {name.split("/")[0] for name in names} == {"mscam_qgis"}
    for required in (
        "__init__.py",
        "plugin.py",
        "provider.py",
        "metadata.txt",
        "icon.png",
        "ext/mscam/__init__.py",
        "ext/mscam/scene/pipeline.py",
    ):
        assert f"mscam_qgis/{required}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    metadata = zipfile.ZipFile(plugin_zip).read("mscam_qgis/metadata.txt")
    assert metadata == (ROOT / "metadata.txt").read_bytes()
    if (ROOT / "core" / "mscam" / "models" / "default" / "card.json").is_file():
        assert "mscam_qgis/ext/mscam/models/default/card.json" in names


def test_qgis_process_lists_and_runs_explain(profile, tmp_path):
    listed = qgis_process(profile, "list")
    assert "mscam:explain" in listed.stdout and "mscam:synthesize" in listed.stdout
    card = bright_card(tmp_path / "model")
    scene = write_scene(tmp_path / "scene.tif", sea_scene(targets=[(100, 100, 120, 112)]))
    heatmap, boxes = tmp_path / "heat.tif", tmp_path / "boxes.gpkg"
    done = qgis_process(
        profile,
        "run",
        "mscam:explain",
        "--",
        f"INPUT={scene}",
        f"MODEL={card}",
        f"ARCHITECTURE_FILE={ARCH_FILE}",
        "METHOD=grad-cam",
        "DEVICE=cpu",
        f"HEATMAP={heatmap}",
        f"BOXES={boxes}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 ship boxes" in done.stdout
    heat = gdal.Open(str(heatmap))
    assert heat.GetMetadataItem("MSCAM_METHOD") == "grad-cam"
    assert heat.GetSpatialRef().IsSame(gdal.Open(str(scene)).GetSpatialRef())
    assert gdal.OpenEx(str(boxes)).GetLayer(0).GetFeatureCount() == 1


def test_qgis_process_help_gives_the_short_description_and_the_manual(profile):
    done = qgis_process(profile, "help", "mscam:explain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Where a CNN sees the target class (ships) in a SAR scene" in done.stdout
    assert 'href="https://example.org/mscam#qgis"' in done.stdout  # metadata.txt's repository


def test_qgis_process_synthesizes_a_scene(profile, tmp_path):
    scene, truth = tmp_path / "calm.tif", tmp_path / "truth.gpkg"
    done = qgis_process(
        profile,
        "run",
        "mscam:synthesize",
        "--",
        "PROFILE=calm",
        "SIZE=256",
        "SEED=3",
        f"OUTPUT={scene}",
        f"TRUTH={truth}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert gdal.Open(str(scene)).RasterCount == 2
    assert gdal.OpenEx(str(truth)).GetLayer(0).GetFeatureCount() >= 1


def test_qgis_process_explains_with_the_bundled_default_model(profile, plugin_zip, tmp_path):
    names = zipfile.ZipFile(plugin_zip).namelist()
    if "mscam_qgis/ext/mscam/models/default/card.json" not in names:
        pytest.skip("no bundled default model yet")
    scene = write_scene(tmp_path / "scene.tif", sea_scene(128, 160, [(60, 50, 75, 58)]))
    done = qgis_process(
        profile,
        "run",
        "mscam:explain",
        "--",
        f"INPUT={scene}",
        f"HEATMAP={tmp_path / 'h.tif'}",
        f"BOXES={tmp_path / 'b.gpkg'}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    card = json.loads(
        zipfile.ZipFile(plugin_zip).read("mscam_qgis/ext/mscam/models/default/card.json")
    )
    tags = gdal.Open(str(tmp_path / "h.tif")).GetMetadata()
    assert tags["MSCAM_MODEL"] == f"{card['name']} {card['version']}"
    assert tags["MSCAM_METHOD"] == "ms-cam"


def test_qgis_process_failure_is_a_nonzero_exit_with_the_reason(profile, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", sea_scene(60, 60))
    done = qgis_process(
        profile,
        "run",
        "mscam:explain",
        "--",
        f"INPUT={scene}",
        f"MODEL={tmp_path / 'missing.json'}",
        f"HEATMAP={tmp_path / 'h.tif'}",
        f"BOXES={tmp_path / 'b.gpkg'}",
    )
    assert done.returncode != 0
    assert "model card not found" in done.stdout + done.stderr
    # nothing written (QGIS itself may save the input's statistics in scene.tif.aux.xml)
    assert {p.name for p in tmp_path.iterdir()} <= {"scene.tif", "scene.tif.aux.xml"}


def test_without_torch_the_provider_loads_and_says_what_to_install(profile, tmp_path):
    listed = qgis_process(profile, "list", torch=False)
    assert "mscam:explain" in listed.stdout
    scene = write_scene(tmp_path / "scene.tif", sea_scene(60, 60))
    done = qgis_process(
        profile,
        "run",
        "mscam:explain",
        "--",
        f"INPUT={scene}",
        f"HEATMAP={tmp_path / 'h.tif'}",
        f"BOXES={tmp_path / 'b.gpkg'}",
        torch=False,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "MS-CAM needs PyTorch" in output and "pip install" in output
    assert "torch==2.13.0" in output and str(profile) in output  # the plugin-private folder
