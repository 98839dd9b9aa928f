"""The base of every CAM method: hooks, the batched forward/backward, targets and the common ending.

A method is a short subclass that overrides `_map` (its map before the common ending). The base
owns everything else, so that every method shares the same guarantees:

- one forward and one backward per batch, the backward of `Σ_b y_{c_b}` (pre-softmax logits),
  through `torch.autograd.grad` on the captured activations: parameters' `.grad` stay untouched;
- the forward runs without autograd up to the target layer and with it only from there on, so the
  part of the network below the target layer keeps no graph (less memory, less time);
- hooks live only for the duration of one forward and are removed in `finally`; the model's
  per-module train/eval flags are restored after the call, also on error;
- an in-place operation after the target layer (`ReLU(inplace=True)`) cannot corrupt the captured
  activations: the layer's output is replaced by a copy for the rest of the network.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mscam.cam.ops import minmax, resize

Targets = None | int | Sequence[int] | Tensor
LayerSpec = None | str | nn.Module

# Intermediate tensors of the post-processing are bounded to about this many elements (128 MiB
# in float32); methods chunk over channels to stay below it.
DEFAULT_MAX_ELEMENTS = 2**25


@dataclass(frozen=True)
class CAMOutput:
    """What one explainer call computed.

    `maps`: (B, H, W) maps at input size, normalised to [0, 1] or raw (ReLU'd, before `s`);
    samples not kept by `keep` are all zeros. `logits`: (B, n_classes) pre-softmax outputs of the
    forward pass. `targets`: (B,) the explained class per sample. `kept`: (B,) bool, the samples
    that got a backward pass and a map.
    """

    maps: Tensor
    logits: Tensor
    targets: Tensor
    kept: Tensor


@dataclass
class _Capture:
    activations: Tensor | None = None


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put `model` in eval mode and restore every module's own train/eval flag afterwards."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The target layer as a module: a module of `model`, or its dotted name."""
    if isinstance(layer, nn.Module):
        if not any(layer is module for module in model.modules()):
            raise ValueError("target layer is not a module of this model")
        return layer
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError:
            names = [name for name, _ in model.named_modules() if name]
            hint = ", ".join(names[-8:])
            raise ValueError(
                f"unknown target layer {layer!r}; the model's last layers: {hint}"
            ) from None
    raise TypeError(f"target_layer must be a module or a dotted name, not {type(layer).__name__}")


def locate_target_layer(model: nn.Module, x: Tensor) -> str:
    """The dotted name of the last module whose output is a spatial (h·w > 1) 4-D tensor.

    That is the last convolutional stage before global pooling, the usual CAM target. Found with
    one forward of a single sample; hooks are removed afterwards.
    """
    order: list[str] = []
    handles = []

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, Tensor) and output.dim() == 4 and output.shape[-2:].numel() > 1:
                order.append(name)

        return hook

    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(record(name)))
        with torch.no_grad(), eval_mode(model):
            model(x[:1])
    finally:
        for handle in handles:
            handle.remove()
    if not order:
        raise ValueError("no layer of this model outputs a spatial map; name target_layer")
    return order[-1]


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return fallback


def check_targets(targets: Targets, batch: int) -> int | Tensor | None:
    """Validate `targets` (None, an int, or one int per sample of a batch of `batch`) before the
    forward pass; the class count is checked by `resolve_targets` once logits exist."""
    if targets is None:
        return None
    if isinstance(targets, bool):
        raise TypeError("targets must be None, an int or one int per sample")
    if isinstance(targets, int):
        if targets < 0:
            raise ValueError(f"target class {targets} is out of range")
        return targets
    values = torch.as_tensor(targets).flatten()
    if values.is_floating_point() or values.dtype == torch.bool:
        raise TypeError("targets must be integers")
    if values.numel() != batch:
        raise ValueError(f"got {values.numel()} targets for {batch} samples")
    if bool((values < 0).any()):
        raise ValueError(f"target class {int(values.min())} is out of range")
    return values.long()


