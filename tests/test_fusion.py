"""Folding BatchNorm into convolutions: the same function, the same module names, the model kept."""

from __future__ import annotations

import mscam
import pytest
import torch
from mscam.models import CompactCNN, ResNet18SAR
from mscam.models.fusion import fold_batchnorm
from torch import nn


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and affine parameters, as after training; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
    return model.eval()


@pytest.mark.parametrize(
    ("model", "layer", "n_bn"),
    [
        (lambda: CompactCNN(2, 3, width=8), "block4", 4),
        (lambda: ResNet18SAR(2, 3, width=8), "layer4", 1 + 8 * 2 + 3),
    ],
)
def test_folding_keeps_the_function_names_and_maps(model, layer, n_bn):
    torch.manual_seed(0)
    original = trained_like(model())
    state = {k: v.clone() for k, v in original.state_dict().items()}
    folded = fold_batchnorm(original)
    # Every BatchNorm became an Identity and every module name still resolves.
    count = sum(isinstance(m, nn.BatchNorm2d) for m in original.modules())
    assert count == n_bn and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert {name for name, _ in folded.named_modules()} == {
        name for name, _ in original.named_modules()
    }
    x = torch.rand(5, 2, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), original(x), rtol=1e-4, atol=1e-5)
    for method in ("ms-cam", "grad-cam"):
        torch.testing.assert_close(
            mscam.explain(folded, x, method=method, target_layer=layer, targets=1),
            mscam.explain(original, x, method=method, target_layer=layer, targets=1),
            rtol=1e-4,
            atol=1e-4,
        )
    # The model given is untouched.
    assert all(torch.equal(v, state[k]) for k, v in original.state_dict().items())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in original.modules()) == n_bn


def test_a_kept_convolution_and_unknown_orders_are_not_folded():
    torch.manual_seed(1)
    model = trained_like(CompactCNN(1, 2, width=4))
    folded = fold_batchnorm(model, keep=["block4.0"])
    assert isinstance(folded.block4[1], nn.BatchNorm2d)  # block4.0's own output must not change
    assert isinstance(folded.block3[1], nn.Identity)

    class Reordered(nn.Module):  # BatchNorm *before* the convolution: not a foldable pair
        def __init__(self):
            super().__init__()
            self.bn1 = nn.BatchNorm2d(1)
            self.conv1 = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv1(self.bn1(x))

    other = trained_like(nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 1, 3), Reordered()))
    folded = fold_batchnorm(other)
    assert isinstance(folded[0], nn.BatchNorm2d) and isinstance(folded[2].bn1, nn.BatchNorm2d)
