"""The CAM engine against the formulas of docs/method.md, and its hygiene."""

from __future__ import annotations

import subprocess
import sys

import mscam
import pytest
import torch
from cam_reference import reference_map
from conftest import SplitNet, make_splitnet
from mscam.cam import METHODS, MSCAM, create_explainer
from mscam.cam.ops import minmax
from torch import nn

ATOL = 1e-5
ALL_METHODS = sorted(METHODS)


def engine_maps(method, net, x, targets, normalize=True, **options):
    return mscam.explain(
        net, x, method, "features", targets=targets, normalize=normalize, **options
    )


def reference_maps(method, net, x, targets, normalize=True, **options):
    return torch.stack(
        [
            reference_map(method, net, x[i], int(targets[i]), normalize, **options)
            for i in range(len(x))
        ]
    ).float()


# -- exact values on a network computed by hand ------------------------------------------------


def hand_net(w_class: list[list[float]]) -> SplitNet:
    """A (K=2) = (x, 2x) through a 1×1 conv; y_c = Σ_k W_ck mean(A_k), so g_k = W_ck / (h·w)."""
    conv = nn.Conv2d(1, 2, 1, bias=False)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
        head[2].weight.copy_(torch.tensor(w_class))
    return SplitNet(conv, head)


HAND_X = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])


def test_grad_cam_exact_values_on_hand_network():
    net = hand_net([[1.0, 1.0], [-1.0, 0.5]])
    # class 0: α = (1/4, 1/4), map = x/4 + 2x/4 = 3x/4 → raw [[0.75, 1.5], [2.25, 3]]
    raw = mscam.explain(net, HAND_X, "grad-cam", "features", targets=0, normalize=False)
    assert torch.allclose(raw[0], torch.tensor([[0.75, 1.5], [2.25, 3.0]]))
    norm = mscam.explain(net, HAND_X, "grad-cam", "features", targets=0)
    assert torch.allclose(norm[0], torch.tensor([[0.0, 1 / 3], [2 / 3, 1.0]]))
    # class 1: α = (-1/4, 1/8), map = -x/4 + 2x/8 = 0 everywhere → all zeros, never NaN
    zero = mscam.explain(net, HAND_X, "grad-cam", "features", targets=1)
    assert torch.equal(zero, torch.zeros_like(zero))


def test_ms_cam_exact_values_on_hand_network():
    net = hand_net([[1.0, 1.0], [1.0, -1.0]])
    sx = torch.tensor([[0.0, 1 / 3], [2 / 3, 1.0]])
    # class 0: ω_ele = 1/4 > 0 everywhere, Ẽ_k = s(x), Ĩ = s(x), ω_cha = 1/4 each:
    # map = (1/4 + 1/4) · s(x)²
    raw = mscam.explain(net, HAND_X, "ms-cam", "features", targets=0, normalize=False)
    assert torch.allclose(raw[0], 0.5 * sx**2)
    # class 1: ω_ele_1 = ReLU(-1/4) = 0 → E_1 = 0 → Ẽ_1 = 0; map = ω_cha_0 · s(x)² = s(x)²/4
    raw1 = mscam.explain(net, HAND_X, "ms-cam", "features", targets=1, normalize=False)
    assert torch.allclose(raw1[0], 0.25 * sx**2)
    norm = mscam.explain(net, HAND_X, "ms-cam", "features", targets=1)
    assert torch.allclose(norm[0], sx**2)


# -- parity with the formulas ------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("signed", [False, True])
def test_every_method_matches_its_formula(method, signed, inputs):
    net = make_splitnet(signed=signed)
    targets = [0, 2, 1]
    for normalize in (True, False):
        got = engine_maps(method, net, inputs, targets, normalize)
        want = reference_maps(method, net, inputs, targets, normalize)
        scale = max(1.0, float(want.abs().max()))
        assert torch.allclose(got, want, atol=ATOL * scale), (method, normalize)


MS_CAM_OPTIONS = [
    {"channel_weight": "xgrad-cam"},
    {"channel_weight": "grad-cam++"},
    {"channel_weight": "relu-mean"},
    {"match_size": 7},
    {"match_size": (12, 9)},
    {"channel_norm": False},
    {"channel_norm": False, "match_size": (6, 10)},
    {"matching": "separate"},
    {"matching": "separate", "channel_norm": False},
    {"matching": "separate", "match_size": 8, "channel_weight": "xgrad-cam"},
]


