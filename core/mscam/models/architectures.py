"""CNN architectures for SAR chips, in a registry a model card names them from.

Every architecture is a callable ``builder(in_channels=..., num_classes=..., **kwargs)`` that
returns an ``nn.Module`` mapping a (B, in_channels, H, W) batch to logits (pre-softmax) of shape
(B, num_classes). Each registry entry carries the name of its recommended CAM target layer: the
convolutional block an explanation should look at, resolvable with ``model.get_submodule``.

>>> import torch
>>> model = build_architecture("compact-cnn", in_channels=2, num_classes=3)
>>> tuple(model(torch.zeros(4, 2, 64, 64)).shape)
(4, 3)
>>> DEFAULT_TARGET_LAYERS["compact-cnn"]
'block4'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from mscam.errors import ModelError

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_TARGET_LAYERS",
    "CompactCNN",
    "CompactFCN",
    "LSEPool2d",
    "ResNet18SAR",
    "build_architecture",
    "register_architecture",
]

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}
"""Registered architecture builders by name."""

DEFAULT_TARGET_LAYERS: dict[str, str] = {}
"""Recommended CAM target layer (dotted module name) for each registered architecture."""

_Builder = TypeVar("_Builder", bound=Callable[..., nn.Module])


def register_architecture(name: str, *, target_layer: str) -> Callable[[_Builder], _Builder]:
    """Register an architecture builder under ``name``, with its recommended CAM target layer.

    The builder must accept ``in_channels`` and ``num_classes`` keyword arguments and return a
    module producing (B, num_classes) logits. Names are unique: registering one twice is a bug.

    >>> @register_architecture("tiny-demo", target_layer="0")
    ... def tiny(in_channels: int = 1, num_classes: int = 2) -> nn.Module:
    ...     return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1),
    ...                          nn.Flatten(), nn.Linear(4, num_classes))
    >>> "tiny-demo" in ARCHITECTURES
    True
    >>> _ = ARCHITECTURES.pop("tiny-demo"), DEFAULT_TARGET_LAYERS.pop("tiny-demo")
    """
    if not name or not isinstance(name, str):
        raise ValueError("an architecture name must be a non-empty string")
    if not target_layer or not isinstance(target_layer, str):
        raise ValueError("an architecture's target layer must be a non-empty dotted module name")

    def decorator(builder: _Builder) -> _Builder:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is already registered")
        ARCHITECTURES[name] = builder
        DEFAULT_TARGET_LAYERS[name] = target_layer
        return builder

    return decorator


def build_architecture(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered architecture ``name`` with ``kwargs`` (``in_channels``…).

    Raises ``ModelError`` naming the known architectures when ``name`` is not registered, and
    when the builder rejects its arguments (the arguments come from a model card a user wrote).

    >>> build_architecture("resnet18-sar", in_channels=1, num_classes=2, width=8).fc.out_features
    2
    """
    builder = ARCHITECTURES.get(name)
    if builder is None:
        known = ", ".join(sorted(ARCHITECTURES)) or "none"
        raise ModelError(f"unknown architecture {name!r} (known: {known})")
    try:
        return builder(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"architecture {name!r} rejected its arguments {kwargs}: {exc}") from None


