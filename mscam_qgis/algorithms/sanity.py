"""`mscam:sanity`: do the explanations depend on the model? Cascading weight randomisation."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)

from ..compat import NUMBER_INTEGER, VECTOR_POLYGON
from .base import (
    METHOD_NAMES,
    MscamAlgorithm,
    architecture_parameter,
    device_parameter,
    engine_errors,
    model_parameter,
    progress_reporter,
    raster_path,
    tr,
    vector_path,
)

#: The methods checked by default: all but Score-CAM (one forward per channel, per stage).
DEFAULT_METHODS = [m for m in METHOD_NAMES if m != "score-cam"]

HELP = """Checks whether the explanations depend on the model at all (Adebayo et al. 2018, \
"Sanity Checks for Saliency Maps").

The hottest tiles of the scene (highest target-class probability) are explained by each method \
with the trained model, then again while the model's blocks are re-initialised one at a time \
from the output down (trained → last layer → … → all weights random). Each stage's maps are \
compared with the trained model's by Spearman rank correlation. An explanation that stays the \
same on a randomised model shows the image, not the model.

<b>Input raster</b>: a SAR scene GDAL reads.
<b>Model card</b>: a model's card.json. Empty: the bundled model for the scene's bands.
<b>Methods</b>: the methods to check (Score-CAM is slow: one forward per channel and stage).
<b>Tiles</b>: how many of the hottest tiles.
<b>Truth boxes</b> (optional): target boxes; adds the pixel average precision (PxAP) per stage.
<b>Seed</b>: the randomisation seed.
<b>Output folder</b>: receives sanity.json (the numbers) and sanity.png (one row per method, \
the maps of the hottest tile at every stage)."""


class SanityAlgorithm(MscamAlgorithm):
    NAME = "sanity"
    DISPLAY = "Sanity check (cascading randomisation)"
    GROUP = "Evaluate"
    HELP = HELP

    SHORT = "Do the explanations depend on the model? Cascading randomisation of its layers"
    KEYWORDS = ("sanity", "randomisation", "model", "evaluate", "trust")

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", tr("Input SAR raster")))
        self.addParameter(model_parameter())
        self.addParameter(
            QgsProcessingParameterEnum(
                "METHODS",
                tr("Methods"),
                options=list(METHOD_NAMES),
                allowMultiple=True,
                defaultValue=DEFAULT_METHODS,
                usesStaticStrings=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "TILES",
                tr("Hottest tiles to check"),
                type=NUMBER_INTEGER,
                defaultValue=16,
                minValue=1,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "TRUTH", tr("Truth boxes (optional)"), types=[VECTOR_POLYGON], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SEED", tr("Randomisation seed"), type=NUMBER_INTEGER, defaultValue=0, minValue=0
            )
        )
        self.addParameter(device_parameter())
        self.addParameter(architecture_parameter())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", tr("Output folder")))
        self.addOutput(QgsProcessingOutputFile("JSON", tr("Sanity numbers (JSON)")))
        self.addOutput(QgsProcessingOutputFile("PNG", tr("Sanity figure (PNG)")))

    def processAlgorithm(self, parameters, context, feedback):
        scene = raster_path(self.parameterAsRasterLayer(parameters, "INPUT", context), "INPUT")
        truth_layer = self.parameterAsVectorLayer(parameters, "TRUTH", context)
        truth = None if truth_layer is None else vector_path(truth_layer, "TRUTH")[0]
        folder = self.parameterAsString(parameters, "OUTPUT", context)
        with engine_errors():
            from mscam.eval.sanity_scene import scene_sanity

            result = scene_sanity(
                scene,
                folder,
                model=self.parameterAsFile(parameters, "MODEL", context) or None,
                methods=self.parameterAsEnumStrings(parameters, "METHODS", context) or None,
                tiles=self.parameterAsInt(parameters, "TILES", context),
                truth=truth,
                seed=self.parameterAsInt(parameters, "SEED", context),
                device=self.parameterAsEnumString(parameters, "DEVICE", context),
                architecture_file=self.parameterAsFile(parameters, "ARCHITECTURE_FILE", context)
                or None,
                progress=progress_reporter(feedback),
                cancel=feedback.isCanceled,
            )
        for method, row in result.report["methods"].items():
            value = row["spearman"][-1]
            shown = "—" if value is None else f"{value:+.2f}"
            feedback.pushInfo(
                f"{method}: Spearman with the trained maps, all weights random: {shown}"
            )
        return {"OUTPUT": folder, "JSON": str(result.json_path), "PNG": str(result.png_path)}
