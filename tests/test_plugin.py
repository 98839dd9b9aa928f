"""The QGIS plugin in a real QGIS (pytest-qgis): provider, algorithms, styling, dock, compare,
dependencies. Scenes and the model are the scene tests' (scene_helpers: BrightNet sees bright
pixels, so where the heat must be is known)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mscam
import pytest
from mscam.models import DEFAULT_CARD_PATH
from mscam.sar.synth import PROFILES
from mscam.scene.heatmap_writer import heatmap_tags
from qgis.core import (
    QgsApplication,
    QgsLayerTreeGroup,
    QgsProcessingException,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QTimer
from scene_helpers import ARCH_FILE, UTM, bright_card, sea_scene, write_scene

from mscam_qgis.algorithms.base import METHOD_NAMES, PROFILE_NAMES
from mscam_qgis.dependencies import (
    BUNDLED_ENGINE,
    TORCH_REQUIREMENT,
    engine_status,
    install_command,
    prepare_sys_path,
    qgis_python,
)

gdal = pytest.importorskip("osgeo.gdal")
pytestmark = pytest.mark.qgis

ROOT = Path(__file__).resolve().parent.parent
# x0, y0, x1, y1: two bright ships (heat ≈ 1) and a small one the model is less sure of (≈ 0.6)
TARGETS = [(100, 100, 120, 112), (300, 200, 310, 230), (200, 40, 210, 46)]

PARAMETERS = {
    "mscam:explain": (
        [
            "INPUT",
            "MODEL",
            "METHOD",
            "TARGET_CLASS",
            "TILE_SIZE",
            "OVERLAP",
            "THRESHOLD",
            "MIN_SCORE",
            "DEVICE",
            "ARCHITECTURE_FILE",
            "PIXEL_SPACING",
            "UNITS",
            "BANDS",
            "LATTICE",
            "SCHEDULER",
            "HEATMAP",
            "BOXES",
        ],
        ["HEATMAP", "BOXES"],
    ),
    "mscam:batch": (
        [
            "INPUTS",
            "MODEL",
            "METHOD",
            "OVERLAP",
            "THRESHOLD",
            "MIN_SCORE",
            "DEVICE",
            "ARCHITECTURE_FILE",
            "UNITS",
            "BANDS",
            "LATTICE",
            "SCHEDULER",
            "OUTPUT",
        ],
        ["OUTPUT", "BOXES", "SUMMARY"],
    ),
    "mscam:localize": (["INPUT", "SCENE", "THRESHOLD", "BOXES"], ["BOXES"]),
    "mscam:evaluate": (["HEATMAP", "TRUTH", "OUTPUT"], ["OUTPUT"]),
    "mscam:synthesize": (["PROFILE", "SIZE", "SEED", "OUTPUT", "TRUTH"], ["OUTPUT", "TRUTH"]),
    "mscam:sanity": (
        [
            "INPUT",
            "MODEL",
            "METHODS",
            "TILES",
            "TRUTH",
            "SEED",
            "DEVICE",
            "ARCHITECTURE_FILE",
            "OUTPUT",
        ],
        ["OUTPUT", "JSON", "PNG"],
    ),
}


@pytest.fixture(scope="module")
def model_card(tmp_path_factory) -> Path:
    return bright_card(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("scene") / "ships.tif", sea_scene(targets=TARGETS))


def explain_parameters(scene, card, folder: Path, **changes) -> dict:
    return {
        "INPUT": str(scene),
        "MODEL": str(card),
        "ARCHITECTURE_FILE": str(ARCH_FILE),
        "DEVICE": "cpu",
        "HEATMAP": str(folder / "heat.tif"),
        "BOXES": str(folder / "boxes.gpkg"),
        **changes,
    }


def wait_for(signal, timeout_s: float = 60.0) -> tuple:
    """Run the event loop until `signal` is emitted; its arguments."""
    loop, received = QEventLoop(), []

    def got(*args):
        received.append(args)
        loop.quit()

    signal.connect(got)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(got)
    assert received, f"no signal within {timeout_s} s"
    return received[0]


def wait_until(condition, timeout_s: float = 60.0) -> None:
    """Run the event loop until `condition()` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def feature_count(path) -> int:
    return QgsVectorLayer(str(path), "boxes", "ogr").featureCount()


