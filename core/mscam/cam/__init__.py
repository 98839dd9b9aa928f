"""The CAM methods: one class per method, a registry, and `explain()`.

>>> import torch, mscam
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
...                           torch.nn.Linear(4, 2))
>>> sorted(mscam.METHODS)[:3]
['grad-cam', 'grad-cam++', 'hires-cam']
>>> mscam.explain(net, torch.rand(2, 1, 8, 8), "grad-cam", target_layer="1").shape
torch.Size([2, 8, 8])
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from mscam.cam.base import BaseCAM, CAMOutput, LayerSpec, Targets, eval_mode, locate_target_layer
from mscam.cam.gradient import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from mscam.cam.methods import METHODS
from mscam.cam.ms_cam import MSCAM
from mscam.cam.options import validate_options
from mscam.cam.score import ScoreCAM
from mscam.cam.self_matching import SelfMatchingCAM
from mscam.cam.weights import CHANNEL_WEIGHTS


def create_explainer(
    method: str, model: nn.Module, target_layer: LayerSpec = None, **options: Any
) -> BaseCAM:
    """An explainer of `method` bound to `model` and `target_layer`, to keep and call repeatedly.

    `options` are the method's own (e.g. MS-CAM's `channel_weight`, `match_size`, `channel_norm`,
    `matching`) plus `batch_size` and `max_elements`; they are checked first (`cam.options`), a
    bad one is an `InputError` (a `ValueError`) naming what is allowed.
    """
    checked = validate_options(method, options)  # first: it names the methods if unknown
    return METHODS[method](model, target_layer, **checked)


def explain(
    model: nn.Module,
    x: Tensor,
    method: str = "ms-cam",
    target_layer: LayerSpec = None,
    targets: Targets = None,
    normalize: bool = True,
    **options: Any,
) -> Tensor:
    """Class activation maps of `model` for inputs `x` (B, C, H, W): a (B, H, W) tensor.

    Args:
        model: a CNN returning (B, n_classes) pre-softmax logits.
        x: the network input (already preprocessed), on any device; the work runs on the model's.
        method: one of `METHODS`: `ms-cam` (default), `self-matching`, `grad-cam`, `grad-cam++`,
            `xgrad-cam`, `layer-cam`, `hires-cam`, `score-cam`.
        target_layer: a module of `model` or its dotted name (`model.get_submodule`); None picks
            the last layer with a spatial output.
        targets: None (each sample's predicted class), an int, or one int per sample.
        normalize: min-max each map to [0, 1]; False returns the raw map (after ReLU and resizing),
            whose values are comparable across samples.
        options: the method's options, see `create_explainer`.

    The maps are on the model's device. The model's train/eval state, its hooks and its
    parameters' `.grad` are left as they were.
    """
    return create_explainer(method, model, target_layer, **options)(x, targets, normalize=normalize)


__all__ = [
    "CHANNEL_WEIGHTS",
    "METHODS",
    "MSCAM",
    "BaseCAM",
    "CAMOutput",
    "GradCAM",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "ScoreCAM",
    "SelfMatchingCAM",
    "XGradCAM",
    "create_explainer",
    "eval_mode",
    "explain",
    "locate_target_layer",
]
