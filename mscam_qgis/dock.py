"""The analyst's dock: pick a raster and a model, run `mscam:explain` in the background, move the
threshold to redraw the boxes without the CNN, compare the methods at a clicked point, export.

A run is the same Processing algorithm the toolbox and batch runs use, in a
`QgsProcessingAlgRunnerTask`; its layers are loaded and styled by Processing's post-processing
on the main thread, in a group of their own at the top of the layer tree (boxes above the
heatmap). Outputs are temporary files unless the form names files. The input scene is drawn in
grey dB unless the analyst styled it. Heavy work (the CNN, the redraws, the comparison) never runs
on the GUI thread. The form is dock_form.py; the slider's redraws are redraw.py.
"""

from __future__ import annotations

import os

from mscam.scene.settings import DETECT, split_bands
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsTask,
)
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import pyqtSignal, pyqtSlot
from qgis.PyQt.QtWidgets import QFileDialog

from .compat import load_algorithm_results
from .dependencies import MissingDependency, require_engine
from .dock_form import DockForm, is_own_output
from .redraw import BoxRedrawer, RunFiles, layer_of
from .styling import file_of, style_input_scene

LOADING = "loading the model…"


class RunFeedback(QgsProcessingFeedback):
    """Passes a run's progress text on to the dock (`progressText`, queued to the GUI thread) and
    keeps its errors and information lines (the last error, the summary)."""

    progressText = pyqtSignal(str)

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []
        self.infos: list[str] = []

    def setProgressText(self, text: str) -> None:
        super().setProgressText(text)
        self.progressText.emit(text)

    def pushInfo(self, info: str) -> None:
        self.infos.append(info)
        super().pushInfo(info)

    def reportError(self, error: str, fatalError: bool = False) -> None:
        self.errors.append(error)
        super().reportError(error, fatalError)

    def summary(self) -> str | None:
        """The run's summary line (tiles, hot tiles, boxes, seconds), if it gave one."""
        return next((line for line in reversed(self.infos) if " tiles (" in line), None)


