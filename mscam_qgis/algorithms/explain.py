"""`mscam:explain`: the scene pipeline (tiles → CNN → CAM → heatmap COG → boxes GeoPackage)."""

from __future__ import annotations

import time
from pathlib import Path

from qgis.core import (
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..compat import (
    ADVANCED_PARAMETER,
    NUMBER_DOUBLE,
    NUMBER_INTEGER,
    VECTOR_POLYGON,
)
from ..styling import ResultStyler
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
)
from .batch import scheduler_parameter

HELP = """Explains where a CNN sees the target class (e.g. ships) in a SAR scene, and why.

The scene is cut into overlapping tiles; the CNN scores every tile and the chosen CAM method \
(MS-CAM by default) explains the tiles whose target-class probability reaches the minimum score. \
The tile maps are blended without seams into one heatmap on the input's own pixel grid (values \
0–1, a Cloud Optimized GeoTIFF), and the regions above the threshold become boxes (GeoPackage) \
with their class, score, peak, mean heat and area.

<b>Input raster</b>: a SAR scene GDAL reads (GeoTIFF, VRT, SAFE…), in dB, linear σ0, amplitude \
or DN; bands are matched to the model's channels (VV, VH) by their names.
<b>Model card</b>: a model's card.json (with its weights beside it). Empty: the bundled default \
model.
<b>Method</b>: ms-cam, self-matching, grad-cam, grad-cam++, xgrad-cam, layer-cam, hires-cam, \
score-cam.
<b>Target class</b>: the class to explain. Empty: the model's first target class.
<b>Tile size</b>: tile side in pixels. 0: the model's chip size.
<b>Overlap</b>: fraction of a tile shared with its neighbour (0–0.95).
<b>Threshold</b>: heat a pixel needs to be part of a box.
<b>Minimum score</b>: target-class probability a tile needs to be explained; colder tiles stay 0.
<b>Device</b>: auto (CUDA when available), cpu or cuda.
<b>Pixel spacing</b> (advanced): the scene's pixel spacing in metres. 0: read from its \
georeferencing. A scene outside the spacing the model was trained at is worked on at the model's \
spacing and the heatmap mapped back onto the scene's grid.
<b>Architecture file</b> (advanced): a Python file defining the card's architecture, for models \
outside the engine's registry. It runs that file's code: use only files you trust.
<b>Dask scheduler</b> (advanced): the address of a Dask cluster (tcp://host:8786) whose workers \
explain the scene's tiles while QGIS assembles the heatmap; the scene and the model must be at the \
same path on every worker. Empty: this computer.

To draw boxes again at another threshold without rerunning the CNN, use Localize boxes (or the \
threshold slider of the MS-CAM dock)."""