@pytest.mark.parametrize(
    "options", MS_CAM_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items())
)
@pytest.mark.parametrize("signed", [False, True])
def test_ms_cam_options_match_their_formula(options, signed, inputs):
    net = make_splitnet(signed=signed)
    targets = [1, 0, 2]
    got = engine_maps("ms-cam", net, inputs, targets, normalize=False, **options)
    want = reference_maps("ms-cam", net, inputs, targets, normalize=False, **options)
    assert torch.allclose(got, want, atol=ATOL * max(1.0, float(want.abs().max())))


@pytest.mark.parametrize(
    "options",
    [
        {"channel_weight": "grad-cam"},
        {"match_size": 6},
        {"match_size": (10, 4), "channel_weight": "grad-cam++"},
    ],
)
def test_self_matching_options_match_their_formula(options, inputs):
    net = make_splitnet(signed=True)
    targets = [2, 2, 0]
    got = engine_maps("self-matching", net, inputs, targets, normalize=False, **options)
    want = reference_maps("self-matching", net, inputs, targets, normalize=False, **options)
    assert torch.allclose(got, want, atol=ATOL * max(1.0, float(want.abs().max())))


def test_ms_cam_options_change_the_map(splitnet, inputs):
    """Each option really reaches the computation (a silently ignored option would pass parity
    only if the reference ignored it too)."""
    base = engine_maps("ms-cam", splitnet, inputs, [0, 1, 2])
    for options in MS_CAM_OPTIONS:
        assert not torch.allclose(
            base, engine_maps("ms-cam", splitnet, inputs, [0, 1, 2], **options)
        )


# -- batching, chunking, raw vs normalised ---------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_batch_equals_single_samples(method, splitnet, inputs):
    batch = engine_maps(method, splitnet, inputs, None)
    singles = torch.cat([engine_maps(method, splitnet, inputs[i : i + 1], None) for i in range(3)])
    assert torch.allclose(batch, singles, atol=1e-6)


@pytest.mark.parametrize("method", ["ms-cam", "self-matching", "score-cam"])
def test_chunking_over_samples_and_channels_changes_nothing(method, splitnet, inputs):
    whole = engine_maps(method, splitnet, inputs, [0, 1, 2], normalize=False)
    chunked = engine_maps(
        method, splitnet, inputs, [0, 1, 2], normalize=False, batch_size=2, max_elements=1
    )
    assert torch.allclose(whole, chunked, atol=1e-5)


def test_separate_matching_chunked_equals_whole(splitnet, inputs):
    whole = engine_maps("ms-cam", splitnet, inputs, None, matching="separate")
    chunked = engine_maps("ms-cam", splitnet, inputs, None, matching="separate", max_elements=1)
    assert torch.allclose(whole, chunked, atol=1e-6)


def test_score_cam_batches_of_masked_forwards_change_nothing(splitnet, inputs):
    one = engine_maps("score-cam", splitnet, inputs, None, score_batch=1)
    many = engine_maps("score-cam", splitnet, inputs, None, score_batch=1000)
    assert torch.allclose(one, many, atol=1e-6)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_normalised_is_minmax_of_raw(method, splitnet, inputs):
    raw = engine_maps(method, splitnet, inputs, None, normalize=False)
    norm = engine_maps(method, splitnet, inputs, None)
    assert bool((raw >= 0).all())
    assert torch.allclose(norm, minmax(raw), atol=1e-6)
    assert float(norm.min()) >= 0.0 and float(norm.max()) <= 1.0


def test_raw_maps_scale_with_the_evidence(inputs):
    """Raw maps stay comparable: doubling the class logit doubles the raw Grad-CAM map."""
    net = make_splitnet()
    raw = engine_maps("grad-cam", net, inputs, 1, normalize=False)
    with torch.no_grad():
        net.head[-1].weight.mul_(2)
        net.head[-1].bias.mul_(2)
    assert torch.allclose(
        engine_maps("grad-cam", net, inputs, 1, normalize=False), 2 * raw, atol=1e-5
    )


