"""Box layers through OGR: write polygon features to a GeoPackage atomically, read them back.

A record is a dict: its geometry is ``"bbox"`` = (xmin, ymin, xmax, ymax) or ``"ring"`` =
[(x, y), …] (a polygon's exterior ring, for footprints that are not axis-aligned, e.g. boxes of a
rotated radar-geometry scene); every other key becomes a typed attribute field.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from mscam.errors import InputError, OutputError
from mscam.scene.raster import PathLike, atomic_output, crs_to_wkt, using_gdal

GEOMETRY_KEYS = ("bbox", "ring")


def _field_type(name: str, values: list[Any]) -> tuple[int, int]:
    """OGR (type, subtype) that holds every non-null value of one attribute."""
    from osgeo import ogr

    present = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in present) and present:
        return ogr.OFTInteger, ogr.OFSTBoolean
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in present):
        return ogr.OFTInteger64, ogr.OFSTNone
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present):
        return ogr.OFTReal, ogr.OFSTNone
    if all(isinstance(v, str) for v in present):
        return ogr.OFTString, ogr.OFSTNone
    kinds = sorted({type(v).__name__ for v in present})
    raise InputError(f"attribute {name!r} mixes or has unsupported types: {', '.join(kinds)}")


def _ring(record: Mapping[str, Any]) -> list[tuple[float, float]]:
    if "ring" in record:
        ring = [(float(x), float(y)) for x, y in record["ring"]]
        if len(ring) < 3:
            raise InputError("a ring needs at least three points")
    elif "bbox" in record:
        xmin, ymin, xmax, ymax = (float(v) for v in record["bbox"])
        if xmax < xmin or ymax < ymin:
            raise InputError(f"box {record['bbox']} has max < min")
        ring = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax)]
    else:
        raise InputError("every box record needs a 'bbox' or a 'ring'")
    return [*ring, ring[0]] if ring[0] != ring[-1] else ring


def write_boxes(
    path: PathLike,
    records: Iterable[Mapping[str, Any]],
    crs_wkt: str | int | None,
    layer: str = "boxes",
) -> None:
    """Write ``records`` as polygon features of a GeoPackage layer in ``crs_wkt``, atomically.

    ``crs_wkt`` is WKT, ``"EPSG:n"`` or an EPSG code; None writes a layer without a CRS.

    Attribute types come from the values (bool, integer, real, text; None is null). An empty
    ``records`` still writes a valid, empty layer, so "no detection" is a file, not an error.
    """
    rows = [dict(r) for r in records]
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in GEOMETRY_KEYS and k not in names)
    rings = [_ring(row) for row in rows]
    wkt = crs_to_wkt(crs_wkt)
    with atomic_output(path) as temporary, using_gdal():
        from osgeo import ogr, osr

        types = {name: _field_type(name, [row.get(name) for row in rows]) for name in names}
        try:
            source = ogr.GetDriverByName("GPKG").CreateDataSource(temporary)
            srs = None
            if wkt:
                srs = osr.SpatialReference()
                srs.ImportFromWkt(wkt)
            out = source.CreateLayer(layer, srs, ogr.wkbPolygon)
            for name in names:
                definition = ogr.FieldDefn(name, types[name][0])
                definition.SetSubType(types[name][1])
                out.CreateField(definition)
            out.StartTransaction()
            for row, ring in zip(rows, rings):
                feature = ogr.Feature(out.GetLayerDefn())
                for name in names:
                    value = row.get(name)
                    if value is None:
                        feature.SetFieldNull(name)
                    elif types[name][0] == ogr.OFTString:
                        feature.SetField(name, value)
                    elif types[name][0] == ogr.OFTReal:
                        feature.SetField(name, float(value))
                    else:
                        feature.SetField(name, int(value))
                geometry = ogr.Geometry(ogr.wkbLinearRing)
                for x, y in ring:
                    geometry.AddPoint_2D(x, y)
                polygon = ogr.Geometry(ogr.wkbPolygon)
                polygon.AddGeometry(geometry)
                feature.SetGeometry(polygon)
                out.CreateFeature(feature)
            out.CommitTransaction()
            source = None  # close before the rename so the file is complete
        except RuntimeError as exc:
            source = None
            raise OutputError(f"cannot write {path}: {exc}") from None


def _open_layer(path: PathLike, layer: str | None) -> tuple[Any, Any]:
    from osgeo import ogr

    try:
        source = ogr.Open(str(path), 0)
    except RuntimeError as exc:
        raise InputError(f"cannot open vector {path}: {exc}") from None
    if source is None or source.GetLayerCount() == 0:
        raise InputError(f"vector {path} has no layer")
    found = source.GetLayerByName(layer) if layer else source.GetLayer(0)
    if found is None:
        raise InputError(f"vector {path} has no layer {layer!r}")
    return source, found


def read_boxes(path: PathLike, layer: str | None = None) -> list[dict[str, Any]]:
    """Features of ``layer`` (default: the first) as dicts: attributes, ``"bbox"`` = (xmin,
    ymin, xmax, ymax) in the layer CRS, and ``"ring"`` = the exterior ring's points."""
    with using_gdal():
        from osgeo import ogr

        source, found = _open_layer(path, layer)
        definition = found.GetLayerDefn()
        fields = [definition.GetFieldDefn(i) for i in range(definition.GetFieldCount())]
        rows: list[dict[str, Any]] = []
        for feature in found:
            row: dict[str, Any] = {}
            for field in fields:
                name = field.GetName()
                if not feature.IsFieldSetAndNotNull(name):
                    row[name] = None
                elif field.GetSubType() == ogr.OFSTBoolean:
                    row[name] = bool(feature.GetField(name))
                else:
                    row[name] = feature.GetField(name)
            geometry = feature.GetGeometryRef()
            if geometry is not None and not geometry.IsEmpty():
                xmin, xmax, ymin, ymax = geometry.GetEnvelope()
                row["bbox"] = (xmin, ymin, xmax, ymax)
                ring = geometry.GetGeometryRef(0) if geometry.GetGeometryCount() else geometry
                row["ring"] = [(p[0], p[1]) for p in ring.GetPoints() or []]
            else:
                row["bbox"], row["ring"] = None, []
            rows.append(row)
        del source  # the layer is only valid while its data source lives: close after reading
    return rows


def read_crs(path: PathLike, layer: str | None = None) -> str:
    """The WKT of a vector layer's CRS ("" when it has none)."""
    with using_gdal():
        source, found = _open_layer(path, layer)
        srs = found.GetSpatialRef()
        # A GeoPackage layer written without a CRS reads back as GPKG's "Undefined ... SRS".
        undefined = srs is None or (srs.GetName() or "").startswith("Undefined")
        wkt = "" if undefined else srs.ExportToWkt()
        del source
    return wkt
