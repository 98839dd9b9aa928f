"""Score-CAM (Wang et al., CVPR Workshops 2020): channel weights from masked forwards."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mscam.cam.base import DEFAULT_MAX_ELEMENTS, BaseCAM, LayerSpec
from mscam.cam.ops import minmax, resize


class ScoreCAM(BaseCAM):
    """Score-CAM: `M_k = s(Up_(H,W)(A_k))`, `α = softmax_k(y_c(x ∘ M_k))`, map `Σ_k α_k Up(A_k)`.

    It needs K extra forwards per image (K = channels of the target layer). They run without
    hooks and without autograd, `score_batch` masked images at a time. The map is computed as
    `Up(Σ_k α_k A_k)`, equal to `Σ_k α_k Up(A_k)` because bilinear resizing is linear; the
    ending's ReLU comes after that Up, as the formula has it.

    Args:
        score_batch: masked images per extra forward (default 64).
    """

    name = "score-cam"
    needs_gradients = False

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec = None,
        *,
        score_batch: int = 64,
        batch_size: int | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        super().__init__(model, target_layer, batch_size=batch_size, max_elements=max_elements)
        if score_batch < 1:
            raise ValueError(f"score_batch must be at least 1, got {score_batch}")
        self.score_batch = score_batch

    def _map(self, x: Tensor, activations: Tensor, grads: Tensor | None, targets: Tensor) -> Tensor:
        batch, channels = activations.shape[:2]
        size = tuple(x.shape[-2:])
        pairs = torch.arange(batch * channels, device=x.device)
        scores = torch.empty(batch * channels, device=x.device, dtype=activations.dtype)
        with torch.no_grad():
            for start in range(0, pairs.numel(), self.score_batch):
                index = pairs[start : start + self.score_batch]
                sample, channel = index // channels, index % channels
                masks = minmax(resize(activations[sample, channel], size))
                logits = self.model(x[sample] * masks[:, None])
                scores[index] = logits.gather(1, targets[sample][:, None])[:, 0].to(scores.dtype)
        alpha = torch.softmax(scores.view(batch, channels), dim=1)
        return resize(torch.einsum("bk,bkhw->bhw", alpha, activations), size)
