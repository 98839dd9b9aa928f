"""Faithfulness of explanation maps: does the model's score follow what the map says matters?

All tests run in torch on the model's device, batched (``batch_size`` perturbed images per
forward), under ``no_grad`` with the model in eval mode (its modes are restored afterwards).
Scores are softmax probabilities of the explained class ``c`` (the predicted class on ``x`` by
default); maps are (B, H, W) in [0, 1] at the input's size.

- Average Drop and Increase in Confidence (Chattopadhyay et al., Grad-CAM++, 2018):
  ``AD = 100/N Σ max(0, Y − O)/Y``, ``IC = 100/N Σ 1[Y < O]``.
- Deletion and insertion (Petsiuk et al., RISE, 2018): the area under the class probability as
  pixels are removed (inserted) in decreasing saliency order.
- Self-Matching CAM's occlusion and conservation tests (Feng et al., 2021): the relative drop
  ``100/N Σ (Y − O)/Y`` when the pixels with ``map ≥ 0.8`` are removed (occlusion) or are the only
  ones kept (conservation).

Removing a pixel means replacing it, in every channel, by a **baseline**. Zero and blur are not
neutral for SAR (0 dB is bright; a blurred ship is still a bright blob), so the baseline is a
parameter and every result reports the one it used:

- ``"mean"`` (default): the per-channel mean of ``x`` over the batch and the image, in the model's
  input units (NaN ignored). On chips drawn from one scene this is the scene mean, e.g. in dB;
  pass the true scene mean as a number (or one number per channel) when it is known.
- ``"zero"``: 0 in the input units; ``"blur"``: ``x`` under a Gaussian blur of ``blur_sigma``
  pixels (RISE's insertion start); a number, a per-channel sequence or (C,) tensor: a constant;
  a tensor broadcastable to ``x``: used as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mscam.cam.base import Targets, check_targets, eval_mode, model_device, resolve_targets

#: What replaces removed pixels: a name ("mean", "zero", "blur"), a constant, one constant per
#: channel, or a tensor broadcastable to the input.
BaselineSpec = str | float | Sequence[float] | Tensor

#: Self-Matching CAM's level: the pixels with map ≥ 0.8 are the explanation's evidence.
EVIDENCE_LEVEL = 0.8


def make_baseline(
    x: Tensor, baseline: BaselineSpec = "mean", blur_sigma: float = 5.0
) -> tuple[Tensor, dict[str, Any]]:
    """The image that removed pixels take their values from, broadcastable to ``x`` (B, C, H, W),
    and a JSON-serialisable description of it (name, and per-channel values or the blur sigma)."""
    channels = x.shape[1]
    if isinstance(baseline, str):
        if baseline == "mean":
            values = torch.nanmean(x.transpose(0, 1).reshape(channels, -1), dim=1)
            return values.view(1, channels, 1, 1), {"baseline": "mean", "values": values.tolist()}
        if baseline == "zero":
            zero = torch.zeros_like(x[:1, :, :1, :1])
            return zero, {"baseline": "zero", "values": [0.0] * channels}
        if baseline == "blur":
            if blur_sigma <= 0:
                raise ValueError(f"blur_sigma must be positive, got {blur_sigma}")
            return gaussian_blur(x, blur_sigma), {"baseline": "blur", "sigma": float(blur_sigma)}
        raise ValueError(f"unknown baseline {baseline!r}; use mean, zero, blur or numbers")
    values = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if values.ndim == 0:
        values = values.repeat(channels)
    if values.ndim == 1:
        if values.numel() != channels:
            raise ValueError(f"{values.numel()} baseline values for {channels} channels")
        return values.view(1, channels, 1, 1), {"baseline": "constant", "values": values.tolist()}
    try:
        torch.broadcast_shapes(values.shape, x.shape)
    except RuntimeError:
        shapes = f"{tuple(values.shape)} does not fit {tuple(x.shape)}"
        raise ValueError(f"baseline of shape {shapes}") from None
    return values, {"baseline": "tensor"}


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) per channel, radius ``⌈3σ⌉``, edges replicated."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    batch, channels, height, width = x.shape
    flat = x.reshape(batch * channels, 1, height, width)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(batch, channels, height, width)


def _prepare(model: nn.Module, x: Tensor, maps: Tensor) -> tuple[Tensor, Tensor]:
    if x.ndim != 4:
        raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
    if maps.ndim != 3 or maps.shape[0] != x.shape[0] or maps.shape[1:] != x.shape[2:]:
        raise ValueError(
            f"maps must be (B, H, W) = {(x.shape[0], *x.shape[2:])}, got {tuple(maps.shape)}"
        )
    device = model_device(model, x.device)
    x = x.detach().to(device)
    if not x.is_floating_point():
        x = x.float()
    return x, maps.detach().to(device=device, dtype=x.dtype)


def _scores(model: nn.Module, images: Tensor, targets: Tensor, batch_size: int) -> Tensor:
    """Softmax probability of ``targets[i]`` for ``images[i]``, ``batch_size`` images a forward."""
    out = []
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start : start + batch_size])
        chunk = targets[start : start + batch_size]
        out.append(torch.softmax(logits, dim=1).gather(1, chunk[:, None])[:, 0])
    return torch.cat(out)


def _targets_and_scores(
    model: nn.Module, x: Tensor, targets: Targets, batch_size: int
) -> tuple[Tensor, Tensor]:
    """The explained classes (predicted on ``x`` when None) and their probabilities Y on ``x``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    checked = check_targets(targets, x.shape[0])
    logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    chosen = resolve_targets(checked, logits)
    return chosen, torch.softmax(logits, dim=1).gather(1, chosen[:, None])[:, 0]


