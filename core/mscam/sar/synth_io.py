"""Write a synthetic scene the way users' data arrives: a GeoTIFF and a truth GeoPackage.

Two units (float32 σ0 in dB, or UInt16 DN with DN 0 as nodata like a GRD) and two geometries
(north-up map geometry with a geotransform, or a radar-geometry variant rotated ~12° and
located only by a grid of GCPs, like a SAFE product). The truth holds one polygon per ship in
the scene CRS, with its pixel box so both kinds of scores can be computed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mscam.errors import InputError
from mscam.radiometry.units import DEFAULT_CALIBRATION, db_to_linear, sigma0_to_dn
from mscam.sar.synth import SyntheticScene
from mscam.scene.raster import GCP, PathLike, crs_to_wkt, write_geotiff
from mscam.scene.vector import write_boxes

#: Track angle of the radar-geometry variant: Sentinel-1 ascending passes head ~12° west of north.
GCP_ROTATION_DEG = -12.0
GCP_GRID = 11  #: GCPs per side (a GRD carries ~210 in a 21 × 10 grid)


def gcp_affine(scene: SyntheticScene) -> np.ndarray:
    """3×3 pixel → UTM affine of the rotated radar-geometry variant (same centre as the map
    geometry): azimuth lines run along the track, rotated from north by ``GCP_ROTATION_DEG``."""
    h, w = scene.shape
    gt = scene.geotransform
    centre_x, centre_y = gt[0] + gt[1] * w / 2, gt[3] + gt[5] * h / 2
    a = math.radians(GCP_ROTATION_DEG)
    # Columns (range) go east and rows (azimuth) go south before rotating by the track angle.
    east = (gt[1] * math.cos(a), -gt[1] * math.sin(a))
    south = (gt[5] * math.sin(a), gt[5] * math.cos(a))
    return np.array(
        [
            [east[0], south[0], centre_x - east[0] * w / 2 - south[0] * h / 2],
            [east[1], south[1], centre_y - east[1] * w / 2 - south[1] * h / 2],
            [0.0, 0.0, 1.0],
        ]
    )


def _to_crs(xs: np.ndarray, ys: np.ndarray, from_epsg: int, to_epsg: int) -> tuple[np.ndarray, ...]:
    if from_epsg == to_epsg:
        return xs, ys
    from osgeo import osr

    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromEPSG(from_epsg)
    target.ImportFromEPSG(to_epsg)
    for srs in (source, target):  # x = easting/longitude, y = northing/latitude
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    points = osr.CoordinateTransformation(source, target).TransformPoints(
        np.stack([xs.ravel(), ys.ravel()], axis=1).tolist()
    )
    out = np.asarray(points, dtype=np.float64)
    return out[:, 0].reshape(xs.shape), out[:, 1].reshape(ys.shape)


def _pixel_to_map(
    scene: SyntheticScene, cols: np.ndarray, rows: np.ndarray, geometry: str, gcp_epsg: int
) -> tuple[np.ndarray, ...]:
    if geometry == "map":
        gt = scene.geotransform
        return gt[0] + gt[1] * cols + gt[2] * rows, gt[3] + gt[4] * cols + gt[5] * rows
    m = gcp_affine(scene)
    xs, ys = m[0, 0] * cols + m[0, 1] * rows + m[0, 2], m[1, 0] * cols + m[1, 1] * rows + m[1, 2]
    return _to_crs(xs, ys, scene.epsg, gcp_epsg)


def write_scene(
    scene: SyntheticScene,
    path: PathLike,
    truth_path: PathLike | None = None,
    units: str = "dB",
    geometry: str = "map",
    *,
    gcp_epsg: int = 4326,
    calibration: float = DEFAULT_CALIBRATION,
) -> None:
    """Write ``scene`` to ``path`` (GeoTIFF, bands VV and VH, or HH and HV) and its ships to
    ``truth_path``.

    ``units``: ``"dB"`` (float32, NaN nodata) or ``"DN"`` (UInt16, σ0 = DN²/A² with
    A = ``calibration``, DN 0 nodata). ``geometry``: ``"map"`` (geotransform in the scene's UTM
    CRS) or ``"gcp"`` (no geotransform; a grid of GCPs in EPSG ``gcp_epsg``, 4326 like a SAFE
    product, or the scene's UTM EPSG). The truth (layer ``ships``) is in the raster's CRS.
    """
    if units not in ("dB", "DN"):
        raise InputError(f"units must be dB or DN, got {units!r}")
    if geometry not in ("map", "gcp"):
        raise InputError(f"geometry must be map or gcp, got {geometry!r}")
    h, w = scene.shape
    if units == "dB":
        data, nodata = np.stack([scene.vv_db, scene.vh_db]).astype(np.float32), float("nan")
        band_units = ["dB", "dB"]
    else:
        data = np.stack(
            [sigma0_to_dn(db_to_linear(b), calibration) for b in (scene.vv_db, scene.vh_db)]
        )
        nodata, band_units = 0.0, ["DN", "DN"]
    metadata = {
        "MSCAM_SYNTHETIC": "YES", "PROFILE": scene.profile, "SEED": str(scene.seed),
        "UNITS": units, "MISSION": "synthetic Sentinel-1 IW GRDH-like",
        "POLARISATION": "+".join(scene.band_names), "PIXEL_SPACING_M": str(scene.pixel_spacing),
    }  # fmt: skip
    if units == "DN":
        metadata["CALIBRATION_CONSTANT"] = str(calibration)
    georef: dict[str, Any]
    if geometry == "map":
        crs_epsg = scene.epsg
        georef = {"geotransform": scene.geotransform, "projection": scene.epsg}
    else:
        crs_epsg = gcp_epsg
        grid_c = np.linspace(0, w, GCP_GRID)
        grid_r = np.linspace(0, h, GCP_GRID)
        cols, rows = np.meshgrid(grid_c, grid_r)
        xs, ys = _pixel_to_map(scene, cols, rows, geometry, gcp_epsg)
        gcps = [
            GCP(float(c), float(r), float(x), float(y))
            for c, r, x, y in zip(cols.ravel(), rows.ravel(), xs.ravel(), ys.ravel())
        ]
        georef = {"gcps": gcps, "gcp_projection": gcp_epsg}
    records = []
    for ship in scene.ships:
        x0, y0, x1, y1 = ship["box"]
        # Corners of the inclusive pixel box: [x0, x1 + 1) × [y0, y1 + 1) in pixel coordinates.
        cols = np.array([x0, x1 + 1, x1 + 1, x0], np.float64)
        rows = np.array([y0, y0, y1 + 1, y1 + 1], np.float64)
        xs, ys = _pixel_to_map(scene, cols, rows, geometry, gcp_epsg)
        records.append({
            "ring": list(zip(xs.tolist(), ys.tolist())), "class": ship["class"],
            "ship_id": int(ship["id"]), "length_m": float(ship["length_m"]),
            "beam_m": float(ship["beam_m"]), "heading_deg": float(ship["heading_deg"]),
            "peak_db": float(ship["peak_db"]), "px_x0": int(x0), "px_y0": int(y0),
            "px_x1": int(x1), "px_y1": int(y1),
        })  # fmt: skip
    crs_wkt = crs_to_wkt(crs_epsg)
    if truth_path is not None:
        write_boxes(truth_path, records, crs_wkt, layer="ships")
    write_geotiff(
        path,
        data,
        nodata=nodata,
        band_descriptions=list(scene.band_names),
        band_units=band_units,
        band_metadata=[{"POLARISATION": name} for name in scene.band_names],
        metadata=metadata,
        **georef,
    )
