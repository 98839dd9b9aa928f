"""Every option of a scene run, declared once: `SETTINGS` (names, defaults, help, choices, ranges)
and `SceneSettings`, the frozen value the pipeline runs on, checked against the same table.

The front ends read this table instead of spelling the options again: the command line adds its
flags by a loop over it (`mscam.cli.explain.add_scene_options`), the QGIS Processing algorithms
build their parameters from it (`mscam_qgis.algorithms.base.scene_parameter`), and the dock takes
its ranges and defaults from it (`SETTINGS["overlap"].maximum`). So a range, a default or a method
name changes here, and nowhere else.

This module imports neither torch nor numpy (the plugin reads it where torch is missing); the
method names are spelled here and a test checks them against the engine's registry
(`mscam.cam.METHODS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mscam.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from mscam.scene.tiling import TileGrid

#: The CAM methods (`mscam.cam.METHODS`, in its order).
METHOD_NAMES: tuple[str, ...] = (
    "ms-cam",
    "self-matching",
    "grad-cam",
    "grad-cam++",
    "xgrad-cam",
    "layer-cam",
    "hires-cam",
    "score-cam",
)
#: The devices offered by name; `cuda:N` is accepted too (`resolve_device`).
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: What `lattice` does with the boxes on a lattice of point targets (`scene.lattice`).
LATTICE_CHOICES: tuple[str, ...] = ("drop", "keep")
#: The input units (`mscam.radiometry.units.UNITS`, in its order); matched without regard to case.
UNIT_NAMES: tuple[str, ...] = ("DN", "linear", "amplitude", "dB")
#: The Processing (and dock) value for "detect the units from the raster".
DETECT = "detect"

MAX_OVERLAP = 0.9
MAX_BATCH = 4096
MAX_THREADS = 256  # torch starts every thread it is asked for: 100000 exhausts the process
MIN_TILE = 8
#: Pixels of one batch of tiles (batch × tile²): bounds the CNN's activations (a 64-px tile at
#: width 32 holds ~0.5 MB of them per layer, so 2^22 pixels is ~0.5 GB a layer).
MAX_BATCH_PIXELS = 2**22
#: Tiles per batch when none is given. On CPU, small batches keep the activations in the caches:
#: measured with the bundled model on 64 px tiles (2-core EPYC, 32 MiB L3), batches of 8-42 tiles
#: run at the same speed and 64 tiles 1.65x slower per tile. A GPU wants big batches.
DEFAULT_BATCH = {"cpu": 16, "cuda": 128}


@dataclass(frozen=True)
class Setting:
    """One option of a scene run, as every front end shows it.

    `default` is the engine's (None: decided at run time, `help` says how). A front end that
    cannot say "none" (a QGIS number or enum) shows `unset` for it: 0 tile size, "detect" units.
    `minimum`/`maximum` bound the value (`open_minimum`: the minimum itself is refused); `step` is
    a GUI's increment, and `lowest` the smallest value a GUI offers. `flag` is the CLI flag (None:
    not on the command line), `parameter` the Processing parameter id (None: not in Processing).
    """

    name: str
    kind: type  # int, float or str
    default: Any
    help: str
    label: str = ""
    flag: str | None = ""  # "": --name-with-dashes
    parameter: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    open_minimum: bool = False
    step: float | None = None
    choices: tuple[str, ...] = ()
    open_choices: bool = False  # other values accepted too (cuda:1)
    case_sensitive: bool = True  # choices matched as spelled (False: "db" is "dB")
    unset: Any = None
    advanced: bool = False
    metavar: str | None = None
    note: str = ""  # said after the range when a value is refused

    @property
    def cli_flag(self) -> str | None:
        return None if self.flag is None else self.flag or "--" + self.name.replace("_", "-")

    @property
    def lowest(self) -> float | None:
        """The smallest value a GUI offers: the minimum, or one step above an open one."""
        if self.minimum is None or not self.open_minimum:
            return self.minimum
        return self.minimum + (self.step or 1)

    def range_text(self) -> str:
        """`[0, 0.9]`, `(0, 1]`, `at least 8`, `positive`; "" when unbounded."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"{'(' if self.open_minimum else '['}{_number(low)}, {_number(high)}]"
        if low is not None:
            return "positive" if self.open_minimum and low == 0 else f"at least {_number(low)}"
        return f"at most {_number(high)}" if high is not None else ""

    def in_range(self, value: float) -> bool:
        if value != value or value in (float("inf"), float("-inf")):  # NaN, infinite
            return False
        if self.minimum is not None and (
            value < self.minimum or (self.open_minimum and value == self.minimum)
        ):
            return False
        return self.maximum is None or value <= self.maximum

    def check(self, value: Any) -> None:
        """An `InputError` line naming the setting, its range and the value, if out of range."""
        if value is None:
            return
        name = self.name.replace("_", " ")
        if self.choices and not self.open_choices:
            known = self.choices if self.case_sensitive else [c.lower() for c in self.choices]
            if (value if self.case_sensitive else str(value).lower()) not in known:
                raise InputError(
                    f"unknown {name} {value!r}; choose one of: {', '.join(self.choices)}"
                )
        if (self.minimum is not None or self.maximum is not None) and not self.in_range(value):
            note = f" ({self.note})" if self.note else ""
            what = f"in {self.range_text()}" if self.maximum is not None else self.range_text()
            raise InputError(f"{name} must be {what}{note}, got {value}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _table(*settings: Setting) -> dict[str, Setting]:
    return {setting.name: setting for setting in settings}


#: Every scene option, in the order of `mscam explain --help`.
SETTINGS: Mapping[str, Setting] = _table(
    Setting(
        "model",
        str,
        None,
        "model card (JSON) or its folder; default: the bundled model for the scene's polarisations",
        "Model card (empty: the bundled model for the scene's polarisations)",
        parameter="MODEL",
        unset="",
    ),
    Setting(
        "architecture_file",
        str,
        None,
        "Python file defining the card's architecture (runs its code)",
        "Architecture file (runs its Python code)",
        parameter="ARCHITECTURE_FILE",
        unset="",
        advanced=True,
    ),
    Setting(
        "method",
        str,
        "ms-cam",
        "the CAM method",
        "Method",
        parameter="METHOD",
        choices=METHOD_NAMES,
    ),
    Setting(
        "method_options",
        str,
        (),
        "a method option, e.g. channel_weight=xgrad-cam (repeatable)",
        "Method options",
        flag="--option",
        metavar="KEY=VALUE",
    ),
    Setting(
        "target_class",
        str,
        None,
        "class to explain; default: the card's first target class",
        "Target class (empty: the model's default)",
        parameter="TARGET_CLASS",
        unset="",
    ),
    Setting(
        "tile",
        int,
        None,
        "tile size in pixels; default: the card's chip size",
        "Tile size in pixels (0: the model's chip size)",
        parameter="TILE_SIZE",
        minimum=MIN_TILE,
        unset=0,
        note="pixels",
        metavar="N",
    ),
    Setting(
        "overlap",
        float,
        0.25,
        "fraction of a tile shared with its neighbour",
        "Tile overlap",
        parameter="OVERLAP",
        minimum=0.0,
        maximum=MAX_OVERLAP,
        step=0.05,
        metavar="F",
        note="0.9 already runs 100x the tiles of no overlap",
    ),
    Setting(
        "threshold",
        float,
        0.5,
        "heat threshold of the boxes",
        "Box threshold (heat)",
        parameter="THRESHOLD",
        minimum=0.0,
        maximum=1.0,
        open_minimum=True,
        step=0.01,
        metavar="F",
    ),
    Setting(
        "min_score",
        float,
        0.5,
        "target-class probability a tile needs to get a CAM",
        "Minimum tile score (target-class probability)",
        parameter="MIN_SCORE",
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        metavar="F",
    ),
    Setting(
        "merge_gap",
        int,
        3,
        "regions this close (pixels) are one box; -1: never merge",
        "Merge gap of the boxes (pixels; -1: never merge)",
        minimum=-1,
        metavar="N",
    ),
    Setting(
        "lattice",
        str,
        "drop",
        "boxes whose compact bright target stands on a regular lattice of such targets (a wind "
        "farm's turbines): drop them, or keep them",
        "Boxes on a lattice of point targets (wind-farm turbines)",
        parameter="LATTICE",
        choices=LATTICE_CHOICES,
        advanced=True,
    ),
    Setting(
        "batch",
        int,
        None,
        f"tiles per batch; default: {DEFAULT_BATCH['cpu']} on CPU, {DEFAULT_BATCH['cuda']} on "
        "a GPU",
        "Tiles per batch (0: by device)",
        minimum=1,
        maximum=MAX_BATCH,
        metavar="N",
    ),
    Setting(
        "device",
        str,
        "auto",
        "auto (CUDA when available), cpu, cuda or cuda:N",
        "Device",
        parameter="DEVICE",
        choices=DEVICES,
        open_choices=True,
    ),
    Setting(
        "threads",
        int,
        None,
        "CPU threads for torch; default: all cores",
        "CPU threads (0: all cores)",
        minimum=1,
        maximum=MAX_THREADS,
        metavar="N",
    ),
    Setting(
        "units",
        str,
        None,
        f"input units ({', '.join(UNIT_NAMES)}); default: detect",
        "Input units (detect: from the raster's metadata and values)",
        parameter="UNITS",
        choices=UNIT_NAMES,
        case_sensitive=False,
        unset=DETECT,
        advanced=True,
    ),
    Setting(
        "bands",
        str,
        None,
        "band roles in order, e.g. VV,VH; default: detect",
        "Band roles in order, e.g. VV,VH (empty: detect)",
        parameter="BANDS",
        unset="",
        advanced=True,
    ),
    Setting(
        "pixel_spacing",
        float,
        None,
        "the scene's pixel spacing in metres; default: from its georeferencing",
        "Pixel spacing (m) (0: from the scene)",
        parameter="PIXEL_SPACING",
        minimum=0.0,
        open_minimum=True,
        unset=0.0,
        advanced=True,
        metavar="M",
    ),
    Setting(
        "max_nodata",
        float,
        0.5,
        "tiles with a larger nodata share are skipped",
        "Largest nodata share of a tile",
        flag=None,
        minimum=0.0,
        maximum=1.0,
    ),
)


def split_bands(text: str | None) -> tuple[str, ...] | None:
    """`"VV, VH"` → `("VV", "VH")`; empty or None → None (detect)."""
    roles = tuple(b.strip() for b in (text or "").split(",") if b.strip())
    return roles or None


@dataclass(frozen=True)
class SceneSettings:
    """Everything that decides a scene's result (hashable, so a worker can cache its model).

    The fields are `SETTINGS`' names; each value is checked against its entry when made.
    """

    model: str | None = None  # model card path; None is the bundled default model
    method: str = "ms-cam"
    method_options: tuple[tuple[str, object], ...] = ()
    target_class: str | None = None  # None: the card's first target class
    tile: int | None = None  # None: the card's chip size
    overlap: float = 0.25
    threshold: float = 0.5
    min_score: float = 0.5
    batch: int | None = None  # tiles per batch; None: by device (`default_batch`)
    device: str = "auto"
    units: str | None = None  # None: detected from the raster
    bands: tuple[str, ...] | None = None  # band roles; None: detected
    max_nodata: float = 0.5  # tiles with a larger nodata share are skipped
    merge_gap: int = 3  # regions whose boxes come within this many pixels are one box
    lattice: str = "drop"  # boxes on a lattice of point targets (turbines): drop or keep
    threads: int | None = None  # torch CPU threads; None keeps torch's default (every core)
    architecture_file: str | None = None
    pixel_spacing: float | None = None  # the scene's spacing in metres; None: from its georef

    def __post_init__(self) -> None:
        from mscam.cam.options import validate_options

        for name in ("min_score", "threshold", "overlap", "batch", "method", "lattice"):
            SETTINGS[name].check(getattr(self, name))
        validate_options(self.method, dict(self.method_options))
        for name in ("tile", "threads", "pixel_spacing", "merge_gap", "max_nodata", "units"):
            SETTINGS[name].check(getattr(self, name))


def resolve_device(device: str) -> torch.device:
    """The torch device of the `device` setting (auto: CUDA when torch sees one)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"unknown device {device!r}; use {', '.join(DEVICES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


def default_batch(device: torch.device) -> int:
    """Tiles per batch on `device` when the settings name none."""
    return DEFAULT_BATCH.get(device.type, DEFAULT_BATCH["cuda"])


def plan_batch(grid: TileGrid, batch: int, given: bool) -> int:
    """Tiles per batch within `MAX_BATCH_PIXELS`: a default batch shrinks to fit, a batch the
    user gave that does not fit is an error naming the largest that does."""
    pixels = grid.tile_width * grid.tile_height
    fits = MAX_BATCH_PIXELS // pixels
    if fits < 1:
        side = int(MAX_BATCH_PIXELS**0.5)
        raise InputError(
            f"a {grid.tile_width}x{grid.tile_height} tile is more than the {MAX_BATCH_PIXELS:,} "
            f"pixels a batch may hold; use --tile {side} or less"
        )
    if batch <= fits:
        return batch
    if given:
        raise InputError(
            f"--batch {batch} of {grid.tile_width}x{grid.tile_height} tiles is "
            f"{batch * pixels:,} pixels, more than the {MAX_BATCH_PIXELS:,} a batch may hold; "
            f"use --batch {fits} or less"
        )
    return fits
