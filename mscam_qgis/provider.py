"""The Processing provider `mscam`: lists its algorithms whether or not torch is installed."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHMS
from .algorithms.base import ICON


class MscamProvider(QgsProcessingProvider):
    """Provider id `mscam`. The engine writes GeoTIFF heatmaps and GeoPackage boxes itself, so
    outputs are files of exactly those formats (no memory layers)."""

    def id(self) -> str:
        return "mscam"

    def name(self) -> str:
        return "MS-CAM"

    def longName(self) -> str:
        return "MS-CAM: explain CNN decisions on SAR imagery"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def loadAlgorithms(self) -> None:
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())

    def supportsNonFileBasedOutput(self) -> bool:
        return False

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return ["gpkg"]

    def defaultRasterFileExtension(self) -> str:
        return "tif"

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:
        return "gpkg"
