"""`mscam:batch`: many scenes at once, on a Dask cluster or in this QGIS (`mscam batch`)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
)

from ..compat import ADVANCED_PARAMETER, first_available
from .base import (
    MscamAlgorithm,
    engine_errors,
    progress_reporter,
    raster_path,
    scene_parameter,
    scene_values,
    tr,
)

RASTER_SOURCE = first_available(
    "Qgis.ProcessingSourceType.Raster", "QgsProcessing.SourceType.TypeRaster"
)

HELP = """Explains every scene of a list, as Explain scene does for one, and gathers the results.

For each scene the output folder gets <i>NAME</i>.heatmap.tif and <i>NAME</i>.boxes.gpkg; then \
boxes.gpkg holds the boxes of every scene (with a <i>scene</i> field) and summary.csv one line \
per scene (tiles, hot tiles, boxes, seconds, status, error). Run it again on the same folder and \
the scenes already done are skipped; a scene that fails is reported in summary.csv and the others \
go on.

<b>Input rasters</b>: SAR scenes GDAL reads (GeoTIFF, VRT, SAFE…); two scenes may not share a \
file name.
<b>Model card</b>, <b>Method</b>, <b>Tile overlap</b>, <b>Threshold</b>, <b>Minimum score</b>, \
<b>Device</b>, <b>Input units</b>, <b>Band roles</b> and <b>Boxes on a lattice of point \
targets</b> (advanced): as in Explain scene.
<b>Dask scheduler</b> (advanced): the address of a Dask cluster (tcp://host:8786, started with \
<i>dask scheduler</i> and <i>dask worker</i>) whose workers do the work; the scenes, the model and \
the output folder must then be at the same path on every worker (a shared file system). Empty: \
the scenes run one after another inside QGIS."""


def scheduler_parameter() -> QgsProcessingParameterString:
    """The advanced SCHEDULER parameter (Explain scene has it too)."""
    scheduler = QgsProcessingParameterString(
        "SCHEDULER",
        tr("Dask scheduler address (empty: this computer)"),
        defaultValue="",
        optional=True,
    )
    scheduler.setFlags(scheduler.flags() | ADVANCED_PARAMETER)
    return scheduler


#: The scene options of Explain many scenes, in the order of its parameters (`SETTINGS` names).
SCENE_OPTIONS = (
    "model",
    "method",
    "overlap",
    "threshold",
    "min_score",
    "device",
    "architecture_file",
    "units",
    "bands",
    "lattice",
)


class BatchAlgorithm(MscamAlgorithm):
    NAME = "batch"
    DISPLAY = "Explain many scenes (batch, Dask)"
    GROUP = "Explain"
    HELP = HELP

    SHORT = "Explain many SAR scenes (here or on a Dask cluster): heatmaps, boxes, a summary"
    KEYWORDS = ("batch", "explain", "heatmap", "boxes", "dask", "ship detection")

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(
            QgsProcessingParameterMultipleLayers("INPUTS", tr("Input SAR rasters"), RASTER_SOURCE)
        )
        for name in SCENE_OPTIONS:
            self.addParameter(scene_parameter(name))
        self.addParameter(scheduler_parameter())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", tr("Output folder")))
        self.addOutput(QgsProcessingOutputVectorLayer("BOXES", tr("Boxes of every scene")))
        self.addOutput(QgsProcessingOutputFile("SUMMARY", tr("Summary (CSV)")))

    def processAlgorithm(self, parameters, context, feedback):
        layers = self.parameterAsLayerList(parameters, "INPUTS", context)
        scenes = [raster_path(layer, "INPUTS") for layer in layers]
        folder = self.parameterAsString(parameters, "OUTPUT", context)
        scheduler = self.parameterAsString(parameters, "SCHEDULER", context).strip() or None
        with engine_errors():
            from mscam.scene.batch import run_batch
            from mscam.scene.distributed import dask_client
            from mscam.scene.pipeline import SceneSettings

            settings = SceneSettings(**scene_values(self, parameters, context, SCENE_OPTIONS))
            # QGIS's executable is no Python interpreter: local workers are threads of QGIS.
            with dask_client(scheduler, processes=scheduler is not None) as client:
                rows = run_batch(
                    scenes,
                    folder,
                    settings,
                    client=client,
                    progress=progress_reporter(feedback),
                    cancel=feedback.isCanceled,
                )
        for row in rows:
            name = Path(row.scene).name
            if row.status == "failed":
                feedback.reportError(f"{name}: failed: {row.error}")
            else:
                feedback.pushInfo(f"{name}: {row.status}, {row.boxes} boxes")
        return {
            "OUTPUT": folder,
            "BOXES": str(Path(folder) / "boxes.gpkg"),
            "SUMMARY": str(Path(folder) / "summary.csv"),
        }
