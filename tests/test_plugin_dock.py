"""The analyst's dock in a real QGIS (pytest-qgis), end to end: a run with temporary outputs, its
progress and summary, the layer tree (one group per run, boxes above the heatmap above the
scene), the grey dB scene, the slider's redraws (the run's file never changes), compare, export,
cancel, the raster picker. BrightNet (scene_helpers) sees bright pixels, so the boxes are known.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from qgis.core import (
    Qgis,
    QgsCoordinateTransform,
    QgsLayerTreeGroup,
    QgsPointXY,
    QgsProcessingUtils,
    QgsRasterLayer,
    QgsSingleBandGrayRenderer,
    QgsVectorLayer,
)
from scene_helpers import ARCH_FILE, UTM, bright_card, sea_scene, write_scene
from test_plugin import TARGETS, feature_count, wait_for, wait_until

from mscam_qgis.styling import REDRAW_PROPERTY, RUN_PROPERTY

gdal = pytest.importorskip("osgeo.gdal")
pytestmark = pytest.mark.qgis


def band_of(renderer) -> int:
    """A single-band renderer's band: `inputBand` (QGIS ≥ 3.38; the older getters are
    deprecated there), else `grayBand`/`band` (3.22)."""
    if hasattr(renderer, "inputBand"):
        return renderer.inputBand()
    return renderer.grayBand() if hasattr(renderer, "grayBand") else renderer.band()


def set_band(renderer, band: int) -> None:
    if hasattr(renderer, "setInputBand"):
        renderer.setInputBand(band)
    else:
        renderer.setGrayBand(band)


@pytest.fixture(scope="module")
def model_card(tmp_path_factory) -> Path:
    return bright_card(tmp_path_factory.mktemp("model"))


@pytest.fixture
def scene(tmp_path) -> Path:
    folder = tmp_path / "input"
    folder.mkdir()
    return write_scene(folder / "ships.tif", sea_scene(targets=TARGETS))


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def new_dock(qgis_iface, project, scene, model_card):
    from mscam_qgis.dock import MscamDock

    layer = QgsRasterLayer(str(scene), "ships")
    project.addMapLayer(layer)
    qgis_iface.setActiveLayer(layer)
    dock = MscamDock(qgis_iface)
    dock.model.setFilePath(str(model_card))
    dock.architecture.setFilePath(str(ARCH_FILE))
    dock.device.setCurrentText("cpu")
    return dock, layer


def run_groups(project) -> list[QgsLayerTreeGroup]:
    return [g for g in project.layerTreeRoot().findGroups(True) if g.customProperty(RUN_PROPERTY)]


def redraw_layers(project) -> list:
    return [lyr for lyr in project.mapLayers().values() if lyr.customProperty(REDRAW_PROPERTY)]


def scores(path) -> list[float]:
    from qgis.core import QgsVectorLayer

    return sorted(round(f["score"], 6) for f in QgsVectorLayer(str(path), "b", "ogr").getFeatures())


def test_dock_run_layers_slider_compare_export(
    plugin, qgis_iface, qgis_new_project, scene, model_card, tmp_path
):
    from mscam_qgis.compare_view import CompareMapTool

    dock, layer = new_dock(qgis_iface, qgis_new_project, scene, model_card)
    assert dock.layer.currentLayer() is layer  # the active layer by default
    assert layer.renderer().type() == "multibandcolor"  # QGIS's default for two bands
    dock.run()
    assert dock.status.text().endswith("loading the model…")  # text from the first moment
    ok, message = wait_for(dock.runFinished)
    assert ok, message

    # progress text, then the summary in the dock
    assert dock.run_log[0] == "loading the model…"
    assert any(text.startswith("window 1/") for text in dock.run_log)
    assert "writing the heatmap and the boxes" in dock.run_log
    assert "tiles (" in message and "hot" in message and "3 ship boxes" in message
    assert " s on cpu" in message and dock.status.text() == message

    # temporary outputs, nothing beside the input scene
    temporary = os.path.realpath(QgsProcessingUtils.tempFolder())
    for path in (dock.run_files.heatmap, dock.run_files.boxes):
        assert os.path.realpath(path).startswith(temporary)
    assert {p.name for p in scene.parent.iterdir()} <= {"ships.tif", "ships.tif.aux.xml"}

    # the scene in grey dB: its VV band stretched over its 2–98 % quantiles
    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandGrayRenderer) and band_of(renderer) == 1
    vv = gdal.Open(str(scene)).ReadAsArray()[0]
    low, high = np.percentile(vv, [2, 98])
    enhancement = renderer.contrastEnhancement()
    assert enhancement.minimumValue() == pytest.approx(low, abs=0.3)
    assert enhancement.maximumValue() == pytest.approx(high, abs=0.3)

    # one group for the run at the top; boxes above the heatmap above the scene
    heat = dock.layer_of(dock.run_files.heatmap)
    boxes = dock.layer_of(dock.run_files.boxes)
    root = qgis_new_project.layerTreeRoot()
    (group,) = run_groups(qgis_new_project)
    assert root.children()[0] is group and group.name().startswith("MS-CAM ms-cam · ships")
    assert [node.layer() for node in group.findLayers()] == [boxes, heat]
    order = root.layerOrder()
    assert order.index(boxes) < order.index(heat) < order.index(layer)
    assert heat.renderer().type() == "singlebandpseudocolor" and boxes.featureCount() == 3

    # the slider: new layers in the run's group; the run's file never changes
    run_digest, run_scores = digest(dock.run_files.boxes), scores(dock.run_files.boxes)
    redrawn = {}
    for value in (90, 30):
        dock.threshold.setValue(value)
        count = wait_for(dock.boxesUpdated)[0]
        (redraw,) = [
            lyr
            for lyr in qgis_new_project.mapLayers().values()
            if lyr.customProperty(REDRAW_PROPERTY)
        ]  # the previous redraw is gone
        assert redraw.name() == f"ship boxes ≥ {value / 100:.2f} (redrawn)"
        assert redraw.featureCount() == count and redraw.labelsEnabled()
        assert group.findLayers()[0].layer() is redraw  # on top of the run's group
        assert not root.findLayer(boxes).itemVisibilityChecked()  # the run's boxes hidden
        redrawn[value] = (count, redraw.source().split("|")[0], scores(redraw.source()))
        assert digest(dock.run_files.boxes) == run_digest
    assert {value: count for value, (count, _, _) in redrawn.items()} == {90: 2, 30: 3}
    assert not os.path.exists(redrawn[90][1])  # the replaced redraw's file is gone
    assert os.path.realpath(redrawn[30][1]).startswith(temporary)
    # scores stay the run's tile probabilities, not peak heat
    assert set(redrawn[90][2]) <= set(run_scores) and redrawn[30][2] == run_scores
    dock.threshold.setValue(50)  # back at the run's threshold: the run's own boxes
    assert wait_for(dock.boxesUpdated)[0] == 3
    assert not [
        lyr for lyr in qgis_new_project.mapLayers().values() if lyr.customProperty(REDRAW_PROPERTY)
    ]
    assert root.findLayer(boxes).itemVisibilityChecked()
    assert digest(dock.run_files.boxes) == run_digest and feature_count(dock.run_files.boxes) == 3

    # a second run: its own group, above the first, which is collapsed
    first = group
    dock.method.setCurrentText("grad-cam")
    dock.run()
    assert wait_for(dock.runFinished)[0], dock.status.text()
    groups = run_groups(qgis_new_project)
    assert len(groups) == 2 and len({g.name() for g in groups}) == 2
    assert root.children()[0] is not first and root.children()[1] is first
    assert not first.isExpanded() and root.children()[0].name().startswith("MS-CAM grad-cam")

    # compare at a point: a colour bar, the note, the tile outlined on the canvas until closed
    dock.compare_button.setChecked(True)
    canvas = qgis_iface.mapCanvas()
    assert isinstance(canvas.mapTool(), CompareMapTool)
    where = QgsCoordinateTransform(
        layer.crs(), canvas.mapSettings().destinationCrs(), qgis_new_project
    ).transform(QgsPointXY(UTM[0] + 305 * UTM[1], UTM[3] + 215 * UTM[5]))
    dock._compare_tool.picked.emit(where)  # as if the analyst clicked on the second ship
    wait_until(lambda: dock._compare_dialog is not None)
    dialog = dock._compare_dialog
    assert dialog.isVisible() and "bright-test" in dialog.windowTitle()
    assert dialog.comparison.probabilities["ship"] > 0.9
    assert "each map min-maxed on this tile" in dialog.note.text()
    assert dialog.colour_bar.pixmap().width() > 100
    x0, y0, w, _ = dialog.comparison.window
    outline = dialog.outline.asGeometry().boundingBox()
    assert outline.xMinimum() == pytest.approx(UTM[0] + x0 * UTM[1])
    assert outline.yMaximum() == pytest.approx(UTM[3] + y0 * UTM[5])
    assert outline.width() == pytest.approx(w * UTM[1])
    assert dialog.outline in canvas.scene().items()
    band = dialog.outline
    dialog.close()
    assert dialog.outline is None and band not in canvas.scene().items()
    dock.compare_button.setChecked(False)

    exported = dock.export_heatmap(str(tmp_path / "heat_rgba.tif"))
    rgba = gdal.Open(exported)
    assert rgba.RasterCount == 4 and rgba.GetGeoTransform() == pytest.approx(UTM)
    dock.close_tools()


def test_dock_outputs_where_the_analyst_says(
    plugin, qgis_iface, qgis_new_project, scene, model_card, tmp_path
):
    dock, _ = new_dock(qgis_iface, qgis_new_project, scene, model_card)
    dock.heatmap_output.setFilePath(str(tmp_path / "mine.tif"))
    dock.bands.setText("vv, vh")
    dock.units.setCurrentText("dB")
    parameters = dock.parameters()
    assert parameters["BANDS"] == "VV,VH" and parameters["UNITS"] == "dB"
    assert parameters["HEATMAP"].sink.staticValue() == str(tmp_path / "mine.tif")
    assert parameters["BOXES"].sink.staticValue() == "TEMPORARY_OUTPUT"
    dock.run()
    assert wait_for(dock.runFinished)[0], dock.status.text()
    assert dock.run_files.heatmap == str(tmp_path / "mine.tif")
    dock.close_tools()
    dock.close_tools()  # closing twice (the plugin unloading after) is harmless


def test_dock_cancel_is_information_not_an_error(
    plugin, qgis_iface, qgis_new_project, scene, model_card
):
    dock, _ = new_dock(qgis_iface, qgis_new_project, scene, model_card)
    bar = qgis_iface.messageBar()
    bar.clear_messages()
    finished = []
    dock.runFinished.connect(lambda *args: finished.append(args))
    dock.run()
    dock.cancel()  # a task cancelled before it starts ends at once, inside cancel()
    wait_until(lambda: finished)
    ((ok, message),) = finished
    assert not ok and message.startswith("Cancelled")
    assert bar.get_messages(Qgis.MessageLevel.Critical) == []
    assert any("Cancelled" in m for m in bar.get_messages(Qgis.MessageLevel.Info))
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()
    dock.close_tools()


def test_dock_reports_a_failed_run_as_an_error(
    plugin, qgis_iface, qgis_new_project, scene, tmp_path
):
    dock, _ = new_dock(qgis_iface, qgis_new_project, scene, tmp_path / "missing" / "card.json")
    bar = qgis_iface.messageBar()
    bar.clear_messages()
    dock.run()
    ok, message = wait_for(dock.runFinished)
    assert not ok and "model card not found" in message and dock.run_button.isEnabled()
    assert any("model card not found" in m for m in bar.get_messages(Qgis.MessageLevel.Critical))
    dock.close_tools()


def test_the_raster_picker_leaves_out_the_plugins_heatmaps(
    plugin, qgis_iface, qgis_new_project, scene, model_card, tmp_path
):
    import processing

    from mscam_qgis.dock import MscamDock

    results = processing.run(
        "mscam:explain",
        {
            "INPUT": str(scene),
            "MODEL": str(model_card),
            "ARCHITECTURE_FILE": str(ARCH_FILE),
            "DEVICE": "cpu",
            "HEATMAP": str(tmp_path / "heat.tif"),
            "BOXES": str(tmp_path / "boxes.gpkg"),
        },
    )
    heat = QgsRasterLayer(results["HEATMAP"], "an unstyled heatmap")
    other = QgsRasterLayer(str(scene), "ships")
    qgis_new_project.addMapLayers([heat, other])
    qgis_iface.setActiveLayer(heat)
    dock = MscamDock(qgis_iface)
    offered = [dock.layer.layer(i) for i in range(dock.layer.count())]
    assert other in offered and heat not in offered
    # not even as the active layer: the picker offers the scene instead, never an empty choice
    assert dock.layer.currentLayer() is other
    # the boxes active (a vector): still the scene, not an empty choice
    boxes = QgsVectorLayer(results["BOXES"], "boxes")
    qgis_new_project.addMapLayer(boxes)
    qgis_iface.setActiveLayer(boxes)
    dock.close_tools()
    dock = MscamDock(qgis_iface)
    assert dock.layer.currentLayer() is other
    # a project loading after the dock opened, its heatmap first: the scene is chosen
    qgis_new_project.removeAllMapLayers()
    dock.close_tools()
    dock = MscamDock(qgis_iface)
    heat = QgsRasterLayer(results["HEATMAP"], "heatmap first")
    scene_layer = QgsRasterLayer(str(scene), "then the scene")
    qgis_new_project.addMapLayer(heat)
    qgis_new_project.addMapLayer(scene_layer)
    assert dock.layer.currentLayer() is scene_layer
    # a scene mscam synthesised carries MSCAM_SYNTHETIC: an input, offered
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene

    synthetic = tmp_path / "synthetic.tif"
    write_scene(synthesize_scene(128, "calm", 0), synthetic)
    synthetic_layer = QgsRasterLayer(str(synthetic), "synthetic")
    qgis_new_project.addMapLayer(synthetic_layer)
    assert synthetic_layer in [dock.layer.layer(i) for i in range(dock.layer.count())]
    later = QgsRasterLayer(results["HEATMAP"], "added later")
    qgis_new_project.addMapLayer(later)
    assert later not in [dock.layer.layer(i) for i in range(dock.layer.count())]
    dock.close_tools()


def test_the_docks_ranges_and_defaults_are_the_settings_tables(qgis_iface):
    from mscam.scene.settings import SETTINGS

    from mscam_qgis.dock import MscamDock

    dock = MscamDock(qgis_iface)
    for name in ("overlap", "min_score"):
        box, setting = getattr(dock, name), SETTINGS[name]
        assert (box.minimum(), box.maximum()) == (setting.minimum, setting.maximum)
        assert box.value() == setting.default
    threshold = SETTINGS["threshold"]  # (0, 1]: the slider starts one step above 0
    assert dock.threshold.minimum() / 100 == pytest.approx(threshold.lowest)
    assert dock.threshold.maximum() / 100 == threshold.maximum
    assert dock.threshold.value() / 100 == threshold.default
    dock.close_tools()


def test_units_choices_are_the_engines():
    from mscam.radiometry.units import UNITS

    from mscam_qgis.dock_form import UNIT_CHOICES

    assert UNIT_CHOICES[0] == "detect" and set(UNIT_CHOICES[1:]) == set(UNITS)


def test_a_scene_the_analyst_styled_keeps_its_style(qgis_new_project, scene):
    from mscam_qgis.scene_style import renderer_xml
    from mscam_qgis.styling import style_input_scene

    layer = QgsRasterLayer(str(scene), "styled by hand")
    mine = QgsSingleBandGrayRenderer(layer.dataProvider(), 2)
    layer.setRenderer(mine)
    before = renderer_xml(layer)
    assert not style_input_scene(layer)
    assert renderer_xml(layer) == before

    fresh = QgsRasterLayer(str(scene), "default")
    assert style_input_scene(fresh) and band_of(fresh.renderer()) == 1
    # the plugin's own style may be redone (other units or bands) …
    assert style_input_scene(fresh, bands="VH,VV") and band_of(fresh.renderer()) == 2
    # … until the analyst changes it
    set_band(fresh.renderer(), 1)
    fresh.renderer().contrastEnhancement().setMaximumValue(42.0)
    assert not style_input_scene(fresh)


def test_a_linear_scene_is_shown_in_db(tmp_path):
    from mscam_qgis.styling import style_scene

    sea = np.random.default_rng(0).gamma(4.0, 0.01 / 4.0, (2, 120, 160)).astype(np.float32)
    path = write_scene(tmp_path / "linear.tif", sea)  # σ0, not dB: all positive
    layer = QgsRasterLayer(str(path), "linear")
    style_scene(layer)
    renderer = layer.renderer()
    assert renderer.type() == "singlebandpseudocolor" and band_of(renderer) == 1
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    db = 10 * np.log10([item.value for item in items])
    low, high = 10 * np.log10(np.percentile(sea[0], [2, 98]))
    assert db[0] == pytest.approx(low, abs=0.5) and db[-1] == pytest.approx(high, abs=0.5)
    assert np.allclose(np.diff(db), np.diff(db)[0])  # grey steps evenly spaced in dB
    greys = [item.color.red() for item in items]
    assert greys[0] == 0 and greys[-1] == 255 and greys == sorted(greys)
    assert items[0].label.endswith("dB")
