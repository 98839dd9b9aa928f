"""The wide synthetic world the chips come from: chip families and scene recipes.

A *family* says what a chip shows (:data:`FAMILIES` maps each to one of the four classes);
:func:`random_scene_arguments` draws the keyword arguments of one scene of a *recipe* (open sea,
coast, wind farm) with everything a generator could fix at random instead: sea state, speckle
looks, calibration, incidence, noise floor and seams, polarisation and pixel spacing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from mscam.errors import InputError
from mscam.sar.profiles import PIXEL_M, PROFILES, SceneProfile
from mscam.sar.synth import POLARISATIONS, SyntheticScene, average_scene, synthesize_scene

CHIP_CLASSES: tuple[str, ...] = ("ship", "sea", "land", "bright")
#: Chip family → class. Hard negatives map to ``bright`` (at sea) or ``land`` (on land).
FAMILIES: dict[str, str] = {
    "ship": "ship",
    "ship_coastal": "ship",
    "ship_partial": "ship",
    "sea": "sea",
    "land": "land",
    "coast": "land",
    "harbour": "land",
    "urban": "land",
    "platform": "bright",
    "windfarm": "bright",
    "buoy": "bright",
    "rock": "bright",
    "island": "bright",
    "ghost": "bright",
    "land_ghost": "bright",
}
#: Share of its class's chips each family gets (renormalised over the families kept).
FAMILY_WEIGHTS: dict[str, float] = {
    "ship": 0.55,
    "ship_coastal": 0.2,
    "ship_partial": 0.25,
    "sea": 1.0,
    "land": 0.45,
    "coast": 0.25,
    "harbour": 0.15,
    "urban": 0.15,
    "platform": 0.15,
    "windfarm": 0.15,
    "buoy": 0.12,
    "rock": 0.13,
    "island": 0.12,
    "ghost": 0.2,
    "land_ghost": 0.13,
}
#: Speckle looks are drawn log-uniform in [1, LOOKS_MAX]: single-look complex detected, ~4.4
#: (Sentinel-1 IW GRDH), and the smooth sea of a multi-looked or averaged product (a 3 m scene
#: averaged to 10 m has ~11× its looks).
LOOKS_MAX = 32.0
#: The kind of scene that serves each family best (the others come along when they can).
RECIPE = {
    "ship": "open",
    "ship_partial": "open",
    "sea": "open",
    "platform": "open",
    "buoy": "open",
    "rock": "open",
    "ghost": "open",
    "windfarm": "farm",
    "ship_coastal": "coast",
    "land": "coast",
    "coast": "coast",
    "harbour": "coast",
    "urban": "coast",
    "island": "coast",
    "land_ghost": "coast",
}
#: Hard-negative record kind (and ghost source) behind each object family.
KINDS = {
    "platform": ("platform",),
    "windfarm": ("turbine",),
    "buoy": ("buoy",),
    "rock": ("rock",),
    "island": ("island",),
    "ghost": ("ghost:target", "ghost:offscene"),
    "land_ghost": ("ghost:land",),
    "harbour": ("quay",),
    "urban": ("urban_point",),
}


def random_scene_arguments(
    recipe: str,
    rng: np.random.Generator,
    *,
    size: int = 256,
    polarisation: str = "random",
    pixel_spacing: float | tuple[float, float] = PIXEL_M,
    ship_length_range: tuple[float, float] = (15.0, 400.0),
    n_ships: int | None = None,
    fine_fraction: float = 0.0,
) -> dict[str, Any]:
    """:func:`render_scene` arguments (:func:`synthesize_scene` keyword arguments, and
    ``average``) for one scene of the wide world.

    ``recipe``: ``"open"`` (open sea with ships, platforms, buoys, rocks, ghosts), ``"coast"``
    (coast with towns, harbours, moored ships, islands, land ghosts) or ``"farm"`` (a wind
    farm at sea). The sea state, speckle looks, calibration, incidence, noise floor and seams,
    polarisation (``"random"``: VV or HH) and pixel spacing (a value or a (lo, hi) range) are
    drawn from ``rng``. A share ``fine_fraction`` of the scenes is drawn 2–4×
    finer (and as much larger) with ``average`` = that factor: :func:`render_scene` averages it
    back to the drawn spacing, as the pipeline averages a finer product for a model, so those
    targets are about one pixel sharp on a smoother sea.
    """
    spacing = (
        float(rng.uniform(*pixel_spacing))
        if isinstance(pixel_spacing, tuple)
        else float(pixel_spacing)
    )
    pol = POLARISATIONS[int(rng.integers(2))] if polarisation == "random" else polarisation
    wind = float(np.exp(rng.uniform(math.log(2.0), math.log(15.0))))
    sea = {
        "wind_ms": wind,
        "wind_var": float(rng.uniform(0.05, 0.3)),
        "calm_fraction": float(rng.uniform(0.0, 0.35)) if rng.random() < 0.6 else 0.0,
        # Rougher sea is spikier (lower ν), with scatter: storms, currents, fronts.
        "nu": float(np.clip(np.exp(rng.normal(math.log(25.0 / wind**0.7), 0.5)), 1.5, 30.0))
        if rng.random() < 0.9
        else None,
        "texture_corr_m": float(rng.uniform(20.0, 100.0)),
        "swell_db": float(rng.uniform(0.0, 1.5)),
        "streak_db": float(rng.uniform(0.0, 1.6)),
        "wake_probability": float(rng.uniform(0.1, 0.8)),
        "kelvin_probability": float(rng.uniform(0.0, 0.6)),
        "filled_hull_fraction": 0.5,
        # Turbines and beacons carry dihedrals: as bright as big ships, up to +32 dB.
        "turbine_peak_db": (10.0, 32.0),
        "buoy_peak_db": (-3.0, 12.0),
        "dim_ship_fraction": float(rng.uniform(0.0, 0.4)),
        "ghost_probability": float(rng.uniform(0.3, 1.0)),
        "seam_db": float(rng.uniform(0.3, 1.5)) if rng.random() < 0.5 else 0.0,
        "nesz_offset_db": float(rng.uniform(-3.0, 4.0)),
    }
    if recipe == "open":
        base = PROFILES["rough" if wind > 8 else "calm"]
        layout = {
            "land_fraction": 0.0,
            "island_density": float(rng.uniform(0.0, 0.1)),
            "platform_density": float(rng.uniform(0.1, 0.5)),
            "buoy_density": float(rng.uniform(0.1, 0.6)),
            "rock_density": float(rng.uniform(0.1, 0.5)),
            "offscene_ghost_density": float(rng.uniform(0.1, 0.5)),
            "wind_farm": False,
            "lane": bool(rng.random() < 0.3),
        }
    elif recipe == "coast":
        base = PROFILES["coastal"]
        layout = {
            "land_fraction": float(rng.uniform(0.2, 0.6)),
            "relief_m": float(rng.uniform(10.0, 150.0)),
            "town_density": float(rng.uniform(0.1, 0.4)),
            "min_towns": 1,
            "rivers": int(rng.integers(0, 3)),
            "island_density": float(rng.uniform(0.2, 0.8)),
            "harbours": int(rng.integers(0, 3)),
            "moored_fraction": float(rng.uniform(0.2, 0.6)),
            "anchorage": True,
            "land_ghost_probability": 0.8,
            "rock_density": float(rng.uniform(0.0, 0.4)),
            "buoy_density": float(rng.uniform(0.0, 0.4)),
            "wind_farm": False,
        }
    elif recipe == "farm":
        base = PROFILES["empty"]
        layout = {
            "land_fraction": 0.0,
            "wind_farm": True,
            # Older farms stand 300–500 m apart: a chip then holds a piece of the lattice.
            "turbine_spacing_m": (300.0, 800.0),
            "wind_farm_min_extent_m": 600.0,  # a piece of a farm in a small scene
            "platform_density": float(rng.uniform(0.0, 0.3)),
            "buoy_density": float(rng.uniform(0.0, 0.3)),
            "island_density": 0.0,
        }
    else:
        raise InputError(f"unknown scene recipe {recipe!r}; choose open, coast or farm")
    profile: SceneProfile = replace(base, name=f"wide-{recipe}", **sea, **layout)
    near = float(rng.uniform(20.0, 42.0))
    arguments = {
        "size": size,
        "profile": profile,
        "seed": int(rng.integers(2**31)),
        "n_ships": n_ships,
        "incidence_deg": (near, near + float(rng.uniform(0.5, 4.0))),
        "looks": float(np.exp(rng.uniform(0.0, math.log(LOOKS_MAX)))),
        "polarisation": pol,
        "pixel_spacing": spacing,
        "ship_length_m": ship_length_range,
        "calibration_db": float(rng.uniform(-2.0, 2.0)),
        # Other processors: resolution, sidelobe weighting and speckle correlation differ. A
        # product averaged down from a finer one is about as sharp as its pixels (1 pixel).
        "resolution_m": (
            spacing * float(rng.uniform(1.0, 2.6)),
            spacing * float(rng.uniform(1.0, 2.6)),
        ),
        "sidelobe_alpha": float(rng.uniform(0.55, 1.0)),
        "speckle_corr_px": float(rng.uniform(0.5, 1.1)) if rng.random() < 0.5 else 0.0,
    }
    if fine_fraction > 0 and rng.random() < fine_fraction:
        factor = int(rng.integers(2, 5))
        arguments["size"] = size * factor
        arguments["pixel_spacing"] = spacing / factor
        arguments["resolution_m"] = tuple(r / factor for r in arguments["resolution_m"])
        arguments["average"] = factor
    return arguments


def render_scene(arguments: Mapping[str, Any]) -> SyntheticScene:
    """The scene of :func:`random_scene_arguments`' ``arguments``: synthesised, then averaged
    ``average`` × ``average`` pixels to one where the arguments ask (:func:`average_scene`)."""
    kwargs = dict(arguments)
    factor = int(kwargs.pop("average", 1))
    return average_scene(synthesize_scene(**kwargs), factor)


def family_quotas(n_per_class: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Chips per family: each class's ``n_per_class`` split by weight (largest remainders)."""
    quotas: dict[str, int] = {}
    for name in CHIP_CLASSES:
        members = [f for f in FAMILIES if FAMILIES[f] == name and weights.get(f, 0) > 0]
        total = sum(weights[f] for f in members)
        if not members:
            continue
        exact = {f: n_per_class * weights[f] / total for f in members}
        share = {f: int(exact[f]) for f in members}
        for f in sorted(members, key=lambda f: share[f] - exact[f])[
            : n_per_class - sum(share.values())
        ]:
            share[f] += 1
        quotas.update(share)
    return quotas
