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


def test_channel_range_with_constant_and_varying_channels_mixed():
    """Constant maps skip the sampling; the varying ones around them keep their exact range."""
    torch.manual_seed(1)
    x = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    x[0, 1] = 0.0  # a dead channel
    x[1, 3] = -2.5  # a constant one
    x[1, 4, 2:, :] = 0.0  # varying in one corner only
    up = F.interpolate(x, size=(48, 40), mode="bilinear", align_corners=False)
    want_low, want_high = torch.aminmax(up.flatten(2), dim=-1)
    for max_elements in (1, 2**25):
        low, high = channel_range(x, (48, 40), max_elements)
        assert torch.allclose(low, want_low, rtol=0, atol=1e-12)
        assert torch.allclose(high, want_high, rtol=0, atol=1e-12)
    assert low[0, 1] == high[0, 1] == 0.0
    assert low[1, 3] == high[1, 3] == -2.5


def test_channel_range_of_all_constant_channels_is_their_value():
    x = torch.arange(6, dtype=torch.float32).view(1, 6, 1, 1).expand(1, 6, 3, 4)
    low, high = channel_range(x, (24, 32), 2**25)
    assert torch.equal(low, torch.arange(6, dtype=torch.float32)[None])
    assert torch.equal(high, low)
