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
    each axis (16 × 16 instead of 128 × 128 for an 8 × 8 map resized to 128 × 128).

    Those samples are `R F Cᵀ` with `R` and `C` the (taps × inputs) interpolation matrices of
    the two axes, two matrix products per chunk of maps: a gather along the last axis costs
    several times more on the CPU, and the products run as well on a GPU. Maps are processed in
    chunks so the intermediates stay below `max_elements` (large chunks: on a busy CPU each
    parallel operation's start costs more than cache misses do).
    """
    batch, channels, height, width = features.shape
    maps = features.reshape(batch * channels, height, width)
    # Resizing stays within the input's range, so a constant map's range is its value: such maps
    # (dead channels, or a zero element-wise weight as behind global pooling and a linear layer,
    # where the gradient is constant per channel) skip the sampling. The clamp below keeps a
    # sampled range within the input's despite rounding in the interpolation weights.
    floor, ceiling = torch.aminmax(maps.reshape(maps.shape[0], -1), dim=-1)
    varying = (ceiling > floor).nonzero()[:, 0]
    if varying.numel() == 0:
        return floor.view(batch, channels), ceiling.view(batch, channels)
    if varying.numel() < maps.shape[0]:
        maps = maps.index_select(0, varying)
    rows = _tap_matrix(height, size[0], features)
    cols = _tap_matrix(width, size[1], features)
    per_map = rows.shape[0] * cols.shape[0] + 2 * height * cols.shape[0]
    chunk = max(1, max_elements // per_map)
    lows, highs = [], []
    for part in maps.split(chunk):
        count = part.shape[0]
        across = (part.reshape(-1, width) @ cols.T).view(count, height, -1)
        across = across.transpose(1, 2).reshape(-1, height)
        low, high = torch.aminmax((across @ rows.T).view(count, -1), dim=-1)
        lows.append(low)
        highs.append(high)
    low = torch.maximum(torch.cat(lows), floor[varying])
    high = torch.minimum(torch.cat(highs), ceiling[varying])
    floor = floor.index_copy(0, varying, low)
    ceiling = ceiling.index_copy(0, varying, high)
    return floor.view(batch, channels), ceiling.view(batch, channels)


def _tap_matrix(n_in: int, n_out: int, like: Tensor) -> Tensor:
    """(taps, n_in): row t interpolates the t-th output position of `_extreme_taps`."""
    lower, upper, weight = _extreme_taps(n_in, n_out, like)
    matrix = torch.zeros(lower.numel(), n_in, device=like.device, dtype=like.dtype)
    taps = torch.arange(lower.numel(), device=like.device)
    # Past the last input position both taps are the same index: the weights add up to 1 there.
    matrix.index_put_((taps, lower), 1 - weight, accumulate=True)
    matrix.index_put_((taps, upper), weight, accumulate=True)
    return matrix


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


def channel_chunk(batch: int, size: tuple[int, int], max_elements: int) -> int:
    """How many channels fit at once when each costs `batch·H·W` elements."""
    return max(1, max_elements // max(1, batch * size[0] * size[1]))