# -- the provider ---------------------------------------------------------------------------------


def test_provider_lists_its_algorithms_with_the_public_parameter_names(plugin):
    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("mscam")
    assert provider is not None and provider.name() == "MS-CAM"
    assert sorted(a.id() for a in provider.algorithms()) == sorted(PARAMETERS)
    for algorithm_id, (parameters, outputs) in PARAMETERS.items():
        algorithm = registry.algorithmById(algorithm_id)
        assert [p.name() for p in algorithm.parameterDefinitions()] == parameters
        assert [o.name() for o in algorithm.outputDefinitions()] == outputs
        assert algorithm.shortHelpString().strip()
        assert algorithm.flags() & algorithm.FlagSupportsBatch
        assert algorithm.flags() & algorithm.FlagCanCancel
    explain = registry.algorithmById("mscam:explain")
    method = explain.parameterDefinition("METHOD")
    assert method.options() == list(mscam.METHODS) == list(METHOD_NAMES)
    assert method.defaultValue() == "ms-cam"
    assert explain.parameterDefinition("MODEL").flags() & method.FlagOptional
    assert explain.parameterDefinition("OVERLAP").defaultValue() == 0.25
    assert explain.parameterDefinition("BOXES").defaultFileExtension() == "gpkg"
    assert explain.parameterDefinition("HEATMAP").defaultFileExtension() == "tif"
    assert explain.parameterDefinition("DEVICE").options() == ["auto", "cpu", "cuda"]
    spacing = explain.parameterDefinition("PIXEL_SPACING")  # 0: from the scene's georeferencing
    assert spacing.defaultValue() == 0 and spacing.flags() & spacing.FlagAdvanced
    profiles = registry.algorithmById("mscam:synthesize").parameterDefinition("PROFILE")
    assert profiles.options() == list(PROFILES) == list(PROFILE_NAMES)


def test_every_algorithm_has_tags_a_short_description_and_a_help_link(plugin):
    repository = next(
        line.split("=", 1)[1].strip()
        for line in (ROOT / "metadata.txt").read_text().splitlines()
        if line.startswith("repository=")
    )
    provider = QgsApplication.processingRegistry().providerById("mscam")
    for algorithm in provider.algorithms():
        assert algorithm.helpUrl() == f"{repository}#qgis"
        assert f'href="{algorithm.helpUrl()}"' in algorithm.shortHelpString()
        short = algorithm.shortDescription()
        assert short and "\n" not in short and len(short) < 100, algorithm.id()
        tags = algorithm.tags()
        assert {"sar", "mscam"} <= set(tags) and len(tags) == len(set(tags)), algorithm.id()
    assert "heatmap" in QgsApplication.processingRegistry().algorithmById("mscam:explain").tags()


# -- the algorithms -------------------------------------------------------------------------------


def test_explain_writes_a_heatmap_on_the_input_grid_and_boxes(plugin, scene, model_card, tmp_path):
    import processing

    results = processing.run("mscam:explain", explain_parameters(scene, model_card, tmp_path))
    heat = QgsRasterLayer(results["HEATMAP"], "heat")
    assert heat.isValid() and heat.crs() == QgsRasterLayer(str(scene), "scene").crs()
    assert heat.crs().authid() == "EPSG:32633"
    data = gdal.Open(results["HEATMAP"]).ReadAsArray()
    assert data.shape == (300, 400) and data.min() >= 0 and data.max() <= 1
    x0, y0, x1, y1 = TARGETS[0]
    assert data[y0:y1, x0:x1].max() > 0.5 and data[250:, :50].max() < 0.05
    boxes = QgsVectorLayer(results["BOXES"], "boxes", "ogr")
    assert boxes.isValid() and boxes.featureCount() == 3 and boxes.crs() == heat.crs()
    assert {"class", "score", "peak", "mean", "area_m2", "method", "threshold"} <= set(
        boxes.fields().names()
    )
    # LATTICE (advanced) is the engine's setting: drop by default, as the heatmap records
    assert heatmap_tags(results["HEATMAP"])["lattice"] == "drop"
    (tmp_path / "keep").mkdir()
    keep = explain_parameters(scene, model_card, tmp_path / "keep", LATTICE="keep")
    assert heatmap_tags(processing.run("mscam:explain", keep)["HEATMAP"])["lattice"] == "keep"