@dataclass(frozen=True)
class ConfidenceChange:
    """Average Drop and Increase in Confidence (percentages) with the per-sample Y and O."""

    average_drop: float
    increase_in_confidence: float
    scores: Tensor
    explained_scores: Tensor
    targets: Tensor
    baseline: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "average_drop": self.average_drop,
            "increase_in_confidence": self.increase_in_confidence,
            **self.baseline,
        }


def average_drop_increase(
    model: nn.Module,
    x: Tensor,
    maps: Tensor,
    targets: Targets = None,
    *,
    baseline: BaselineSpec | None = None,
    blur_sigma: float = 5.0,
    batch_size: int = 64,
) -> ConfidenceChange:
    """Average Drop ``100/N Σ max(0, Y − O)/Y`` and Increase in Confidence ``100/N Σ 1[Y < O]``.

    ``Y`` is the softmax score of class c on ``x`` and ``O`` its score on the explanation map
    applied to ``x``: by default the usual element-wise product ``x ∘ map`` (Grad-CAM++'s
    definition, the map broadcast over channels). With a ``baseline``, the map instead blends ``x``
    with it, ``map ∘ x + (1 − map) ∘ b``, so low-saliency pixels fade to a neutral SAR value rather
    than to 0 (which in dB is bright).

    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> r = average_drop_increase(net, torch.rand(3, 1, 2, 2), torch.ones(3, 2, 2))
    >>> r.average_drop, r.increase_in_confidence   # a map of ones changes nothing
    (0.0, 0.0)
    """
    x, maps = _prepare(model, x, maps)
    with torch.no_grad(), eval_mode(model):
        chosen, y = _targets_and_scores(model, x, targets, batch_size)
        weight = maps[:, None]
        if baseline is None:
            explained, description = x * weight, {"baseline": "none (x * map)"}
        else:
            base, description = make_baseline(x, baseline, blur_sigma)
            explained = weight * x + (1 - weight) * base
        o = _scores(model, explained, chosen, batch_size)
    drop = torch.clamp(y - o, min=0) / y.clamp(min=torch.finfo(y.dtype).tiny)
    return ConfidenceChange(
        average_drop=float(100 * drop.mean()),
        increase_in_confidence=float(100 * (y < o).to(y.dtype).mean()),
        scores=y.cpu(),
        explained_scores=o.cpu(),
        targets=chosen.cpu(),
        baseline=description,
    )


@dataclass(frozen=True)
class PerturbationCurve:
    """A deletion or insertion test: ``curves[b, k]`` is the class probability after step k,
    ``fractions[k]`` the share of pixels removed (inserted) by then, ``aucs`` the trapezoid areas
    and ``auc`` their mean."""

    mode: str
    auc: float
    aucs: Tensor
    curves: Tensor
    fractions: Tensor
    targets: Tensor
    baseline: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "auc": self.auc,
            "steps": self.fractions.numel() - 1,
            "curve": self.curves.mean(dim=0).tolist(),
            **self.baseline,
        }


