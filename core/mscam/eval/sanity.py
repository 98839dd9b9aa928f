"""Sanity controls for saliency maps (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

An explanation that does not change when the model's weights are destroyed does not explain the
model. **Cascading model-parameter randomisation**: on a copy of the model, the parameterised
blocks are re-initialised from the output down, one stage per block (stage names are the blocks'
module names: `trained`, `fc`, `block4`, …, and `all` when the last block goes), seeded; at every
stage each method's maps of the same tiles, target class and target layer are compared with the
trained model's by Spearman rank correlation (mean over tiles).

Re-initialisation is the layers' own construction default (`reset_parameters`: convolutions and
linear layers re-drawn, BatchNorm back to weight 1, bias 0, running mean 0, variance 1), drawn on
the CPU from `seed`, so a stage's weights do not depend on the device. The model given is never
changed.

Controls beside the methods: the image alone `s(I)` (no model at all), `s(Grad-CAM)·s(I)`
(`image_gated_gradcam`), and MS-CAM with its element-wise weight replaced by the weight's spatial
mean per channel (`ChannelMeanMSCAM`: what MS-CAM gives when `ω_ele` carries no spatial
information).

The check on a scene's hottest tiles (`mscam sanity`) and its figure: `mscam.eval.sanity_scene`.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
...                           torch.nn.Linear(4, 2))
>>> report = sanity_check(net, torch.rand(3, 2, 16, 16), ["grad-cam"], target=1,
...                       target_layer="3")
>>> report.stages, report.methods["grad-cam"]["spearman"][0]
(['trained', '6', '2', 'all'], 1.0)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mscam.cam import METHODS, create_explainer
from mscam.cam.base import BaseCAM, eval_mode
from mscam.cam.ops import minmax
from mscam.cam.self_matching import matched_sum, matching_image
from mscam.eval.wsol import pxap

log = logging.getLogger(__name__)

TRAINED, ALL = "trained", "all"
#: `mscam sanity`'s methods when none are named: every method but Score-CAM (one forward per
#: channel of the target layer, per stage).
DEFAULT_SANITY_METHODS = tuple(m for m in METHODS if m != "score-cam")

Progress = Callable[[float, str], None]


# -- cascading randomisation -----------------------------------------------------------------------


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def randomisation_blocks(model: nn.Module, example: Tensor) -> list[str]:
    """The blocks re-initialised one stage at a time, output side first: the top-level children
    that hold parameters or buffers, in the reverse order of their first call in a forward pass
    of `example[:1]`. A model whose only such child is a container is looked into."""
    prefix, parent = "", model
    while True:
        children = [(n, c) for n, c in parent.named_children() if _has_state(c)]
        if len(children) != 1 or not any(_has_state(g) for g in children[0][1].children()):
            break
        prefix, parent = f"{prefix}{children[0][0]}.", children[0][1]
    if not children:
        raise ValueError("the model has no parameters to randomise")
    called: list[str] = []
    handles = [
        child.register_forward_hook(
            lambda module, inputs, output, name=name: (
                called.append(name) if name not in called else None
            )
        )
        for name, child in children
    ]
    try:
        with torch.no_grad(), eval_mode(model):
            model(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return [prefix + name for name in reversed(called)]


def reinitialise(modules: Iterable[nn.Module], seed: int) -> None:
    """Re-draw the parameters (and reset the buffers) each module owns itself, as at construction,
    from `seed` on the CPU; the global RNG is left as it was.

    `reset_parameters` where the module has one (convolutions, linear layers, BatchNorm with its
    running statistics); otherwise a normal draw with the trained tensor's own spread.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in modules:
            own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
            if not own:
                continue
            device = own[0].device
            module.to("cpu")
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            else:
                with torch.no_grad():
                    for tensor in module.parameters(recurse=False):
                        spread = float(tensor.std()) if tensor.numel() > 1 else 0.0
                        tensor.normal_(0.0, spread if spread > 0 else 0.02)
            module.to(device)


