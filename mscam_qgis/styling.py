"""How results look in QGIS: the heatmap's colour ramp, outline boxes with score labels, run groups.

Styling happens on the main thread, after Processing has loaded an output: an algorithm hands a
`ResultStyler` to `context.layerToLoadOnCompletionDetails(output).setPostProcessor(...)`, and
Processing calls it once the layer is in the project, for toolbox, batch and dock runs alike.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from qgis.core import (
    QgsColorRampShader,
    QgsFillSymbol,
    QgsPalLayerSettings,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsProviderRegistry,
    QgsRasterShader,
    QgsSingleBandGrayRenderer,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtGui import QColor, QFont

from .compat import (
    BUFFER_SIZE_MILLIMETERS,
    CUMULATIVE_CUT,
    INTERPOLATED_RAMP,
    LABEL_ABOVE_RIGHT,
    LABEL_OVER_POINT,
    STRETCH_TO_MIN_MAX,
)

#: Heat → RGBA: transparent up to 0.1 (cold sea stays see-through), then a magma-like ramp whose
#: opacity grows with the heat. Shared by the map layer and the compare dialog's images.
HEAT_STOPS = (
    (0.0, (0, 0, 4, 0)),
    (0.1, (28, 16, 68, 0)),
    (0.25, (79, 18, 123, 120)),
    (0.4, (129, 37, 129, 165)),
    (0.55, (181, 54, 122, 195)),
    (0.7, (229, 80, 100, 215)),
    (0.85, (251, 135, 97, 230)),
    (1.0, (252, 253, 191, 240)),
)

BOX_COLOUR = "0,255,255,255"  # cyan reads on grey SAR and on the magma ramp
TRUTH_COLOUR = "60,220,60,255"
ROLE_PROPERTY = "mscam/role"


def heat_lut() -> np.ndarray:
    """(256, 4) uint8 RGBA for heat 0…1 in 256 steps, interpolated like the layer's shader."""
    values = np.linspace(0.0, 1.0, 256)
    stops = np.array([s[0] for s in HEAT_STOPS])
    colours = np.array([s[1] for s in HEAT_STOPS], float)
    channels = [np.interp(values, stops, colours[:, c]) for c in range(4)]
    return np.round(np.stack(channels, axis=1)).astype(np.uint8)


def style_heatmap(layer) -> None:
    """Pseudocolour on band 1 over [0, 1]; nodata (the provider's) stays transparent."""
    ramp = QgsColorRampShader(0.0, 1.0)
    ramp.setColorRampType(INTERPOLATED_RAMP)
    ramp.setColorRampItemList(
        [
            QgsColorRampShader.ColorRampItem(value, QColor(*rgba), f"{value:.2f}")
            for value, rgba in HEAT_STOPS
        ]
    )
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    layer.setCustomProperty(ROLE_PROPERTY, "heatmap")
    layer.triggerRepaint()


def _outline(colour: str, width_mm: float, dashed: bool = False) -> QgsFillSymbol:
    return QgsFillSymbol.createSimple(
        {
            "style": "no",
            "outline_color": colour,
            "outline_width": str(width_mm),
            "outline_width_unit": "MM",
            "outline_style": "dash" if dashed else "solid",
        }
    )


def style_boxes(layer) -> None:
    """Outline-only boxes labelled with their score (the target-class probability)."""
    layer.setRenderer(QgsSingleSymbolRenderer(_outline(BOX_COLOUR, 0.6)))
    text = QgsTextFormat()
    text.setFont(QFont("Sans", 9, QFont.Weight.Bold))
    text.setSize(9)
    text.setColor(QColor(255, 255, 255))
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(0.8)
    buffer.setSizeUnit(BUFFER_SIZE_MILLIMETERS)
    buffer.setColor(QColor(0, 0, 0, 200))
    text.setBuffer(buffer)
    settings = QgsPalLayerSettings()
    settings.fieldName = 'format_number("score", 2)'
    settings.isExpression = True
    settings.placement = LABEL_OVER_POINT
    settings.quadOffset = LABEL_ABOVE_RIGHT
    settings.dist = 1.0
    settings.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)
    layer.setCustomProperty(ROLE_PROPERTY, "boxes")
    layer.triggerRepaint()


def style_scene(layer) -> None:
    """A SAR scene in grey: band 1 (VV), stretched between its 2 % and 98 % quantiles."""
    renderer = QgsSingleBandGrayRenderer(layer.dataProvider(), 1)
    layer.setRenderer(renderer)
    layer.setContrastEnhancement(STRETCH_TO_MIN_MAX, CUMULATIVE_CUT)
    layer.setCustomProperty(ROLE_PROPERTY, "scene")
    layer.triggerRepaint()


def style_truth(layer) -> None:
    """Ground-truth boxes: dashed green outlines, no labels."""
    layer.setRenderer(QgsSingleSymbolRenderer(_outline(TRUTH_COLOUR, 0.5, dashed=True)))
    layer.setCustomProperty(ROLE_PROPERTY, "truth")
    layer.triggerRepaint()


STYLES = {
    "heatmap": style_heatmap,
    "boxes": style_boxes,
    "truth": style_truth,
    "scene": style_scene,
}


def file_of(layer) -> str:
    """The file behind a layer's source (without `|layername=…` and the like)."""
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    return parts.get("path") or layer.source()


def place_in_group(
    layer, project, group: str | None = None, near: str | None = None, on_top: bool = False
) -> None:
    """Move `layer`'s node into the group `group` (created at the top when missing) or, with
    `near`, into the group holding the layer whose file is `near`."""
    root = project.layerTreeRoot()
    target = None
    if group:
        target = root.findGroup(group) or root.insertGroup(0, group)
    elif near:
        for other in project.mapLayers().values():
            if other.id() != layer.id() and file_of(other) == near:
                node = root.findLayer(other.id())
                target = node.parent() if node is not None else None
                break
    node = root.findLayer(layer.id())
    if target is None or node is None or node.parent() is target:
        return
    clone = node.clone()
    target.insertChildNode(0 if on_top else len(target.children()), clone)
    node.parent().removeChildNode(node)


class ResultStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles one loaded output by its role and files it in its run's group (main thread)."""

    # Processing keeps only a C++ pointer to a post-processor: keep the Python side alive.
    _alive: ClassVar[set[ResultStyler]] = set()

    def __init__(
        self, role: str, name: str, group: str | None = None, near: str | None = None
    ) -> None:
        super().__init__()
        self.role, self.name, self.group, self.near = role, name, group, near

    @classmethod
    def attach(
        cls,
        context,
        output: str,
        role: str,
        name: str,
        group: str | None = None,
        near: str | None = None,
    ) -> None:
        """Style `output` when Processing loads it (nothing happens in runs that load nothing)."""
        if not context.willLoadLayerOnCompletion(output):
            return
        styler = cls(role, name, group, near)
        cls._alive.add(styler)
        context.layerToLoadOnCompletionDetails(output).setPostProcessor(styler)

    def postProcessLayer(self, layer, context, feedback) -> None:
        STYLES[self.role](layer)
        layer.setName(self.name)
        project = context.project() or QgsProject.instance()
        place_in_group(
            layer, project, self.group, self.near, on_top=self.role in ("boxes", "truth")
        )
        ResultStyler._alive.discard(self)
