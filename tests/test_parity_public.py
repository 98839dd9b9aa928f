"""mscam's baselines equal the public implementations after the common post-processing.

Runs only where pytorch-grad-cam or torchcam is installed, i.e. in `.venv-bench`
(`make bench-public`); the main suite skips it, and bench/results/parity_public.md is the
committed evidence on the benchmark's ResNet. The comparison code is bench/parity_public.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mscam
import pytest
import torch
from conftest import make_splitnet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
parity_public = pytest.importorskip("parity_public")

GRAD_CAM, _ = parity_public.import_pytorch_grad_cam()
TORCHCAM, _ = parity_public.import_torchcam()
if GRAD_CAM is None and TORCHCAM is None:
    pytest.skip(
        "neither pytorch-grad-cam nor torchcam is installed (make bench-public)",
        allow_module_level=True,
    )

LIBRARIES = {"pytorch-grad-cam": GRAD_CAM, "torchcam": TORCHCAM}
TABLES = {"pytorch-grad-cam": parity_public.PYTORCH_GRAD_CAM, "torchcam": parity_public.TORCHCAM}
CASES = [
    (library, method)
    for library, table in TABLES.items()
    for method in table
    if (library, method) not in parity_public.KNOWN_DIFFERENCES
]


@pytest.fixture
def inputs() -> torch.Tensor:
    """Four non-square two-channel inputs (cv2 takes sizes as (width, height): catch a swap)."""
    return torch.rand(4, 2, 20, 16, generator=torch.Generator().manual_seed(3))


def public_raw(library: str, method: str, net, x, targets) -> torch.Tensor:
    lib = LIBRARIES[library]
    if lib is None:
        pytest.skip(f"{library} is not installed")
    if library == "pytorch-grad-cam":
        return parity_public.pytorch_grad_cam_maps(lib, method, net, "features", x, targets)[0]
    return parity_public.torchcam_raw(lib, method, net, "features", x, targets)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize(("library", "method"), CASES)
def test_maps_equal_the_public_implementation(library, method, signed, inputs):
    net = make_splitnet(signed=signed)
    targets = torch.tensor([0, 1, 2, 1])
    raw = public_raw(library, method, net, inputs, targets)
    theirs = parity_public.common_ending(raw, tuple(inputs.shape[-2:]))
    ours = mscam.explain(net, inputs, method, "features", targets=targets)
    assert torch.allclose(theirs, ours, atol=1e-5), float((theirs - ours).abs().max())


@pytest.mark.parametrize("method", ["grad-cam", "grad-cam++", "xgrad-cam", "layer-cam"])
def test_pytorch_grad_cam_end_to_end_output_equals_ours(method, inputs):
    """Its min-max, cv2 resize, min-max equals resize-then-min-max (min-max is affine)."""
    if GRAD_CAM is None:
        pytest.skip("pytorch-grad-cam is not installed")
    net, targets = make_splitnet(), torch.tensor([0, 1, 2, 1])
    _, final = parity_public.pytorch_grad_cam_maps(
        GRAD_CAM, method, net, "features", inputs, targets
    )
    ours = mscam.explain(net, inputs, method, "features", targets=targets)
    assert torch.allclose(final, ours, atol=1e-5), float((final - ours).abs().max())


def test_pytorch_grad_cam_score_cam_differs_only_by_its_mask_upsampling(monkeypatch, inputs):
    """The known difference, pinned: with align_corners=False masks its Score-CAM is ours."""
    if GRAD_CAM is None:
        pytest.skip("pytorch-grad-cam is not installed")

    class HalfPixelBilinear(torch.nn.Upsample):
        def __init__(self, size):
            super().__init__(size=size, mode="bilinear", align_corners=False)

    monkeypatch.setattr(torch.nn, "UpsamplingBilinear2d", HalfPixelBilinear)
    net, targets = make_splitnet(), torch.tensor([0, 1, 2, 1])
    raw, _ = parity_public.pytorch_grad_cam_maps(
        GRAD_CAM, "score-cam", net, "features", inputs, targets
    )
    theirs = parity_public.common_ending(raw, tuple(inputs.shape[-2:]))
    ours = mscam.explain(net, inputs, "score-cam", "features", targets=targets)
    assert torch.allclose(theirs, ours, atol=1e-5), float((theirs - ours).abs().max())
