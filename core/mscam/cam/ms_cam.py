"""MS-CAM: multi-weight self-matching class activation mapping (Sun et al., arXiv 2512.02344, 2025).

What is confirmed from the paper's abstract and a review of it: MS-CAM builds on Self-Matching CAM,
matches the SAR image with the feature maps *and their gradients*, and combines a channel-wise and
an element-wise weight, the element-wise weight being `ω_ele = ReLU(g)`.

What is **our reconstruction** (the full text was not available): the order of the steps below,
the channel weight being Grad-CAM's by default, the per-channel normalisation after the
element-wise weighting, and the matching grid Q = input size. Every other reading we considered
is a named option, so that the evaluation can compare them with numbers.

Default MS-CAM, with `A` the target layer's activations, `g = ∂y_c/∂A` and `I` the mean of the
input over its channels:

1. `ω_ele_k = ReLU(g_k)`                  element-wise weight, (h, w) per channel;
2. `ω_cha_k = mean_ij g_k`                channel-wise weight (Grad-CAM's);
3. `E_k = ω_ele_k ∘ A_k`                  the element-weighted map;
4. `Ẽ_k = s(Up_Q(E_k))`                   upsampled to Q and min-max normalised per channel;
5. `Ĩ = s(Resize_Q(I))`;
6. map `= Σ_k ω_cha_k · (Ẽ_k ∘ Ĩ)`, then ReLU, `Up_(H,W)` if Q is not the input size, and `s`.

Options:
- `channel_weight`: `grad-cam` (default) | `xgrad-cam` | `grad-cam++` | `relu-mean`
  (`mean_ij ReLU(g_k)`);
- `match_size`: the grid Q; None (default) is the input size, or an int or (height, width);
- `channel_norm`: the per-channel `s` of step 4, on (default) or off. Off, MS-CAM collapses to
  `Ĩ ∘ Up_Q(Σ_k ω_cha_k ω_ele_k ∘ A_k)`, an image-gated Grad-CAM×LayerCAM (an ablation);
- `matching`: `product` (default, steps 3–6) | `separate`: the feature term is
  `s(Up_Q(A_k)) ∘ Up_Q(ω_ele_k) ∘ Ĩ` (image, features and gradients matched as separate factors);
  with `channel_norm` off the `s` of that term is dropped too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mscam.cam.base import DEFAULT_MAX_ELEMENTS, BaseCAM, LayerSpec
from mscam.cam.ops import channel_chunk, channel_range, resize
from mscam.cam.self_matching import (
    MatchSize,
    check_match_size,
    match_grid,
    matched_sum,
    matching_image,
)
from mscam.cam.weights import channel_weight as weight_function

MATCHINGS = ("product", "separate")


class MSCAM(BaseCAM):
    """MS-CAM: Self-Matching CAM with a channel-wise and an element-wise weight (module docstring
    gives the formula and says which parts are reconstructed).

    Args:
        channel_weight: `grad-cam` (default), `xgrad-cam`, `grad-cam++` or `relu-mean`.
        match_size: the matching grid Q; None (default) is the input size.
        channel_norm: normalise each element-weighted channel on its own (default True).
        matching: `product` (default) or `separate`.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    ...                           torch.nn.Linear(4, 2))
    >>> maps = MSCAM(net, "1")(torch.rand(3, 2, 16, 16), targets=1)
    >>> maps.shape, bool(maps.min() >= 0), bool(maps.max() <= 1)
    (torch.Size([3, 16, 16]), True, True)
    """

    name = "ms-cam"

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec = None,
        *,
        channel_weight: str = "grad-cam",
        match_size: MatchSize = None,
        channel_norm: bool = True,
        matching: str = "product",
        batch_size: int | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        super().__init__(model, target_layer, batch_size=batch_size, max_elements=max_elements)
        if matching not in MATCHINGS:
            raise ValueError(
                f"unknown matching {matching!r}; choose one of: {', '.join(MATCHINGS)}"
            )
        self._weights = weight_function(channel_weight)
        self.channel_weight = channel_weight
        self.match_size = check_match_size(match_size)
        self.channel_norm = bool(channel_norm)
        self.matching = matching

    def _map(self, x: Tensor, activations: Tensor, grads: Tensor | None, targets: Tensor) -> Tensor:
        size = match_grid(self.match_size, tuple(x.shape[-2:]))
        image = matching_image(x, size)
        element = torch.relu(grads)  # ω_ele
        channel = self._weights(activations, grads)  # ω_cha
        if self.matching == "separate":
            return self._separate(activations, element, channel, image)
        weighted = element * activations  # E_k
        if self.channel_norm:
            return matched_sum(weighted, channel, image, self.max_elements)
        return resize(torch.einsum("bk,bkhw->bhw", channel, weighted), size) * image

    def _separate(
        self, activations: Tensor, element: Tensor, channel: Tensor, image: Tensor
    ) -> Tensor:
        """`Σ_k ω_cha_k · s(Up_Q(A_k)) ∘ Up_Q(ω_ele_k) ∘ Ĩ`, a chunk of channels at a time.

        The product of two upsampled maps is not linear in them, so the upsampled channels are
        needed; chunking bounds them to `max_elements`. Their normalisation is not: with `m_k, M_k`
        the min and max of `Up_Q(A_k)` and `c_k = ω_cha_k / (M_k − m_k)`, the sum is
        `Σ_k c_k Up_Q(A_k) ∘ Up_Q(ω_ele_k) − Up_Q(Σ_k c_k m_k ω_ele_k)`, so the ranges come from
        `channel_range` and the shift is resized once.
        """
        size = tuple(image.shape[-2:])
        if self.channel_norm:
            low, high = channel_range(activations, size, self.max_elements)
            span = high - low
            channel = torch.where(span > 0, channel / torch.where(span > 0, span, 1), 0)
            total = -resize(torch.einsum("bk,bkhw->bhw", channel * low, element), size)
        else:
            total = torch.zeros_like(image)
        chunk = channel_chunk(activations.shape[0], size, self.max_elements)
        for start in range(0, activations.shape[1], chunk):
            part = slice(start, start + chunk)
            features = resize(activations[:, part], size)
            gates = resize(element[:, part], size)
            total += torch.einsum("bk,bkhw->bhw", channel[:, part], features * gates)
        return total * image
