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
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt import sip
from qgis.PyQt.QtGui import QColor, QFont

from .compat import (
    BUFFER_SIZE_MILLIMETERS,
    INTERPOLATED_RAMP,
    LABEL_ABOVE_RIGHT,
    LABEL_OVER_POINT,
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
SCENE_STYLE_PROPERTY = "mscam/scene-style"  # the renderer the plugin gave a scene, as XML
RUN_PROPERTY = "mscam/run"  # on a run's group
REDRAW_PROPERTY = "mscam/redraw"  # on boxes the dock's slider redrew
#: Top to bottom in a run's group: redrawn boxes, boxes, truth, heatmap, the rest.
ROLE_RANK = {"redraw": 0, "boxes": 1, "truth": 2, "heatmap": 3, "scene": 4}


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


def style_scene(layer, units: str | None = None, bands: str | None = None) -> None:
    """A SAR scene in grey dB: its co-pol band stretched between its 2 % and 98 % quantiles
    (scene_style.py); `units` None guesses them, `bands` ("VV,VH") names the band roles."""
    from .scene_style import renderer_xml, style_grey_db

    style_grey_db(layer, units, bands)
    layer.setCustomProperty(ROLE_PROPERTY, "scene")
    layer.setCustomProperty(SCENE_STYLE_PROPERTY, renderer_xml(layer))
    layer.triggerRepaint()


def style_input_scene(layer, units: str | None = None, bands: str | None = None) -> bool:
    """Style a scene the plugin runs on as `style_scene` does, only while it is drawn with QGIS's
    default renderer or the plugin's own earlier style: a layer the analyst styled is left as it
    is. Whether it was styled."""
    from .scene_style import has_default_renderer, renderer_xml

    ours = layer.customProperty(SCENE_STYLE_PROPERTY)
    if not (ours and ours == renderer_xml(layer)) and not has_default_renderer(layer):
        return False
    style_scene(layer, units, bands)
    return True


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


def layer_rank(node) -> int:
    """Where a node goes in a run's group: see ROLE_RANK (groups and unknown layers last)."""
    layer = node.layer() if hasattr(node, "layer") else None
    if layer is None:
        return len(ROLE_RANK)
    if layer.customProperty(REDRAW_PROPERTY):
        return ROLE_RANK["redraw"]
    return ROLE_RANK.get(layer.customProperty(ROLE_PROPERTY), len(ROLE_RANK))


def order_group(group) -> None:
    """Boxes above the heatmap (ROLE_RANK) in `group`, whatever order the layers arrived in;
    layers of one rank keep their order."""
    children = group.children()
    ranked = sorted(children, key=layer_rank)
    if all(a is b for a, b in zip(ranked, children)):
        return
    group.insertChildNodes(0, [node.clone() for node in ranked])
    for node in children:
        group.removeChildNode(node)


def new_run_group(project, name: str):
    """A group for a new run at the top of the layer tree (above every scene and older run), named
    `name`, or `name (2)`… when that name is taken; older runs' groups are collapsed."""
    root = project.layerTreeRoot()
    for group in root.findGroups(True):
        if group.customProperty(RUN_PROPERTY):
            group.setExpanded(False)
    unique, count = name, 1
    while root.findGroup(unique) is not None:
        count += 1
        unique = f"{name} ({count})"
    group = root.insertGroup(0, unique)
    group.setCustomProperty(RUN_PROPERTY, unique)
    return group


def place_in_group(layer, project, group=None, near: str | None = None, on_top: bool = False):
    """Move `layer`'s node into the group node `group` or, with `near`, into the group holding the
    layer whose file is `near`; then order that group (`order_group`)."""
    root = project.layerTreeRoot()
    target = group
    if target is None and near:
        for other in project.mapLayers().values():
            if other.id() != layer.id() and file_of(other) == near:
                node = root.findLayer(other.id())
                target = node.parent() if node is not None else None
                break
    node = root.findLayer(layer.id())
    if target is None or node is None:
        return
    if node.parent() is not target:
        clone = node.clone()
        target.insertChildNode(0 if on_top else len(target.children()), clone)
        node.parent().removeChildNode(node)
    order_group(target)


class ResultStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles one loaded output by its role and files it in its run's group (main thread).

    The outputs of one run share one group, created when the first of them loads
    (`new_run_group`): a run never joins an older run's group of the same name."""

    # Processing keeps only a C++ pointer to a post-processor: keep the Python side alive.
    _alive: ClassVar[set[ResultStyler]] = set()
    _groups: ClassVar[dict[tuple[int, str], object]] = {}  # (run, group name) → the group node

    def __init__(
        self,
        role: str,
        name: str,
        group: str | None = None,
        near: str | None = None,
        run: object = None,
    ) -> None:
        super().__init__()
        self.role, self.name, self.group, self.near = role, name, group, near
        self.run = run

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
        run = getattr(context, "_mscam_run", None)
        if run is None:  # one token per run's context: its outputs share one group
            run = context._mscam_run = object()
        styler = cls(role, name, group, near, run)
        cls._alive.add(styler)
        context.layerToLoadOnCompletionDetails(output).setPostProcessor(styler)

    def postProcessLayer(self, layer, context, feedback) -> None:
        STYLES[self.role](layer)
        layer.setName(self.name)
        project = context.project() or QgsProject.instance()
        group = None
        if self.group:
            key = (id(self.run), self.group)
            group = ResultStyler._groups.get(key)
            if group is None or sip.isdeleted(group):
                group = ResultStyler._groups[key] = new_run_group(project, self.group)
        place_in_group(layer, project, group, self.near, on_top=self.role in ("boxes", "truth"))
        ResultStyler._alive.discard(self)
        if not any(id(s.run) == id(self.run) for s in ResultStyler._alive):
            for key in [k for k in ResultStyler._groups if k[0] == id(self.run)]:
                del ResultStyler._groups[key]
