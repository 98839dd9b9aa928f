"""The "compare methods here" map tool and the dialog that shows its result side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qgis.gui import QgsMapToolEmitPoint
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QImage, QPixmap
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QGridLayout, QLabel, QVBoxLayout

from .styling import heat_lut

if TYPE_CHECKING:  # the engine (and torch) load only when a comparison runs
    from mscam.scene.point import Comparison

THUMBNAIL = 192


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


class CompareDialog(QDialog):
    """The tile, then each method's map over it, in a grid; probabilities above."""

    def __init__(self, comparison: Comparison, parent=None) -> None:
        super().__init__(parent)
        self.comparison = comparison
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
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
