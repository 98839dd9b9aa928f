"""Safe loading and saving of a model: a card, its weights, and the architecture it names.

Weights are read only with ``torch.load(weights_only=True)``, which unpickles tensors and plain
containers and refuses any other Python object, so a weights file can never run code. Code runs
only from an architecture file the user names explicitly, and a warning says so.

>>> import tempfile, torch
>>> from mscam.models import build_architecture, ModelCard
>>> card = ModelCard(name="demo", version="1", architecture="compact-cnn",
...                  architecture_kwargs={"width": 4}, classes=["sea", "ship"],
...                  target_classes=["ship"], input_channels=["VV"], input_units="dB",
...                  preprocessing={"type": "db_window", "windows": [[-30, 10]]}, chip_size=64,
...                  target_layer="block4", weights="weights.pt", description="doctest")
>>> model = build_architecture("compact-cnn", in_channels=1, num_classes=2, width=4)
>>> with tempfile.TemporaryDirectory() as folder:
...     card_path = save_model(model, card, folder)
...     loaded = load_model(folder)
>>> tuple(loaded.model(torch.zeros(2, 1, 64, 64)).shape)
(2, 2)
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Union

import torch
from torch import nn

from mscam.errors import ModelError
from mscam.models.architectures import ARCHITECTURES, build_architecture
from mscam.models.card import CARD_FILE_NAME, ModelCard, _write_atomically

__all__ = ["DEFAULT_CARD_PATH", "LoadedModel", "load_model", "save_model"]

logger = logging.getLogger(__name__)

DEFAULT_CARD_PATH = Path(__file__).resolve().parent / "default" / CARD_FILE_NAME
"""The bundled default model's card, used when no model is given."""

_PathLike = Union[str, "os.PathLike[str]"]
_MAX_KEYS_LISTED = 3
#: Parameters a card's architecture may have (1 GiB of float32; ResNet-18 has 11 M): a card asking
#: for width 100000 is refused before anything is allocated.
MAX_PARAMETERS = 2**28
_LONG_MESSAGE = 160


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to explain: the network (eval mode, on its device) with its card."""

    model: nn.Module
    """The network, in eval mode, on the requested device."""
    card: ModelCard
    """The validated card the network was built from."""
    card_path: Path
    """Where the card was read; its ``weights`` are relative to this file's folder."""


def load_model(
    card: _PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    architecture_file: _PathLike | None = None,
) -> LoadedModel:
    """Build the card's architecture, load its weights safely, and return it in eval mode.

    ``card`` is a card JSON path, a folder holding ``card.json``, or None for the bundled default
    model. ``device`` is anything ``torch.device`` takes, or ``"auto"`` (CUDA when available).
    ``architecture_file`` is a Python file, named by the user, defining a callable with the card's
    ``architecture`` name; it is imported, which runs its code (a warning is logged). Without it
    the architecture must be registered: a card alone can never make mscam import code.

    Every problem (missing or malformed card, unsafe, corrupt or mismatched weights, an
    architecture that fails on a chip) raises a one-line ``ModelError``.
    """
    card_path = _resolve_card_path(card)
    model_card = ModelCard.load(card_path, external_architecture=architecture_file is not None)
    torch_device = _resolve_device(device)

    if architecture_file is None:
        _check_size(model_card)
        model = build_architecture(
            model_card.architecture,
            in_channels=model_card.in_channels,
            num_classes=model_card.num_classes,
            **model_card.architecture_kwargs,
        )
    else:
        model = _build_from_file(Path(architecture_file), model_card)

    weights_path = card_path.parent / model_card.weights
    state = _read_state_dict(weights_path, torch_device)
    _check_fits(
        state,
        model.state_dict(),
        f"weights {weights_path}",
        f"architecture {model_card.architecture!r}",
    )
    model.load_state_dict(state)
    model.to(torch_device).eval()
    _check_runs(model, model_card, torch_device)
    return LoadedModel(model=model, card=model_card, card_path=card_path)


