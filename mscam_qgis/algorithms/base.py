"""What every MS-CAM Processing algorithm shares: identity, help, the engine guard, progress.

The engine is imported only inside `processAlgorithm` (torch is heavy and may be missing): so the
choices of the enum parameters are spelled here, and a test checks them against the engine's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..compat import ADVANCED_PARAMETER, FILE_BEHAVIOR
from ..dependencies import MissingDependency, require_engine

#: The engine's method names (`mscam.METHODS`), in the order of the METHOD enum.
METHOD_NAMES = (
    "ms-cam",
    "self-matching",
    "grad-cam",
    "grad-cam++",
    "xgrad-cam",
    "layer-cam",
    "hires-cam",
    "score-cam",
)
#: The synthetic scene profiles (`mscam.sar.synth.PROFILES`).
PROFILE_NAMES = ("calm", "rough", "coastal", "empty", "dense")
DEVICES = ("auto", "cpu", "cuda")
ICON = Path(__file__).resolve().parent.parent / "icon.png"


def model_parameter() -> QgsProcessingParameterFile:
    """MODEL: a model card; empty picks the bundled model for the scene's polarisations."""
    return QgsProcessingParameterFile(
        "MODEL",
        tr("Model card (empty: the bundled model for the scene's polarisations)"),
        behavior=FILE_BEHAVIOR,
        optional=True,
        fileFilter=tr("Model cards (*.json);;All files (*)"),
    )


def device_parameter() -> QgsProcessingParameterEnum:
    """DEVICE: auto, cpu or cuda."""
    return QgsProcessingParameterEnum(
        "DEVICE", tr("Device"), options=list(DEVICES), defaultValue="auto", usesStaticStrings=True
    )


def architecture_parameter() -> QgsProcessingParameterFile:
    """ARCHITECTURE_FILE (advanced): a Python file defining the card's architecture."""
    architecture = QgsProcessingParameterFile(
        "ARCHITECTURE_FILE",
        tr("Architecture file (runs its Python code)"),
        behavior=FILE_BEHAVIOR,
        extension="py",
        optional=True,
    )
    architecture.setFlags(architecture.flags() | ADVANCED_PARAMETER)
    return architecture


def tr(text: str) -> str:
    return QCoreApplication.translate("mscam", text)


class MscamAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms: subclasses set NAME, DISPLAY, GROUP and HELP."""

    NAME = ""
    DISPLAY = ""
    GROUP = "Explain"
    HELP = ""

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return tr(self.DISPLAY)

    def group(self) -> str:
        return tr(self.GROUP)

    def groupId(self) -> str:
        return self.GROUP.lower()

    def shortHelpString(self) -> str:
        return tr(self.HELP)

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def createInstance(self) -> MscamAlgorithm:
        return type(self)()


@contextmanager
def engine_errors() -> Iterator[None]:
    """Check the engine imports, and turn its one-line errors into `QgsProcessingException`s."""
    try:
        require_engine()
    except MissingDependency as exc:
        raise QgsProcessingException(str(exc)) from None
    from mscam.errors import Cancelled, MscamError

    try:
        yield
    except Cancelled:
        raise QgsProcessingException(tr("Cancelled: nothing was written.")) from None
    except MscamError as exc:
        raise QgsProcessingException(str(exc)) from None


def progress_reporter(feedback: QgsProcessingFeedback) -> Callable[[float, str], None]:
    """The engine's `progress(fraction, message)` callable, reporting to `feedback`."""

    def report(fraction: float, message: str) -> None:
        feedback.setProgress(100.0 * fraction)
        feedback.setProgressText(message)

    return report


def raster_path(layer, name: str) -> str:
    """The file GDAL reads for a raster layer parameter; the engine reads files, not layers."""
    if layer is None:
        raise QgsProcessingException(tr(f"{name}: no raster layer given"))
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            tr(f"{name}: {layer.name()} is not a file-based (GDAL) raster; save it as GeoTIFF")
        )
    return layer.source()


def vector_path(layer, name: str) -> tuple[str, str | None]:
    """(file, layer name or None) of an OGR vector layer parameter."""
    from qgis.core import QgsProviderRegistry

    if layer is None:
        raise QgsProcessingException(tr(f"{name}: no vector layer given"))
    if layer.providerType() != "ogr":
        raise QgsProcessingException(
            tr(f"{name}: {layer.name()} is not a file-based (OGR) layer; save it as GeoPackage")
        )
    parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
    return parts["path"], parts.get("layerName") or None
