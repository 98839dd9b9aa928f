"""The dock's *Box threshold* slider: the last run's boxes drawn again at another threshold, as a
layer of their own, from the run's heatmap (no CNN).

A redraw never writes the run's files. It writes a new GeoPackage in Processing's temporary
folder (`mscam.scene.redraw_boxes`, which keeps the run's tile probabilities as `score`) and
shows it as "<class> boxes ≥ t (redrawn)" at the top of the run's group, in place of the previous
redraw, whose layer and file go; the run's own boxes layer is hidden meanwhile and shown again
when the slider comes back to the run's threshold.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from qgis.core import QgsApplication, QgsProcessingUtils, QgsProject, QgsTask, QgsVectorLayer
from qgis.PyQt.QtCore import QObject, pyqtSignal

from .styling import REDRAW_PROPERTY, file_of, order_group, style_boxes


@dataclass
class RunFiles:
    """The files of the last finished run, which the slider and the export work on."""

    heatmap: str
    boxes: str
    scene: str | None = None  # the input, so redrawn boxes fit the ships as the run's did
    threshold: float = 0.5  # the run's own threshold: its boxes file is the redraw there
    units: str | None = None  # the run's units and band roles, for the fit to the scene
    bands: tuple[str, ...] | None = None
    target_class: str = "target"


def layer_of(path: str):
    """The project's layer reading `path`, if any."""
    for layer in QgsProject.instance().mapLayers().values():
        if os.path.abspath(file_of(layer)) == os.path.abspath(path):
            return layer
    return None


def remove_temporary(path: str) -> None:
    """Delete a redraw's GeoPackage and its folder, if they are in Processing's temporary
    folder (QGIS empties that folder when it closes anyway)."""
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.abspath(QgsProcessingUtils.tempFolder())
    if os.path.commonpath([folder, temporary]) == temporary and folder != temporary:
        shutil.rmtree(folder, ignore_errors=True)


class BoxRedrawer(QObject):
    """Redraws the run's boxes in a background task; a newer threshold waits for the running one.
    `redrawn(boxes, threshold)` once the layer shows them, `failed(message)` otherwise."""

    redrawn = pyqtSignal(int, float)
    failed = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.run: RunFiles | None = None
        self.layer_id: str | None = None  # the redraw layer shown now
        self._task: QgsTask | None = None
        self._wanted: float | None = None

    def reset(self, run: RunFiles | None) -> None:
        """A new run: later redraws go into its group (an older redraw stays with its run)."""
        self.run, self.layer_id, self._wanted = run, None, None

    def redraw(self, threshold: float) -> None:
        if self.run is None:
            return
        self._wanted = threshold
        if self._task is not None:
            return  # _finished starts again if the threshold moved meanwhile
        if abs(threshold - self.run.threshold) < 1e-9:
            self._back_to_the_run()
            return
        run = self.run
        path = QgsProcessingUtils.generateTempFilename(f"boxes_{threshold:.2f}.gpkg")

        def work(task):
            from mscam.scene import redraw_boxes

            count = redraw_boxes(
                run.heatmap,
                path,
                threshold,
                scene=run.scene,
                units=run.units,
                bands=run.bands,
            )
            return run, threshold, path, count

        self._task = QgsTask.fromFunction("MS-CAM boxes", work, on_finished=self._finished)
        QgsApplication.taskManager().addTask(self._task)

    def busy(self) -> bool:
        return self._task is not None

    def _finished(self, exception, result=None) -> None:
        self._task = None
        if exception is not None:
            self.failed.emit(f"boxes: {exception}")
            return
        run, threshold, path, count = result
        if run is not self.run:  # a new run came meanwhile: its slider starts afresh
            remove_temporary(path)
            return
        layer = QgsVectorLayer(path, f"{run.target_class} boxes ≥ {threshold:.2f} (redrawn)", "ogr")
        style_boxes(layer)
        layer.setCustomProperty(REDRAW_PROPERTY, path)
        self._remove_redraw()
        project = QgsProject.instance()
        project.addMapLayer(layer, False)
        run_boxes = self._run_boxes_node()
        group = run_boxes.parent() if run_boxes is not None else project.layerTreeRoot()
        group.insertLayer(0, layer)
        order_group(group)
        if run_boxes is not None:
            self._run_boxes_node().setItemVisibilityChecked(False)
        self.layer_id = layer.id()
        self.redrawn.emit(count, threshold)
        if self._wanted is not None and abs(self._wanted - threshold) > 1e-9:
            self.redraw(self._wanted)

    def _run_boxes_node(self):
        layer = layer_of(self.run.boxes) if self.run is not None else None
        return None if layer is None else QgsProject.instance().layerTreeRoot().findLayer(layer)

    def _remove_redraw(self) -> None:
        project = QgsProject.instance()
        layer = project.mapLayer(self.layer_id) if self.layer_id else None
        self.layer_id = None
        if layer is not None:
            path = layer.customProperty(REDRAW_PROPERTY)
            project.removeMapLayer(layer.id())
            remove_temporary(path)

    def _back_to_the_run(self) -> None:
        """At the run's own threshold the run's boxes are the answer: show them again."""
        self._remove_redraw()
        node = self._run_boxes_node()
        count = 0
        if node is not None:
            node.setItemVisibilityChecked(True)
            count = node.layer().featureCount()
        self.redrawn.emit(count, self.run.threshold)