def save_model(model: nn.Module, card: ModelCard, directory: _PathLike) -> Path:
    """Write ``model``'s weights and ``card`` into ``directory``; return the card's path.

    Both files are written atomically (temporary name, then rename), the weights first so a card
    never names a missing file. For a registered architecture the state dict is first checked
    against a fresh build of the card's architecture, so what is saved will load.
    """
    directory = Path(directory)
    # CPU tensors: the file then loads on any machine, and map_location moves them on load.
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    if card.architecture in ARCHITECTURES:
        expected = build_architecture(
            card.architecture,
            in_channels=card.in_channels,
            num_classes=card.num_classes,
            **card.architecture_kwargs,
        )
        _check_fits(
            state,
            expected.state_dict(),
            "the model to save",
            f"the card's architecture {card.architecture!r}",
        )
    card_path = directory / CARD_FILE_NAME
    _write_atomically(directory / card.weights, lambda f: torch.save(state, f))
    card.save(card_path)
    return card_path


def _check_size(card: ModelCard) -> None:
    """Refuse an architecture bigger than `MAX_PARAMETERS`, counted on torch's meta device (shapes
    only, nothing allocated)."""
    try:
        with torch.device("meta"):
            shapes = build_architecture(
                card.architecture,
                in_channels=card.in_channels,
                num_classes=card.num_classes,
                **card.architecture_kwargs,
            )
    except ModelError:
        raise
    except Exception:  # the real build below reports it in one line
        return
    count = sum(p.numel() for p in shapes.parameters()) + sum(b.numel() for b in shapes.buffers())
    if count > MAX_PARAMETERS:
        raise ModelError(
            f"architecture {card.architecture!r} with {card.architecture_kwargs} has "
            f"{count:,} parameters, more than the {MAX_PARAMETERS:,} mscam loads"
        )


def _resolve_card_path(card: _PathLike | None) -> Path:
    if card is None:
        if not DEFAULT_CARD_PATH.is_file():
            raise ModelError(
                f"the bundled default model is missing ({DEFAULT_CARD_PATH}); "
                "pass a model card, or reinstall mscam"
            )
        return DEFAULT_CARD_PATH
    path = Path(card).expanduser()
    if path.is_dir():
        path = path / CARD_FILE_NAME
        if not path.is_file():
            raise ModelError(f"model folder {path.parent} has no {CARD_FILE_NAME}")
    return path


def _resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"invalid device {device!r}: {exc}") from None


def _build_from_file(path: Path, card: ModelCard) -> nn.Module:
    builder = getattr(_import_user_file(path, card.architecture), card.architecture, None)
    if not callable(builder):
        raise ModelError(
            f"architecture file {path} defines no callable {card.architecture!r} "
            "(named by the card's 'architecture')"
        )
    try:
        model = builder(
            in_channels=card.in_channels, num_classes=card.num_classes, **card.architecture_kwargs
        )
    except Exception as exc:  # user code: any failure is the user's to fix, reported in one line
        raise ModelError(
            f"{card.architecture!r} from {path} failed to build: {_one_line(exc)}"
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"{card.architecture!r} from {path} returned {type(model).__name__}, "
            "not a torch.nn.Module"
        )
    return model


def _import_user_file(path: Path, architecture: str) -> ModuleType:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ModelError(f"architecture file not found: {path}")
    if path.suffix != ".py":
        raise ModelError(f"architecture file must be a Python .py file: {path}")
    # A private, path-unique name: it can neither shadow nor be mistaken for a real module.
    module_name = f"_mscam_user_architecture_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot import architecture file {path}")
    logger.warning(
        "running the Python code in %s to build architecture %r: use architecture "
        "files only from sources you trust",
        path,
        architecture,
    )
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs so that dataclasses, pickling and typing in it resolve the module.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # user code: report whatever it raised, in one line
        del sys.modules[module_name]
        raise ModelError(f"architecture file {path} failed to import: {_one_line(exc)}") from None
    return module


