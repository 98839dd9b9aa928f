"""Self-Matching CAM (Feng et al., Remote Sensing 13(9):1772, 2021), and the matching step that
MS-CAM shares with it."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mscam.cam.base import DEFAULT_MAX_ELEMENTS, BaseCAM, LayerSpec
from mscam.cam.ops import channel_range, minmax, resize
from mscam.cam.weights import channel_weight as weight_function

MatchSize = None | int | tuple[int, int]


def matching_image(x: Tensor, size: tuple[int, int]) -> Tensor:
    """`Ĩ = s(Resize_Q(I))` with `I` the mean of `x` over its input channels: (B, Qh, Qw)."""
    return minmax(resize(x.mean(dim=1), size))


def matched_sum(
    features: Tensor, weights: Tensor, image: Tensor, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> Tensor:
    """`Σ_k w_k · (s(Up_Q(F_k)) ∘ Ĩ)` for features (B, K, h, w), weights (B, K), `Ĩ` (B, Qh, Qw).

    Computed without materialising the B·K·Qh·Qw stack: bilinear resizing is linear and keeps
    constants, so with `m_k, M_k` the min and max of `Up_Q(F_k)` and `c_k = w_k / (M_k − m_k)`,
    `Σ_k w_k s(Up_Q(F_k)) = Up_Q(Σ_k c_k F_k) − Σ_k c_k m_k`. Only the per-channel ranges need the
    upsampled channels, and `channel_range` finds them from a few rows and columns of each
    (exactly). A constant channel normalises to zeros (`c_k = 0`), as `s` defines.
    """
    size = tuple(image.shape[-2:])
    low, high = channel_range(features, size, max_elements)
    span = high - low
    coeff = torch.where(span > 0, weights / torch.where(span > 0, span, 1), 0)
    summed = resize(torch.einsum("bk,bkhw->bhw", coeff, features), size)
    return (summed - (coeff * low).sum(dim=1)[:, None, None]) * image


def match_grid(match_size: MatchSize, input_size: tuple[int, int]) -> tuple[int, int]:
    """The matching grid Q: the input size (None), a square side (int) or (height, width)."""
    if match_size is None:
        return input_size
    if isinstance(match_size, int):
        match_size = (match_size, match_size)
    height, width = (int(v) for v in match_size)
    return height, width


def check_match_size(match_size: MatchSize) -> MatchSize:
    sides = (match_size,) if isinstance(match_size, int) else (match_size or ())
    if match_size is not None and (len(sides) not in (1, 2) or any(int(s) < 1 for s in sides)):
        raise ValueError(
            f"match_size must be None, a positive int or (height, width), got {match_size!r}"
        )
    return match_size


class SelfMatchingCAM(BaseCAM):
    """Self-Matching CAM: the image matched with every normalised, upsampled feature channel.

    1. `Ĩ = s(Resize_Q(I))`, `I` the mean of the input over its channels;
    2. `Ã_k = s(Up_Q(A_k))`, each channel normalised on its own;
    3. `Â_k = Ã_k ∘ Ĩ`;
    4. map `= Σ_k α_k Up_(H,W)(Â_k)`, then ReLU and `s`.

    Args:
        channel_weight: the `α` of step 4: `xgrad-cam` (the paper's default), `grad-cam`,
            `grad-cam++` or `relu-mean`.
        match_size: the matching grid Q; None (default) is the input size.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    ...                           torch.nn.Linear(4, 2))
    >>> SelfMatchingCAM(net, "1", match_size=8)(torch.rand(3, 2, 16, 16)).shape
    torch.Size([3, 16, 16])
    """

    name = "self-matching"

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec = None,
        *,
        channel_weight: str = "xgrad-cam",
        match_size: MatchSize = None,
        batch_size: int | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        super().__init__(model, target_layer, batch_size=batch_size, max_elements=max_elements)
        self._weights = weight_function(channel_weight)
        self.channel_weight = channel_weight
        self.match_size = check_match_size(match_size)

    def _map(self, x: Tensor, activations: Tensor, grads: Tensor | None, targets: Tensor) -> Tensor:
        size = match_grid(self.match_size, tuple(x.shape[-2:]))
        alpha = self._weights(activations, grads)
        matched = matched_sum(activations, alpha, matching_image(x, size), self.max_elements)
        # Σ_k α_k Up_(H,W)(Â_k) = Up_(H,W)(Σ_k α_k Â_k) by linearity; the Up comes before the
        # ending's ReLU, as the paper's step 4 has it.
        return resize(matched, tuple(x.shape[-2:]))
