"""The dock's form: its widgets, and the `mscam:explain` parameters they describe.

A mixin of `MscamDock` (dock.py), which holds the behaviour: runs, the slider, compare, export.
"""

from __future__ import annotations

import re

from mscam.scene.settings import DETECT, SETTINGS
from qgis.core import QgsProcessing, QgsProcessingOutputLayerDefinition, QgsProject
from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
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

from .algorithms.base import DEVICES, METHOD_NAMES, UNIT_NAMES
from .compat import RASTER_LAYER_FILTER
from .styling import ROLE_PROPERTY

#: The UNITS choices, as mscam:explain's: "detect" (from the bands' labels and values), the units.
UNIT_CHOICES = (DETECT, *UNIT_NAMES)
TEMPORARY = "temporary file (kept until QGIS closes)"


def is_own_output(layer) -> bool:
    """Whether `layer` is one of the plugin's heatmaps: styled as one, or a raster whose file
    carries a heatmap's tag MSCAM_METHOD. Such a raster is an output, never an input (scenes
    `mscam synth` wrote carry other MSCAM_ tags, MSCAM_SYNTHETIC: they are inputs)."""
    if layer.customProperty(ROLE_PROPERTY) == "heatmap":
        return True
    if layer.providerType() != "gdal":
        return False
    from osgeo import gdal

    dataset = gdal.OpenEx(layer.source(), gdal.OF_RASTER)
    return dataset is not None and "MSCAM_METHOD" in (dataset.GetMetadata() or {})


class DockForm:
    """Builds the dock's widgets (`_build`) and reads them (`parameters`)."""

    def _build(self) -> None:
        body = QWidget()
        column = QVBoxLayout(body)
        form = QFormLayout()
        self.layer = QgsMapLayerComboBox()
        self.layer.setFilters(RASTER_LAYER_FILTER)
        self.layer.setToolTip("The SAR scene to explain (the plugin's own heatmaps are not listed)")
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
        self.tile.setRange(0, 4096)  # 0: the model's chip size; the engine refuses 1-7
        self.tile.setSingleStep(16)
        self.tile.setSpecialValueText("model's chip size")
        form.addRow("Tile size", self.tile)
        self.overlap = spin_box("overlap")
        form.addRow("Overlap", self.overlap)
        column.addLayout(form)
        column.addWidget(self._build_advanced())
        column.addWidget(self._build_outputs())
        self._build_run(column)
        self._build_tools(column)
        column.addStretch(1)
        self.setWidget(body)

    def _build_advanced(self) -> QgsCollapsibleGroupBox:
        advanced = QgsCollapsibleGroupBox("Advanced")
        advanced.setCollapsed(True)
        more = QFormLayout(advanced)
        self.bands = QLineEdit()
        self.bands.setPlaceholderText("detect (e.g. VV,VH)")
        self.bands.setToolTip(
            "The polarisation of each band, in band order (VV, VH, HH, HV), when the file does "
            "not say it; empty: read from the band names, else band 1 VV, band 2 VH"
        )
        more.addRow("Band roles", self.bands)
        self.units = QComboBox()
        self.units.addItems(UNIT_CHOICES)
        self.units.setToolTip(
            "The scene's radiometric units; detect: from the bands' labels, integers are DN, "
            "mostly negative floats dB, other floats linear σ0 (amplitude must be chosen)"
        )
        more.addRow("Units", self.units)
        self.min_score = spin_box("min_score")
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
        return advanced

    def _build_outputs(self) -> QgsCollapsibleGroupBox:
        outputs = QgsCollapsibleGroupBox("Output files")
        outputs.setCollapsed(True)
        rows = QFormLayout(outputs)
        self.heatmap_output = QgsFileWidget()
        self.heatmap_output.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.heatmap_output.setFilter("GeoTIFF (*.tif)")
        self.heatmap_output.lineEdit().setPlaceholderText(TEMPORARY)
        rows.addRow("Heatmap", self.heatmap_output)
        self.boxes_output = QgsFileWidget()
        self.boxes_output.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.boxes_output.setFilter("GeoPackage (*.gpkg)")
        self.boxes_output.lineEdit().setPlaceholderText(TEMPORARY)
        rows.addRow("Boxes", self.boxes_output)
        return outputs

    def _build_run(self, column) -> None:
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

    def _build_tools(self, column) -> None:
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(QLabel("Box threshold"))
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        threshold = SETTINGS["threshold"]  # the slider counts hundredths
        self.threshold.setRange(round(threshold.lowest * 100), round(threshold.maximum * 100))
        self.threshold.setValue(round(threshold.default * 100))
        self.threshold.setEnabled(False)
        self.threshold.setToolTip(
            "Draws the last run's boxes again from its heatmap (no CNN) as a new layer; the "
            "run's own boxes file is never changed"
        )
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

    # -- reading the form -------------------------------------------------------------------

    def threshold_value(self) -> float:
        return self.threshold.value() / 100.0

    def band_roles(self) -> str:
        """The band roles typed, normalised ("vv, vh" → "VV,VH"); empty: detect."""
        return ",".join(r.upper() for r in re.split(r"[,;\s]+", self.bands.text()) if r)

    def units_choice(self) -> str:
        return self.units.currentText()

    def refresh_picker(self, *args) -> None:
        """Keep the plugin's own heatmaps out of the raster picker."""
        layers = QgsProject.instance().mapLayers().values()
        self.layer.setExceptedLayerList([layer for layer in layers if is_own_output(layer)])
        if self.layer.currentLayer() is None and self.layer.count():
            self.layer.setLayer(self.layer.layer(0))  # a heatmap left: the first scene instead

    def parameters(self) -> dict:
        """The `mscam:explain` parameters the form describes (outputs load into the project):
        temporary files unless a path is chosen, as Processing algorithms do."""
        layer = self.layer.currentLayer()
        if layer is None:
            raise ValueError("choose a SAR raster layer")
        project = QgsProject.instance()
        outputs = {}
        for name, widget in (("HEATMAP", self.heatmap_output), ("BOXES", self.boxes_output)):
            path = widget.filePath().strip() or QgsProcessing.TEMPORARY_OUTPUT
            definition = QgsProcessingOutputLayerDefinition(path, project)
            definition.destinationName = name.lower()
            outputs[name] = definition
        return {
            "INPUT": layer.source(),
            "MODEL": self.model.filePath(),
            "METHOD": self.method.currentText(),
            "TARGET_CLASS": self.target_class.text().strip(),
            "TILE_SIZE": self.tile.value(),
            "OVERLAP": self.overlap.value(),
            "THRESHOLD": self.threshold_value(),
            "MIN_SCORE": self.min_score.value(),
            "DEVICE": self.device.currentText(),
            "ARCHITECTURE_FILE": self.architecture.filePath(),
            "BANDS": self.band_roles(),
            "UNITS": self.units_choice(),
            **outputs,
        }


def spin_box(name: str) -> QDoubleSpinBox:
    """A spin box with the range, step and default of the scene option `name` (the settings
    table that the command line and the Processing parameters come from too)."""
    setting = SETTINGS[name]
    box = QDoubleSpinBox()
    box.setRange(setting.lowest, setting.maximum)
    box.setSingleStep(setting.step or 0.05)
    box.setValue(setting.default)
    box.setToolTip(setting.help)
    return box
