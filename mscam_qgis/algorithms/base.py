"""What every MS-CAM Processing algorithm shares: identity, help, the engine guard, progress, and
the scene options' parameters.

The scene options' parameters (ranges, defaults, choices, labels, the advanced flag) are built from
the engine's settings table, `mscam.scene.settings.SETTINGS`, as the command line's flags are: so
the front ends cannot drift. That module imports neither torch nor numpy; the rest of the engine is
imported only inside `processAlgorithm` (torch is heavy and may be missing), so the plugin loads
and lists its algorithms without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mscam.scene.settings import DEVICES, METHOD_NAMES, SETTINGS, UNIT_NAMES, split_bands
from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..compat import ADVANCED_PARAMETER, FILE_BEHAVIOR, NUMBER_DOUBLE, NUMBER_INTEGER
from ..dependencies import MissingDependency, require_engine

__all__ = ["DEVICES", "METHOD_NAMES", "PROFILE_NAMES", "SETTINGS", "UNIT_NAMES"]

#: The synthetic scene profiles (`mscam.sar.synth.PROFILES`).
PROFILE_NAMES = ("calm", "rough", "coastal", "empty", "dense")
ICON = Path(__file__).resolve().parent.parent / "icon.png"
#: The plugin's manual: the README's QGIS section, at metadata.txt's `repository`.
HELP_URL = "https://example.org/mscam#qgis"
#: Tags every algorithm shares (the toolbox's search finds them).
TAGS = ("sar", "radar", "mscam", "cam", "explainable ai", "xai", "cnn")
#: Settings given as files, and the file filter or extension each takes.
_FILES = {
    "model": {"fileFilter": "Model cards (*.json);;All files (*)"},
    "architecture_file": {"extension": "py"},
}


def scene_parameter(name: str) -> QgsProcessingParameterDefinition:
    """The Processing parameter of the scene option `SETTINGS[name]`: its id, label, default,
    range or choices and advanced flag from the table. Where the engine's default is "none"
    (decided at run time), the parameter shows the table's `unset` (0 tile size, "detect")."""
    setting = SETTINGS[name]
    label = tr(setting.label)
    default = setting.unset if setting.default is None else setting.default
    if name in _FILES:
        options = {k: tr(v) if k == "fileFilter" else v for k, v in _FILES[name].items()}
        parameter = QgsProcessingParameterFile(
            setting.parameter, label, behavior=FILE_BEHAVIOR, optional=True, **options
        )
    elif setting.choices:
        choices = list(setting.choices)
        if setting.unset is not None and setting.unset not in choices:
            choices.insert(0, setting.unset)
        parameter = QgsProcessingParameterEnum(
            setting.parameter,
            label,
            options=choices,
            defaultValue=default,
            usesStaticStrings=True,
        )
    elif setting.kind is str:
        parameter = QgsProcessingParameterString(
            setting.parameter, label, defaultValue=default or "", optional=True
        )
    else:
        unset = setting.unset is not None
        bounds = {"minValue": setting.unset if unset else setting.lowest}
        if setting.maximum is not None:
            bounds["maxValue"] = setting.maximum
        parameter = QgsProcessingParameterNumber(
            setting.parameter,
            label,
            type=NUMBER_INTEGER if setting.kind is int else NUMBER_DOUBLE,
            defaultValue=default,
            optional=unset and setting.kind is float,
            **bounds,
        )
    if setting.advanced:
        parameter.setFlags(parameter.flags() | ADVANCED_PARAMETER)
    return parameter


def scene_values(algorithm, parameters, context, names) -> dict:
    """The `SceneSettings` keywords of the scene options `names`, read from the parameters
    `scene_parameter` made: the table's `unset` (0, "", "detect") read as None."""
    values = {}
    for name in names:
        setting = SETTINGS[name]
        key = setting.parameter
        if name in _FILES:
            value = algorithm.parameterAsFile(parameters, key, context)
        elif setting.choices:
            value = algorithm.parameterAsEnumString(parameters, key, context)
        elif setting.kind is str:
            value = algorithm.parameterAsString(parameters, key, context).strip()
        elif setting.kind is int:
            value = algorithm.parameterAsInt(parameters, key, context)
        else:
            value = algorithm.parameterAsDouble(parameters, key, context)
        if value == setting.unset or value == "":
            value = None
        values[name] = split_bands(value) if name == "bands" else value
    return values


def model_parameter() -> QgsProcessingParameterFile:
    """MODEL: a model card; empty picks the bundled model for the scene's polarisations."""
    return scene_parameter("model")


def device_parameter() -> QgsProcessingParameterEnum:
    """DEVICE: auto, cpu or cuda."""
    return scene_parameter("device")


def architecture_parameter() -> QgsProcessingParameterFile:
    """ARCHITECTURE_FILE (advanced): a Python file defining the card's architecture."""
    return scene_parameter("architecture_file")


def tr(text: str) -> str:
    return QCoreApplication.translate("mscam", text)


class MscamAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms: subclasses set NAME, DISPLAY, GROUP, HELP, SHORT (the
    one-line description) and KEYWORDS (their toolbox search tags beyond the provider's)."""

    NAME = ""
    DISPLAY = ""
    GROUP = "Explain"
    HELP = ""
    SHORT = ""
    KEYWORDS: tuple[str, ...] = ()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return tr(self.DISPLAY)

    def group(self) -> str:
        return tr(self.GROUP)

    def groupId(self) -> str:
        return self.GROUP.lower()

    def shortDescription(self) -> str:
        return tr(self.SHORT)

    def tags(self) -> list[str]:
        return [*TAGS, *self.KEYWORDS]

    def shortHelpString(self) -> str:
        return tr(self.HELP) + f'<p><a href="{self.helpUrl()}">{tr("MS-CAM manual")}</a></p>'

    def helpUrl(self) -> str:
        """The README's QGIS section on the repository (metadata.txt's `repository`)."""
        return HELP_URL

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
