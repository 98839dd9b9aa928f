"""The CAM methods' options, checked before an explainer is built: type, range, allowed values.

A bad option is one `InputError` line naming what is allowed (`InputError` is a `ValueError`, so
library callers can catch either), never a traceback from deep inside a method, and never a
silent acceptance (`channel_norm=maybe`). Bounds keep an option from asking for memory no machine
has: `match_size` is at most `MAX_MATCH_SIDE` a side (100000 would be a 40 GB map per tile).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from mscam.errors import InputError

#: Largest side of the matching grid Q: 2048² floats are 16 MiB a map, 256 MiB for 16 tiles.
MAX_MATCH_SIDE = 2048
MAX_BATCH_SIZE = 4096
MAX_ELEMENTS = 2**31
_TRUE, _FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")


def _integer(name: str, low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"option {name} must be an integer in [{low}, {high}], got {value!r}")
        return value

    return check


def _choice(name: str, allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise InputError(
                f"unknown {name.replace('_', ' ')} {value!r} (option {name}); choose one of: "
                f"{', '.join(allowed)}"
            )
        return value

    return check


def _boolean(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise InputError(f"option {name} must be True or False, got {value!r}")

    return check


def _match_size(value: Any) -> int | tuple[int, int] | None:
    side = _integer("match_size", 1, MAX_MATCH_SIDE)
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        try:
            return side(value[0]), side(value[1])
        except InputError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return side(value)
        except InputError:
            pass
    raise InputError(
        f"option match_size must be None, a side in [1, {MAX_MATCH_SIDE}] or (height, width) of "
        f"such sides; got {value!r}"
    )


def _checks() -> dict[str, Callable[[Any], Any]]:
    from mscam.cam.ms_cam import MATCHINGS
    from mscam.cam.weights import CHANNEL_WEIGHTS

    return {
        "channel_weight": _choice("channel_weight", tuple(CHANNEL_WEIGHTS)),
        "match_size": _match_size,
        "channel_norm": _boolean("channel_norm"),
        "matching": _choice("matching", MATCHINGS),
        "batch_size": lambda v: None if v is None else _integer("batch_size", 1, MAX_BATCH_SIZE)(v),
        "max_elements": _integer("max_elements", 1, MAX_ELEMENTS),
        "score_batch": _integer("score_batch", 1, MAX_BATCH_SIZE),
    }


def method_options(method: str) -> list[str]:
    """The options `method` takes (keyword arguments of its class beyond model and layer)."""
    from mscam.cam.methods import METHODS

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    parameters = inspect.signature(METHODS[method].__init__).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def validate_options(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` checked for `method` and normalised (`"false"` → False); `InputError` names the
    offending option and what it allows."""
    allowed = method_options(method)
    checks = _checks()
    checked = {}
    for key, value in options.items():
        if key not in allowed:
            raise InputError(
                f"{method} has no option {key!r}; it takes: {', '.join(allowed) or 'none'}"
            )
        checked[key] = checks[key](value) if key in checks else value
    return checked
