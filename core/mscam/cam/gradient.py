"""The gradient baselines: Grad-CAM, Grad-CAM++, XGrad-CAM (channel weights), LayerCAM and
HiResCAM (element-wise). Formulas: `docs/method.md`, notation `A`, `g = ∂y_c/∂A`."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from mscam.cam.base import BaseCAM
from mscam.cam.weights import channel_weight


class ChannelWeightCAM(BaseCAM):
    """A map `Σ_k α_k A_k` whose channel weights `α` come from `weights.CHANNEL_WEIGHTS`."""

    channel_weight: ClassVar[str]

    def _map(self, x: Tensor, activations: Tensor, grads: Tensor | None, targets: Tensor) -> Tensor:
        alpha = channel_weight(self.channel_weight)(activations, grads)
        return torch.einsum("bk,bkhw->bhw", alpha, activations)


class GradCAM(ChannelWeightCAM):
    """Grad-CAM (Selvaraju et al., ICCV 2017): `α_k = mean_ij g_k`, map `Σ_k α_k A_k`.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
    ...                           torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> GradCAM(net, "0")(torch.rand(2, 1, 16, 16)).shape
    torch.Size([2, 16, 16])
    """

    name = "grad-cam"
    channel_weight = "grad-cam"


class GradCAMPlusPlus(ChannelWeightCAM):
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018): `α_k = Σ_ij a_ij ReLU(g_ij)` with
    `a_ij = g² / (2g² + Σ_ab A_k,ab · g³ + 1e-6)` (0 where g = 0); map `Σ_k α_k A_k`."""

    name = "grad-cam++"
    channel_weight = "grad-cam++"


class XGradCAM(ChannelWeightCAM):
    """XGrad-CAM (Fu et al., BMVC 2020): `α_k = Σ_ij g_k A_k / (Σ_ij A_k + 1e-7)`; map
    `Σ_k α_k A_k`."""

    name = "xgrad-cam"
    channel_weight = "xgrad-cam"


class LayerCAM(BaseCAM):
    """LayerCAM (Jiang et al., IEEE TIP 2021): map `Σ_k ReLU(g_k) ∘ A_k` (element-wise)."""

    name = "layer-cam"

    def _map(self, x: Tensor, activations: Tensor, grads: Tensor | None, targets: Tensor) -> Tensor:
        return (torch.relu(grads) * activations).sum(dim=1)


class HiResCAM(BaseCAM):
    """HiResCAM (Draelos & Carin, 2020): map `Σ_k g_k ∘ A_k`."""

    name = "hires-cam"

    def _map(self, x: Tensor, activations: Tensor, grads: Tensor | None, targets: Tensor) -> Tensor:
        return (grads * activations).sum(dim=1)


def gradient_spread(model: nn.Module, target_layer: str, x: Tensor, class_index: int) -> float:
    """Mean over chips and channels of ``std_ij(g) / mean_ij |g|``, g = ∂y_c/∂A at the target
    layer: 0 when the gradient is constant within every channel (GAP + linear above the layer).
    Channels whose gradient is zero everywhere are left out."""
    model.eval()
    layer = model.get_submodule(target_layer)
    captured: dict[str, Tensor] = {}
    hook = layer.register_forward_hook(lambda _m, _i, out: captured.update(a=out))
    try:
        logits = model(x)
    finally:
        hook.remove()
    (grad,) = torch.autograd.grad(logits[:, class_index].sum(), captured["a"])
    flat = grad.detach().flatten(2).double()
    scale = flat.abs().mean(-1)
    used = scale > 0
    if not used.any():
        return 0.0
    return float((flat.std(-1, unbiased=False)[used] / scale[used]).mean())
