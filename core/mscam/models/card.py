"""The model card: a small JSON file that says what a CNN expects, predicts and how to explain it.

A card sits beside its weights file and names it relative to itself::

    {
      "name": "sar-ships", "version": "1.0.0",
      "architecture": "compact-cnn", "architecture_kwargs": {"width": 32},
      "classes": ["background", "ship"], "target_classes": ["ship"],
      "input_channels": ["VV", "VH"], "input_units": "dB",
      "preprocessing": {"type": "db_window", "windows": [[-30, 10], [-35, 0]]},
      "chip_size": 64, "target_layer": "block4", "weights": "weights.pt",
      "description": "Ships vs sea clutter on Sentinel-1 IW GRD chips.",
      "training": {"data": "synthetic", "seed": 0}
    }

``in_channels`` and ``num_classes`` are not architecture arguments a card may set: they always
come from ``input_channels`` and ``classes``, so the two can never disagree. ``preprocessing`` is
opaque here (the SAR preprocessing interprets it); only its shape is checked: a ``type`` string,
and, when present, one ``[low, high]`` window per input channel.

Every problem is a ``ModelError`` whose one-line message names the field.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

from mscam.errors import ModelError, OutputError
from mscam.models.architectures import ARCHITECTURES

__all__ = ["CARD_FILE_NAME", "INPUT_UNITS", "ModelCard"]

CARD_FILE_NAME = "card.json"
"""File name of a card inside a model directory."""

INPUT_UNITS = ("dB", "linear", "amplitude", "DN")
"""Radiometric units a model may expect its input bands in."""

# Dotted module names as ``nn.Module.get_submodule`` accepts them, e.g. ``layer4`` or ``layer4.1``.
_DOTTED_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
# The card fixes these from ``input_channels`` and ``classes``; a kwarg could only contradict them.
_DERIVED_KWARGS = ("in_channels", "num_classes")
_MIN_CHIP_SIZE = 8
# Bounds on what a card may ask for: a chip of 4096² is already 64 MiB a band before any layer,
# and a card is a few hundred bytes (a megabyte of JSON is no card, or a nesting attack).
MAX_CHIP_SIZE = 4096
MAX_CARD_BYTES = 2**20


def _fail(field: str, problem: str) -> ModelError:
    return ModelError(f"model card field {field!r} {problem}")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_str(field: str, value: Any, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise _fail(field, f"must be a string, got {_type_name(value)}")
    if not allow_empty and not value.strip():
        raise _fail(field, "must not be empty")


def _check_names(field: str, value: Any) -> None:
    """A non-empty list of unique, non-empty strings (classes, band roles)."""
    if not isinstance(value, list):
        raise _fail(field, f"must be a list of strings, got {_type_name(value)}")
    if not value:
        raise _fail(field, "must not be empty")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise _fail(field, f"must hold non-empty strings, got {item!r}")
    duplicates = sorted({item for item in value if value.count(item) > 1})
    if duplicates:
        raise _fail(field, f"repeats {', '.join(map(repr, duplicates))}")


def _check_json_object(field: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail(field, f"must be a JSON object, got {_type_name(value)}")
    if not all(isinstance(key, str) for key in value):
        raise _fail(field, "must have string keys")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _fail(field, f"must hold only JSON values ({exc})") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_windows(windows: Any, n_channels: int) -> None:
    field = "preprocessing.windows"
    if not isinstance(windows, list):
        raise _fail(field, f"must be a list of [low, high] pairs, got {_type_name(windows)}")
    if len(windows) != n_channels:
        raise _fail(field, f"has {len(windows)} window(s) for {n_channels} input channel(s)")
    for window in windows:
        if not (isinstance(window, list) and len(window) == 2 and all(map(_is_number, window))):
            raise _fail(field, f"must hold [low, high] number pairs, got {window!r}")
        if window[0] >= window[1]:
            raise _fail(field, f"window {window!r} must have low < high")


def _write_atomically(path: Path, write: Callable[[Any], None]) -> None:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then rename it to ``path``.

    A reader never sees a half-written file, and a failure leaves nothing at ``path``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as tmp:
            write(tmp)
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


@dataclass(frozen=True)
class ModelCard:
    """What a CNN expects, predicts and how to explain it; validated on construction.

    Build one from a dict (``ModelCard.from_dict``) or a JSON file (``ModelCard.load``); change one
    with ``dataclasses.replace``, which validates again.
    """

    name: str
    """Short model name, shown in outputs' tags."""
    version: str
    """Model version string, e.g. ``"1.0.0"``."""
    architecture: str
    """A registered architecture name, or a callable's name in an explicit architecture file."""
    architecture_kwargs: dict[str, Any]
    """Extra builder arguments (e.g. ``{"width": 32}``); never ``in_channels``/``num_classes``."""
    classes: list[str]
    """Class names in logit order."""
    target_classes: list[str]
    """The classes an analyst explains (a subset of ``classes``), e.g. ``["ship"]``."""
    input_channels: list[str]
    """Band role of each input channel in order, e.g. ``["VV", "VH"]``."""
    input_units: str
    """Units the bands must be in before preprocessing: one of ``INPUT_UNITS``."""
    preprocessing: dict[str, Any]
    """How raw bands become network input, e.g. ``{"type": "db_window", "windows": [...]}``."""
    chip_size: int
    """Side in pixels of the square chips the model was trained on."""
    target_layer: str
    """Dotted module name of the CAM target layer (``model.get_submodule``)."""
    weights: str
    """Weights file name, relative to the card's folder."""
    description: str
    """What the model detects and on what data, for a human reader."""
    training: dict[str, Any] | None = None
    """Free-form provenance (data recipe, seed, epochs, metrics); optional."""
    pixel_spacing: float | None = None
    """Ground pixel spacing in metres the model was trained at (e.g. ``10.0``); optional. Scenes at
    another spacing are resampled to it before tiling (``None``: scenes are used as they are)."""
    spacing_range: list[float] | None = None
    """``[low, high]`` spacings in metres the model accepts without resampling; optional (default:
    within 15 % of ``pixel_spacing``)."""

    def __post_init__(self) -> None:
        for field in ("name", "version", "architecture", "input_units", "target_layer", "weights"):
            _check_str(field, getattr(self, field))
        _check_str("description", self.description, allow_empty=True)

        _check_json_object("architecture_kwargs", self.architecture_kwargs)
        derived = [key for key in _DERIVED_KWARGS if key in self.architecture_kwargs]
        if derived:
            raise _fail(
                "architecture_kwargs",
                f"must not set {', '.join(derived)}: it comes from 'input_channels' and 'classes'",
            )

        _check_names("classes", self.classes)
        _check_names("target_classes", self.target_classes)
        unknown = [name for name in self.target_classes if name not in self.classes]
        if unknown:
            raise _fail(
                "target_classes",
                f"names {', '.join(map(repr, unknown))} not in classes {self.classes}",
            )
        _check_names("input_channels", self.input_channels)

        if self.input_units not in INPUT_UNITS:
            raise _fail(
                "input_units", f"must be one of {', '.join(INPUT_UNITS)}, got {self.input_units!r}"
            )

        _check_json_object("preprocessing", self.preprocessing)
        if "type" not in self.preprocessing:
            raise _fail("preprocessing", "needs a 'type'")
        _check_str("preprocessing.type", self.preprocessing["type"])
        if "windows" in self.preprocessing:
            _check_windows(self.preprocessing["windows"], len(self.input_channels))

        if isinstance(self.chip_size, bool) or not isinstance(self.chip_size, int):
            raise _fail("chip_size", f"must be an integer, got {_type_name(self.chip_size)}")
        if self.chip_size < _MIN_CHIP_SIZE:
            raise _fail("chip_size", f"must be at least {_MIN_CHIP_SIZE}, got {self.chip_size}")
        if self.chip_size > MAX_CHIP_SIZE:
            raise _fail("chip_size", f"must be at most {MAX_CHIP_SIZE}, got {self.chip_size}")

        if not _DOTTED_NAME.match(self.target_layer):
            raise _fail(
                "target_layer",
                f"must be a dotted module name like 'layer4', got {self.target_layer!r}",
            )

        # The weights live beside the card: a path out of its folder would break moving the pair.
        weights = PurePosixPath(self.weights.replace("\\", "/"))
        if weights.is_absolute() or ".." in weights.parts or ":" in self.weights:
            raise _fail(
                "weights", f"must be a file name relative to the card, got {self.weights!r}"
            )

        if self.training is not None:
            _check_json_object("training", self.training)

        if self.pixel_spacing is not None and not (
            _is_number(self.pixel_spacing) and self.pixel_spacing > 0
        ):
            raise _fail("pixel_spacing", f"must be a positive number, got {self.pixel_spacing!r}")
        if self.spacing_range is not None:
            pair = self.spacing_range
            if not (
                isinstance(pair, list) and len(pair) == 2 and all(map(_is_number, pair))
            ) or not (0 < pair[0] <= pair[1]):
                raise _fail(
                    "spacing_range", f"must be [low, high] with 0 < low <= high, got {pair!r}"
                )
            if self.pixel_spacing is None:
                raise _fail("spacing_range", "needs 'pixel_spacing'")
            if not pair[0] <= self.pixel_spacing <= pair[1]:
                raise _fail(
                    "spacing_range", f"{pair!r} must contain pixel_spacing {self.pixel_spacing}"
                )

    def accepts_spacing(self, spacing: float) -> bool:
        """Whether a scene at ``spacing`` metres runs as it is (True when the card names none)."""
        if self.pixel_spacing is None:
            return True
        low, high = self.spacing_range or (self.pixel_spacing / 1.15, self.pixel_spacing * 1.15)
        return low <= spacing <= high

    @property
    def in_channels(self) -> int:
        """Number of input channels the network takes."""
        return len(self.input_channels)

    @property
    def num_classes(self) -> int:
        """Number of logits the network returns."""
        return len(self.classes)

    def class_index(self, name: str) -> int:
        """Logit index of class ``name``; ``ModelError`` listing the classes when it is unknown."""
        if name not in self.classes:
            raise ModelError(
                f"unknown class {name!r}; model {self.name!r} has classes {', '.join(self.classes)}"
            )
        return self.classes.index(name)

    def check_architecture(self, *, external: bool = False) -> None:
        """Check that ``architecture`` can be found where it will be looked up.

        ``external=False``: it must be in the registry. ``external=True`` (an architecture file
        the user named): it must be a Python identifier, the name of a callable in that file.
        """
        if external:
            if not self.architecture.isidentifier():
                raise _fail(
                    "architecture",
                    f"must name a callable in the architecture file, got {self.architecture!r}",
                )
        elif self.architecture not in ARCHITECTURES:
            known = ", ".join(sorted(ARCHITECTURES))
            raise _fail(
                "architecture",
                f"names unknown architecture {self.architecture!r} "
                f"(known: {known}; a custom one needs an explicit architecture file)",
            )

    @classmethod
    def from_dict(cls, data: Any, *, external_architecture: bool = False) -> ModelCard:
        """Validate ``data`` (a parsed JSON object) into a card.

        Unknown and missing fields are errors, so a typo never silently falls back to a default.
        ``external_architecture`` is passed to ``check_architecture``.
        """
        if not isinstance(data, dict):
            raise ModelError(f"a model card must be a JSON object, got {_type_name(data)}")
        names = [f.name for f in fields(cls)]
        unknown = [key for key in data if key not in names]
        if unknown:
            raise _fail(str(unknown[0]), f"is unknown (known fields: {', '.join(names)})")
        optional = ("training", "pixel_spacing", "spacing_range")
        missing = [name for name in names if name not in data and name not in optional]
        if missing:
            raise _fail(missing[0], "is missing")
        card = cls(**data)
        card.check_architecture(external=external_architecture)
        return card

    def to_dict(self) -> dict[str, Any]:
        """The card as a JSON-ready dict (optional fields left out when absent)."""
        data = asdict(self)
        for name in ("training", "pixel_spacing", "spacing_range"):
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        external_architecture: bool = False,
    ) -> ModelCard:
        """Read and validate the card JSON at ``path``; errors name the file and the field."""
        path = Path(path)
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_CARD_BYTES + 1)
            text = raw.decode("utf-8")
        except FileNotFoundError:
            raise ModelError(f"model card not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"cannot read model card {path}: {exc}") from None
        if len(raw) > MAX_CARD_BYTES:
            raise ModelError(f"model card {path} is over {MAX_CARD_BYTES // 1024} KiB: not a card")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(
                f"model card {path} is not valid JSON: {exc.msg} at line "
                f"{exc.lineno}, column {exc.colno}"
            ) from None
        except RecursionError:
            raise ModelError(f"model card {path} nests too deeply to be a card") from None
        try:
            return cls.from_dict(data, external_architecture=external_architecture)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the card as indented JSON to ``path``, atomically (temporary name, then rename)."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        _write_atomically(Path(path), lambda f: f.write(text.encode("utf-8")))
