"""Shared fixtures: tiny seeded CNNs whose CAMs the tests can recompute by hand or by formula."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True, scope="session")
def _release_gdal_before_qgis_exits(qgis_app):
    """pytest-qgis calls exitQgis (GDAL's teardown) when `qgis_app` ends; this fixture ends
    first and drops the engine's cached scene jobs, as the plugin does on unload (a GDAL dataset
    freed after that teardown segfaults the interpreter at exit)."""
    yield
    pipeline = sys.modules.get("mscam.scene.pipeline")
    if pipeline is not None:
        pipeline.release_cached_jobs()


@pytest.fixture(scope="module")
def plugin(qgis_processing, qgis_iface):
    """The mscam QGIS plugin loaded into pytest-qgis's QGIS (Processing provider, menu, dock)."""
    from mscam_qgis import classFactory

    loaded = classFactory(qgis_iface)
    loaded.initGui()
    yield loaded
    loaded.unload()


class SplitNet(nn.Module):
    """`head(features(x))`: the target layer is `features`, so a test can compute A and g itself."""

    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_splitnet(
    in_channels: int = 2,
    n_classes: int = 3,
    *,
    seed: int = 0,
    signed: bool = False,
    batchnorm: bool = True,
) -> SplitNet:
    """A small CNN with a non-linear head, so gradients vary over space and channels.

    `signed=True` ends the features with a convolution (activations of both signs), otherwise
    with a ReLU (non-negative activations, as after a conv block).
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, 6, 3, padding=1)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(6))
    layers += [nn.ReLU(inplace=True), nn.Conv2d(6, 5, 3, stride=2, padding=1)]
    if not signed:
        layers.append(nn.ReLU())
    head = nn.Sequential(
        nn.Conv2d(5, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, n_classes),
    )
    net = SplitNet(nn.Sequential(*layers), head)
    if batchnorm:
        # Non-trivial running statistics, so eval mode differs from train mode.
        with torch.no_grad():
            net.features[1].running_mean.uniform_(-0.2, 0.2)
            net.features[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture
def splitnet() -> SplitNet:
    return make_splitnet()


@pytest.fixture
def inputs() -> torch.Tensor:
    """Three non-square two-channel inputs."""
    return torch.rand(3, 2, 20, 16, generator=torch.Generator().manual_seed(1))