def test_explain_in_a_project_loads_styled_layers_in_a_run_group(
    plugin, scene, model_card, tmp_path, qgis_new_project
):
    import processing

    processing.runAndLoadResults(
        "mscam:explain", explain_parameters(scene, model_card, tmp_path, METHOD="grad-cam")
    )
    groups = [
        g
        for g in qgis_new_project.layerTreeRoot().children()
        if isinstance(g, QgsLayerTreeGroup) and g.name().startswith("MS-CAM grad-cam")
    ]
    assert len(groups) == 1
    layers = [node.layer() for node in groups[0].findLayers()]
    boxes, heat = layers  # boxes above the heatmap
    assert boxes.source().startswith(str(tmp_path)) and heat.source() == str(tmp_path / "heat.tif")
    assert heat.renderer().type() == "singlebandpseudocolor"
    ramp = heat.renderer().shader().rasterShaderFunction().colorRampItemList()
    assert ramp[0].value == 0 and ramp[0].color.alpha() == 0 and ramp[-1].value == 1
    symbol = boxes.renderer().symbol()
    assert symbol.symbolLayer(0).brushStyle() == 0  # Qt.NoBrush: outline only
    assert boxes.labelsEnabled() and "score" in boxes.labeling().settings().fieldName
    assert "ship boxes" in boxes.name() and "heatmap" in heat.name()

    assert groups[0].customProperty("mscam/run") == groups[0].name()

    # boxes localized again land in the group of the heatmap they come from
    processing.runAndLoadResults(
        "mscam:localize",
        {"INPUT": heat.source(), "THRESHOLD": 0.9, "BOXES": str(tmp_path / "again.gpkg")},
    )
    again = next(node.layer() for node in groups[0].findLayers())
    assert again.source().startswith(str(tmp_path / "again.gpkg")) and again.featureCount() == 2
    assert again.name() == "ship boxes ≥ 0.90" and again.labelsEnabled()

    # the same run again (same method, scene and likely the same second): a group of its own, on
    # top, the older one collapsed; boxes above the heatmap
    processing.runAndLoadResults(
        "mscam:explain",
        explain_parameters(
            scene,
            model_card,
            tmp_path,
            METHOD="grad-cam",
            HEATMAP="TEMPORARY_OUTPUT",
            BOXES="TEMPORARY_OUTPUT",
        ),
    )
    root = qgis_new_project.layerTreeRoot()
    runs = [g for g in root.children() if isinstance(g, QgsLayerTreeGroup)]
    assert len(runs) == 2 and runs[1] is groups[0] and not runs[1].isExpanded()
    assert runs[0].name() != runs[1].name() and runs[0].name().startswith("MS-CAM grad-cam")
    roles = [node.layer().customProperty("mscam/role") for node in runs[0].findLayers()]
    assert roles == ["boxes", "heatmap"]


def test_explain_runs_inside_a_processing_model(plugin, model_card, tmp_path):
    """The graphical modeller's case: synthesize → explain, chained by a model."""
    import processing
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
    )

    def static(value):
        return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]

    model = QgsProcessingModelAlgorithm("synthesize and explain", "tests")
    synthesize = QgsProcessingModelChildAlgorithm("mscam:synthesize")
    synthesize.setChildId("synthesize")
    for name, value in (("PROFILE", "calm"), ("SIZE", 128), ("SEED", 1)):
        synthesize.addParameterSources(name, static(value))
    model.addChildAlgorithm(synthesize)
    explain = QgsProcessingModelChildAlgorithm("mscam:explain")
    explain.setChildId("explain")
    explain.addParameterSources(
        "INPUT", [QgsProcessingModelChildParameterSource.fromChildOutput("synthesize", "OUTPUT")]
    )
    for name, value in (
        ("MODEL", str(model_card)),
        ("ARCHITECTURE_FILE", str(ARCH_FILE)),
        ("METHOD", "layer-cam"),
        ("DEVICE", "cpu"),
    ):
        explain.addParameterSources(name, static(value))
    outputs = {}
    for name in ("HEATMAP", "BOXES"):
        output = QgsProcessingModelOutput(name.lower())
        output.setChildId("explain")
        output.setChildOutputName(name)
        outputs[name.lower()] = output
    explain.setModelOutputs(outputs)
    model.addChildAlgorithm(explain)
    model.updateDestinationParameters()
    results = processing.run(
        model,
        {
            "explain:heatmap": str(tmp_path / "heat.tif"),
            "explain:boxes": str(tmp_path / "boxes.gpkg"),
        },
    )
    assert results["explain:heatmap"] == str(tmp_path / "heat.tif")
    assert gdal.Open(str(tmp_path / "heat.tif")).GetMetadataItem("MSCAM_METHOD") == "layer-cam"
    assert (tmp_path / "boxes.gpkg").is_file()