class ExplainAlgorithm(MscamAlgorithm):
    NAME = "explain"
    DISPLAY = "Explain scene (heatmap and boxes)"
    GROUP = "Explain"
    HELP = HELP

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", tr("Input SAR raster")))
        self.addParameter(model_parameter())
        self.addParameter(
            QgsProcessingParameterEnum(
                "METHOD",
                tr("Method"),
                options=list(METHOD_NAMES),
                defaultValue="ms-cam",
                usesStaticStrings=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "TARGET_CLASS",
                tr("Target class (empty: the model's default)"),
                defaultValue="",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "TILE_SIZE",
                tr("Tile size in pixels (0: the model's chip size)"),
                type=NUMBER_INTEGER,
                defaultValue=0,
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "OVERLAP",
                tr("Tile overlap"),
                type=NUMBER_DOUBLE,
                defaultValue=0.25,
                minValue=0.0,
                maxValue=0.9,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "THRESHOLD",
                tr("Box threshold (heat)"),
                type=NUMBER_DOUBLE,
                defaultValue=0.5,
                minValue=0.01,
                maxValue=1.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "MIN_SCORE",
                tr("Minimum tile score (target-class probability)"),
                type=NUMBER_DOUBLE,
                defaultValue=0.5,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.addParameter(device_parameter())
        self.addParameter(architecture_parameter())
        spacing = QgsProcessingParameterNumber(
            "PIXEL_SPACING",
            tr("Pixel spacing (m) (0: from the scene)"),
            type=QgsProcessingParameterNumber.Double,
            defaultValue=0.0,
            minValue=0.0,
            optional=True,
        )
        spacing.setFlags(spacing.flags() | ADVANCED_PARAMETER)
        self.addParameter(spacing)
        self.addParameter(scheduler_parameter())
        heatmap = QgsProcessingParameterRasterDestination("HEATMAP", tr("Heatmap"))
        heatmap.setSupportsNonFileBasedOutput(False)
        self.addParameter(heatmap)
        boxes = QgsProcessingParameterVectorDestination(
            "BOXES",
            tr("Boxes"),
            type=VECTOR_POLYGON,
        )
        boxes.setSupportsNonFileBasedOutput(False)
        self.addParameter(boxes)

    def processAlgorithm(self, parameters, context, feedback):
        scene = raster_path(self.parameterAsRasterLayer(parameters, "INPUT", context), "INPUT")
        method = self.parameterAsEnumString(parameters, "METHOD", context)
        heatmap = self.parameterAsOutputLayer(parameters, "HEATMAP", context)
        boxes = self.parameterAsOutputLayer(parameters, "BOXES", context)
        with engine_errors():
            from mscam.scene.pipeline import SceneSettings, explain_scene

            settings = SceneSettings(
                model=self.parameterAsFile(parameters, "MODEL", context) or None,
                method=method,
                target_class=self.parameterAsString(parameters, "TARGET_CLASS", context).strip()
                or None,
                tile=self.parameterAsInt(parameters, "TILE_SIZE", context) or None,
                overlap=self.parameterAsDouble(parameters, "OVERLAP", context),
                threshold=self.parameterAsDouble(parameters, "THRESHOLD", context),
                min_score=self.parameterAsDouble(parameters, "MIN_SCORE", context),
                device=self.parameterAsEnumString(parameters, "DEVICE", context),
                architecture_file=self.parameterAsFile(parameters, "ARCHITECTURE_FILE", context)
                or None,
                pixel_spacing=self.parameterAsDouble(parameters, "PIXEL_SPACING", context) or None,
            )
            scheduler = self.parameterAsString(parameters, "SCHEDULER", context).strip()
            if scheduler:  # the windows on a Dask cluster's workers; the mosaic here
                from mscam.scene.distributed import dask_client, explain_scene_distributed

                with dask_client(scheduler) as client:
                    result = explain_scene_distributed(
                        scene,
                        heatmap,
                        boxes,
                        settings,
                        client=client,
                        progress=progress_reporter(feedback),
                        cancel=feedback.isCanceled,
                    )
            else:
                result = explain_scene(
                    scene,
                    heatmap,
                    boxes,
                    settings,
                    progress=progress_reporter(feedback),
                    cancel=feedback.isCanceled,
                )
        feedback.pushInfo(
            f"{result.tiles} tiles ({result.hot_tiles} hot, {result.skipped_tiles} skipped as "
            f"nodata) in {result.seconds:.1f} s on {result.device}; {result.n_boxes} "
            f"{result.target_class} boxes at threshold {settings.threshold}"
        )
        group = f"MS-CAM {method} · {Path(scene).stem} · {time.strftime('%H:%M:%S')}"
        ResultStyler.attach(
            context, heatmap, "heatmap", tr(f"{result.target_class} heatmap"), group
        )
        ResultStyler.attach(
            context,
            boxes,
            "boxes",
            tr(f"{result.target_class} boxes ≥ {settings.threshold:.2f}"),
            group,
        )
        return {"HEATMAP": heatmap, "BOXES": boxes}