def cascading_randomisation(
    model: nn.Module, example: Tensor, seed: int = 0
) -> Iterator[tuple[str, tuple[str, ...], nn.Module]]:
    """`(stage, blocks randomised so far, network)` for `trained`, each block output side first,
    then `all` (the last block and every parameter outside the blocks).

    The network is one deep copy of `model`, randomised further at each stage (use it before
    asking for the next stage); `model` itself is never changed.
    """
    work = copy.deepcopy(model)
    yield TRAINED, (), work
    blocks = randomisation_blocks(work, example)
    for index, name in enumerate(blocks):
        if index < len(blocks) - 1:
            reinitialise(work.get_submodule(name).modules(), seed * 1009 + index + 1)
            yield name, tuple(blocks[: index + 1]), work
            continue
        done = [work.get_submodule(b) for b in blocks[:-1]]
        inside = {id(m) for block in done for m in block.modules()}
        rest = [m for m in work.modules() if id(m) not in inside]
        reinitialise(rest, seed * 1009 + index + 1)
        yield ALL, tuple(blocks), work


def fully_randomised(model: nn.Module, example: Tensor, seed: int = 0) -> nn.Module:
    """A copy of `model` with every parameter re-initialised (the `all` stage)."""
    *_, (_, _, network) = cascading_randomisation(model, example, seed)
    return network


