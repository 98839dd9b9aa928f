"""From a scene's bands to what the model card asks for: band selection, units, dB windows.

The band roles and units of the raster are detected by the documented rules of
`mscam.radiometry.units` (or given by the user), the bands the model needs are picked by role,
converted to the card's units and preprocessed as the card says. Nodata (declared, NaN, DN 0)
stays NaN, and `read` returns where every band the model uses has data. DN become σ0 = DN²/A²
with the product's own sigmaNought LUT for a Sentinel-1 SAFE product (`mscam.scene.safe`), else
with the constant A of `mscam.radiometry.units`.
"""

from __future__ import annotations

import logging

import numpy as np

from mscam.errors import InputError
from mscam.models import ModelCard
from mscam.models.select import match_roles
from mscam.radiometry.units import (
    DEFAULT_CALIBRATION,
    db_window,
    detect_band_roles,
    detect_units,
    labelled_band_roles,
    to_model_units,
)
from mscam.scene.safe import sentinel1_calibration

log = logging.getLogger(__name__)

SAMPLE_WINDOWS = 4  # unit detection reads a 4 × 4 grid of windows …
SAMPLE_SIDE = 64  # … of 64 × 64 pixels: enough values, and no whole-scene read


def sample_windows(reader) -> np.ndarray:
    """(bands, n, SAMPLE_SIDE) values from a grid of small windows spread over the raster.

    A decimated read of the whole raster would read every block of a file without overviews
    (seconds and hundreds of MB of cache on a full GRD); a few windows tell the units as well.
    """
    info = reader.info
    side_x, side_y = min(SAMPLE_SIDE, info.width), min(SAMPLE_SIDE, info.height)
    xs = np.linspace(0, info.width - side_x, SAMPLE_WINDOWS).round().astype(int)
    ys = np.linspace(0, info.height - side_y, SAMPLE_WINDOWS).round().astype(int)
    windows = [reader.read(int(x), int(y), side_x, side_y) for y in ys for x in xs]
    return np.concatenate([w.reshape(info.band_count, -1) for w in windows], axis=1)


class ScenePreprocessor:
    """Reads windows of a scene as the model's input: (channels, h, w) float32, NaN for nodata."""

    def __init__(
        self,
        reader,
        card: ModelCard,
        units: str | None = None,
        bands: tuple[str, ...] | None = None,
    ) -> None:
        info = reader.info
        self.reader = reader
        self.card = card
        self.roles = detect_band_roles(
            info.band_count, descriptions=info.descriptions, metadata=info.metadata, override=bands
        )
        wanted = [role.upper() for role in card.input_channels]
        # Generic card roles (CO: VV or HH, CROSS: VH or HV) resolve to the scene's own bands.
        matched = match_roles(wanted, self.roles)
        missing = [] if matched is not None else wanted
        if (
            missing
            and len(wanted) <= info.band_count
            and not bands
            # Bands labelled with other polarisations (HH/HV for a VV/VH model) are an error:
            # only unlabelled bands are taken by position; --bands maps them on purpose.
            and not any(
                labelled_band_roles(
                    info.band_count, descriptions=info.descriptions, metadata=info.metadata
                )
            )
        ):
            # Roles unknown (plain band1/band2…): take bands by position, and say so.
            self.band_indices = list(range(len(wanted)))
            log.warning(
                "band roles not found in %s; using bands %s as %s",
                reader.path,
                ", ".join(str(i + 1) for i in self.band_indices),
                ", ".join(wanted),
            )
        elif missing:
            raise InputError(
                f"the model needs bands {', '.join(wanted)} but {reader.path} has "
                f"{', '.join(self.roles)}; name the roles with --bands"
            )
        else:
            self.band_indices = matched
        sample = sample_windows(reader) if units is None else None
        if sample is not None and not np.isfinite(sample[self.band_indices]).any():
            log.warning("%s holds no valid pixel (all nodata)", reader.path)
            units, sample = card.input_units, None
        self.units = [
            detect_units(
                info.value_dtype,
                unit_type=info.unit_types[i] if i < len(info.unit_types) else "",
                description=info.descriptions[i] if i < len(info.descriptions) else "",
                metadata=info.metadata[i] if i < len(info.metadata) else None,
                name=str(reader.path.name),
                sample=None if sample is None else sample[i],
                override=units,
            )
            for i in self.band_indices
        ]
        self.nodata = [info.nodata[i] for i in self.band_indices]
        #: Per used band: the product's calibration LUT for DN (a SAFE product), else None.
        self.calibrations = [
            sentinel1_calibration(reader, i + 1) if unit == "DN" else None
            for i, unit in zip(self.band_indices, self.units)
        ]
        kind = card.preprocessing.get("type")
        if kind not in ("db_window", "none"):
            raise InputError(f"unknown preprocessing {kind!r} in the model card")
        if kind == "db_window" and card.input_units != "dB":
            raise InputError("db_window preprocessing needs a model whose input units are dB")
        self.windows = [tuple(w) for w in card.preprocessing.get("windows", [])]

    def read(self, x0: int, y0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """The model's input for a window, and a (height, width) bool map of valid pixels."""
        raw = self.reader.read(x0, y0, width, height, bands=[i + 1 for i in self.band_indices])
        channels = np.stack(
            [
                to_model_units(
                    raw[k],
                    self.units[k],
                    self.card.input_units,
                    calibration=self._calibration(k, x0, y0, width, height),
                    nodata=self.nodata[k],
                )
                for k in range(len(self.band_indices))
            ]
        )
        valid = ~np.isnan(channels).any(axis=0)
        if self.windows:
            channels = db_window(channels, self.windows)
        return channels, valid

    def _calibration(self, k: int, x0: int, y0: int, width: int, height: int):
        """A for the `k`-th used band over a window: the LUT's (on the grid being read, which is
        the input's or a working grid of the same footprint), or the constant."""
        lut = self.calibrations[k]
        if lut is None:
            return DEFAULT_CALIBRATION
        info = self.reader.info
        return lut.at(x0, y0, width, height, grid=(info.width, info.height))