def _check_sizes(in_channels: int, num_classes: int, width: int) -> None:
    for label, value in (
        ("in_channels", in_channels),
        ("num_classes", num_classes),
        ("width", width),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    # bias=False: the BatchNorm that follows has its own shift, a conv bias would be redundant.
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def _init_weights(model: nn.Module) -> None:
    # He initialisation suits ReLU networks; seeded torch RNG makes builds reproducible.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@register_architecture("compact-cnn", target_layer="block4")
class CompactCNN(nn.Module):
    """A compact CNN for 64–128 px SAR chips with 1–2 bands; fast on CPU (~0.24 M parameters).

    Four conv3x3-BN-ReLU blocks of widths ``width``, 2·``width``, 4·``width``, 4·``width``; the
    first three end in a 2x2 max-pool, then global average pooling and a linear head. The target
    layer ``block4`` outputs a (B, 4·width, H/8, W/8) map (floor division at each pool):
    8x8 for 64 px chips, 16x16 for 128 px chips.

    >>> import torch
    >>> model = CompactCNN(in_channels=1, num_classes=2)
    >>> tuple(model.block4(model.block3(model.block2(model.block1(torch.zeros(1, 1, 64, 64)))))
    ...       .shape)
    (1, 128, 8, 8)
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 2, width: int = 32) -> None:
        super().__init__()
        _check_sizes(in_channels, num_classes, width)
        self.block1 = nn.Sequential(*_conv_bn_relu(in_channels, width), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*_conv_bn_relu(width, 2 * width), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(*_conv_bn_relu(2 * width, 4 * width), nn.MaxPool2d(2))
        # No pool after the last block: it is the CAM target, kept at the finest useful scale.
        self.block4 = nn.Sequential(*_conv_bn_relu(4 * width, 4 * width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """Return (B, num_classes) logits for a (B, in_channels, H, W) batch."""
        x = self.block4(self.block3(self.block2(self.block1(x))))
        return self.fc(self.pool(x).flatten(1))


class LSEPool2d(nn.Module):
    """Log-sum-exp pooling over the spatial axes: ``(logsumexp(r·M) - log(h·w)) / r`` per map.

    Between average pooling (``r`` → 0) and max pooling (``r`` → ∞). Its gradient with respect to
    the map is ``softmax(r·M)`` over the positions: the evidence is drawn from where a class map
    is high (a ship occupies a few cells of a chip), not spread evenly over the chip.

    >>> import torch
    >>> LSEPool2d(r=4.0)(torch.full((1, 2, 3, 3), 0.5)).flatten().tolist()
    [0.5, 0.5]
    """

    def __init__(self, r: float = 4.0) -> None:
        super().__init__()
        if not r > 0:
            raise ValueError(f"the LSE sharpness r must be positive, got {r!r}")
        self.r = float(r)

    def forward(self, x: Tensor) -> Tensor:
        """(B, K, h, w) maps → (B, K) pooled values."""
        flat = x.flatten(2)
        size = torch.log(torch.tensor(float(flat.shape[-1]), dtype=x.dtype, device=x.device))
        return (torch.logsumexp(self.r * flat, dim=-1) - size) / self.r


@register_architecture("compact-fcn", target_layer="block4")
class CompactFCN(nn.Module):
    """A compact CNN with a convolutional head above its CAM target layer (~0.5 M parameters).

    The backbone is compact-cnn's: conv3x3-BN-ReLU blocks of widths ``width``, 2·``width``,
    4·``width`` (each followed by a 2x2 max-pool) and ``block4`` (4·``width``, no pool), the CAM
    target, at H/8 × W/8 (8x8 for 64 px chips). Above it the ``head`` keeps the spatial grid:
    conv3x3-BN-ReLU, conv3x3-ReLU, then a 1x1 convolution to one map per class (``classifier``),
    pooled to logits by log-sum-exp (``pool``, :class:`LSEPool2d`).

    Why: under global average pooling + linear (compact-cnn), ∂y/∂A at the target layer is one
    constant per channel, so an element-wise weight such as MS-CAM's ReLU(∂y/∂A) carries no
    spatial information. Here the head's ReLUs and the LSE pooling make ∂y/∂A vary within each
    channel, and it is largest where the class map (the ship) is.

    >>> import torch
    >>> model = CompactFCN(in_channels=1, num_classes=4, width=8)
    >>> tuple(model(torch.zeros(2, 1, 64, 64)).shape), tuple(model.block4(model.block3(
    ...     model.block2(model.block1(torch.zeros(1, 1, 64, 64))))).shape)
    ((2, 4), (1, 32, 8, 8))
    """

    def __init__(
        self, in_channels: int = 2, num_classes: int = 2, width: int = 32, lse_r: float = 4.0
    ) -> None:
        super().__init__()
        _check_sizes(in_channels, num_classes, width)
        self.block1 = nn.Sequential(*_conv_bn_relu(in_channels, width), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*_conv_bn_relu(width, 2 * width), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(*_conv_bn_relu(2 * width, 4 * width), nn.MaxPool2d(2))
        self.block4 = nn.Sequential(*_conv_bn_relu(4 * width, 4 * width))
        self.head = nn.Sequential(
            *_conv_bn_relu(4 * width, 4 * width),
            nn.Conv2d(4 * width, 2 * width, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv2d(2 * width, num_classes, 1)
        self.pool = LSEPool2d(lse_r)
        _init_weights(self)
        # He initialisation would make the class maps, and so the first logits, large.
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def class_maps(self, x: Tensor) -> Tensor:
        """(B, num_classes, H/8, W/8) class maps before pooling."""
        x = self.block4(self.block3(self.block2(self.block1(x))))
        return self.classifier(self.head(x))

    def forward(self, x: Tensor) -> Tensor:
        """Return (B, num_classes) logits for a (B, in_channels, H, W) batch."""
        return self.pool(self.class_maps(x))


class BasicBlock(nn.Module):
    """The ResNet basic block: two conv3x3-BN with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        """Return relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


@register_architecture("resnet18-sar", target_layer="layer4")
class ResNet18SAR(nn.Module):
    """ResNet-18 (basic blocks [2, 2, 2, 2]) adapted to 1–2 band SAR chips of 64–128 px.

    The ImageNet stem (7x7 stride 2 conv + max-pool, /4) would leave a 2x2 map at 64 px; this stem
    is one 3x3 stride-2 conv with no max-pool, so the network's total stride is 16 and the target
    layer ``layer4`` outputs a (B, 8·width, ⌈H/16⌉, ⌈W/16⌉) map: 4x4 for 64 px chips, 8x8 for
    128 px chips. Module names follow torchvision (``conv1``, ``bn1``, ``layer1``…``layer4``,
    ``fc``); ``width`` (64) scales every stage (64-128-256-512). About 11.2 M parameters.

    >>> import torch
    >>> model = ResNet18SAR(in_channels=2, num_classes=2, width=8)
    >>> tuple(model(torch.zeros(3, 2, 128, 128)).shape)
    (3, 2)
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 2, width: int = 64) -> None:
        super().__init__()
        _check_sizes(in_channels, num_classes, width)
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._stage(width, width, stride=1)
        self.layer2 = self._stage(width, 2 * width, stride=2)
        self.layer3 = self._stage(2 * width, 4 * width, stride=2)
        self.layer4 = self._stage(4 * width, 8 * width, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width, num_classes)
        _init_weights(self)

    @staticmethod
    def _stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Return (B, num_classes) logits for a (B, in_channels, H, W) batch."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))
