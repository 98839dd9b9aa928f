"""SAR specifics: radiometric units and band roles, preprocessing, synthetic scenes and chips.

Layers: :mod:`~mscam.sar.profiles` (what a scene holds) → :mod:`~mscam.sar.fields`,
:mod:`~mscam.sar.background`, :mod:`~mscam.sar.targets` → :mod:`~mscam.sar.synth` (a scene) →
:mod:`~mscam.sar.chips` (labelled chips) and :mod:`~mscam.sar.synth_io` (files); no circles.

Pure numpy except :func:`write_scene` and :func:`quicklook_png`, which write through GDAL
(imported only when they run).
"""

from mscam.radiometry.units import (
    DB_WINDOWS,
    DEFAULT_CALIBRATION,
    ROLES,
    UNITS,
    amplitude_to_sigma0,
    db_to_linear,
    db_window,
    detect_band_roles,
    detect_units,
    dn_to_sigma0,
    linear_to_db,
    sigma0_to_amplitude,
    sigma0_to_dn,
    to_model_units,
    windows_for_roles,
)
from mscam.sar.chips import CHIP_CLASSES, FAMILIES, TILE_FAMILIES, ChipSet, build_chips, scene_tiles
from mscam.sar.profiles import PROFILES, SceneProfile, scene_profile
from mscam.sar.quicklook import quicklook_png
from mscam.sar.synth import POLARISATIONS, SyntheticScene, synthesize_scene
from mscam.sar.synth_io import write_scene

__all__ = [
    "CHIP_CLASSES",
    "DB_WINDOWS",
    "DEFAULT_CALIBRATION",
    "FAMILIES",
    "POLARISATIONS",
    "PROFILES",
    "ROLES",
    "TILE_FAMILIES",
    "UNITS",
    "ChipSet",
    "SceneProfile",
    "SyntheticScene",
    "amplitude_to_sigma0",
    "build_chips",
    "db_to_linear",
    "db_window",
    "detect_band_roles",
    "detect_units",
    "dn_to_sigma0",
    "linear_to_db",
    "quicklook_png",
    "scene_profile",
    "scene_tiles",
    "sigma0_to_amplitude",
    "sigma0_to_dn",
    "synthesize_scene",
    "to_model_units",
    "windows_for_roles",
    "write_scene",
]
