"""Folding BatchNorm into the convolution before it, for inference on many tiles.

In eval mode a BatchNorm is an affine map per channel, so `bn(conv(x))` is one convolution with
scaled weights and a shifted bias (`torch.nn.utils.fusion.fuse_conv_bn_eval`). The scene pipeline
runs the folded copy: the bundled compact CNN spends about a quarter of its CPU time in BatchNorm.

Only pairs whose call order is known are folded, so the result computes the same function:
a `Conv2d` directly followed by a `BatchNorm2d` inside an `nn.Sequential`, and the
`conv1`/`bn1`-style pairs of this package's own ResNet blocks. The BatchNorm becomes an
`nn.Identity`, so every module name stays valid (a CAM target layer still resolves) and a hook on
a folded BatchNorm sees the same tensor as before. A convolution named in `keep` is not folded:
its own output would change.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mscam.models.architectures import BasicBlock, ResNet18SAR

#: Modules whose forward calls `bn(conv(x))` for these attribute pairs.
KNOWN_PAIRS: dict[type, tuple[tuple[str, str], ...]] = {
    BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    ResNet18SAR: (("conv1", "bn1"),),
}


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and type(bn) is nn.BatchNorm2d
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
        and not conv._forward_hooks
        and not bn._forward_hooks
    )


def fold_batchnorm(model: nn.Module, keep: Iterable[str] = ()) -> nn.Module:
    """An eval-mode copy of `model` with every known conv→BatchNorm pair folded into the conv.

    `model` itself is not changed. `keep`: qualified names of convolutions to leave alone (a CAM
    target layer that is itself a convolution).
    """
    keep = set(keep)
    folded = copy.deepcopy(model).eval()
    for name, module in list(folded.named_modules()):
        prefix = f"{name}." if name else ""
        pairs: list[tuple[str, str]] = []
        if isinstance(module, nn.Sequential):
            children = list(module._modules)
            pairs = list(itertools.pairwise(children))
        pairs += list(KNOWN_PAIRS.get(type(module), ()))
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if prefix + conv_name in keep or not _foldable(conv, bn):
                continue
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())
    return folded