def resolve_targets(targets: int | Tensor | None, logits: Tensor) -> Tensor:
    """One class per sample: the predicted class where `targets` is None; range-checked."""
    n_classes = logits.shape[1]
    if targets is None:
        return logits.detach().argmax(dim=1)
    if isinstance(targets, int):
        chosen = torch.full((logits.shape[0],), targets, dtype=torch.long)
    else:
        chosen = targets
    chosen = chosen.to(logits.device)
    if bool((chosen >= n_classes).any()):
        raise ValueError(
            f"target class {int(chosen.max())} is out of range for {n_classes} classes"
        )
    return chosen


def _at_least_float32(tensor: Tensor) -> Tensor:
    """`tensor` in float32 when it is in a narrower floating type (float16, bfloat16)."""
    if tensor.is_floating_point() and torch.finfo(tensor.dtype).bits < 32:
        return tensor.float()
    return tensor


def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Autocast disabled on `device`'s type, where torch has autocast for it."""
    if device.type in ("cpu", "cuda", "xpu", "mps"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


class BaseCAM(abc.ABC):
    """A CAM explainer bound to a model and a target layer.

    Args:
        model: any CNN returning (B, n_classes) pre-softmax logits.
        target_layer: a module of `model`, its dotted name, or None to use the last layer with a
            spatial output (found on the first call).
        batch_size: samples per forward/backward; None processes each call's batch at once.
        max_elements: bound on the size of post-processing intermediates; methods chunk over
            channels to respect it.

    Call it as `cam(x, targets)` for (B, H, W) maps, or `cam.compute(...)` for maps, logits and
    targets together.
    """

    name: ClassVar[str]
    needs_gradients: ClassVar[bool] = True

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec = None,
        *,
        batch_size: int | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_elements < 1:
            raise ValueError(f"max_elements must be at least 1, got {max_elements}")
        self.model = model
        self.target_layer = None if target_layer is None else resolve_layer(model, target_layer)
        self.batch_size = batch_size
        self.max_elements = max_elements

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target_layer={self.target_layer!r})"

    def __call__(self, x: Tensor, targets: Targets = None, normalize: bool = True) -> Tensor:
        """(B, H, W) maps of `targets` (None: the predicted class) for inputs `x` (B, C, H, W)."""
        return self.compute(x, targets, normalize=normalize).maps

    def compute(
        self,
        x: Tensor,
        targets: Targets = None,
        *,
        normalize: bool = True,
        keep: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> CAMOutput:
        """Maps, logits and targets for inputs `x` of shape (B, C, H, W) or (C, H, W).

        `keep(logits, targets) -> (B,) bool` chooses, after the forward pass, which samples get
        the backward pass and a map (the scene pipeline's prescreen); the others get zero maps.
        """
        x = self._check_input(x)
        device = model_device(self.model, x.device)
        # A pinned host batch goes to the GPU asynchronously (the copy overlaps the queue).
        x = x.to(device, non_blocking=x.device.type == "cpu" and x.is_pinned())
        if self.target_layer is None:
            self.target_layer = resolve_layer(self.model, locate_target_layer(self.model, x))
        step = self.batch_size or x.shape[0]
        per_sample = check_targets(targets, x.shape[0])
        outputs = []
        with eval_mode(self.model):
            for start in range(0, x.shape[0], step):
                chunk_targets = per_sample
                if isinstance(per_sample, Tensor):
                    chunk_targets = per_sample[start : start + step]
                outputs.append(
                    self._compute_chunk(x[start : start + step], chunk_targets, normalize, keep)
                )
        return CAMOutput(*(torch.cat(parts) for parts in zip(*outputs)))

    # -- to override ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _map(self, x: Tensor, activations: Tensor, grads: Tensor | None, targets: Tensor) -> Tensor:
        """The method's map before the common ending: (B, h', w') at any resolution.

        `activations` and `grads` are (B, K, h, w) and detached; `grads` is None for gradient-free
        methods; `targets` is (B,) long.
        """

    # -- the shared machinery ------------------------------------------------------------------
    def _compute_chunk(
        self,
        x: Tensor,
        targets: int | Tensor | None,
        normalize: bool,
        keep: Callable[[Tensor, Tensor], Tensor] | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        logits, activations = self._forward(x)
        chosen = resolve_targets(targets, logits)
        kept = torch.ones_like(chosen, dtype=torch.bool)
        if keep is not None:
            kept = torch.as_tensor(keep(logits.detach(), chosen), dtype=torch.bool, device=x.device)
            if kept.shape != chosen.shape:
                raise ValueError(f"keep must return {tuple(chosen.shape)} booleans")
        maps = torch.zeros(x.shape[0], *x.shape[-2:], device=x.device, dtype=x.dtype)
        if not bool(kept.any()):
            return maps, logits.detach(), chosen, kept
        grads = None
        if self.needs_gradients:
            # Backprop Σ_b y_{c_b} over the kept samples; in eval mode samples stay independent.
            with torch.enable_grad():  # the caller may be in no_grad mode
                score = logits[kept].gather(1, chosen[kept][:, None]).sum()
                (grads,) = torch.autograd.grad(score, activations)
        # Under a caller's autocast the forward (and its backward) may run in half precision; the
        # CAM arithmetic always runs in float32, with autocast off.
        logits = _at_least_float32(logits.detach())
        activations = _at_least_float32(activations.detach())
        grads = None if grads is None else _at_least_float32(grads)
        if not bool(kept.all()):
            x, activations, targets_kept = x[kept], activations[kept], chosen[kept]
            grads = None if grads is None else grads[kept]
        else:
            targets_kept = chosen
        with _autocast_off(x.device):
            raw = self._map(_at_least_float32(x), activations, grads, targets_kept)
            maps[kept] = self._finish(raw, tuple(maps.shape[-2:]), normalize).to(maps.dtype)
        return maps, logits, chosen, kept

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Forward pass capturing the target layer's output; autograd only above that layer."""
        capture = _Capture()
        wants_grad = self.needs_gradients

        def hook(module: nn.Module, inputs: Any, output: Any) -> Tensor:
            if not isinstance(output, Tensor) or output.dim() != 4:
                shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
                raise ValueError(f"the target layer must output a (B, K, h, w) tensor, got {shape}")
            activations = output.detach().requires_grad_(wants_grad)
            capture.activations = activations
            if wants_grad:
                # From here on the forward builds a graph (the enclosing no_grad restores the
                # caller's mode when the forward returns).
                torch.set_grad_enabled(True)
            # A copy continues through the network, so in-place ops downstream cannot change
            # the captured tensor.
            return activations.clone()

        handle = self.target_layer.register_forward_hook(hook)
        try:
            with torch.no_grad():
                logits = self.model(x)
            if wants_grad and isinstance(logits, Tensor) and not logits.requires_grad:
                # The model toggled autograd itself around the target layer: build the whole
                # graph instead (correct, only slower).
                with torch.enable_grad():
                    logits = self.model(x)
        finally:
            handle.remove()
        if capture.activations is None:
            raise ValueError("the target layer was not called during the forward pass")
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"the model must return (B, n_classes) logits, got {shape}")
        if wants_grad and not logits.requires_grad:
            raise ValueError("the model's output does not depend on the target layer")
        return logits, capture.activations

    @staticmethod
    def _check_input(x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, not {type(x).__name__}")
        if x.dim() == 3:
            x = x[None]
        if x.dim() != 4:
            raise ValueError(f"x must be (B, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError("x holds no sample")
        if not x.is_floating_point():
            x = x.float()
        return x.detach()

    @staticmethod
    def _finish(maps: Tensor, size: tuple[int, int], normalize: bool) -> Tensor:
        """The common ending: `L = ReLU(map)`, `Up_(H,W)` when needed, then `s(L)` if asked."""
        maps = resize(torch.relu(maps), size)
        return minmax(maps) if normalize else maps
