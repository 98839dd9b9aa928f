"""Channel weights `α_k` computed from activations `A` and gradients `g`, both (B, K, h, w).

Each returns (B, K). They are shared by the channel-weight CAMs (Grad-CAM, Grad-CAM++,
XGrad-CAM) and by Self-Matching CAM and MS-CAM, which take any of them as an option.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

ChannelWeight = Callable[[Tensor, Tensor], Tensor]


def grad_cam_weights(activations: Tensor, grads: Tensor) -> Tensor:
    """Grad-CAM (Selvaraju 2017): `α_k = mean_ij g_k`."""
    return grads.mean(dim=(2, 3))


def grad_cam_pp_weights(activations: Tensor, grads: Tensor) -> Tensor:
    """Grad-CAM++ (Chattopadhyay 2018): `α_k = Σ_ij a_ij ReLU(g_ij)` with
    `a_ij = g² / (2g² + Σ_ab A_k,ab · g³ + 1e-6)` and `a = 0` where `g = 0`."""
    g2 = grads.pow(2)
    g3 = g2 * grads
    total = activations.sum(dim=(2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + total * g3 + 1e-6)
    alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
    return (alpha * F.relu(grads)).sum(dim=(2, 3))


def xgrad_cam_weights(activations: Tensor, grads: Tensor) -> Tensor:
    """XGrad-CAM (Fu 2020): `α_k = Σ_ij g_k,ij A_k,ij / (Σ_ij A_k,ij + 1e-7)`."""
    return (grads * activations).sum(dim=(2, 3)) / (activations.sum(dim=(2, 3)) + 1e-7)


def relu_mean_weights(activations: Tensor, grads: Tensor) -> Tensor:
    """`α_k = mean_ij ReLU(g_k)`: the mean of MS-CAM's element-wise weight."""
    return F.relu(grads).mean(dim=(2, 3))


CHANNEL_WEIGHTS: dict[str, ChannelWeight] = {
    "grad-cam": grad_cam_weights,
    "grad-cam++": grad_cam_pp_weights,
    "xgrad-cam": xgrad_cam_weights,
    "relu-mean": relu_mean_weights,
}


def channel_weight(name: str) -> ChannelWeight:
    """The channel-weight function called `name`; ValueError listing the known names."""
    try:
        return CHANNEL_WEIGHTS[name]
    except KeyError:
        known = ", ".join(CHANNEL_WEIGHTS)
        raise ValueError(f"unknown channel weight {name!r}; choose one of: {known}") from None