def test_localize_redraws_boxes_at_other_thresholds(plugin, scene, model_card, tmp_path):
    import processing

    first = processing.run("mscam:explain", explain_parameters(scene, model_card, tmp_path))
    counts = {}
    for threshold in (0.3, 0.9):
        out = processing.run(
            "mscam:localize",
            {
                "INPUT": first["HEATMAP"],
                "THRESHOLD": threshold,
                "BOXES": str(tmp_path / f"b{threshold}.gpkg"),
            },
        )
        counts[threshold] = feature_count(out["BOXES"])
    assert counts == {0.3: 3, 0.9: 2}


def test_localize_with_the_scene_redraws_the_runs_boxes(plugin, scene, model_card, tmp_path):
    import processing

    first = processing.run("mscam:explain", explain_parameters(scene, model_card, tmp_path))
    again = processing.run(
        "mscam:localize",
        {
            "INPUT": first["HEATMAP"],
            "SCENE": str(scene),
            "THRESHOLD": 0.5,  # the run's own threshold
            "BOXES": str(tmp_path / "again.gpkg"),
        },
    )

    def boxes(path) -> list[tuple]:
        layer = QgsVectorLayer(str(path), "boxes", "ogr")
        keys = ("px_x0", "px_y0", "px_x1", "px_y1", "fit")
        return sorted(tuple(f[key] for key in keys) for f in layer.getFeatures())

    run_boxes = boxes(first["BOXES"])
    assert run_boxes and {box[-1] for box in run_boxes} == {"image"}
    assert boxes(again["BOXES"]) == run_boxes


def test_synthesize_then_evaluate(plugin, model_card, tmp_path):
    import processing

    synthetic = processing.run(
        "mscam:synthesize",
        {
            "PROFILE": "calm",
            "SIZE": 128,
            "SEED": 1,
            "OUTPUT": str(tmp_path / "calm.tif"),
            "TRUTH": str(tmp_path / "truth.gpkg"),
        },
    )
    assert gdal.Open(synthetic["OUTPUT"]).RasterCount == 2
    assert feature_count(synthetic["TRUTH"]) >= 1
    heat = processing.run(
        "mscam:explain", explain_parameters(synthetic["OUTPUT"], model_card, tmp_path)
    )["HEATMAP"]
    metrics = processing.run(
        "mscam:evaluate",
        {"HEATMAP": heat, "TRUTH": synthetic["TRUTH"], "OUTPUT": str(tmp_path / "metrics.json")},
    )
    written = json.loads(Path(metrics["OUTPUT"]).read_text())
    assert written["truth_boxes"] >= 1 and "best" in written


