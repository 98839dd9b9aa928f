"""A minimal but structurally real Sentinel-1 IW GRDH SAFE product, written from scratch.

`write_safe` lays out what GDAL's SENTINEL1 driver (frmts/safe) reads, as ESA's products do:

    S1A_IW_GRDH_1SDV_<start>_<stop>_<orbit>_<take>_<id>.SAFE/
        manifest.safe                                XFDU: content units, metadata, data objects
        annotation/s1a-iw-grd-vv-….xml               adsHeader, imageInformation, geolocationGrid
        annotation/calibration/calibration-s1a-….xml sigmaNought/betaNought/gamma/dn LUTs
        measurement/s1a-iw-grd-vv-….tiff             UInt16 DN, stripped, uncompressed, GCPs

The product name says 1SDV (dual-pol VV+VH) but only the VV measurement is there, as in a
product whose VH file was dropped to save space. The geolocation grid is the driver's GCPs
(longitude/latitude on WGS84): an ascending pass heading ``HEADING_DEG`` from north, looking
right, so lines run north along the track and samples run east-south-east across it, with
the first line at the south, unlike a north-up image. DN follow the GRD convention
σ0 = DN²/A², DN 0 nodata, with A (sigmaNought) rising across the swath from near to far range
as ``calibration_a`` says and the calibration LUTs sample it (A is linear in the pixel, so the
LUT's bilinear interpolation gives it back exactly).
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np
from mscam.radiometry.units import db_to_linear, sigma0_to_dn

PRODUCT = "S1A_IW_GRDH_1SDV_20240101T000000_20240101T000025_051000_062A00_ABCD.SAFE"
STEM = "s1a-iw-grd-vv-20240101t000000-20240101t000025-051000-062a00-001"
ID_STEM = "s1aiwgrdvv20240101t000000"  # ESA's IDs: the file name without separators, shortened
CALIBRATION = (560.0, 665.0)  #: A at near and far range: GRD sigmaNought spans ~1.5 dB
LUT_PIXEL_STEP, LUT_LINE_STEP = 40, 100  #: calibration vectors' pixel and line spacing
HEADING_DEG = -12.0  #: ascending track, ~12° west of north
SPACING_M = 10.0  #: IW GRDH pixel spacing, range and azimuth
ORIGIN_LONLAT = (7.0, 54.0)  #: first line, first sample: the German Bight
GRID = (6, 5)  #: geolocation grid points along a line (samples) and down a column (lines)
START, STOP = "2024-01-01T00:00:00.000000", "2024-01-01T00:00:25.000000"

#: WGS84: the ellipsoid the annotation names, so ground distances come out as SPACING_M.
_A, _F = 6378137.0, 1 / 298.257223563


def pixel_to_lonlat(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of pixel positions (GDAL convention) of the written product."""
    heading = math.radians(HEADING_DEG)
    along = np.array([math.sin(heading), math.cos(heading)])  # east, north of one line step
    across = np.array([math.cos(heading), -math.sin(heading)])  # right of the track
    cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
    east = SPACING_M * (cols * across[0] + rows * along[0])
    north = SPACING_M * (cols * across[1] + rows * along[1])
    lon0, lat0 = ORIGIN_LONLAT
    # Radii of curvature at the origin: a local tangent plane, fine over a few kilometres.
    e2, phi = _F * (2 - _F), math.radians(lat0)
    w = 1 - e2 * math.sin(phi) ** 2
    meridional, prime_vertical = _A * (1 - e2) / w**1.5, _A / math.sqrt(w)
    lat = lat0 + np.degrees(north / meridional)
    lon = lon0 + np.degrees(east / (prime_vertical * math.cos(phi)))
    return lon, lat


def calibration_a(cols: np.ndarray, width: int) -> np.ndarray:
    """A (sigmaNought) of pixel columns ``cols`` of a product ``width`` samples wide."""
    near, far = CALIBRATION
    return near + (far - near) * np.asarray(cols, np.float64) / max(width - 1, 1)


def dn_from_db(sigma0_db: np.ndarray) -> np.ndarray:
    """UInt16 DN of σ0 in dB (NaN → DN 0, nodata) with the product's A across the swath."""
    width = sigma0_db.shape[1]
    return sigma0_to_dn(db_to_linear(sigma0_db), calibration_a(np.arange(width), width))


def _grid_points(width: int, height: int) -> list[tuple[int, int, float, float]]:
    samples = np.linspace(0, width - 1, GRID[0]).round().astype(int)
    lines = np.linspace(0, height - 1, GRID[1]).round().astype(int)
    points = []
    for line in lines:
        for sample in samples:
            # GDAL takes the grid's pixel and line as its own pixel coordinates, as written.
            lon, lat = pixel_to_lonlat(np.array(sample), np.array(line))
            points.append((int(sample), int(line), float(lon), float(lat)))
    return points


def _ads_header() -> str:
    return f"""  <adsHeader>
    <missionId>S1A</missionId>
    <productType>GRD</productType>
    <polarisation>VV</polarisation>
    <mode>IW</mode>
    <swath>IW</swath>
    <startTime>{START}</startTime>
    <stopTime>{STOP}</stopTime>
    <absoluteOrbitNumber>51000</absoluteOrbitNumber>
    <missionDataTakeId>404992</missionDataTakeId>
    <imageNumber>001</imageNumber>
  </adsHeader>"""