def _read_state_dict(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError(f"weights file not found: {path} (named by the card's 'weights')")
    if path.stat().st_size == 0:
        raise ModelError(f"weights file is empty: {path}")
    try:
        with warnings.catch_warnings():
            # Noise from old-style pickles that weights_only reads (or refuses) anyway.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refused an object; name it when torch says which, never load it otherwise.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"the Python object {found.group(1)}" if found else "data other than tensors"
        raise ModelError(
            f"refused weights file {path}: it holds {what} (or is corrupt); only a "
            "plain state dict, torch.save(model.state_dict()), is loaded"
        ) from None
    except Exception as exc:  # torch reports truncated/garbled files through assorted types
        raise ModelError(
            f"weights file {path} is corrupt or not a PyTorch weights file ({_one_line(exc)})"
        ) from None
    if not isinstance(state, Mapping):
        raise ModelError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    nested = next(
        (key for key in ("state_dict", "model") if isinstance(state.get(key), Mapping)), None
    )
    if nested is not None:
        raise ModelError(
            f"weights file {path} looks like a training checkpoint; save its "
            f"[{nested!r}] state dict alone"
        )
    not_tensors = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ModelError(
            f"weights file {path} holds non-tensor entries: {_some(map(str, not_tensors))}"
        )
    # NaN or inf weights make NaN heat everywhere: refuse them here, with the tensors' names.
    not_finite = [
        key
        for key, value in state.items()
        if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if not_finite:
        raise ModelError(
            f"weights file {path} holds NaN or inf values in {_some(map(str, not_finite))}"
        )
    return dict(state)


def _check_fits(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], what: str, against: str
) -> None:
    """Raise a one-line ``ModelError`` listing missing/unexpected keys and shape mismatches."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_some(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch (file vs model) {_some(mismatched)}")
    if problems:
        raise ModelError(f"{what} does not fit {against}: {'; '.join(problems)}")


def _check_runs(model: nn.Module, card: ModelCard, device: torch.device) -> None:
    """Run one blank chip so a wrong target layer or logit shape fails now, not mid-scene."""
    try:
        layer = model.get_submodule(card.target_layer)
    except AttributeError:
        raise ModelError(
            f"target layer {card.target_layer!r} (card's 'target_layer') is not a "
            f"module of architecture {card.architecture!r}"
        ) from None
    captured: dict[str, Any] = {}
    hook = layer.register_forward_hook(lambda _m, _i, output: captured.update(output=output))
    chip = torch.zeros(1, card.in_channels, card.chip_size, card.chip_size, device=device)
    try:
        with torch.no_grad():
            logits = model(chip)
    except Exception as exc:  # any architecture, user-written included, may fail on a chip
        raise ModelError(
            f"architecture {card.architecture!r} fails on a {tuple(chip.shape)} "
            f"chip: {_one_line(exc)}"
        ) from None
    finally:
        hook.remove()
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (1, card.num_classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ModelError(
            f"architecture {card.architecture!r} returns {shape} for one chip, "
            f"expected logits of shape (1, {card.num_classes})"
        )
    output = captured.get("output")
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelError(
            f"target layer {card.target_layer!r} outputs {shape}, not a (B, C, h, w) feature map"
        )


def _some(keys: Iterable[str]) -> str:
    """At most a few of ``keys`` and how many more, so a message stays one readable line."""
    items = list(keys)
    shown = ", ".join(items[:_MAX_KEYS_LISTED])
    more = len(items) - _MAX_KEYS_LISTED
    return f"{shown} (+{more} more)" if more > 0 else shown


def _one_line(exc: BaseException) -> str:
    """``Type: message`` of an exception in one line: its first line, cut to its first sentence
    when long (torch appends paragraphs of advice a one-line error has no room for)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > _LONG_MESSAGE and ". " in text:
        text = text.split(". ")[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