@pytest.mark.skipif(not DEFAULT_CARD_PATH.is_file(), reason="no bundled default model yet")
def test_explain_without_a_model_uses_the_bundled_default(plugin, tmp_path):
    import processing

    scene = processing.run(
        "mscam:synthesize",
        {
            "PROFILE": "calm",
            "SIZE": 192,
            "SEED": 2,
            "OUTPUT": str(tmp_path / "calm.tif"),
            "TRUTH": str(tmp_path / "truth.gpkg"),
        },
    )["OUTPUT"]
    heat = processing.run(
        "mscam:explain",
        {
            "INPUT": scene,
            "DEVICE": "cpu",
            "HEATMAP": str(tmp_path / "heat.tif"),
            "BOXES": str(tmp_path / "boxes.gpkg"),
        },
    )["HEATMAP"]
    card = json.loads(DEFAULT_CARD_PATH.read_text())
    assert gdal.Open(heat).GetMetadataItem("MSCAM_MODEL") == f"{card['name']} {card['version']}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MODEL": "/nonexistent/card.json"}, "model card not found"),
        ({"TARGET_CLASS": "whale"}, "unknown target class"),
        ({"DEVICE": "cuda"}, "cuda"),
    ],
)
def test_engine_failures_are_one_clear_message_and_leave_nothing(
    plugin, scene, model_card, tmp_path, change, message
):
    import processing
    import torch

    if change.get("DEVICE") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(QgsProcessingException, match=message):
        processing.run("mscam:explain", explain_parameters(scene, model_card, tmp_path, **change))
    assert not any(tmp_path.iterdir())


def test_cancel_stops_the_run_and_leaves_nothing(plugin, scene, model_card, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("mscam:explain")
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: feedback.cancel())
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        algorithm.run(
            explain_parameters(scene, model_card, tmp_path),
            QgsProcessingContext(),
            feedback,
            {},
            False,
        )  # catchExceptions=False
    assert feedback.isCanceled() and not any(tmp_path.iterdir())


# -- the dock: tests/test_plugin_dock.py ---------------------------------------------------------


# -- compare methods at a point --------------------------------------------------------------------


def test_compare_gives_probabilities_and_one_map_per_method(scene, model_card):
    from mscam_qgis.compare import compare_methods
    from mscam_qgis.compare_view import CompareDialog

    x0, y0, x1, y1 = TARGETS[0]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x, y = UTM[0] + cx * UTM[1], UTM[3] + cy * UTM[5]  # map coordinates of the ship's centre
    result = compare_methods(str(scene), x, y, str(model_card), architecture_file=str(ARCH_FILE))
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.probabilities["ship"] > 0.9
    assert list(result.maps) == list(mscam.METHODS)
    wx, wy, w, h = result.window
    assert (w, h) == (64, 64) and wx <= cx < wx + w and wy <= cy < wy + h
    for heat in result.maps.values():
        assert heat.shape == (64, 64) and heat.min() >= 0 and heat.max() <= 1 + 1e-6
    ship = result.maps["ms-cam"][int(y0 - wy) : int(y1 - wy), int(x0 - wx) : int(x1 - wx)]
    assert ship.mean() > result.maps["ms-cam"].mean()  # the map is on the ship
    dialog = CompareDialog(result)
    assert dialog.layout().count() == 4  # header, grid, colour bar and note, buttons
    assert dialog.outline is None  # no canvas given: nothing to outline


def test_compare_without_a_model_takes_the_single_pol_model_on_a_vv_only_scene(tmp_path):
    import numpy as np
    from mscam.models import SINGLE_POL_CARD_PATH, ModelCard

    from mscam_qgis.compare import compare_methods

    path = tmp_path / "vv_only.tif"
    raster = gdal.GetDriverByName("GTiff").Create(str(path), 96, 96, 1, gdal.GDT_Float32)
    raster.SetGeoTransform(UTM)
    sea = np.random.default_rng(0).gamma(4.4, 1 / 4.4, (96, 96)) * 10 ** (-2.0)
    raster.GetRasterBand(1).WriteArray(10 * np.log10(sea))
    raster.GetRasterBand(1).SetDescription("VV")
    raster = None
    result = compare_methods(str(path), UTM[0] + 48 * UTM[1], UTM[3] + 48 * UTM[5])
    single = ModelCard.load(SINGLE_POL_CARD_PATH)
    assert result.model_name == f"{single.name} {single.version}"
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_compare_on_a_raster_without_georeferencing_takes_qgis_canvas_coordinates(
    tmp_path, model_card
):
    from mscam_qgis.compare import compare_methods

    path = write_scene(tmp_path / "plain.tif", sea_scene(targets=TARGETS), geotransform=None)
    layer = QgsRasterLayer(str(path), "plain")
    extent = layer.extent()  # QGIS puts pixel (col, row) at (col, -row)
    assert (extent.yMinimum(), extent.yMaximum()) == (-layer.height(), 0)
    x0, y0, x1, y1 = TARGETS[0]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    result = compare_methods(str(path), cx, -cy, str(model_card), architecture_file=str(ARCH_FILE))
    wx, wy, w, h = result.window
    assert wx <= cx < wx + w and wy <= cy < wy + h
    assert result.probabilities["ship"] > 0.9