def test_compute_returns_logits_targets_and_keeps_only_chosen_samples(splitnet, inputs):
    cam = create_explainer("ms-cam", splitnet, "features")
    full = cam.compute(inputs)
    assert torch.equal(full.targets, full.logits.argmax(1))
    assert torch.allclose(full.logits, splitnet(inputs), atol=1e-6)
    keep_first_and_last = lambda logits, targets: torch.tensor([True, False, True])  # noqa: E731
    part = cam.compute(inputs, keep=keep_first_and_last)
    assert part.kept.tolist() == [True, False, True]
    assert torch.equal(part.maps[1], torch.zeros_like(part.maps[1]))
    assert torch.allclose(part.maps[[0, 2]], full.maps[[0, 2]], atol=1e-6)
    none = cam.compute(inputs, keep=lambda logits, targets: torch.zeros(3, dtype=torch.bool))
    assert not bool(none.maps.any())


# -- targets ----------------------------------------------------------------------------------


def test_targets_none_int_list_and_tensor(splitnet, inputs):
    predicted = splitnet(inputs).argmax(1)
    by_none = engine_maps("grad-cam", splitnet, inputs, None)
    assert torch.allclose(by_none, engine_maps("grad-cam", splitnet, inputs, predicted.tolist()))
    assert torch.allclose(
        engine_maps("grad-cam", splitnet, inputs, 2),
        engine_maps("grad-cam", splitnet, inputs, torch.tensor([2, 2, 2])),
    )


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (3, "out of range"),
        (-1, "out of range"),
        ([0, 1], "2 targets for 3"),
        ([0, 5, 1], "out of range"),
    ],
)
def test_bad_targets_raise_value_error(targets, message, splitnet, inputs):
    with pytest.raises(ValueError, match=message):
        engine_maps("grad-cam", splitnet, inputs, targets)


# -- inputs, layers, options --------------------------------------------------------------------


def test_one_channel_and_three_dimensional_input():
    net = make_splitnet(in_channels=1)
    x = torch.rand(1, 17, 23)
    maps = mscam.explain(net, x, target_layer="features")
    assert maps.shape == (1, 17, 23)
    assert torch.allclose(maps, mscam.explain(net, x[None], target_layer="features"))


def test_target_layer_by_module_name_or_automatic(splitnet, inputs):
    by_name = mscam.explain(splitnet, inputs, target_layer="features")
    by_module = mscam.explain(splitnet, inputs, target_layer=splitnet.features)
    assert torch.equal(by_name, by_module)
    # Automatic: the last module with a spatial output is head.1 (the ReLU after head's conv).
    auto = create_explainer("grad-cam", splitnet)
    auto(inputs)
    assert auto.target_layer is splitnet.head[1]