class MscamDock(DockForm, QgsDockWidget):
    runFinished = pyqtSignal(bool, str)  # success, message
    boxesUpdated = pyqtSignal(int)  # boxes in the layer the slider's threshold shows

    def __init__(self, iface, parent=None) -> None:
        QgsDockWidget.__init__(self, "MS-CAM Explainer", parent)
        self.setObjectName("MscamDock")
        self.iface = iface
        self.run_files: RunFiles | None = None
        self._task: QgsProcessingAlgRunnerTask | None = None
        self._run_state: tuple | None = None  # (algorithm, context, feedback, parameters)
        self._compare_task: QgsTask | None = None
        self._compare_dialog = None
        self._compare_tool = None
        self._compared_layer = None
        self._running = ""
        self.run_log: list[str] = []  # the progress texts of the last run
        self._build()
        self.redrawer = BoxRedrawer(self)
        self.redrawer.redrawn.connect(self._redrawn)
        self.redrawer.failed.connect(
            lambda message: self._report(message, Qgis.MessageLevel.Critical)
        )
        project = QgsProject.instance()
        project.layersAdded.connect(self.refresh_picker)
        project.layersRemoved.connect(self.refresh_picker)
        self.refresh_picker()
        active = iface.activeLayer() if iface is not None else None
        if isinstance(active, QgsRasterLayer) and not is_own_output(active):
            self.layer.setLayer(active)

    # -- a run ------------------------------------------------------------------------------

    def run(self) -> None:
        """Start `mscam:explain` as a background task; `runFinished` tells when it is done."""
        try:
            parameters = self.parameters()
        except ValueError as exc:
            self._report(str(exc), Qgis.MessageLevel.Warning)
            return
        layer = self.layer.currentLayer()
        style_input_scene(layer, self.units_choice(), self.band_roles())
        algorithm = QgsApplication.processingRegistry().createAlgorithmById("mscam:explain")
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        feedback = RunFeedback()
        feedback.progressText.connect(self._progress_text)
        task = QgsProcessingAlgRunnerTask(algorithm, parameters, context, feedback)
        task.progressChanged.connect(self._progress_value)
        task.executed.connect(self._executed)
        self._run_state = (algorithm, context, feedback, parameters)
        self._task = task
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)  # busy until the first window is done
        self.progress.setVisible(True)
        self._running = f"{parameters['METHOD']} on {layer.name()}"
        self.run_log = []
        self._progress_text(LOADING)
        QgsApplication.taskManager().addTask(task)

    @pyqtSlot(str)
    def _progress_text(self, text: str) -> None:
        self.run_log.append(text)
        self.status.setText(f"Running {self._running}: {text}")

    @pyqtSlot(float)
    def _progress_value(self, value: float) -> None:
        if value > 0:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(value))

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
            if feedback.isCanceled():  # the analyst's choice, not a failure
                message = "Cancelled: nothing was written."
                self._report(message, Qgis.MessageLevel.Info)
            else:
                message = feedback.errors[-1] if feedback.errors else "the run failed"
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
        self.run_files = self._run_files(results, parameters)
        self.redrawer.reset(self.run_files)
        self.threshold.setEnabled(True)
        self.export_button.setEnabled(True)
        summary = feedback.summary() or "finished"
        message = f"Done ({self._running}): {summary}."
        self.status.setText(message)
        self.runFinished.emit(True, message)

    @staticmethod
    def _run_files(results: dict, parameters: dict) -> RunFiles:
        from osgeo import gdal

        heatmap = gdal.OpenEx(results["HEATMAP"], gdal.OF_RASTER)
        target = heatmap.GetMetadataItem("MSCAM_TARGET_CLASS") if heatmap else None
        return RunFiles(
            results["HEATMAP"],
            results["BOXES"],
            parameters["INPUT"],
            threshold=parameters["THRESHOLD"],
            units=None if parameters["UNITS"] == DETECT else parameters["UNITS"],
            bands=split_bands(parameters["BANDS"]),
            target_class=target or "target",
        )

    # -- the threshold slider ---------------------------------------------------------------

    def _threshold_moved(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        if self.run_files is not None:
            self._threshold_timer.start()

    def relocalize(self) -> None:
        """The last run's boxes at the slider's threshold, as a new layer (redraw.py); the run's
        own boxes file is never written."""
        self.redrawer.redraw(self.threshold_value())

    def _redrawn(self, count: int, threshold: float) -> None:
        own = self.run_files is not None and abs(threshold - self.run_files.threshold) < 1e-9
        where = "the run's boxes" if own else "redrawn from the heatmap; the run's file unchanged"
        self.status.setText(f"{count} boxes at threshold {threshold:.2f} ({where})")
        self.boxesUpdated.emit(count)

    @staticmethod
    def layer_of(path: str):
        """The project's layer reading `path`, if any."""
        return layer_of(path)

    # -- export -----------------------------------------------------------------------------

    def export_heatmap(self, path: str | None = None) -> str | None:
        """The last run's heatmap as shown (RGBA GeoTIFF); asks for a file when `path` is None."""
        layer = self.layer_of(self.run_files.heatmap) if self.run_files else None
        if layer is None:
            self._report("no heatmap layer of this run in the project", Qgis.MessageLevel.Warning)
            return None
        if path is None:
            suggested = os.path.splitext(self.run_files.heatmap)[0] + "_rgba.tif"
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
            units=None if self.units_choice() == DETECT else self.units_choice(),
            bands=split_bands(self.band_roles()),
        )
        self._compared_layer = layer

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
        if self._compare_dialog is not None:
            self._compare_dialog.close()  # its tile outline goes with it
        self._compare_dialog = CompareDialog(
            result, self, canvas=self.iface.mapCanvas(), layer=self._compared_layer
        )
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
        if self._compare_dialog is not None:
            self._compare_dialog.close()
        project = QgsProject.instance()
        for signal in (project.layersAdded, project.layersRemoved):
            try:
                signal.disconnect(self.refresh_picker)
            except TypeError:  # closed before
                pass
        self.cancel()