def test_compare_outside_the_raster_is_an_input_error(scene, model_card):
    from mscam.errors import InputError

    from mscam_qgis.compare import compare_methods

    with pytest.raises(InputError, match="outside"):
        compare_methods(str(scene), 0.0, 0.0, str(model_card), architecture_file=str(ARCH_FILE))


# -- dependencies ----------------------------------------------------------------------------------


def test_install_command_targets_the_plugin_folder_with_the_pinned_torch(tmp_path):
    command = install_command(tmp_path / "deps", python="/opt/qgis/python3", cpu_only=True)
    assert command[:4] == ["/opt/qgis/python3", "-m", "pip", "install"]
    assert command[command.index("--target") + 1] == str(tmp_path / "deps")
    assert TORCH_REQUIREMENT == "torch==2.13.0" and TORCH_REQUIREMENT in command
    assert command[command.index("--index-url") + 1].endswith("/whl/cpu")
    assert "--index-url" not in install_command(tmp_path, python="p", cpu_only=False)
    default = install_command()
    assert default[default.index("--target") + 1].endswith(os.path.join("python", "mscam_deps"))
    assert os.path.isfile(qgis_python())


def test_bundled_engine_goes_on_sys_path_only_when_mscam_is_missing(tmp_path, monkeypatch):
    from mscam_qgis import dependencies

    (tmp_path / "mscam").mkdir()
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(dependencies, "BUNDLED_ENGINE", tmp_path)
    prepare_sys_path()
    assert str(tmp_path) not in sys.path  # the development mscam is importable
    monkeypatch.setattr(dependencies, "_findable", lambda name: False)
    prepare_sys_path()
    assert sys.path[-1] == str(tmp_path)
    assert BUNDLED_ENGINE.name == "ext" and BUNDLED_ENGINE.parent.name == "mscam_qgis"


def test_about_dialog_reports_torch_device_and_engine(qgis_app):
    from mscam_qgis.about import AboutDialog

    status = engine_status()
    assert status.ok and status.missing_message() == ""
    text = AboutDialog().report.toPlainText()
    assert f"PyTorch: {status.torch_version}" in text
    assert f"Device: {status.device}" in text and status.device.startswith(("CPU", "CUDA"))
    assert f"mscam engine: {mscam.__version__}" in text


TORCHLESS = textwrap.dedent("""
    import importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("No module named 'torch'", name=name)

    sys.meta_path.insert(0, NoTorch())
    sys.path[:0] = [{root!r}, "/usr/share/qgis/python/plugins"]
    from qgis.core import QgsApplication, QgsProcessingException
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    import processing
    from mscam_qgis import classFactory

    plugin = classFactory(None)  # QGIS keeps its plugins alive (qgis.utils.plugins): so do we
    plugin.initProcessing()
    provider = QgsApplication.processingRegistry().providerById("mscam")
    print("ALGORITHMS", sorted(a.id() for a in provider.algorithms()))
    try:
        processing.run("mscam:explain", {{"INPUT": {scene!r}, "HEATMAP": "TEMPORARY_OUTPUT",
                                         "BOXES": "TEMPORARY_OUTPUT"}})
    except QgsProcessingException as exc:
        print("FAILED", exc)
    print("TORCH LOADED", "torch" in sys.modules)
""")


def test_plugin_loads_without_torch_and_says_what_to_install(scene, tmp_path):
    script = tmp_path / "torchless.py"
    script.write_text(TORCHLESS.format(root=str(ROOT), scene=str(scene)))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"ALGORITHMS {sorted(PARAMETERS)}" in out
    failed = next(line for line in out.splitlines() if line.startswith("FAILED"))
    assert "MS-CAM needs PyTorch" in failed and "No module named 'torch'" in failed
    assert "pip install" in failed and "torch==2.13.0" in failed and "mscam_deps" in failed
    assert "TORCH LOADED False" in out
