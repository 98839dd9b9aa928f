"""Prepare what `qgis_screenshot.sh` shows: a synthetic scene, its heatmap and boxes, and a QGIS
project with the layers styled exactly as the plugin styles them.

    .venv/bin/python scripts/qgis_screenshot_project.py OUT_DIR [--model CARD] [--profile P]

Without --model it uses the bundled default model, or, before that exists, the test suite's
BrightNet (tests/data/bright_net.py: evidence = bright pixels). Writes OUT_DIR/scene.tif,
truth.gpkg, heatmap.tif, boxes.gpkg, project.qgz and startup.py (the code QGIS runs at start:
maximise the window, open the MS-CAM dock on the scene).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

STARTUP = """\
from qgis.core import QgsRectangle
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget
from qgis.utils import iface, plugins


def arrange():
    window = iface.mainWindow()
    window.setGeometry(QApplication.primaryScreen().availableGeometry())  # Xvfb has no WM
    browser = window.findChild(QDockWidget, "Browser")
    if browser is not None:
        browser.hide()
    plugin = plugins.get("mscam_qgis")
    if plugin is not None:
        plugin.show_dock(True)
        scene = [layer for layer in iface.mapCanvas().layers() if layer.name().endswith("dB)")]
        if scene:
            plugin.dock.layer.setLayer(scene[0])
        window.resizeDocks([plugin.dock], [400], Qt.Orientation.Horizontal)
    boxes = [layer for layer in iface.mapCanvas().layers() if "boxes" in layer.name()]
    if boxes:
        iface.setActiveLayer(boxes[0])
    layers = window.findChild(QDockWidget, "Layers")
    if layers is not None:
        window.resizeDocks([layers], [270], Qt.Orientation.Horizontal)
    QTimer.singleShot(1500, zoom)  # once the canvas has its new size


def zoom():
    canvas = iface.mapCanvas()
    half = {half_width}
    aspect = canvas.height() / max(canvas.width(), 1)
    canvas.setExtent(QgsRectangle({cx} - half, {cy} - half * aspect, {cx} + half,
                                  {cy} + half * aspect))
    canvas.refresh()


QTimer.singleShot(1500, arrange)
"""


def model_arguments(out: Path, model: str | None) -> tuple[str | None, str | None]:
    """(card, architecture file) to explain with."""
    from mscam.models import DEFAULT_CARD_PATH

    if model or DEFAULT_CARD_PATH.is_file():
        return model, None
    from scene_helpers import ARCH_FILE, bright_card

    return str(bright_card(out / "model")), str(ARCH_FILE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--profile", default="dense")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--method", default="ms-cam")
    parser.add_argument("--width-m", type=float, default=3000.0, help="width of the view")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    from qgis.core import (
        QgsApplication,
        QgsLayerTreeGroup,
        QgsProject,
        QgsRasterLayer,
        QgsVectorLayer,
    )

    app = QgsApplication([], False)
    app.initQgis()
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene
    from mscam.scene.pipeline import SceneSettings, explain_scene

    from mscam_qgis.styling import style_boxes, style_heatmap, style_scene, style_truth

    scene_path, truth_path = out / "scene.tif", out / "truth.gpkg"
    scene = synthesize_scene(args.size, args.profile, args.seed)
    write_scene(scene, scene_path, truth_path)
    card, architecture = model_arguments(out, args.model)
    result = explain_scene(
        scene_path,
        out / "heatmap.tif",
        out / "boxes.gpkg",
        SceneSettings(model=card, architecture_file=architecture, method=args.method, device="cpu"),
    )
    print(f"{len(scene.ships)} ships; {result.n_boxes} boxes, {result.hot_tiles} hot tiles")

    project = QgsProject.instance()
    layers = [
        (QgsVectorLayer(str(truth_path), "ships (truth)", "ogr"), style_truth),
        (
            QgsVectorLayer(str(result.boxes), f"{result.target_class} boxes ≥ 0.50", "ogr"),
            style_boxes,
        ),
        (QgsRasterLayer(str(result.heatmap), f"{result.target_class} heatmap"), style_heatmap),
        (QgsRasterLayer(str(scene_path), f"{args.profile} scene (VV, VH dB)"), style_scene),
    ]
    group = project.layerTreeRoot().insertGroup(0, f"MS-CAM {args.method} · scene")
    assert isinstance(group, QgsLayerTreeGroup)
    for layer, style in layers:
        assert layer.isValid(), layer.source()
        style(layer)
        project.addMapLayer(layer, False)
        group.addLayer(layer)
    project.setCrs(layers[-1][0].crs())
    project.write(str(out / "project.qgz"))
    # Centre the view on a ship at sea with the most ships around it.
    import numpy as np

    land = scene.land_mask

    def at_sea(ship) -> bool:
        y, x = int(ship["y"]), int(ship["x"])
        return not land[max(0, y - 120) : y + 120, max(0, x - 160) : x + 160].any()

    candidates = [s for s in scene.ships if at_sea(s)] or scene.ships
    ship = max(
        candidates,
        key=lambda s: sum(np.hypot(s["x"] - o["x"], s["y"] - o["y"]) < 150 for o in scene.ships),
    )
    gt = scene.geotransform
    (out / "startup.py").write_text(
        STARTUP.format(
            half_width=args.width_m / 2, cx=gt[0] + ship["x"] * gt[1], cy=gt[3] + ship["y"] * gt[5]
        )
    )
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
