"""`mscam:explain`: the scene pipeline (tiles → CNN → CAM → heatmap COG → boxes GeoPackage)."""

from __future__ import annotations

import time
from pathlib import Path

from qgis.core import (
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from ..compat import VECTOR_POLYGON
from ..styling import ResultStyler
from .base import (
    METHOD_NAMES,
    SETTINGS,
    UNIT_NAMES,
    MscamAlgorithm,
    engine_errors,
    progress_reporter,
    raster_path,
    scene_parameter,
    scene_values,
    tr,
)
from .batch import scheduler_parameter

HELP = f"""Explains where a CNN sees the target class (e.g. ships) in a SAR scene, and why.

The scene is cut into overlapping tiles; the CNN scores every tile and the chosen CAM method \
(MS-CAM by default) explains the tiles whose target-class probability reaches the minimum score. \
The tile maps are blended without seams into one heatmap on the input's own pixel grid (values \
0–1, a Cloud Optimized GeoTIFF), and the regions above the threshold become boxes (GeoPackage) \
with their class, score, peak, mean heat and area.

<b>Input raster</b>: a SAR scene GDAL reads (GeoTIFF, VRT, SAFE…), in dB, linear σ0, amplitude \
or DN; bands are matched to the model's channels (VV, VH) by their names.
<b>Model card</b>: a model's card.json (with its weights beside it). Empty: the bundled default \
model.
<b>Method</b>: {", ".join(METHOD_NAMES)}.
<b>Target class</b>: the class to explain. Empty: the model's first target class.
<b>Tile size</b>: tile side in pixels, {SETTINGS["tile"].range_text()}. 0: the model's chip size.
<b>Overlap</b>: fraction of a tile shared with its neighbour, in {SETTINGS["overlap"].range_text()}.
<b>Threshold</b>: heat a pixel needs to be part of a box, in {SETTINGS["threshold"].range_text()}.
<b>Minimum score</b>: target-class probability a tile needs to be explained, in \
{SETTINGS["min_score"].range_text()}; colder tiles stay 0.
<b>Device</b>: auto (CUDA when available), cpu or cuda.
<b>Pixel spacing</b> (advanced): the scene's pixel spacing in metres. 0: read from its \
georeferencing. A scene outside the spacing the model was trained at is worked on at the model's \
spacing and the heatmap mapped back onto the scene's grid.
<b>Input units</b> (advanced): {", ".join(UNIT_NAMES)}, or detect (from the band metadata and \
the values).
<b>Band roles</b> (advanced): the polarisation of each band in order, e.g. VV,VH. Empty: detect \
(from the band names and metadata). Set these two when the run says it cannot tell.
<b>Boxes on a lattice of point targets</b> (advanced): drop (default) the boxes whose compact \
bright target stands on a regular lattice of such targets, a wind farm's turbines; keep keeps \
them (a ship moored among turbines would be dropped too).
<b>Architecture file</b> (advanced): a Python file defining the card's architecture, for models \
outside the engine's registry. It runs that file's code: use only files you trust.
<b>Dask scheduler</b> (advanced): the address of a Dask cluster (tcp://host:8786) whose workers \
explain the scene's tiles while QGIS assembles the heatmap; the scene and the model must be at the \
same path on every worker. Empty: this computer.

To draw boxes again at another threshold without rerunning the CNN, use Localize boxes (or the \
threshold slider of the MS-CAM dock)."""


#: The scene options of Explain scene, in the order of its parameters (ids from `SETTINGS`).
SCENE_OPTIONS = (
    "model",
    "method",
    "target_class",
    "tile",
    "overlap",
    "threshold",
    "min_score",
    "device",
    "architecture_file",
    "pixel_spacing",
    "units",
    "bands",
    "lattice",
)


class ExplainAlgorithm(MscamAlgorithm):
    NAME = "explain"
    DISPLAY = "Explain scene (heatmap and boxes)"
    GROUP = "Explain"
    HELP = HELP

    SHORT = "Where a CNN sees the target class (ships) in a SAR scene: heatmap and boxes"
    KEYWORDS = ("explain", "heatmap", "class activation map", "grad-cam", "ship detection", "boxes")

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", tr("Input SAR raster")))
        for name in SCENE_OPTIONS:
            self.addParameter(scene_parameter(name))
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
        heatmap = self.parameterAsOutputLayer(parameters, "HEATMAP", context)
        boxes = self.parameterAsOutputLayer(parameters, "BOXES", context)
        with engine_errors():
            from mscam.scene.pipeline import SceneSettings, explain_scene

            settings = SceneSettings(**scene_values(self, parameters, context, SCENE_OPTIONS))
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
        group = f"MS-CAM {settings.method} · {Path(scene).stem} · {time.strftime('%H:%M:%S')}"
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
