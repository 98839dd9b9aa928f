"""The shared tensor operations of the CAM engine against their brute-force definitions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mscam.cam.ops import channel_range


@pytest.mark.parametrize(
    ("features", "size"),
    [
        ((8, 8), (128, 128)),  # ResNet layer4 on a 128 px chip
        ((5, 3), (20, 16)),  # non-integer scales
        ((7, 9), (7, 9)),  # identity
        ((16, 12), (5, 7)),  # downsampling
        ((1, 4), (6, 1)),  # one-pixel axes
        ((3, 3), (1000, 2)),
    ],
)
def test_channel_range_equals_the_range_of_the_upsampled_channels(features, size):
    torch.manual_seed(0)
    x = torch.randn(3, 6, *features, dtype=torch.float64)
    up = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    want_low, want_high = torch.aminmax(up.flatten(2), dim=-1)
    for max_elements in (1, 2**25):  # one channel at a time, or all at once
        low, high = channel_range(x, size, max_elements)
        assert torch.allclose(low, want_low, rtol=0, atol=1e-12)
        assert torch.allclose(high, want_high, rtol=0, atol=1e-12)


def test_channel_range_of_a_constant_channel_is_empty():
    x = torch.full((2, 3, 4, 4), 0.1)
    low, high = channel_range(x, (64, 64), 2**25)
    assert bool((high <= low).all())