def annotation_xml(width: int, height: int) -> str:
    """The product annotation: header, image information, ellipsoid and geolocation grid."""
    points = "\n".join(
        f"""      <geolocationGridPoint>
        <azimuthTime>{START}</azimuthTime>
        <slantRangeTime>5.3e-03</slantRangeTime>
        <line>{line}</line>
        <pixel>{sample}</pixel>
        <latitude>{lat:.9f}</latitude>
        <longitude>{lon:.9f}</longitude>
        <height>0.0</height>
        <incidenceAngle>{30.0 + 15.0 * sample / max(width - 1, 1):.4f}</incidenceAngle>
        <elevationAngle>27.0</elevationAngle>
      </geolocationGridPoint>"""
        for sample, line, lon, lat in _grid_points(width, height)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<product>
{_ads_header()}
  <imageAnnotation>
    <imageInformation>
      <productFirstLineUtcTime>{START}</productFirstLineUtcTime>
      <productLastLineUtcTime>{STOP}</productLastLineUtcTime>
      <ascendingNodeTime>2023-12-31T23:40:00.000000</ascendingNodeTime>
      <anchorTime>{START}</anchorTime>
      <productComposition>Assembled</productComposition>
      <sliceNumber>1</sliceNumber>
      <rangePixelSpacing>{SPACING_M:.6e}</rangePixelSpacing>
      <azimuthPixelSpacing>{SPACING_M:.6e}</azimuthPixelSpacing>
      <numberOfSamples>{width}</numberOfSamples>
      <numberOfLines>{height}</numberOfLines>
      <outputPixels>16 bit Unsigned Integer</outputPixels>
    </imageInformation>
    <processingInformation>
      <ellipsoidName>WGS84</ellipsoidName>
      <ellipsoidSemiMajorAxis>6.378137e+06</ellipsoidSemiMajorAxis>
      <ellipsoidSemiMinorAxis>6.356752314245179e+06</ellipsoidSemiMinorAxis>
    </processingInformation>
  </imageAnnotation>
  <geolocationGrid>
    <geolocationGridPointList count="{GRID[0] * GRID[1]}">
{points}
    </geolocationGridPointList>
  </geolocationGrid>
</product>
"""


def calibration_xml(width: int, height: int) -> str:
    """Calibration LUTs: a vector every LUT_LINE_STEP lines and the last line, each with A at
    every LUT_PIXEL_STEP pixels and the last pixel (β0 and γ the same here: only σ0 is read)."""
    pixels = [*range(0, width - 1, LUT_PIXEL_STEP), width - 1]
    lines = [*range(0, height - 1, LUT_LINE_STEP), height - 1]
    lut = " ".join(f"{a:.6e}" for a in calibration_a(np.array(pixels), width))
    n = len(pixels)
    vectors = "\n".join(
        f"""    <calibrationVector>
      <azimuthTime>{START}</azimuthTime>
      <line>{line}</line>
      <pixel count="{n}">{" ".join(map(str, pixels))}</pixel>
      <sigmaNought count="{n}">{lut}</sigmaNought>
      <betaNought count="{n}">{lut}</betaNought>
      <gamma count="{n}">{lut}</gamma>
      <dn count="{n}">{lut}</dn>
    </calibrationVector>"""
        for line in lines
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<calibration>
{_ads_header()}
  <calibrationInformation>
    <absoluteCalibrationConstant>1.0</absoluteCalibrationConstant>
  </calibrationInformation>
  <calibrationVectorList count="{len(lines)}">
{vectors}
  </calibrationVectorList>
</calibration>
"""


def manifest_xml(files: dict[str, str]) -> str:
    """The XFDU manifest: the measurement data unit pointing at its product and calibration
    annotations (metadataSection → dataObjectSection → files), platform and acquisition."""
    product_id, calibration_id = f"product{ID_STEM}", f"calibration{ID_STEM}"
    data_objects = "\n".join(
        f"""    <dataObject ID="{object_id}" repID="{rep_id}">
      <byteStream mimeType="{mime}" size="{size}">
        <fileLocation locatorType="URL" href="./{href}"/>
        <checksum checksumName="MD5">00000000000000000000000000000000</checksum>
      </byteStream>
    </dataObject>"""
        for object_id, rep_id, mime, href, size in (
            (product_id, "s1Level1ProductSchema", "text/xml", files["annotation"], 0),
            (calibration_id, "s1Level1CalibrationSchema", "text/xml", files["calibration"], 0),
            (ID_STEM, "s1Level1MeasurementSchema", "application/octet-stream",
             files["measurement"], 0),
        )
    )  # fmt: skip
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"
    xmlns:safe="http://www.esa.int/safe/sentinel-1.0"
    xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1"
    xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1"
    version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/standard/iwdp">
  <informationPackageMap>
    <xfdu:contentUnit unitType="SAFE Archive Information Package" ID="packageUnit"
        dmdID="acquisitionPeriod platform" pdiID="processing">
      <xfdu:contentUnit unitType="Metadata Unit" repID="s1Level1ProductSchema" dmdID="{product_id}">
        <dataObjectPointer dataObjectID="{product_id}"/>
      </xfdu:contentUnit>
      <xfdu:contentUnit unitType="Metadata Unit" repID="s1Level1CalibrationSchema"
          dmdID="{calibration_id}">
        <dataObjectPointer dataObjectID="{calibration_id}"/>
      </xfdu:contentUnit>
      <xfdu:contentUnit unitType="Measurement Data Unit" repID="s1Level1MeasurementSchema"
          dmdID="{product_id} {calibration_id}">
        <dataObjectPointer dataObjectID="{ID_STEM}"/>
      </xfdu:contentUnit>
    </xfdu:contentUnit>
  </informationPackageMap>
  <metadataSection>
    <metadataObject ID="processing" classification="PROVENANCE" category="PDI">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Processing">
        <xmlData>
          <safe:processing name="SLC Post Processing">
            <safe:facility name="mscam tests"/>
          </safe:processing>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description">
        <xmlData>
          <safe:platform>
            <safe:nssdcIdentifier>2014-016A</safe:nssdcIdentifier>
            <safe:familyName>SENTINEL-1</safe:familyName>
            <safe:number>A</safe:number>
            <safe:instrument>
              <safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
              <safe:extension>
                <s1sarl1:instrumentMode>
                  <s1sarl1:mode>IW</s1sarl1:mode>
                  <s1sarl1:swath>IW1</s1sarl1:swath>
                  <s1sarl1:swath>IW2</s1sarl1:swath>
                  <s1sarl1:swath>IW3</s1sarl1:swath>
                </s1sarl1:instrumentMode>
              </safe:extension>
            </safe:instrument>
          </safe:platform>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period">
        <xmlData>
          <safe:acquisitionPeriod>
            <safe:startTime>{START}</safe:startTime>
            <safe:stopTime>{STOP}</safe:stopTime>
          </safe:acquisitionPeriod>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Orbit Reference">
        <xmlData>
          <safe:orbitReference>
            <safe:orbitNumber type="start">51000</safe:orbitNumber>
            <safe:extension>
              <s1:orbitProperties><s1:pass>ASCENDING</s1:pass></s1:orbitProperties>
            </safe:extension>
          </safe:orbitReference>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="{product_id}" classification="DESCRIPTION" category="DMD">
      <dataObjectPointer dataObjectID="{product_id}"/>
    </metadataObject>
    <metadataObject ID="{calibration_id}" classification="DESCRIPTION" category="DMD">
      <dataObjectPointer dataObjectID="{calibration_id}"/>
    </metadataObject>
  </metadataSection>
  <dataObjectSection>
{data_objects}
  </dataObjectSection>
</xfdu:XFDU>
"""


def _write_measurement(path: Path, dn: np.ndarray) -> None:
    """The GRD measurement GeoTIFF as ESA writes it: one UInt16 band in strips, no compression,
    the geolocation grid as GCPs (the driver takes its GCPs from the annotation, not from here)."""
    from osgeo import gdal, osr

    height, width = dn.shape
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), width, height, 1, gdal.GDT_UInt16, ["INTERLEAVE=BAND"]
    )
    gcps = [gdal.GCP(lon, lat, 0.0, s, ln) for s, ln, lon, lat in _grid_points(width, height)]
    dataset.SetGCPs(gcps, srs.ExportToWkt())
    dataset.GetRasterBand(1).WriteArray(dn)
    dataset.FlushCache()
    dataset = None


def write_safe(folder: Path, vv_db: np.ndarray) -> Path:
    """Write a VV-only IW GRDH product of σ0 ``vv_db`` (dB, NaN nodata) under ``folder``;
    returns its ``manifest.safe``."""
    height, width = vv_db.shape
    product = Path(folder) / PRODUCT
    files = {
        "annotation": f"annotation/{STEM}.xml",
        "calibration": f"annotation/calibration/calibration-{STEM}.xml",
        "measurement": f"measurement/{STEM}.tiff",
    }
    for relative in files.values():
        (product / relative).parent.mkdir(parents=True, exist_ok=True)
    (product / files["annotation"]).write_text(annotation_xml(width, height))
    (product / files["calibration"]).write_text(calibration_xml(width, height))
    _write_measurement(product / files["measurement"], dn_from_db(vv_db))
    (product / "manifest.safe").write_text(manifest_xml(files))
    return product / "manifest.safe"


def zip_safe(manifest: Path, archive: Path) -> str:
    """Zip the product folder of ``manifest`` as ESA distributes it (the .SAFE folder at the
    archive's root); returns GDAL's path of the manifest inside: ``/vsizip/….zip/….SAFE/…``."""
    product = Path(manifest).parent
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for root, _, names in os.walk(product):
            for name in sorted(names):
                path = Path(root) / name
                out.write(path, Path(product.name) / path.relative_to(product))
    return f"/vsizip/{Path(archive).absolute()}/{product.name}/manifest.safe"
