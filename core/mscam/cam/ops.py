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


def channel_range(features: Tensor, size: tuple[int, int], chunk: int) -> tuple[Tensor, Tensor]:
    """Per-channel min and max of `Up_size(features)` for (B, K, h, w) features, (B, K) each.

    Channels are upsampled `chunk` at a time so memory stays at B·chunk·H·W, not B·K·H·W.
    """
    lows, highs = [], []
    for start in range(0, features.shape[1], chunk):
        up = resize(features[:, start : start + chunk], size)
        low, high = torch.aminmax(up.flatten(2), dim=-1)
        lows.append(low)
        highs.append(high)
    return torch.cat(lows, dim=1), torch.cat(highs, dim=1)


def channel_chunk(batch: int, size: tuple[int, int], max_elements: int) -> int:
    """How many channels fit at once when each costs `batch·H·W` elements."""
    return max(1, max_elements // max(1, batch * size[0] * size[1]))
