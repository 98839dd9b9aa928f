"""QGIS enum values whose names moved between QGIS 3.22 and 3.40 (and on to QGIS 4), resolved once.

QGIS 3.26–3.36 moved many enums from their classes into ``Qgis`` (``Qgis.LabelPlacement``,
``Qgis.ProcessingSourceType``, …). 3.40 still accepts most old names but warns, and some APIs
(``QgsPalLayerSettings.placement``) no longer accept them at all; QGIS 4 drops them. 3.22 knows only
the old names. So each value here is looked up under its new name first and under the old, fully
scoped name (which Qt 6 also requires) where the new one does not exist yet. Qt's own enums need no
entry: their fully scoped names (``Qt.AlignmentFlag.AlignCenter``) work on Qt 5 and Qt 6 alike.
"""

from __future__ import annotations

import inspect
from types import ModuleType

import qgis.core

__all__ = [
    "ADVANCED_PARAMETER",
    "BUFFER_SIZE_MILLIMETERS",
    "CUMULATIVE_CUT",
    "FILE_BEHAVIOR",
    "INTERPOLATED_RAMP",
    "LABEL_ABOVE_RIGHT",
    "LABEL_OVER_POINT",
    "NUMBER_DOUBLE",
    "NUMBER_INTEGER",
    "RASTER_LAYER_FILTER",
    "STRETCH_TO_MIN_MAX",
    "TASK_CAN_CANCEL",
    "VECTOR_POLYGON",
    "WRITER_SUCCESS",
    "first_available",
    "load_algorithm_results",
]


def first_available(*paths: str, namespace: ModuleType = qgis.core) -> object:
    """The value at the first dotted path (in ``namespace``) that this QGIS has.

    ``qgis.gui`` values are looked up by the GUI modules themselves (``namespace=qgis.gui``), so
    that Processing algorithms, which also run in ``qgis_process``, never import the GUI library.
    """
    for path in paths:
        head, *rest = path.split(".")
        value = getattr(namespace, head, None)
        for part in rest:
            value = getattr(value, part, None)
        if value is not None:
            return value
    raise AttributeError(f"this QGIS has none of {', '.join(paths)}")


# Labels (styling.py).
LABEL_OVER_POINT = first_available(
    "Qgis.LabelPlacement.OverPoint", "QgsPalLayerSettings.Placement.OverPoint"
)
LABEL_ABOVE_RIGHT = first_available(
    "Qgis.LabelQuadrantPosition.AboveRight",
    "QgsPalLayerSettings.QuadrantPosition.QuadrantAboveRight",
)
BUFFER_SIZE_MILLIMETERS = first_available(
    "Qgis.RenderUnit.Millimeters", "QgsUnitTypes.RenderUnit.RenderMillimeters"
)

# Raster rendering (styling.py).
INTERPOLATED_RAMP = first_available(
    "Qgis.ShaderInterpolationMethod.Linear", "QgsColorRampShader.Type.Interpolated"
)
STRETCH_TO_MIN_MAX = first_available(
    "QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum"
)
CUMULATIVE_CUT = first_available(
    "Qgis.RasterRangeLimit.CumulativeCut", "QgsRasterMinMaxOrigin.Limits.CumulativeCut"
)
WRITER_SUCCESS = first_available(
    "Qgis.RasterFileWriterResult.Success", "QgsRasterFileWriter.WriterError.NoError"
)

# Processing parameters (algorithms/).
VECTOR_POLYGON = first_available(
    "Qgis.ProcessingSourceType.VectorPolygon", "QgsProcessing.SourceType.TypeVectorPolygon"
)
NUMBER_INTEGER = first_available(
    "Qgis.ProcessingNumberParameterType.Integer", "QgsProcessingParameterNumber.Type.Integer"
)
NUMBER_DOUBLE = first_available(
    "Qgis.ProcessingNumberParameterType.Double", "QgsProcessingParameterNumber.Type.Double"
)
FILE_BEHAVIOR = first_available(
    "Qgis.ProcessingFileParameterBehavior.File", "QgsProcessingParameterFile.Behavior.File"
)
ADVANCED_PARAMETER = first_available(
    "Qgis.ProcessingParameterFlag.Advanced", "QgsProcessingParameterDefinition.Flag.FlagAdvanced"
)

# Tasks and layer pickers (about.py, dock.py).
TASK_CAN_CANCEL = first_available("Qgis.TaskFlag.CanCancel", "QgsTask.Flag.CanCancel")
RASTER_LAYER_FILTER = first_available(
    "Qgis.LayerFilter.RasterLayer", "QgsMapLayerProxyModel.Filter.RasterLayer"
)


def load_algorithm_results(algorithm, context, feedback, parameters: dict) -> bool:
    """Load a finished algorithm's output layers as the Processing toolbox does (post-processors
    included). ``handleAlgorithmResults`` lost its ``showResults`` argument in 3.40; on 3.22 it
    must be False, or the results viewer opens."""
    from processing.gui.Postprocessing import handleAlgorithmResults

    options = {"parameters": parameters}
    if "showResults" in inspect.signature(handleAlgorithmResults).parameters:
        options["showResults"] = False
    return handleAlgorithmResults(algorithm, context, feedback, **options)