def perturbation_curve(
    model: nn.Module,
    x: Tensor,
    maps: Tensor,
    targets: Targets = None,
    *,
    mode: str = "deletion",
    steps: int = 100,
    baseline: BaselineSpec = "mean",
    blur_sigma: float = 5.0,
    batch_size: int = 64,
) -> PerturbationCurve:
    """RISE's deletion (``mode="deletion"``) or insertion (``"insertion"``) test.

    Pixels are ranked by decreasing saliency (ties in raster order). At step ``k = 0 … steps``
    the first ``⌊k·n/steps⌋`` of the n pixels are removed from ``x`` (deletion: replaced by the
    baseline in every channel) or inserted into the baseline (insertion: taken from ``x``), and
    the class probability ``p_k`` is recorded. The area is the trapezoid rule over the share of
    pixels ``k/steps``: ``AUC = (Σ_k p_k − (p_0 + p_steps)/2) / steps``. A faithful map has a low
    deletion AUC and a high insertion AUC. The ``steps + 1`` images per sample are batched.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    x, maps = _prepare(model, x, maps)
    batch, _, height, width = x.shape
    pixels = height * width
    base, description = make_baseline(x, baseline, blur_sigma)
    base = base.expand_as(x)
    saliency = torch.nan_to_num(maps.flatten(1), nan=-math.inf)
    order = torch.argsort(-saliency, dim=1, stable=True)
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(pixels, device=x.device).expand(batch, -1)
    )
    counts = torch.arange(steps + 1, device=x.device) * pixels // steps
    with torch.no_grad(), eval_mode(model):
        chosen, _ = _targets_and_scores(model, x, targets, batch_size)
        probabilities = []
        for start in range(0, batch * (steps + 1), batch_size):
            flat = torch.arange(
                start, min(start + batch_size, batch * (steps + 1)), device=x.device
            )
            sample, step = flat // (steps + 1), flat % (steps + 1)
            changed = (rank[sample] < counts[step][:, None]).view(-1, 1, height, width)
            if mode == "deletion":
                images = torch.where(changed, base[sample], x[sample])
            else:
                images = torch.where(changed, x[sample], base[sample])
            probabilities.append(_scores(model, images, chosen[sample], images.shape[0]))
    curves = torch.cat(probabilities).view(batch, steps + 1)
    aucs = torch.trapezoid(curves, dx=1.0 / steps, dim=1)
    return PerturbationCurve(
        mode=mode,
        auc=float(aucs.mean()),
        aucs=aucs.cpu(),
        curves=curves.cpu(),
        fractions=(counts.to(torch.float64) / pixels).cpu(),
        targets=chosen.cpu(),
        baseline=description,
    )


@dataclass(frozen=True)
class EvidenceTest:
    """Self-Matching CAM's occlusion and conservation drops (percentages) and per-sample scores."""

    occlusion_drop: float
    conservation_drop: float
    scores: Tensor
    occluded_scores: Tensor
    conserved_scores: Tensor
    targets: Tensor
    level: float
    baseline: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "occlusion_drop": self.occlusion_drop,
            "conservation_drop": self.conservation_drop,
            "level": self.level,
            **self.baseline,
        }


def occlusion_conservation(
    model: nn.Module,
    x: Tensor,
    maps: Tensor,
    targets: Targets = None,
    *,
    level: float = EVIDENCE_LEVEL,
    baseline: BaselineSpec = "mean",
    blur_sigma: float = 5.0,
    batch_size: int = 64,
) -> EvidenceTest:
    """Self-Matching CAM's tests: the relative softmax drop ``100/N Σ (Y − O)/Y``, signed.

    Occlusion: ``O`` is the score with the evidence ``map ≥ level`` removed (replaced by the
    baseline); a faithful map gives a large drop. Conservation: ``O`` is the score with only the
    evidence kept (everything else replaced); a faithful map gives a small drop. The drops are not
    clamped: a negative value means the score rose.
    """
    x, maps = _prepare(model, x, maps)
    base, description = make_baseline(x, baseline, blur_sigma)
    evidence = (maps >= level)[:, None]
    with torch.no_grad(), eval_mode(model):
        chosen, y = _targets_and_scores(model, x, targets, batch_size)
        occluded = _scores(model, torch.where(evidence, base, x), chosen, batch_size)
        conserved = _scores(model, torch.where(evidence, x, base), chosen, batch_size)
    safe = y.clamp(min=torch.finfo(y.dtype).tiny)
    return EvidenceTest(
        occlusion_drop=float(100 * ((y - occluded) / safe).mean()),
        conservation_drop=float(100 * ((y - conserved) / safe).mean()),
        scores=y.cpu(),
        occluded_scores=occluded.cpu(),
        conserved_scores=conserved.cpu(),
        targets=chosen.cpu(),
        level=float(level),
        baseline=description,
    )
