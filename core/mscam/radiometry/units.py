"""SAR radiometric units, band roles and the fixed-dB-window preprocessing (pure numpy).

Users bring DN (Sentinel-1 GRD, σ0 = DN²/A²), linear σ0, amplitude (|s|, σ0 = amplitude²) or σ0
in dB. Everything converts through linear σ0; dB is ``10·log10(max(σ0, 1e-5))`` so that zeros and
noise-floor values do not become -inf. Nodata (DN 0, NaN, a declared nodata value) becomes NaN
and stays NaN through every conversion and through :func:`db_window`.

Detection rules (each overridable by the caller, see :func:`detect_units` and
:func:`detect_band_roles`) are documented on the functions so a user can predict them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from mscam.errors import InputError

UNITS: tuple[str, ...] = ("DN", "linear", "amplitude", "dB")
ROLES: tuple[str, ...] = ("VV", "VH", "HH", "HV")
#: Sentinel-1 GRD calibration constants lie in 560–665; 600 is a representative default.
DEFAULT_CALIBRATION = 600.0
#: Floor applied before taking the logarithm: -50 dB, far below any SAR noise floor.
SIGMA0_FLOOR = 1e-5
#: Fixed windows per band role (sar.md): co-pol for ship work, cross-pol is ~6–10 dB darker.
DB_WINDOWS: dict[str, tuple[float, float]] = {
    "VV": (-30.0, 10.0),
    "HH": (-30.0, 10.0),
    "VH": (-35.0, 0.0),
    "HV": (-35.0, 0.0),
}

_UNIT_WORDS: dict[str, str] = {
    "db": "dB",
    "decibel": "dB",
    "decibels": "dB",
    "amplitude": "amplitude",
    "amp": "amplitude",
    "magnitude": "amplitude",
    "linear": "linear",
    "intensity": "linear",
    "power": "linear",
    "sigma0": "linear",
    "sigmanought": "linear",
    "dn": "DN",
}
_POLARISATION_KEYS = ("polarisation", "polarization", "pol", "band_role", "role")


def check_units(units: str) -> str:
    """The canonical spelling of ``units`` (case-insensitive); :class:`InputError` if unknown."""
    for name in UNITS:
        if units.lower() == name.lower():
            return name
    raise InputError(f"unknown SAR units {units!r}; expected one of {', '.join(UNITS)}")


def dn_to_sigma0(
    dn: np.ndarray, calibration: float | np.ndarray = DEFAULT_CALIBRATION
) -> np.ndarray:
    """σ0 = DN² / A² (Sentinel-1 GRD calibration). DN 0 is nodata → NaN. A is a constant or, from
    a product's LUT (`mscam.radiometry.calibration`), an array that broadcasts against ``dn``.

    >>> float(dn_to_sigma0(np.array([600.0]))[0])
    1.0
    """
    dn = np.asarray(dn, dtype=np.float64)
    sigma0 = (dn / calibration) ** 2
    return np.where(dn == 0, np.nan, sigma0)


def sigma0_to_dn(
    sigma0: np.ndarray, calibration: float | np.ndarray = DEFAULT_CALIBRATION
) -> np.ndarray:
    """DN = A·sqrt(σ0), rounded into 1…65535 (0 is reserved for nodata, and NaN maps to it)."""
    sigma0 = np.asarray(sigma0, dtype=np.float64)
    dn = np.rint(calibration * np.sqrt(np.clip(np.nan_to_num(sigma0, nan=0.0), 0.0, None)))
    dn = np.clip(dn, 1, 65535)
    return np.where(np.isnan(sigma0), 0, dn).astype(np.uint16)


def linear_to_db(sigma0: np.ndarray) -> np.ndarray:
    """dB = 10·log10(max(σ0, 1e-5)); NaN stays NaN.

    >>> linear_to_db(np.array([1.0, 0.1, 0.0])).tolist()
    [0.0, -10.0, -50.0]
    """
    sigma0 = np.asarray(sigma0, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return 10.0 * np.log10(np.maximum(sigma0, SIGMA0_FLOOR))


def db_to_linear(db: np.ndarray) -> np.ndarray:
    """σ0 = 10^(dB/10); NaN stays NaN."""
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def amplitude_to_sigma0(amplitude: np.ndarray) -> np.ndarray:
    """σ0 = amplitude² (amplitude is the calibrated magnitude |s|)."""
    return np.asarray(amplitude, dtype=np.float64) ** 2


def sigma0_to_amplitude(sigma0: np.ndarray) -> np.ndarray:
    """amplitude = sqrt(σ0); negative σ0 (possible after noise subtraction) clips to 0."""
    return np.sqrt(np.clip(np.asarray(sigma0, dtype=np.float64), 0.0, None))


def to_model_units(
    array: np.ndarray,
    from_units: str,
    to_units: str,
    *,
    calibration: float | np.ndarray = DEFAULT_CALIBRATION,
    nodata: float | None = None,
) -> np.ndarray:
    """Convert ``array`` between any two of :data:`UNITS`, returning float32 with NaN for nodata.

    Nodata is NaN, ±inf, the declared ``nodata`` value, and DN 0 when ``from_units`` is DN.

    >>> to_model_units(np.array([0, 600, 6000], np.uint16), "DN", "dB").tolist()
    [nan, 0.0, 20.0]
    """
    source, target = check_units(from_units), check_units(to_units)
    values = np.asarray(array, dtype=np.float64)
    missing = ~np.isfinite(values)  # ±inf is no radiometry either: nodata, never inf heat
    if nodata is not None and not np.isnan(nodata):
        missing |= values == nodata
    if source == target == "dB":
        # The usual case (a dB product, a dB model): only the floor applies, no round trip
        # through σ0 (two transcendental passes, most of the preprocessing time).
        out = np.maximum(values, linear_to_db(SIGMA0_FLOOR))
        out[missing] = np.nan
        return out.astype(np.float32)
    if source == "DN":
        sigma0 = dn_to_sigma0(values, calibration)
    elif source == "amplitude":
        sigma0 = amplitude_to_sigma0(values)
    elif source == "dB":
        sigma0 = db_to_linear(values)
    else:
        sigma0 = values
    if target == "DN":
        # DN has no NaN: keep nodata as NaN in the float result, the writer maps it to 0.
        out = np.where(np.isnan(sigma0), np.nan, calibration * sigma0_to_amplitude(sigma0))
    elif target == "amplitude":
        out = sigma0_to_amplitude(sigma0)
    elif target == "dB":
        out = linear_to_db(sigma0)
    else:
        out = sigma0
    out = np.where(missing | np.isnan(sigma0), np.nan, out)
    return out.astype(np.float32)


def _words(*texts: str) -> list[str]:
    words: list[str] = []
    for text in texts:
        words.extend(w for w in re.split(r"[^a-z0-9]+", text.lower()) if w)
    return words


def detect_units(
    dtype: np.dtype | str,
    *,
    description: str = "",
    unit_type: str = "",
    metadata: Mapping[str, str] | None = None,
    name: str = "",
    sample: np.ndarray | None = None,
    override: str | None = None,
) -> str:
    """Guess the units of one SAR band; ``override`` (the caller's word) always wins.

    The rule, first match wins:

    1. ``override`` if given.
    2. An explicit word in, first label that has one wins: the band's unit type (GDAL's
       ``GetUnitType``), a metadata item whose key contains "unit", the band description, the
       file ``name`` (split on non-alphanumerics): ``dB``/``decibel`` → dB; ``amplitude``/
       ``amp``/``magnitude`` → amplitude; ``linear``/``intensity``/``power``/``sigma0`` →
       linear; ``DN`` → DN. A dB word wins within one label, so ``Sigma0_VV_dB`` and xView3's
       ``VV_dB.tif`` are dB.
    3. A complex dtype (SLC) → amplitude: reads give the magnitude ``|z|``.
       An integer dtype → DN (Sentinel-1 GRD stores UInt16 DN). Pass the dtype of the values
       the reads return (``RasterInfo.value_dtype``: an integer band with a GDAL scale holds
       scaled values, not DN).
    4. Float: over the finite, non-nodata ``sample`` values, if more than half are negative and
       95 % lie in [-50, 30] → dB (σ0 in dB is mostly in [-40, 20]); if none is negative →
       linear (amplitude is never guessed from values: say so with ``override``).
    5. Otherwise :class:`InputError`, asking for an explicit unit.
    """
    if override is not None:
        return check_units(override)
    labelled = [unit_type]
    labelled += [v for k, v in (metadata or {}).items() if "unit" in k.lower()]
    labelled += [description, name]
    for text in labelled:
        known = [_UNIT_WORDS[word] for word in _words(text) if word in _UNIT_WORDS]
        if known:
            # "Sigma0_VV_dB" is σ0 in dB: a dB word outranks the quantity's name in one label.
            return "dB" if "dB" in known else known[0]
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        return "amplitude"
    if np.issubdtype(np.dtype(dtype), np.integer):
        return "DN"
    if sample is None:
        raise InputError("cannot tell the SAR units of a float band without data; pass the units")
    values = np.asarray(sample, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise InputError("cannot tell the SAR units: the sample holds no valid pixel")
    negative = float(np.mean(values < 0))
    in_db_range = float(np.mean((values >= -50) & (values <= 30)))
    if negative > 0.5 and in_db_range >= 0.95:
        return "dB"
    if negative == 0.0:
        return "linear"
    raise InputError(
        "cannot tell the SAR units (float values are neither dB-like nor non-negative); "
        "pass the units explicitly"
    )


def detect_band_roles(
    band_count: int,
    *,
    descriptions: Sequence[str] = (),
    metadata: Sequence[Mapping[str, str]] = (),
    override: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """Polarisation role of each band; ``override`` (one role per band) always wins.

    A band's role is the first of VV/VH/HH/HV found as a word in its metadata items whose key is a
    polarisation key (``POLARISATION``, ``POLARIZATION``, ``POL``, ``BAND_ROLE``, ``ROLE``) or in
    its description (``VV``, ``Sigma0_VH``, ``HH_dB``…). Bands without such a word take the
    positional default: band 1 VV, band 2 VH. Two bands with the same role are an error.
    """
    if override is not None:
        roles = tuple(r.upper() for r in override)
        if len(roles) != band_count:
            raise InputError(f"{len(roles)} band roles given for {band_count} bands")
    else:
        found = labelled_band_roles(band_count, descriptions=descriptions, metadata=metadata)
        positional = ("VV", "VH")
        roles = tuple(
            role or (positional[i] if i < len(positional) else f"band{i + 1}")
            for i, role in enumerate(found)
        )
    for role in roles:
        if role not in ROLES and not role.lower().startswith("band"):
            raise InputError(f"unknown band role {role!r}; expected one of {', '.join(ROLES)}")
    if len(set(roles)) != len(roles):
        raise InputError(f"band roles repeat ({', '.join(roles)}); give one role per band")
    return roles


def labelled_band_roles(
    band_count: int,
    *,
    descriptions: Sequence[str] = (),
    metadata: Sequence[Mapping[str, str]] = (),
) -> list[str | None]:
    """The role each band's own labels name (see :func:`detect_band_roles`), None where they name
    none: a scene whose bands say VV/VH is not one whose roles are only guessed by position."""
    found: list[str | None] = []
    for index in range(band_count):
        items = metadata[index] if index < len(metadata) else {}
        texts = [v for k, v in items.items() if k.lower() in _POLARISATION_KEYS]
        texts.append(descriptions[index] if index < len(descriptions) else "")
        found.append(next((w.upper() for w in _words(*texts) if w.upper() in ROLES), None))
    return found


def windows_for_roles(roles: Sequence[str]) -> list[tuple[float, float]]:
    """The fixed dB window of each band role (:data:`DB_WINDOWS`)."""
    try:
        return [DB_WINDOWS[role.upper()] for role in roles]
    except KeyError as exc:
        raise InputError(f"no dB window for band role {exc.args[0]!r}") from None


def db_window(array_db: np.ndarray, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """Clip each band to its fixed dB window and scale it to [0, 1]; NaN stays NaN.

    ``array_db`` is (bands, H, W) or (N, bands, H, W); ``windows`` has one (low, high) per band.
    The windows are fixed (never a per-chip min-max) so that an empty sea chip stays dark and
    neighbouring tiles stay comparable.

    >>> db_window(np.array([[[-30.0, -10.0, 10.0, 20.0]]]), [(-30, 10)]).tolist()
    [[[0.0, 0.5, 1.0, 1.0]]]
    """
    values = np.asarray(array_db, dtype=np.float32)
    if values.ndim not in (3, 4) or values.shape[-3] != len(windows):
        raise InputError(
            f"db_window needs (bands, H, W) or (N, bands, H, W) with {len(windows)} bands, "
            f"got shape {values.shape}"
        )
    low = np.array([w[0] for w in windows], np.float32).reshape(-1, 1, 1)
    high = np.array([w[1] for w in windows], np.float32).reshape(-1, 1, 1)
    if np.any(high <= low):
        raise InputError(f"every dB window needs low < high, got {list(windows)}")
    return (np.clip(values, low, high) - low) / (high - low)
