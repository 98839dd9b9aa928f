"""The analyst's dock: pick a raster and a model, run `mscam:explain` in the background, move the
threshold to redraw the boxes without the CNN, compare the methods at a clicked point, export.

A run is the same Processing algorithm the toolbox and batch runs use, in a
`QgsProcessingAlgRunnerTask`; its layers are loaded and styled by Processing's post-processing
on the main thread. Heavy work (the CNN, re-localisation, the comparison) never runs on the GUI
thread.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterLayer,
    QgsTask,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsDockWidget, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .algorithms.base import DEVICES, METHOD_NAMES
from .compat import RASTER_LAYER_FILTER, load_algorithm_results
from .dependencies import MissingDependency, require_engine
from .styling import file_of


class RunFeedback(QgsProcessingFeedback):
    """Keeps the errors a run reports, to show the last one in the dock."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def reportError(self, error: str, fatalError: bool = False) -> None:
        self.errors.append(error)
        super().reportError(error, fatalError)


@dataclass
class RunFiles:
    """The files of the last finished run, which the slider and the export work on."""

    heatmap: str
    boxes: str
    scene: str | None = None  # the input, so redrawn boxes fit the ships as the run's did


class MscamDock(QgsDockWidget):
    runFinished = pyqtSignal(bool, str)  # success, message
    boxesUpdated = pyqtSignal(int)  # boxes now in the run's boxes file

    def __init__(self, iface, parent=None) -> None:
        super().__init__("MS-CAM Explainer", parent)
        self.setObjectName("MscamDock")
        self.iface = iface
        self.run_files: RunFiles | None = None
        self._task: QgsProcessingAlgRunnerTask | None = None
        self._run_state: tuple | None = None  # (algorithm, context, feedback) of the run
        self._localize_task: QgsTask | None = None
        self._compare_task: QgsTask | None = None
        self._compare_dialog = None
        self._compare_tool = None
        self._build()
        active = iface.activeLayer() if iface is not None else None
        if isinstance(active, QgsRasterLayer):
            self.layer.setLayer(active)

    # -- widgets ----------------------------------------------------------------------------

    def _build(self) -> None:
        body = QWidget()
        column = QVBoxLayout(body)
        form = QFormLayout()
        self.layer = QgsMapLayerComboBox()
        self.layer.setFilters(RASTER_LAYER_FILTER)
        form.addRow("SAR raster", self.layer)
        self.model = QgsFileWidget()
        self.model.setFilter("Model cards (*.json);;All files (*)")
        self.model.lineEdit().setPlaceholderText("bundled default model")
        form.addRow("Model card", self.model)
        self.method = QComboBox()
        self.method.addItems(METHOD_NAMES)
        form.addRow("Method", self.method)
        self.target_class = QLineEdit()
        self.target_class.setPlaceholderText("the model's target class")
        form.addRow("Target class", self.target_class)
        self.tile = QSpinBox()
        self.tile.setRange(0, 4096)
        self.tile.setSingleStep(16)
        self.tile.setSpecialValueText("model's chip size")
        form.addRow("Tile size", self.tile)
        self.overlap = QDoubleSpinBox()
        self.overlap.setRange(0.0, 0.9)
        self.overlap.setSingleStep(0.05)
        self.overlap.setValue(0.25)
        form.addRow("Overlap", self.overlap)
        column.addLayout(form)

        advanced = QgsCollapsibleGroupBox("Advanced")
        advanced.setCollapsed(True)
        more = QFormLayout(advanced)
        self.min_score = QDoubleSpinBox()
        self.min_score.setRange(0.0, 1.0)
        self.min_score.setSingleStep(0.05)
        self.min_score.setValue(0.5)
        more.addRow("Minimum tile score", self.min_score)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        more.addRow("Device", self.device)
        self.architecture = QgsFileWidget()
        self.architecture.setFilter("Python files (*.py)")
        self.architecture.lineEdit().setPlaceholderText("registered architecture")
        self.architecture.setToolTip(
            "A Python file defining the card's architecture. "
            "It runs that file's code: use only files you trust."
        )
        more.addRow("Architecture file", self.architecture)
        self.output_folder = QgsFileWidget()
        self.output_folder.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.output_folder.lineEdit().setPlaceholderText("beside the input raster")
        more.addRow("Output folder", self.output_folder)
        column.addWidget(advanced)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        column.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)  # shown while a run is going
        column.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        column.addWidget(self.status)

        threshold_row = QHBoxLayout()
        threshold_row.addWidget(QLabel("Box threshold"))
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(1, 100)
        self.threshold.setValue(50)
        self.threshold.setEnabled(False)
        self.threshold.setToolTip("Redraws the last run's boxes from its heatmap (no CNN)")
        self.threshold_label = QLabel("0.50")
        threshold_row.addWidget(self.threshold)
        threshold_row.addWidget(self.threshold_label)
        column.addLayout(threshold_row)
        self._threshold_timer = QTimer(self)
        self._threshold_timer.setSingleShot(True)
        self._threshold_timer.setInterval(250)
        self._threshold_timer.timeout.connect(self.relocalize)
        self.threshold.valueChanged.connect(self._threshold_moved)

        tools = QHBoxLayout()
        self.compare_button = QPushButton("Compare methods here")
        self.compare_button.setCheckable(True)
        self.compare_button.setToolTip("Click the map: every method's map of the tile there")
        self.compare_button.toggled.connect(self.toggle_compare_tool)
        self.export_button = QPushButton("Export styled heatmap…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(lambda: self.export_heatmap())
        about = QPushButton("About")
        about.clicked.connect(self._about)
        tools.addWidget(self.compare_button)
        tools.addWidget(self.export_button)
        tools.addWidget(about)
        column.addLayout(tools)
        column.addStretch(1)
        self.setWidget(body)

    def threshold_value(self) -> float:
        return self.threshold.value() / 100.0

    # -- a run ------------------------------------------------------------------------------

    def output_paths(self, scene: str, method: str) -> tuple[str, str]:
        """Heatmap and boxes files of a new run: in the chosen folder, else beside the scene
        (else Processing's temporary folder when that is read-only); never overwriting."""
        folder = self.output_folder.filePath() or os.path.dirname(os.path.abspath(scene))
        if not os.access(folder, os.W_OK):
            folder = QgsProcessingUtils.tempFolder()
        stem = f"{Path(scene).stem}_{method}_{time.strftime('%Y%m%d-%H%M%S')}"
        return (
            os.path.join(folder, f"{stem}_heatmap.tif"),
            os.path.join(folder, f"{stem}_boxes.gpkg"),
        )

    def parameters(self) -> dict:
        """The `mscam:explain` parameters the form describes (outputs load into the project)."""
        layer = self.layer.currentLayer()
        if layer is None:
            raise ValueError("choose a SAR raster layer")
        method = self.method.currentText()
        heatmap, boxes = self.output_paths(file_of(layer), method)
        project = QgsProject.instance()
        outputs = {}
        for name, path in (("HEATMAP", heatmap), ("BOXES", boxes)):
            definition = QgsProcessingOutputLayerDefinition(path, project)
            definition.destinationName = name.lower()
            outputs[name] = definition
        return {
            "INPUT": layer.source(),
            "MODEL": self.model.filePath(),
            "METHOD": method,
            "TARGET_CLASS": self.target_class.text().strip(),
            "TILE_SIZE": self.tile.value(),
            "OVERLAP": self.overlap.value(),
            "THRESHOLD": self.threshold_value(),
            "MIN_SCORE": self.min_score.value(),
            "DEVICE": self.device.currentText(),
            "ARCHITECTURE_FILE": self.architecture.filePath(),
            **outputs,
        }

    def run(self) -> None:
        """Start `mscam:explain` as a background task; `runFinished` tells when it is done."""
        try:
            parameters = self.parameters()
        except ValueError as exc:
            self._report(str(exc), Qgis.MessageLevel.Warning)
            return
        algorithm = QgsApplication.processingRegistry().createAlgorithmById("mscam:explain")
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        feedback = RunFeedback()
        task = QgsProcessingAlgRunnerTask(algorithm, parameters, context, feedback)
        task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        task.executed.connect(self._executed)
        self._run_state = (algorithm, context, feedback, parameters)
        self._task = task
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        layer_name = self.layer.currentLayer().name()
        self.status.setText(f"Running {parameters['METHOD']} on {layer_name}…")
        QgsApplication.taskManager().addTask(task)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _executed(self, successful: bool, results: dict) -> None:
        algorithm, context, feedback, parameters = self._run_state
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)
        self._task = None
        if not successful:
            message = feedback.errors[-1] if feedback.errors else "the run failed or was cancelled"
            self._report(message, Qgis.MessageLevel.Critical)
            self.runFinished.emit(False, message)
            return
        try:
            load_algorithm_results(algorithm, context, feedback, parameters)
        except Exception as exc:  # a slot must not raise: PyQt would abort QGIS
            message = f"the run finished but its layers could not be loaded: {exc}"
            self._report(message, Qgis.MessageLevel.Critical)
            self.runFinished.emit(False, message)
            return
        self.run_files = RunFiles(results["HEATMAP"], results["BOXES"], parameters["INPUT"])
        self.threshold.setEnabled(True)
        self.export_button.setEnabled(True)
        message = f"Done: {Path(self.run_files.heatmap).name}"
        self.status.setText(message)
        self.runFinished.emit(True, message)

    # -- the threshold slider ---------------------------------------------------------------

    def _threshold_moved(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if self.run_files is not None:
            self._threshold_timer.start()

    def relocalize(self) -> None:
        """Write the last run's boxes again at the slider's threshold, in the background; a
        newer threshold waits for the running one to finish."""
        if self.run_files is None:
            return
        if self._localize_task is not None:
            return  # _localized starts again if the slider moved meanwhile
        threshold = self.threshold_value()
        files = self.run_files

        def work(task):
            from mscam.scene.heatmap_writer import heatmap_tags
            from mscam.scene.pipeline import write_scene_boxes

            tags = heatmap_tags(files.heatmap)
            count = write_scene_boxes(
                Path(files.heatmap),
                Path(files.boxes),
                threshold,
                tags.get("target_class", "target"),
                tags.get("method", "unknown"),
                scene=files.scene,
            )
            return files, threshold, count

        self._localize_task = QgsTask.fromFunction(
            "MS-CAM boxes", work, on_finished=self._localized
        )
        QgsApplication.taskManager().addTask(self._localize_task)

    def _localized(self, exception, result=None) -> None:
        self._localize_task = None
        if exception is not None:
            self._report(f"boxes: {exception}", Qgis.MessageLevel.Critical)
            return
        files, threshold, count = result
        layer = self.layer_of(files.boxes)
        if layer is not None:
            layer.dataProvider().reloadData()
            layer.updateExtents()
            name = layer.name()
            layer.setName(
                name[: name.rfind("≥")].rstrip() + f" ≥ {threshold:.2f}" if "≥" in name else name
            )
            layer.triggerRepaint()
        self.status.setText(f"{count} boxes at threshold {threshold:.2f}")
        self.boxesUpdated.emit(count)
        if files is self.run_files and abs(threshold - self.threshold_value()) > 1e-9:
            self.relocalize()

    @staticmethod
    def layer_of(path: str):
        """The project's layer reading `path`, if any."""
        for layer in QgsProject.instance().mapLayers().values():
            if os.path.abspath(file_of(layer)) == os.path.abspath(path):
                return layer
        return None

    # -- export -----------------------------------------------------------------------------

    def export_heatmap(self, path: str | None = None) -> str | None:
        """The last run's heatmap as shown (RGBA GeoTIFF); asks for a file when `path` is None."""
        layer = self.layer_of(self.run_files.heatmap) if self.run_files else None
        if layer is None:
            self._report("no heatmap layer of this run in the project", Qgis.MessageLevel.Warning)
            return None
        if path is None:
            suggested = self.run_files.heatmap.replace("_heatmap.tif", "_heatmap_rgba.tif")
            path, _ = QFileDialog.getSaveFileName(
                self, "Export styled heatmap", suggested, "GeoTIFF (*.tif)"
            )
            if not path:
                return None
        from .export import export_styled_raster

        try:
            export_styled_raster(layer, path)
        except RuntimeError as exc:
            self._report(str(exc), Qgis.MessageLevel.Critical)
            return None
        self._report(f"exported {path}", Qgis.MessageLevel.Success)
        return path

    # -- compare methods at a point ---------------------------------------------------------

    def toggle_compare_tool(self, active: bool) -> None:
        canvas = self.iface.mapCanvas()
        if active:
            from .compare_view import CompareMapTool

            if self._compare_tool is None:
                self._compare_tool = CompareMapTool(canvas)
                self._compare_tool.picked.connect(self.compare_at)
                self._compare_tool.deactivated.connect(
                    lambda: self.compare_button.setChecked(False)
                )
            canvas.setMapTool(self._compare_tool)
        elif self._compare_tool is not None and canvas.mapTool() is self._compare_tool:
            canvas.unsetMapTool(self._compare_tool)

    def compare_at(self, point) -> None:
        """Compare every method on the tile under `point` (canvas CRS), in the background."""
        layer = self.layer.currentLayer()
        if layer is None or self._compare_task is not None:
            return
        try:
            require_engine()
        except MissingDependency as exc:
            self._report(str(exc), Qgis.MessageLevel.Critical)
            return
        canvas_crs = self.iface.mapCanvas().mapSettings().destinationCrs()
        transform = QgsCoordinateTransform(canvas_crs, layer.crs(), QgsProject.instance())
        where = transform.transform(point)
        arguments = dict(
            raster=file_of(layer),
            x=where.x(),
            y=where.y(),
            model=self.model.filePath() or None,
            target_class=self.target_class.text().strip() or None,
            tile=self.tile.value() or None,
            device=self.device.currentText(),
            architecture_file=self.architecture.filePath() or None,
        )

        def work(task):
            from .compare import compare_methods

            return compare_methods(**arguments)

        self.status.setText("Comparing the methods on the clicked tile…")
        self._compare_task = QgsTask.fromFunction(
            "MS-CAM compare", work, on_finished=self._compared
        )
        QgsApplication.taskManager().addTask(self._compare_task)

    def _compared(self, exception, result=None) -> None:
        self._compare_task = None
        if exception is not None:
            self._report(f"compare: {exception}", Qgis.MessageLevel.Critical)
            return
        from .compare_view import CompareDialog

        self.status.setText("")
        self._compare_dialog = CompareDialog(result, self)
        self._compare_dialog.show()

    # -- odds and ends ----------------------------------------------------------------------

    def _about(self) -> None:
        from .about import AboutDialog

        AboutDialog(self).exec()

    def _report(self, message: str, level=Qgis.MessageLevel.Info) -> None:
        self.status.setText(message)
        if self.iface is not None:
            self.iface.messageBar().pushMessage("MS-CAM", message, level=level, duration=8)

    def close_tools(self) -> None:
        """Called when the plugin unloads: release the map tool, cancel running work."""
        if self._compare_tool is not None:
            self.iface.mapCanvas().unsetMapTool(self._compare_tool)
            self._compare_tool = None
        self.cancel()