def test_unknown_method_layer_and_options_raise_value_error(splitnet, inputs):
    with pytest.raises(ValueError, match="unknown method 'gradcam'"):
        mscam.explain(splitnet, inputs, "gradcam")
    with pytest.raises(ValueError, match="unknown target layer 'layer9'"):
        mscam.explain(splitnet, inputs, target_layer="layer9")
    with pytest.raises(ValueError, match="not a module of this model"):
        mscam.explain(splitnet, inputs, target_layer=nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="unknown channel weight"):
        mscam.explain(splitnet, inputs, target_layer="features", channel_weight="mean")
    with pytest.raises(ValueError, match="unknown matching"):
        mscam.explain(splitnet, inputs, target_layer="features", matching="sum")
    with pytest.raises(ValueError, match="match_size"):
        mscam.explain(splitnet, inputs, target_layer="features", match_size=0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        mscam.explain(splitnet, torch.rand(16, 16), target_layer="features")
    with pytest.raises(ValueError, match="not called"):
        unused = SplitNet(nn.Conv2d(2, 2, 1), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        unused.spare = nn.Conv2d(2, 2, 1)
        mscam.explain(unused, inputs, target_layer="spare")
    with pytest.raises(ValueError, match=r"\(B, K, h, w\)"):
        mscam.explain(splitnet, inputs, target_layer="head.4")


# -- hygiene ------------------------------------------------------------------------------------


def all_hooks(net: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in net.modules()
    )


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("method", ALL_METHODS)
def test_model_state_hooks_and_grads_are_restored(method, inputs):
    net = make_splitnet()
    net.train()
    net.head.eval()  # mixed flags must come back exactly
    flags = [m.training for m in net.modules()]
    stats = net.features[1].running_mean.clone()
    net.head[-1].weight.grad = torch.ones_like(net.head[-1].weight)
    mscam.explain(net, inputs, method, "features")
    assert [m.training for m in net.modules()] == flags
    assert all_hooks(net) == 0
    assert torch.equal(net.features[1].running_mean, stats)  # eval mode: BN stats not updated
    assert torch.equal(net.head[-1].weight.grad, torch.ones_like(net.head[-1].weight))
    assert all(p.grad is None for name, p in net.named_parameters() if name != "head.4.weight")
    assert all(p.requires_grad for p in net.parameters())


@pytest.mark.parametrize("method", ["ms-cam", "score-cam", "grad-cam"])
@pytest.mark.parametrize("where", ["head", "keep"])
def test_state_is_restored_after_an_injected_exception(method, where, inputs):
    net = make_splitnet()
    net.train()
    keep = None
    if where == "head":

        def explode(module, args):
            raise Boom("injected")

        net.head[0].register_forward_pre_hook(explode)
    else:

        def keep(logits, targets):
            raise Boom("injected")

    with pytest.raises(Boom):
        create_explainer(method, net, "features").compute(inputs, keep=keep)
    assert all(m.training for m in net.modules())
    assert all_hooks(net) == (1 if where == "head" else 0)
    assert torch.is_grad_enabled()


def test_works_under_no_grad_and_with_frozen_parameters(inputs):
    net = make_splitnet()
    want = mscam.explain(net, inputs, target_layer="features")
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        got = mscam.explain(net, inputs, target_layer="features")
        assert not torch.is_grad_enabled()
    assert torch.allclose(got, want)
    assert not any(p.requires_grad for p in net.parameters())


@pytest.mark.parametrize("method", ["grad-cam", "ms-cam"])
def test_in_place_relu_after_the_target_layer_does_not_corrupt_activations(method, inputs):
    """The target layer's signed output is overwritten in place by the next ReLU: the maps must
    still be those of the layer's own output."""
    net = make_splitnet(signed=True)
    net.head.insert(0, nn.ReLU(inplace=True))
    got = engine_maps(method, net, inputs, [0, 1, 2], normalize=False)
    want = reference_maps(method, net, inputs, [0, 1, 2], normalize=False)
    assert torch.allclose(got, want, atol=1e-5)
    post_relu = mscam.explain(net, inputs, method, "head.0", targets=[0, 1, 2], normalize=False)
    assert not torch.allclose(got, post_relu, atol=1e-5)


def test_import_needs_neither_gdal_nor_qgis():
    code = (
        "import sys; sys.modules['osgeo'] = None; sys.modules['qgis'] = None\n"
        "import mscam, torch\n"
        "print(sorted(mscam.METHODS))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "ms-cam" in done.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_maps_on_cuda_equal_cpu(splitnet, inputs):
    cpu = mscam.explain(splitnet, inputs, target_layer="features")
    gpu = mscam.explain(splitnet.cuda(), inputs, target_layer="features")
    assert gpu.is_cuda
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-4)


# -- half-precision forwards: the CAM arithmetic stays in float32 -------------------------------


class _RecordingMSCAM(MSCAM):
    """MS-CAM that records the dtypes and the autocast state its `_map` ran with."""

    seen: list

    def _map(self, x, activations, grads, targets):
        self.seen.append((activations.dtype, grads.dtype, torch.is_autocast_enabled("cpu")))
        return super()._map(x, activations, grads, targets)


def test_under_bfloat16_autocast_the_cam_arithmetic_runs_in_float32():
    # The hand network's values (inputs 1..4, weights 1, 2 and ±1) are exact in bfloat16, so the
    # forward in bfloat16 is exact and the maps must equal the float32 ones to float32 rounding.
    net = hand_net([[1.0, 1.0], [-1.0, 0.5]])
    want = mscam.explain(net, HAND_X, "ms-cam", "features", targets=0)
    explainer = _RecordingMSCAM(net, "features")
    explainer.seen = []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = explainer.compute(HAND_X, 0)
    assert explainer.seen == [(torch.float32, torch.float32, False)]
    assert got.maps.dtype == torch.float32 and got.logits.dtype == torch.float32
    assert torch.allclose(got.maps, want, rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_pinned_input_and_fp16_autocast_on_cuda(splitnet, inputs):
    cpu = mscam.explain(splitnet, inputs, target_layer="features")
    net = splitnet.cuda()
    pinned = mscam.explain(net, inputs.pin_memory(), target_layer="features")
    assert torch.allclose(pinned.cpu(), cpu, atol=1e-4)
    with torch.autocast("cuda", dtype=torch.float16):
        half = mscam.explain(net, inputs.pin_memory(), target_layer="features")
    assert half.dtype == torch.float32 and bool(torch.isfinite(half).all())
    assert float((half.cpu() - cpu).abs().max()) < 0.05
