"""Which bundled model fits a scene, from the polarisation roles of its bands.

Two models ship with mscam: a dual-pol one (a co-polarised band and a cross-polarised band: VV+VH
or HH+HV) in ``models/default`` and a single-pol one (one co-polarised band, VV or HH) in
``models/single_pol``. Their cards name generic roles, ``CO`` (VV or HH) and ``CROSS`` (VH or HV),
so one model serves both transmit polarisations; :func:`match_roles` maps a card's roles onto a
scene's bands, and :func:`choose_bundled_model` picks the model when the user names none:

* co-pol and cross-pol bands → the dual-pol model;
* co-pol only → the single-pol model;
* cross-pol only → ``InputError`` (ships are detected on the co-polarised return).

Each has a twin for finer scenes (``models/fine_dual``, ``models/fine_single``): the pipeline
averages such a scene to the model's ~10 m in linear power, which leaves targets about one pixel
sharp on a sea smoother than any 10 m product's, so the twin was trained only on scenes rendered
2–4× finer and averaged the same way. It is chosen when the detail the scene holds is at least
:data:`FINER_FACTOR` times finer than the model's spacing (≤ 6.7 m for the 10 m models): its
pixel spacing (``--pixel-spacing``, else its georeferencing; the finer axis), unless its speckle
shows it was resampled finer than it was imaged (``mscam.scene.spacing.DetailProbe``: a 10 m
product warped to 3 m keeps the 10 m model).

>>> choose_bundled_model(("HH", "HV")).kind, choose_bundled_model(("VV",)).note
('dual-pol', 'auto: single-pol (scene has VV only)')
>>> choose_bundled_model(("VV",), spacing_m=3.0).note
'auto: single-pol for finer scenes (scene has VV only, at 3 m)'
>>> match_roles(["CO", "CROSS"], ("HV", "HH"))
[1, 0]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mscam.errors import InputError
from mscam.models.card import CARD_FILE_NAME

__all__ = [
    "CO_POL",
    "CROSS_POL",
    "DUAL_POL_CARD_PATH",
    "FINE_DUAL_POL_CARD_PATH",
    "FINE_SINGLE_POL_CARD_PATH",
    "GENERIC_ROLES",
    "SINGLE_POL_CARD_PATH",
    "ModelChoice",
    "bundled_model_for",
    "choose_bundled_model",
    "finer_than_bundled",
    "match_roles",
]

log = logging.getLogger(__name__)

_MODELS = Path(__file__).resolve().parent
DUAL_POL_CARD_PATH = _MODELS / "default" / CARD_FILE_NAME
"""The bundled dual-pol model (also the default of ``load_model()``)."""
SINGLE_POL_CARD_PATH = _MODELS / "single_pol" / CARD_FILE_NAME
"""The bundled single-pol model."""
FINE_DUAL_POL_CARD_PATH = _MODELS / "fine_dual" / CARD_FILE_NAME
"""The bundled dual-pol model for finer scenes (averaged renders)."""
FINE_SINGLE_POL_CARD_PATH = _MODELS / "fine_single" / CARD_FILE_NAME
"""The bundled single-pol model for finer scenes (averaged renders)."""

CO_POL: tuple[str, ...] = ("VV", "HH")
CROSS_POL: tuple[str, ...] = ("VH", "HV")
GENERIC_ROLES: dict[str, tuple[str, ...]] = {"CO": CO_POL, "CROSS": CROSS_POL}
"""Card roles that stand for any band of a polarisation family."""
# Bands of one transmit polarisation belong together (VV with VH, HH with HV): tried in order.
_FAMILIES = ({"CO": "VV", "CROSS": "VH"}, {"CO": "HH", "CROSS": "HV"})


def match_roles(wanted: Sequence[str], roles: Sequence[str]) -> list[int] | None:
    """Index into ``roles`` (a scene's band roles) of the band for each role in ``wanted`` (a
    card's ``input_channels``), or None when one is missing.

    An explicit role (``VV``) matches only itself; ``CO`` matches VV or HH and ``CROSS`` VH or
    HV, preferring bands of one transmit polarisation (VV+VH, else HH+HV) when a scene has both.
    """
    upper = [role.upper() for role in roles]
    wanted = [role.upper() for role in wanted]
    for family in _FAMILIES:
        concrete = [family.get(role, role) for role in wanted]
        if all(role in upper for role in concrete):
            return [upper.index(role) for role in concrete]
    picked: list[int] = []
    for role in wanted:
        candidates = GENERIC_ROLES.get(role, (role,))
        found = [i for i, have in enumerate(upper) if have in candidates and i not in picked]
        if not found:
            return None
        picked.append(found[0])
    return picked


@dataclass(frozen=True)
class ModelChoice:
    """The bundled model chosen for a scene: its card, ``kind`` and a note for logs and tags."""

    path: Path
    kind: str  # "dual-pol" or "single-pol"
    note: str  # e.g. "auto: single-pol (scene has VV only)"
    finer: bool = False  # the twin for finer scenes


#: The pixel spacing (metres) of every bundled model's card.
BUNDLED_SPACING = 10.0
#: A scene at least this many times finer than a model's spacing gets the averaged twin: halfway
#: between a scene at the model's own spacing (1×) and the twin's least averaging (2×).
FINER_FACTOR = 1.5


def finer_than_bundled(spacing_m: float | None) -> bool:
    """Whether a scene at ``spacing_m`` metres (None: unknown) is at least :data:`FINER_FACTOR`
    times finer than the bundled models (the pipeline then averages it to their spacing).

    >>> finer_than_bundled(6.5), finer_than_bundled(7.0), finer_than_bundled(None)
    (True, False, False)
    """
    return spacing_m is not None and spacing_m * FINER_FACTOR <= BUNDLED_SPACING


def choose_bundled_model(
    roles: Sequence[str], spacing_m: float | None = None, detail_m: float | None = None
) -> ModelChoice:
    """The bundled model for a scene whose bands have polarisation ``roles`` (as
    :func:`mscam.radiometry.units.detect_band_roles` returns them), whose pixels are
    ``spacing_m`` metres (None: unknown) and which holds ``detail_m`` metres of ground detail
    (default: its pixels'; more for a scene resampled finer than it was imaged); ``InputError``
    when none fits."""
    detail = spacing_m if detail_m is None else detail_m
    upper = [role.upper() for role in roles]
    co = [role for role in upper if role in CO_POL]
    cross = [role for role in upper if role in CROSS_POL]

    def choice(path: Path, fine_path: Path, kind: str, has: str) -> ModelChoice:
        if finer_than_bundled(detail):
            at = f"{spacing_m if spacing_m is not None else detail:.3g}"
            return ModelChoice(
                fine_path, kind, f"auto: {kind} for finer scenes ({has}, at {at} m)", True
            )
        return ModelChoice(path, kind, f"auto: {kind} ({has})")

    if co and cross:
        pair = match_roles(["CO", "CROSS"], upper)
        used = "+".join(upper[i] for i in pair) if pair else "+".join(co[:1] + cross[:1])
        return choice(DUAL_POL_CARD_PATH, FINE_DUAL_POL_CARD_PATH, "dual-pol", f"scene has {used}")
    if co:
        return choice(
            SINGLE_POL_CARD_PATH, FINE_SINGLE_POL_CARD_PATH, "single-pol", f"scene has {co[0]} only"
        )
    if cross:
        raise InputError(
            f"the scene has only cross-polarised bands ({', '.join(cross)}); the bundled models "
            "need a co-polarised band (VV or HH): name the roles with --bands, or pass --model"
        )
    raise InputError(
        f"no polarisation role among the scene's bands ({', '.join(roles)}); name them with "
        "--bands (e.g. --bands VV,VH), or pass --model"
    )


def bundled_model_for(
    info, bands: Sequence[str] | None = None, pixel_spacing: float | None = None, detail=None
) -> ModelChoice:
    """:func:`choose_bundled_model` for a raster (a ``RasterInfo``: band count, descriptions,
    metadata), its roles detected as the preprocessing detects them (``bands`` overrides), its
    pixel spacing (metres, None: unknown) and the ground detail its pixels hold (``detail``, a
    ``mscam.scene.spacing.SceneDetail``: a 10 m product warped to 3 m is not a 3 m product). The
    choice is logged so the user sees which model runs."""
    # Imported here: the models package stays importable without the SAR package.
    from mscam.radiometry.units import detect_band_roles

    roles = detect_band_roles(
        info.band_count, descriptions=info.descriptions, metadata=info.metadata, override=bands
    )
    choice = choose_bundled_model(roles, pixel_spacing, None if detail is None else detail.detail)
    log.info("model choice: %s; --model overrides", choice.note)
    return choice
