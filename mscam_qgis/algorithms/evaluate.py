"""`mscam:evaluate`: weakly supervised localisation metrics of a heatmap against true boxes."""

from __future__ import annotations

import json
import os
import tempfile

from qgis.core import (
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)

from ..compat import VECTOR_POLYGON
from .base import MscamAlgorithm, engine_errors, raster_path, tr, vector_path

HELP = """Scores a heatmap against ground-truth boxes with weakly supervised localisation \
metrics, and writes them as JSON.

<b>Heatmap</b>: a heatmap GeoTIFF from Explain scene.
<b>Ground truth</b>: polygons of the true targets (e.g. the truth GeoPackage of Synthesize scene), \
in the heatmap's CRS.
<b>Metrics</b>: the JSON file written."""


class EvaluateAlgorithm(MscamAlgorithm):
    NAME = "evaluate"
    DISPLAY = "Evaluate a heatmap against ground truth"
    GROUP = "Evaluate"
    HELP = HELP

    SHORT = "Scores a heatmap against ground-truth boxes with localisation metrics (JSON)"
    KEYWORDS = ("evaluate", "metrics", "ground truth", "heatmap", "localization")

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("HEATMAP", tr("Heatmap")))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "TRUTH",
                tr("Ground truth boxes"),
                types=[VECTOR_POLYGON],
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT",
                tr("Metrics"),
                fileFilter=tr("JSON files (*.json)"),
            )
        )

    def processAlgorithm(self, parameters, context, feedback):
        heatmap = raster_path(
            self.parameterAsRasterLayer(parameters, "HEATMAP", context), "HEATMAP"
        )
        truth, truth_layer = vector_path(
            self.parameterAsVectorLayer(parameters, "TRUTH", context), "TRUTH"
        )
        output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        with engine_errors():
            from mscam.eval.scene import evaluate_scene

            metrics = evaluate_scene(heatmap, truth, layer=truth_layer)
        write_json(output, metrics)
        feedback.setProgress(100)
        pxap = metrics.get("pxap")
        feedback.pushInfo(
            f"{metrics.get('truth_boxes')} truth boxes; pixel AP (PxAP) "
            + ("n/a" if pxap is None else f"{pxap:.3f}")
        )
        for criterion, best in metrics.get("best", {}).items():
            feedback.pushInfo(
                f"best F1 ({criterion}): {best['f1']:.3f} at threshold "
                f"{best['threshold']:.2f} ({best['predictions']} boxes)"
            )
        return {"OUTPUT": output}


def write_json(path: str, data) -> None:
    """Write `data` as indented JSON, atomically (temporary name beside `path`, then rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".mscam-", suffix=".json", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, default=str)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
