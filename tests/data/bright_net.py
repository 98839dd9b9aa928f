"""A user architecture for the scene tests: a 'ship detector' whose evidence is known exactly.

Its features are `ReLU(mean_c(x) − t)` for two thresholds t, so only bright pixels carry
evidence; the ship logit minus the sea logit is `gain · mean(features) − 2`, so a tile of plain
sea scores p(ship) = sigmoid(−2) ≈ 0.12 and a tile holding a bright target scores near 1.
"""

import torch
from torch import nn


class BrightNet(nn.Module):
    def __init__(self, in_channels: int = 2, num_classes: int = 2, gain: float = 400.0) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, 2, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, num_classes)
        with torch.no_grad():
            self.features[0].weight.zero_()
            self.features[0].weight[:, :, 1, 1] = 1.0 / in_channels
            self.features[0].bias.copy_(torch.tensor([-0.6, -0.7]))
            self.fc.weight.zero_()
            self.fc.weight[1] = gain
            self.fc.bias.zero_()
            self.fc.bias[0] = 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))
