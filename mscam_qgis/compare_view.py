"""The "compare methods here" map tool and the dialog that shows its result side by side: every
method's map over the tile, one colour bar for all (each map min-maxed on the tile), and the tile
outlined on the map canvas while the dialog is open."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qgis.core import QgsCoordinateTransform, QgsPointXY, QgsProject
from qgis.gui import QgsMapToolEmitPoint, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QImage, QPixmap
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QGridLayout, QLabel, QVBoxLayout

from .compat import first_available
from .styling import heat_lut

if TYPE_CHECKING:  # the engine (and torch) load only when a comparison runs
    from mscam.scene.point import Comparison

THUMBNAIL = 192
COLOUR_BAR = (THUMBNAIL * 2, 14)  # width, height in pixels
NOTE = "each map min-maxed on this tile: compare where the methods look, not how hot"
OUTLINE_COLOUR = QColor(255, 255, 0)
POLYGON = first_available("Qgis.GeometryType.Polygon", "QgsWkbTypes.GeometryType.PolygonGeometry")


class CompareMapTool(QgsMapToolEmitPoint):
    """Emits `picked(point)` (canvas CRS) on a left click."""

    picked = pyqtSignal(object)

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.canvasClicked.connect(self._clicked)

    def _clicked(self, point, button) -> None:
        if button == Qt.MouseButton.LeftButton:
            self.picked.emit(point)


def overlay_image(image: np.ndarray, heat: np.ndarray | None) -> QImage:
    """RGBA QImage of a grey tile with `heat` blended over it in the heatmap's colours."""
    grey = np.clip(image * 255, 0, 255).astype(np.uint8)
    rgba = np.stack([grey, grey, grey, np.full_like(grey, 255)], axis=-1).astype(np.float32)
    if heat is not None:
        colours = heat_lut()[np.clip((heat * 255).round(), 0, 255).astype(int)].astype(np.float32)
        alpha = colours[..., 3:] / 255.0
        rgba[..., :3] = colours[..., :3] * alpha + rgba[..., :3] * (1 - alpha)
    data = np.ascontiguousarray(rgba.astype(np.uint8))
    h, w = data.shape[:2]
    # QImage does not own numpy's buffer: copy() detaches it before `data` goes away.
    return QImage(data.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def colour_bar_image(width: int, height: int) -> QImage:
    """The heat ramp 0 → 1 left to right, blended over mid grey as the maps are over the tile."""
    heat = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))
    return overlay_image(np.full_like(heat, 0.5), heat)


def tile_corners(layer, window: tuple[int, int, int, int]) -> list[QgsPointXY]:
    """The corners of pixel window (x0, y0, width, height) of `layer`, in the layer's CRS (from
    its extent and size: a north-up raster's grid)."""
    extent = layer.extent()
    x_step = extent.width() / layer.width()
    y_step = extent.height() / layer.height()
    x0, y0, w, h = window
    left, top = extent.xMinimum() + x0 * x_step, extent.yMaximum() - y0 * y_step
    right, bottom = left + w * x_step, top - h * y_step
    return [
        QgsPointXY(x, y) for x, y in ((left, top), (right, top), (right, bottom), (left, bottom))
    ]


def outline_tile(canvas, layer, window) -> QgsRubberBand:
    """A yellow outline of the compared tile on `canvas` (until it is reset)."""
    transform = QgsCoordinateTransform(
        layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance()
    )
    corners = [transform.transform(point) for point in tile_corners(layer, window)]
    band = QgsRubberBand(canvas, POLYGON)
    band.setStrokeColor(OUTLINE_COLOUR)
    band.setFillColor(QColor(0, 0, 0, 0))
    band.setWidth(2)
    for point in corners:
        band.addPoint(point, False)
    band.closePoints(True)
    band.show()
    return band


class CompareDialog(QDialog):
    """The tile, then each method's map over it, in a grid; probabilities above, the colour bar
    below. With `canvas` and `layer` (the compared raster), the tile is outlined on the canvas
    until the dialog closes."""

    def __init__(self, comparison: Comparison, parent=None, canvas=None, layer=None) -> None:
        super().__init__(parent)
        self.comparison = comparison
        self.outline = None
        self._canvas = canvas
        if canvas is not None and layer is not None:
            self.outline = outline_tile(canvas, layer, comparison.window)
        self.finished.connect(self.remove_outline)
        self.setWindowTitle(f"MS-CAM: methods compared ({comparison.model_name})")
        layout = QVBoxLayout(self)
        ranked = sorted(comparison.probabilities.items(), key=lambda kv: -kv[1])
        x0, y0, w, h = comparison.window
        header = QLabel(
            "<b>Class probabilities</b>: "
            + ", ".join(f"{name} {p:.3f}" for name, p in ranked)
            + f"<br>Explaining <b>{comparison.target_class}</b> on the {w}×{h} px tile at "
            f"pixel ({x0}, {y0})."
        )
        header.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(header)
        grid = QGridLayout()
        cells = [
            ("input (first channel)", None, None),
            *(
                (method, heat, comparison.seconds[method])
                for method, heat in comparison.maps.items()
            ),
        ]
        columns = 3 if len(cells) <= 9 else 4
        for index, (title, heat, seconds) in enumerate(cells):
            picture = QLabel()
            pixmap = QPixmap.fromImage(overlay_image(comparison.image, heat))
            picture.setPixmap(
                pixmap.scaled(
                    THUMBNAIL,
                    THUMBNAIL,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation,
                )
            )
            caption = QLabel(title if seconds is None else f"{title} ({seconds * 1000:.0f} ms)")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(
                picture, 2 * (index // columns), index % columns, Qt.AlignmentFlag.AlignCenter
            )
            grid.addWidget(caption, 2 * (index // columns) + 1, index % columns)
        layout.addLayout(grid)
        layout.addLayout(self._colour_bar())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _colour_bar(self) -> QGridLayout:
        bar = QGridLayout()
        self.colour_bar = QLabel()
        self.colour_bar.setPixmap(QPixmap.fromImage(colour_bar_image(*COLOUR_BAR)))
        bar.addWidget(QLabel("0"), 0, 0)
        bar.addWidget(self.colour_bar, 0, 1, Qt.AlignmentFlag.AlignCenter)
        bar.addWidget(QLabel("1"), 0, 2)
        self.note = QLabel(NOTE)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bar.addWidget(self.note, 1, 0, 1, 3)
        return bar

    def remove_outline(self, *args) -> None:
        """The tile's outline leaves the canvas (when the dialog closes)."""
        if self.outline is not None and self._canvas is not None:
            self._canvas.scene().removeItem(self.outline)
            self._canvas.refresh()
        self.outline = None
