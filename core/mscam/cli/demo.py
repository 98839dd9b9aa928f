"""`mscam demo`: a small end-to-end run that shows the engine working on this machine.

It builds a seeded toy CNN that has learned nothing, on purpose: the run shows the plumbing (every
method, batched, on a speckled SAR-like chip with one bright target) and how long each method
takes here. The scene pipeline replaces it with the bundled model on a synthetic scene.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from mscam.cam import METHODS, create_explainer


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run every CAM method on a toy model and chip")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--batch", type=int, default=8, help="chips per batch")
    parser.set_defaults(run=run)


def speckled_chips(batch: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Gamma(4.4) speckle on −18 dB sea, one +10 dB point target; [0, 1] over [−30, 10] dB."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    looks = 4.4
    sea = torch.distributions.Gamma(looks, looks).sample((batch, 2, size, size)) * 10 ** (-1.8)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.randint(8, size - 8, (batch, 2), generator=gen)
    for i, (cy, cx) in enumerate(centres.tolist()):
        sea[i] += 10.0 * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.0)
    db = 10 * torch.log10(sea.clamp_min(1e-5))
    return ((db + 30) / 40).clamp(0, 1)


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 16, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 2),
    )
    x = speckled_chips(args.batch)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in METHODS:
        cam = create_explainer(name, model, "4")
        start = time.perf_counter()
        maps = cam(x, targets=1)
        results[name] = maps
        print(
            f"{name:14s} {x.shape[0] / (time.perf_counter() - start):8.1f} chips/s  "
            f"maps {tuple(maps.shape)} in [{float(maps.min()):.2f}, {float(maps.max()):.2f}]"
        )
    torch.save({"x": x, **results}, args.out / "demo_maps.pt")
    print(f"maps of every method saved to {args.out / 'demo_maps.pt'}")
    return 0
