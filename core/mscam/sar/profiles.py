"""What a synthetic scene contains: :class:`SceneProfile` and the named :data:`PROFILES`.

Kept apart from :mod:`mscam.sar.synth` (which assembles a scene) and
:mod:`mscam.sar.background` (which computes its mean backscatter) so that both can import it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mscam.errors import InputError

#: Pixel spacing (metres) the scene parameters were written for: Sentinel-1 IW GRDH.
PIXEL_M = 10.0


@dataclass(frozen=True)
class SceneProfile:
    """What a kind of scene contains. Densities are per km² (at 10 m: 1 km² = 100 × 100 px)."""

    name: str
    wind_ms: float  #: mean wind speed at 10 m
    wind_var: float = 0.2  #: log-normal spread of the wind over a few km
    calm_fraction: float = 0.0  #: share of the sea in calm (low-wind) patches
    nu: float | None = 10.0  #: K-distribution shape of sea texture (None: no texture)
    texture_corr_m: float = 30.0  #: correlation length of the sea texture (30–100 m)
    swell_db: float = 0.5  #: amplitude of the swell pattern
    streak_db: float = 0.5  #: amplitude of wind streaks
    land_fraction: float = 0.0
    relief_m: float = 0.0  #: typical hill height inland
    town_density: float = 0.0
    min_towns: int = 0  #: a coast usually has a port town
    rivers: int = 0  #: rivers running from inland to the sea
    island_density: float = 0.0
    ship_density: float = 0.0
    min_ships: int = 0
    anchorage: bool = False  #: part of the ships wait at anchor near the coast
    lane: bool = False  #: part of the ships follow a shipping lane
    wake_probability: float = 0.3
    platform_density: float = 0.0
    buoy_density: float = 0.0
    wind_farm: bool = False
    ghost_probability: float = 0.6  #: chance that a bright target (≥ +15 dB) casts a ghost
    # The fields below widen the world for training; their defaults leave a scene as before.
    rock_density: float = 0.0  #: wave-washed rocks: a few bright returns, no land mask
    harbours: int = 0  #: quays/piers built out from the coast (bright walls, cranes)
    moored_fraction: float = 0.0  #: share of the ships moored alongside a quay
    dim_ship_fraction: float = 0.0  #: share of small ships (< 60 m) barely above the clutter
    kelvin_probability: float = 0.0  #: share of wakes with bright Kelvin arms
    filled_hull_fraction: float = 0.0  #: share of ships whose whole deck returns (HullStyle)
    offscene_ghost_density: float = 0.0  #: ghosts of bright targets outside the scene, per km²
    land_ghost_probability: float = 0.0  #: chance that a bright town ghosts onto the sea
    seam_db: float = 0.0  #: level steps at sub-swath and burst seams (noise-floor stripes)
    nesz_offset_db: float = 0.0  #: thermal noise floor above (+) or below (-) the nominal one
    turbine_spacing_m: tuple[float, float] = (550.0, 800.0)  #: wind-farm lattice spacing
    turbine_peak_db: tuple[float, float] = (10.0, 22.0)  #: a turbine's peak σ0 (dB), drawn
    buoy_peak_db: tuple[float, float] = (-3.0, 8.0)  #: a buoy's peak σ0 (dB), drawn
    wind_farm_min_extent_m: float = 2000.0  #: smaller scenes get no wind farm


PROFILES: dict[str, SceneProfile] = {
    p.name: p
    for p in (
        SceneProfile(
            "calm",
            wind_ms=3.5,
            wind_var=0.25,
            calm_fraction=0.3,
            nu=15.0,
            swell_db=0.3,
            streak_db=0.3,
            island_density=0.005,
            ship_density=0.025,
            min_ships=1,
            wake_probability=0.6,
            platform_density=0.002,
            buoy_density=0.01,
        ),
        SceneProfile(
            "rough",
            wind_ms=11.0,
            wind_var=0.15,
            nu=3.0,
            texture_corr_m=60.0,
            swell_db=1.2,
            streak_db=1.0,
            island_density=0.003,
            ship_density=0.025,
            min_ships=1,
            wake_probability=0.15,
            platform_density=0.002,
            buoy_density=0.005,
        ),
        SceneProfile(
            "coastal",
            wind_ms=6.0,
            calm_fraction=0.1,
            land_fraction=0.45,
            relief_m=80.0,
            town_density=0.015,
            min_towns=1,
            rivers=2,
            island_density=0.03,
            ship_density=0.04,
            min_ships=2,
            anchorage=True,
            buoy_density=0.02,
            wind_farm=True,
        ),
        SceneProfile(
            "empty",
            wind_ms=6.0,
            calm_fraction=0.1,
            land_fraction=0.12,
            relief_m=60.0,
            town_density=0.005,
            rivers=1,
            island_density=0.005,
            platform_density=0.005,
            buoy_density=0.015,
            wind_farm=True,
        ),
        SceneProfile(
            "dense",
            wind_ms=7.0,
            nu=8.0,
            land_fraction=0.2,
            relief_m=50.0,
            town_density=0.008,
            rivers=1,
            island_density=0.01,
            ship_density=0.15,
            min_ships=3,
            anchorage=True,
            lane=True,
            buoy_density=0.02,
            platform_density=0.002,
        ),
    )
}


def resolve_profile(profile: str | SceneProfile) -> SceneProfile:
    """A profile by name (one of :data:`PROFILES`) or the profile itself."""
    if isinstance(profile, SceneProfile):
        return profile
    if profile not in PROFILES:
        raise InputError(f"unknown scene profile {profile!r}; choose {', '.join(PROFILES)}")
    return PROFILES[profile]


def scene_profile(name: str, **changes: Any) -> SceneProfile:
    """A named profile with some fields changed, e.g. ``scene_profile("calm", nu=None)``."""
    return replace(resolve_profile(name), **changes)
