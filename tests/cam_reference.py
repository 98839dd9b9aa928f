"""Straight transcriptions of docs/method.md, one image and one channel at a time, in
float64. Slow on purpose: they are the yardstick the batched engine is measured against."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor


def s(m: Tensor) -> Tensor:
    lo, hi = m.min(), m.max()
    return torch.zeros_like(m) if hi - lo <= 0 else (m - lo) / (hi - lo)


def up(m: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(m[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def activations_and_grads(net, x: Tensor, target: int) -> tuple[Tensor, Tensor, Tensor]:
    """A (K, h, w), g = ∂y_c/∂A (K, h, w) and the logits, for one image, via net.features/head."""
    with torch.enable_grad():
        a = net.features(x[None].double()).detach().requires_grad_(True)
        logits = net.head(a)
        (g,) = torch.autograd.grad(logits[0, target], a)
    return a.detach()[0], g[0], logits.detach()[0]


def channel_weights(name: str, a: Tensor, g: Tensor) -> Tensor:
    k = a.shape[0]
    out = torch.zeros(k, dtype=a.dtype)
    for i in range(k):
        gi, ai = g[i], a[i]
        if name == "grad-cam":
            out[i] = gi.mean()
        elif name == "relu-mean":
            out[i] = gi.clamp(min=0).mean()
        elif name == "xgrad-cam":
            out[i] = (gi * ai).sum() / (ai.sum() + 1e-7)
        elif name == "grad-cam++":
            total = 0.0
            for y in range(gi.shape[0]):
                for x in range(gi.shape[1]):
                    gv = gi[y, x]
                    if gv == 0:
                        continue
                    aij = gv**2 / (2 * gv**2 + ai.sum() * gv**3 + 1e-6)
                    total += aij * max(float(gv), 0.0)
            out[i] = total
        else:
            raise ValueError(name)
    return out


def ending(m: Tensor, size: tuple[int, int], normalize: bool) -> Tensor:
    m = m.clamp(min=0)
    if tuple(m.shape) != tuple(size):
        m = up(m, size)
    return s(m) if normalize else m


def reference_map(
    method: str, net, x: Tensor, target: int, normalize: bool = True, **options
) -> Tensor:
    """The map of `method` for one image x (C, H, W), per the spec's formulas."""
    size = tuple(x.shape[-2:])
    net = copy.deepcopy(net).double().eval()
    for module in net.modules():  # a leaf A cannot go through in-place ops
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    x = x.double()
    a, g, _ = activations_and_grads(net, x, target)
    k = a.shape[0]
    image = x.double().mean(0)
    if method in ("grad-cam", "grad-cam++", "xgrad-cam"):
        alpha = channel_weights(method, a, g)
        return ending(sum(alpha[i] * a[i] for i in range(k)), size, normalize)
    if method == "layer-cam":
        return ending(sum(g[i].clamp(min=0) * a[i] for i in range(k)), size, normalize)
    if method == "hires-cam":
        return ending(sum(g[i] * a[i] for i in range(k)), size, normalize)
    if method == "score-cam":
        scores = []
        for i in range(k):
            mask = s(up(a[i], size))
            with torch.no_grad():
                scores.append(net(x[None].double() * mask)[0, target])
        alpha = torch.softmax(torch.stack(scores), 0)
        return ending(sum(alpha[i] * up(a[i], size) for i in range(k)), size, normalize)
    q = options.get("match_size") or size
    q = (q, q) if isinstance(q, int) else tuple(q)
    img_q = s(up(image, q))
    if method == "self-matching":
        alpha = channel_weights(options.get("channel_weight", "xgrad-cam"), a, g)
        m = sum(alpha[i] * up(s(up(a[i], q)) * img_q, size) for i in range(k))
        return ending(m, size, normalize)
    if method == "ms-cam":
        w_cha = channel_weights(options.get("channel_weight", "grad-cam"), a, g)
        w_ele = g.clamp(min=0)
        norm = options.get("channel_norm", True)
        if options.get("matching", "product") == "separate":
            terms = []
            for i in range(k):
                feat = up(a[i], q)
                feat = s(feat) if norm else feat
                terms.append(w_cha[i] * feat * up(w_ele[i], q) * img_q)
            return ending(sum(terms), size, normalize)
        if norm:
            m = sum(w_cha[i] * s(up(w_ele[i] * a[i], q)) * img_q for i in range(k))
        else:
            m = img_q * up(sum(w_cha[i] * w_ele[i] * a[i] for i in range(k)), q)
        return ending(m, size, normalize)
    raise ValueError(method)