# -- similarity ------------------------------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1…n along the last axis, tied values sharing their average rank (float64)."""
    flat = np.asarray(values, np.float64).reshape(-1, np.shape(values)[-1])
    ranks = np.empty_like(flat)
    for row, value in zip(ranks, flat):
        order = np.argsort(value, kind="stable")
        ordered = value[order]
        first = np.r_[True, ordered[1:] != ordered[:-1]]
        starts = np.flatnonzero(first)
        ends = np.r_[starts[1:], len(ordered)]
        row[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks.reshape(np.shape(values))


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of rows (float64); NaN where a row is constant."""
    da = np.asarray(a, np.float64) - np.mean(a, axis=-1, keepdims=True)
    db = np.asarray(b, np.float64) - np.mean(b, axis=-1, keepdims=True)
    denominator = np.sqrt(np.sum(da * da, axis=-1) * np.sum(db * db, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, np.sum(da * db, axis=-1) / denominator, np.nan)


def spearman(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (N, H, W) or (N, P): (N,), NaN where either
    map is constant (it has no ranking)."""
    a, b = _flat(a), _flat(b)
    if a.shape != b.shape:
        raise ValueError(f"maps of shapes {a.shape} and {b.shape} cannot be compared")
    return pearson_rows(average_ranks(a), average_ranks(b))


def _flat(maps: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(maps, Tensor):
        maps = maps.detach().cpu().double().numpy()
    maps = np.asarray(maps, np.float64)
    return maps.reshape(maps.shape[0], -1)


def _mean_or_none(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None


# -- controls --------------------------------------------------------------------------------------


def image_only(x: Tensor) -> Tensor:
    """The image control `s(I)`: the min-maxed mean of the input channels, (B, H, W); no model."""
    return matching_image(x, tuple(x.shape[-2:]))


def image_gated_gradcam(grad_cam_maps: Tensor, x: Tensor) -> Tensor:
    """The control `s(s(Grad-CAM) · s(I))`: Grad-CAM's normalised maps gated by the image."""
    return minmax(grad_cam_maps * image_only(x).to(grad_cam_maps))


class ChannelMeanMSCAM(BaseCAM):
    """MS-CAM (default options) with `ω_ele_k = ReLU(g_k)` replaced by its spatial mean per channel:
    `Σ_k ω_cha_k · s(Up(mean_ij ReLU(g_k) · A_k)) ∘ s(I)`, with Grad-CAM's `ω_cha_k = mean_ij g_k`.

    The control for "the element-wise weight adds nothing": where `g` is constant over space in
    every channel (global average pooling and a linear head above the target layer) it is exactly
    MS-CAM; where MS-CAM beats it, the spatial pattern of the gradient is what helped.
    """

    name = "ms-cam[ω_ele=channel mean]"

    def _map(self, x: Tensor, activations: Tensor, grads: Tensor | None, targets: Tensor) -> Tensor:
        assert grads is not None
        element = torch.relu(grads).mean(dim=(2, 3), keepdim=True)
        channel = grads.mean(dim=(2, 3))
        image = matching_image(x, tuple(x.shape[-2:]))
        return matched_sum(element * activations, channel, image, self.max_elements)


# -- the check -------------------------------------------------------------------------------------


@dataclass
class SanityReport:
    """What `sanity_check` measured; `to_dict` is JSON-ready (NaN as None)."""

    stages: list[str]
    stage_blocks: dict[str, list[str]]
    methods: dict[str, dict[str, Any]]
    image_only: dict[str, Any]
    target_probability: list[float]
    maps: dict[str, np.ndarray] = field(repr=False)  # method → (stages, N, H, W) float32
    image: np.ndarray = field(repr=False)  # (N, H, W): s(I)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": self.stages,
            "stage_blocks": self.stage_blocks,
            "target_probability": self.target_probability,
            "methods": self.methods,
            "image_only": self.image_only,
        }


def sanity_check(
    model: nn.Module,
    x: Tensor,
    methods: Sequence[str],
    target: int,
    target_layer: str,
    *,
    masks: np.ndarray | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SanityReport:
    """Each method's maps of `x` (class `target`, layer `target_layer`) at every stage of the
    cascading randomisation, compared with the trained model's.

    Per method: `spearman` (mean over tiles of the rank correlation with the trained maps; 1 for
    `trained` by definition), `pearson` (the same with the values), `constant_tiles` (tiles left
    out at a stage because a map is constant there), and `pxap` per stage against `masks` (bool,
    (N, H, W)) when given. `image_only`: `s(I)`'s Spearman with each method's trained maps and its
    PxAP. `model` is not changed.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(
            f"unknown method {', '.join(unknown) or '(none)'}; choose from: {', '.join(METHODS)}"
        )
    if not isinstance(target_layer, str):
        raise TypeError("target_layer must be the layer's dotted name (the same at every stage)")
    x = x.detach()
    report = progress or (lambda fraction, message: None)
    per_stage: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    stages, blocks, probability = [], {}, []
    n_stages = len(randomisation_blocks(model, x)) + 1
    for index, (stage, randomised, network) in enumerate(cascading_randomisation(model, x, seed)):
        stages.append(stage)
        blocks[stage] = list(randomised)
        for method in methods:
            if cancel is not None and cancel():
                from mscam.errors import Cancelled

                raise Cancelled("cancelled")
            explainer = create_explainer(method, network, target_layer, batch_size=batch_size)
            out = explainer.compute(x, target)
            per_stage[method].append(out.maps.detach().float().cpu().numpy())
        probability.append(float(torch.softmax(out.logits.float(), dim=1)[:, target].mean()))
        report((index + 1) / n_stages, f"stage {stage} ({index + 1}/{n_stages})")
    image = image_only(x).float().cpu().numpy()
    results, image_rho = {}, {}
    for method in methods:
        maps = np.stack(per_stage[method])
        trained = maps[0]
        rho = [spearman(trained, stage_maps) for stage_maps in maps]
        r = [pearson_rows(_flat(trained), _flat(stage_maps)) for stage_maps in maps]
        results[method] = {
            "stages": stages,
            "spearman": [_mean_or_none(v) for v in rho],
            "pearson": [_mean_or_none(v) for v in r],
            "constant_tiles": [int(np.sum(~np.isfinite(v))) for v in rho],
            "pxap": None if masks is None else [pxap(stage_maps, masks) for stage_maps in maps],
        }
        image_rho[method] = _mean_or_none(spearman(image, trained))
        per_stage[method] = maps
    image_report = {
        "map": "s(I): the min-maxed mean of the input channels (no model)",
        "spearman_with_trained": image_rho,
        "pxap": None if masks is None else pxap(image, masks),
    }
    return SanityReport(stages, blocks, results, image_report, probability, per_stage, image)
