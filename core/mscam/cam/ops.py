"""Tensor operations every CAM method shares: the min-max `s(·)` and the bilinear `Up_S(·)`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def minmax(maps: Tensor) -> Tensor:
    """`s(·)`: min-max each map to [0, 1] over its last two (spatial) axes.

    A constant map becomes all zeros, never NaN (an empty tile must stay cold).
    """
    flat = maps.flatten(-2)
    low, high = torch.aminmax(flat, dim=-1)
    span = (high - low)[..., None, None]
    safe = torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, (maps - low[..., None, None]) / safe, torch.zeros_like(maps))


def resize(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """`Up_S(·)`: bilinear resize of the last two axes to `size`, `align_corners=False`.

    Accepts (..., h, w); a map already at `size` is returned unchanged (bilinear at scale 1 is the
    identity, so skipping it is exact).
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:])
    out = F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False)
    return out.reshape(*lead, *size)


def channel_range(
    features: Tensor, size: tuple[int, int], max_elements: int
) -> tuple[Tensor, Tensor]:
    """Per-channel min and max of `Up_size(features)` for (B, K, h, w) features, (B, K) each.

    Exact without upsampling every channel to `size`: along one axis, bilinear resizing
    (`align_corners=False`) samples a piecewise-linear function whose pieces join at the input
    positions (and which is constant beyond the first and last), so over the samples that fall in
    one piece its extremes lie at the piece's first or last sample. In 2-D each cell is bilinear,
    hence the extremes of `Up(F)` lie on those rows × those columns: two per input position along
    each axis (16 × 16 instead of 128 × 128 for an 8 × 8 map resized to 128 × 128). Channels are
    processed in chunks so the intermediates stay below `max_elements`.
    """
    rows = _extreme_taps(features.shape[-2], size[0], features)
    cols = _extreme_taps(features.shape[-1], size[1], features)
    per_channel = features.shape[0] * max(features.shape[-2], rows[0].numel()) * cols[0].numel()
    chunk = max(1, max_elements // max(1, per_channel))
    lows, highs = [], []
    for part in features.split(chunk, dim=1):
        sampled = _interpolate_taps(_interpolate_taps(part, *cols, dim=-1), *rows, dim=-2)
        low, high = torch.aminmax(sampled.flatten(2), dim=-1)
        # Resizing stays within the input's range; clamping to it keeps a constant channel's
        # range exactly empty despite rounding in the interpolation weights.
        floor, ceiling = torch.aminmax(part.flatten(2), dim=-1)
        lows.append(torch.maximum(low, floor))
        highs.append(torch.minimum(high, ceiling))
    return torch.cat(lows, dim=1), torch.cat(highs, dim=1)


def _extreme_taps(n_in: int, n_out: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The bilinear taps (lower index, upper index, upper weight) of the output positions of a
    resize from `n_in` to `n_out` that are the first or last of their piece (`channel_range`)."""
    # PyTorch's source position for align_corners=False, clamped at 0 below; past the last input
    # position both taps are the last one.
    source = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    source = source.clamp(min=0)
    lower = source.floor().clamp(max=n_in - 1)
    new_piece = lower[1:] != lower[:-1]
    keep = torch.ones(n_out, dtype=torch.bool)
    keep[1:-1] = new_piece[:-1] | new_piece[1:]
    lower, source = lower[keep], source[keep]
    upper = (lower + 1).clamp(max=n_in - 1)
    return (
        lower.long().to(like.device),
        upper.long().to(like.device),
        (source - lower).to(like.device, like.dtype),
    )


def _interpolate_taps(x: Tensor, lower: Tensor, upper: Tensor, weight: Tensor, dim: int) -> Tensor:
    """Linear interpolation of `x` along `dim` at the positions given by their taps."""
    shape = [1] * x.dim()
    shape[dim] = -1
    weight = weight.view(shape)
    return x.index_select(dim, lower) * (1 - weight) + x.index_select(dim, upper) * weight


def channel_chunk(batch: int, size: tuple[int, int], max_elements: int) -> int:
    """How many channels fit at once when each costs `batch·H·W` elements."""
    return max(1, max_elements // max(1, batch * size[0] * size[1]))
