"""`mscam:localize`: boxes again from an existing heatmap at another threshold, no CNN."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from ..compat import VECTOR_POLYGON
from ..styling import ResultStyler
from .base import MscamAlgorithm, engine_errors, raster_path, scene_parameter, tr

HELP = """Draws localisation boxes from a heatmap written by Explain scene, at a new threshold, \
without running the CNN again.

<b>Heatmap</b>: a heatmap GeoTIFF from Explain scene (its tags give the class and the method).
<b>Threshold</b>: heat a peak needs to give a box (0.01–1); each peak grows down to half its own \
heat.
<b>SAR scene</b> (optional): the scene the heatmap explains. With it, each box fits the ship's \
bright pixels against the local sea clutter (as Explain scene draws them) and gets length, width \
and heading; without it, a box is a peak's heat region.
<b>Boxes</b>: the GeoPackage written, in the heatmap's CRS. A box's score is the run's probability \
of the tile holding it, as Explain scene reports it: at the run's threshold, with its scene, the \
boxes are the run's own. (A heatmap written before tile scores were stored gives the peak heat, a \
lower bound of that probability.)"""


class LocalizeAlgorithm(MscamAlgorithm):
    NAME = "localize"
    DISPLAY = "Localize boxes from a heatmap"
    GROUP = "Explain"
    HELP = HELP

    SHORT = "Boxes again from an Explain scene heatmap at another threshold, without the CNN"
    KEYWORDS = ("localize", "boxes", "threshold", "heatmap", "ship detection")

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", tr("Heatmap")))
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                "SCENE", tr("SAR scene the heatmap explains (fits boxes to ships)"), optional=True
            )
        )
        self.addParameter(scene_parameter("threshold"))
        boxes = QgsProcessingParameterVectorDestination(
            "BOXES",
            tr("Boxes"),
            type=VECTOR_POLYGON,
        )
        boxes.setSupportsNonFileBasedOutput(False)
        self.addParameter(boxes)

    def processAlgorithm(self, parameters, context, feedback):
        heatmap = raster_path(self.parameterAsRasterLayer(parameters, "INPUT", context), "INPUT")
        threshold = self.parameterAsDouble(parameters, "THRESHOLD", context)
        scene_layer = self.parameterAsRasterLayer(parameters, "SCENE", context)
        scene = raster_path(scene_layer, "SCENE") if scene_layer is not None else None
        boxes = self.parameterAsOutputLayer(parameters, "BOXES", context)
        with engine_errors():
            from mscam.scene.api import redraw_boxes
            from mscam.scene.heatmap_writer import heatmap_tags

            count = redraw_boxes(heatmap, boxes, threshold, scene=scene)
            target_class = heatmap_tags(heatmap).get("target_class", "target")
        feedback.setProgress(100)
        feedback.pushInfo(f"{count} {target_class} boxes at threshold {threshold}")
        ResultStyler.attach(
            context, boxes, "boxes", tr(f"{target_class} boxes ≥ {threshold:.2f}"), near=heatmap
        )
        return {"BOXES": boxes}
