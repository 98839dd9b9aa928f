"""The input SAR scene as analysts look at it: its co-pol band in grey dB, stretched between its 2 %
and 98 % quantiles (docs/sar.md).

A dB band gets a plain grey stretch. A linear σ0, amplitude or DN band is shown in dB without a
new file: a grey colour ramp whose stops sit at evenly spaced dB values, written in the band's own
units (σ0 = 10^(dB/10); amplitude and DN ∝ 10^(dB/20)). Quantiles do not change under a monotone
conversion, so the stretch is the same 2–98 % either way.

Only a layer still drawn with QGIS's default renderer is restyled: a layer the analyst styled
keeps their style (`has_default_renderer`).
"""

from __future__ import annotations

import re

import numpy as np
from qgis.core import (
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandGrayRenderer,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtXml import QDomDocument

from .compat import INTERPOLATED_RAMP, STRETCH_TO_MIN_MAX

CO_POL = ("VV", "HH")
QUANTILES = (2.0, 98.0)
RAMP_STOPS = 17  # grey stops of a dB ramp over a linear, amplitude or DN band
SAMPLE_GRID, SAMPLE_SIDE = 8, 64  # 8 × 8 windows of 64 × 64 pixels: no whole-scene read


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+", text.lower()) if word]


def co_pol_band(layer, bands: str | None = None) -> int:
    """The 1-based band to show: the co-pol (VV or HH) band by the analyst's band roles
    ("VV,VH"), else by the bands' own labels, else band 1."""
    roles = [role.strip().upper() for role in re.split(r"[,\s]+", bands or "") if role.strip()]
    for index, role in enumerate(roles):
        if role in CO_POL and index < layer.bandCount():
            return index + 1
    provider = layer.dataProvider()
    for band in range(1, layer.bandCount() + 1):
        labels = _words(provider.generateBandName(band)) + _words(layer.bandName(band))
        labels += _words(_gdal_band_description(layer, band))
        if any(word.upper() in CO_POL for word in labels):
            return band
    return 1


def _gdal_band_description(layer, band: int) -> str:
    from osgeo import gdal

    dataset = gdal.OpenEx(layer.source(), gdal.OF_RASTER)
    return "" if dataset is None else dataset.GetRasterBand(band).GetDescription()


def band_sample(layer, band: int) -> tuple[np.ndarray, str, str]:
    """(finite non-nodata values from a grid of windows, GDAL data type name, band labels)."""
    from osgeo import gdal

    dataset = gdal.OpenEx(layer.source(), gdal.OF_RASTER)
    if dataset is None:
        return np.array([]), "", ""
    raster = dataset.GetRasterBand(band)
    width, height = dataset.RasterXSize, dataset.RasterYSize
    side_x, side_y = min(SAMPLE_SIDE, width), min(SAMPLE_SIDE, height)
    xs = np.linspace(0, width - side_x, SAMPLE_GRID).round().astype(int)
    ys = np.linspace(0, height - side_y, SAMPLE_GRID).round().astype(int)
    values = np.concatenate(
        [
            raster.ReadAsArray(int(x), int(y), side_x, side_y).ravel().astype(np.float64)
            for y in ys
            for x in xs
        ]
    )
    nodata = raster.GetNoDataValue()
    valid = np.isfinite(values)
    if nodata is not None and np.isfinite(nodata):
        valid &= values != nodata
    labels = " ".join(
        [
            raster.GetDescription(),
            raster.GetUnitType() or "",
            *(raster.GetMetadata() or {}).values(),
        ]
    )
    return values[valid], gdal.GetDataTypeName(raster.DataType), labels


def guess_units(values: np.ndarray, data_type: str, labels: str) -> str:
    """The band's units by the engine's rules (`mscam.radiometry.units.detect_units`) when the
    engine imports, else by its main ones: a unit word in the labels, integers are DN, mostly
    negative floats are dB, other floats linear σ0."""
    try:
        from mscam.radiometry.units import detect_units

        dtype = {"Byte": "uint8", "UInt16": "uint16", "Int16": "int16", "UInt32": "uint32"}
        dtype.update({"Int32": "int32", "Float64": "float64"})
        return detect_units(
            dtype.get(data_type, "float32"), description=labels, sample=values[:4096]
        )
    except Exception:  # no engine (torch missing), or it cannot tell: the main rules
        words = _words(labels)
        if "db" in words or "decibel" in words:
            return "dB"
        if {"amplitude", "amp", "magnitude"} & set(words):
            return "amplitude"
        if data_type.startswith(("Byte", "UInt", "Int")):
            return "DN"
        return "dB" if values.size and np.mean(values < 0) > 0.5 else "linear"


def _to_db(values: np.ndarray, units: str) -> np.ndarray:
    """dB of σ0 up to a constant (the DN calibration does not move a stretch)."""
    factor = 10.0 if units == "linear" else 20.0
    return factor * np.log10(np.maximum(values, 1e-12))


def _from_db(db: np.ndarray, units: str) -> np.ndarray:
    return 10.0 ** (db / (10.0 if units == "linear" else 20.0))


def db_grey_renderer(provider, band: int, units: str, low: float, high: float):
    """Grey between `low` and `high` (in the band's units) linear in dB."""
    if units == "dB":
        renderer = QgsSingleBandGrayRenderer(provider, band)
        enhancement = QgsContrastEnhancement(provider.dataType(band))
        enhancement.setContrastEnhancementAlgorithm(STRETCH_TO_MIN_MAX)
        enhancement.setMinimumValue(low)
        enhancement.setMaximumValue(high)
        renderer.setContrastEnhancement(enhancement)
        return renderer
    db_low, db_high = _to_db(np.array([low, high]), units)
    if db_high <= db_low:
        db_high = db_low + 1.0
    levels = np.linspace(db_low, db_high, RAMP_STOPS)
    stops = _from_db(levels, units)
    ramp = QgsColorRampShader(float(stops[0]), float(stops[-1]))
    ramp.setColorRampType(INTERPOLATED_RAMP)
    ramp.setClip(False)  # below the 2 % black, above the 98 % white
    greys = np.linspace(0, 255, RAMP_STOPS).round().astype(int)
    ramp.setColorRampItemList(
        [
            QgsColorRampShader.ColorRampItem(float(v), QColor(g, g, g), f"{d:.1f} dB")
            for v, g, d in zip(stops, greys, levels)
        ]
    )
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(provider, band, shader)
    renderer.setClassificationMin(float(stops[0]))
    renderer.setClassificationMax(float(stops[-1]))
    return renderer


def renderer_xml(layer) -> str:
    document = QDomDocument()
    element = document.createElement("style")
    document.appendChild(element)
    if layer.renderer() is not None:
        layer.renderer().writeXml(document, element)
    return document.toString()


def has_default_renderer(layer) -> bool:
    """Whether `layer` is still drawn as QGIS draws a new layer of its file (the analyst has not
    styled it): its renderer equals a fresh layer's."""
    fresh = QgsRasterLayer(layer.source(), layer.name(), layer.providerType())
    return fresh.isValid() and renderer_xml(fresh) == renderer_xml(layer)


def style_grey_db(layer, units: str | None = None, bands: str | None = None) -> str:
    """Draw `layer`'s co-pol band in grey dB stretched over its 2–98 % quantiles; `units` None or
    "detect" guesses them. The units used."""
    band = co_pol_band(layer, bands)
    values, data_type, labels = band_sample(layer, band)
    if not units or units == "detect":
        units = guess_units(values, data_type, labels)
    if units != "dB":
        values = values[values > 0]  # DN 0 is nodata; log of 0 is no grey level
    if values.size == 0:
        low, high = 0.0, 1.0
    else:
        low, high = (float(q) for q in np.percentile(values, QUANTILES))
    layer.setRenderer(db_grey_renderer(layer.dataProvider(), band, units, low, high))
    return units
