"""WSOL and faithfulness metrics on hand-made cases with answers computed by hand."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
import torch
from mscam.eval import (
    PixelPRCurve,
    average_drop_increase,
    box_acc,
    box_acc_curve,
    box_iou,
    boxes_from_map,
    component_boxes,
    evaluate_wsol,
    gaussian_blur,
    label_components,
    localization_accuracy,
    make_baseline,
    max_box_acc,
    max_box_acc_v2,
    occlusion_conservation,
    perturbation_curve,
    pxap,
)
from torch import nn

# -- boxes and IoU --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 1, 1), (0, 0, 1, 1), 1.0),
        ((3, 4, 3, 4), (3, 4, 3, 4), 1.0),  # one pixel: area 1, not 0
        ((0, 0, 1, 1), (1, 1, 2, 2), 1 / 7),  # 1 shared pixel, 4 + 4 − 1
        ((0, 0, 3, 1), (2, 0, 5, 1), 4 / 12),  # 2×2 shared of two 4×2 boxes
        ((0, 0, 1, 1), (2, 0, 3, 1), 0.0),  # edge to edge: no shared pixel
        ((0, 0, 9, 9), (2, 3, 4, 4), 6 / 100),  # contained: 3×2 of 10×10
    ],
)
def test_iou_of_inclusive_boxes(a, b, expected):
    assert box_iou([a], [b])[0, 0] == pytest.approx(expected)
    assert box_iou([b], [a])[0, 0] == pytest.approx(expected)


def test_iou_is_pairwise_and_rejects_inverted_boxes():
    ious = box_iou([(0, 0, 1, 1), (5, 5, 6, 6)], [(0, 0, 1, 1), (1, 1, 2, 2), (5, 5, 6, 6)])
    np.testing.assert_allclose(ious, [[1, 1 / 7, 0], [0, 0, 1]])
    with pytest.raises(ValueError):
        box_iou([(2, 0, 1, 1)], [(0, 0, 1, 1)])


def _bfs_labels(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Reference: breadth-first flood fill in raster order, 8-connected."""
    labels, n = np.zeros(mask.shape, int), 0
    height, width = mask.shape
    for r in range(height):
        for c in range(width):
            if mask[r, c] and not labels[r, c]:
                n += 1
                labels[r, c] = n
                queue = deque([(r, c)])
                while queue:
                    y, x = queue.popleft()
                    for yy in range(max(y - 1, 0), min(y + 2, height)):
                        for xx in range(max(x - 1, 0), min(x + 2, width)):
                            if mask[yy, xx] and not labels[yy, xx]:
                                labels[yy, xx] = n
                                queue.append((yy, xx))
    return labels, n


def test_components_join_diagonal_neighbours_both_ways():
    diagonal = np.eye(4, dtype=bool)
    anti = np.fliplr(diagonal)
    for mask in (diagonal, anti, diagonal | anti):
        labels, n = label_components(mask)
        assert n == 1 and (labels[mask] == 1).all() and (labels[~mask] == 0).all()


def test_components_are_numbered_in_raster_order():
    mask = np.array([[0, 0, 0, 1, 1],
                     [1, 0, 0, 0, 0],
                     [1, 0, 1, 0, 0],
                     [0, 0, 0, 0, 1]], bool)  # fmt: skip
    labels, n = label_components(mask)
    assert n == 4
    np.testing.assert_array_equal(labels, [[0, 0, 0, 1, 1],
                                           [2, 0, 0, 0, 0],
                                           [2, 0, 3, 0, 0],
                                           [0, 0, 0, 0, 4]])  # fmt: skip
    boxes, sizes = component_boxes(labels, n)
    np.testing.assert_array_equal(boxes, [[3, 0, 4, 0], [0, 1, 0, 2], [2, 2, 2, 2], [4, 3, 4, 3]])
    np.testing.assert_array_equal(sizes, [2, 2, 1, 1])


def test_components_merge_arms_that_meet_late():
    # A "U" and a spiral: the arms get different roots first and must merge into one.
    u_shape = np.zeros((5, 5), bool)
    u_shape[:, 0] = u_shape[:, 4] = u_shape[4, :] = True
    spiral = np.zeros((7, 7), bool)
    spiral[0, :] = spiral[:, 6] = spiral[6, :] = spiral[2:, 0] = spiral[2, :5] = True
    spiral[2:5, 4] = spiral[4, 2:5] = True
    for mask in (u_shape, spiral):
        labels, n = label_components(mask)
        assert n == 1 and (labels[mask] == 1).all()


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (1, 7), (7, 1)])
def test_components_of_degenerate_shapes(shape):
    for fill in (False, True):
        mask = np.full(shape, fill)
        labels, n = label_components(mask)
        assert labels.shape == shape and n == (1 if fill and mask.size else 0)


def test_components_match_a_flood_fill_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(60):
        height, width = rng.integers(1, 24, size=2)
        mask = rng.random((height, width)) < rng.uniform(0.2, 0.8)
        labels, n = label_components(mask)
        expected, m = _bfs_labels(mask)
        assert n == m
        np.testing.assert_array_equal(labels, expected)


def test_v1_keeps_the_largest_component_and_v2_every_component():
    s = np.zeros((6, 8))
    s[1:4, 0:3] = 0.8  # large, not the peak
    s[4, 6] = 1.0  # small peak
    np.testing.assert_array_equal(boxes_from_map(s, 0.5, "v1"), [[0, 1, 2, 3]])
    np.testing.assert_array_equal(boxes_from_map(s, 0.5, "v2"), [[0, 1, 2, 3], [6, 4, 6, 4]])
    np.testing.assert_array_equal(boxes_from_map(s, 0.9, "v1"), [[6, 4, 6, 4]])
    np.testing.assert_array_equal(boxes_from_map(s, 0.0, "v2"), [[0, 0, 7, 5]])  # all ≥ 0
    with pytest.raises(ValueError):
        boxes_from_map(s, 0.5, "v3")


def test_boxes_skip_nan_and_a_blank_map_is_the_whole_image():
    s = np.full((4, 4), np.nan)
    s[1, 1] = 0.7
    np.testing.assert_array_equal(boxes_from_map(s, 0.0), [[1, 1, 1, 1]])
    np.testing.assert_array_equal(boxes_from_map(np.zeros((3, 5)), 0.5), [[0, 0, 4, 2]])
    assert boxes_from_map(np.full((3, 3), np.nan), 0.5).shape == (0, 4)


# -- BoxAcc, MaxBoxAcc, MaxBoxAccV2, localisation accuracy -----------------------------------------


def _three_maps() -> tuple[list[np.ndarray], list[list[tuple[int, int, int, int]]]]:
    """Map 1 works for τ > 0.4, map 2 for τ > 0.2, map 3 never."""
    one = np.full((5, 5), 0.4)
    one[1:4, 1:4] = 1.0  # τ ≤ 0.4: the whole 5×5 box, IoU 9/25 < 0.5
    two = np.full((4, 4), 0.2)
    two[0:2, 0:2] = 1.0  # τ ≤ 0.2: the whole 4×4 box, IoU 4/16
    three = np.zeros((8, 8))
    three[6:8, 6:8] = 1.0  # far from its truth; τ = 0 gives 8×8, IoU 4/64
    return [one, two, three], [[(1, 1, 3, 3)], [(0, 0, 1, 1)], [(0, 0, 1, 1)]]


def test_box_acc_curve_on_maps_with_known_working_thresholds():
    maps, truth = _three_maps()
    expected = np.array([0.0] * 21 + [1 / 3] * 20 + [2 / 3] * 59)  # τ = 0…0.20, 0.21…0.40, …
    np.testing.assert_allclose(box_acc_curve(maps, truth), expected)
    np.testing.assert_allclose(box_acc_curve(maps, truth, version="v2"), expected)
    assert box_acc(maps, truth, 0.3) == pytest.approx(1 / 3)
    assert box_acc(maps, truth, 0.41, delta=0.9) == pytest.approx(2 / 3)
    assert box_acc(maps, truth, 0.1, delta=0.3) == pytest.approx(1 / 3)  # map 1's 9/25 ≥ 0.3
    assert max_box_acc(maps, truth) == pytest.approx(2 / 3)


def test_an_image_counts_when_any_of_its_truth_boxes_matches():
    s = np.zeros((6, 6))
    s[4:6, 4:6] = 1.0
    assert box_acc([s], [[(0, 0, 1, 1), (4, 4, 5, 5)]], 0.5) == 1.0
    assert box_acc([s], [np.zeros((0, 4))], 0.5) == 0.0  # no truth: a miss


def test_max_box_acc_v2_by_hand():
    truth = [[(0, 0, 3, 3)]] * 3 + [[(0, 0, 1, 1)]]
    a, b, c, d = (np.zeros((8, 8)) for _ in range(4))
    a[0:3, 0:4] = 1.0  # 12 of 16 truth pixels: IoU 0.75
    b[0:2, 0:4] = 1.0  # IoU 8/16 = 0.5 exactly
    c[0:2, 0:2] = 1.0  # IoU 0.25
    d[5:8, 5:8] = 1.0  # a big decoy and, at half the heat, the truth itself:
    d[0:2, 0:2] = 0.5  # v2 finds it for τ ≤ 0.5, v1 (the largest) never does
    maps = [a, b, c, d]
    # δ = 0.3: a, b, d; δ = 0.5: a, b, d; δ = 0.7: a, d → (3/4 + 3/4 + 2/4) / 3.
    assert max_box_acc_v2(maps, truth) == pytest.approx(2 / 3)
    assert max_box_acc(maps, truth) == pytest.approx(2 / 4)  # v1, δ = 0.5: a and b
    np.testing.assert_allclose(box_acc_curve(maps, truth, 0.7, [0.5, 0.51], "v2"), [0.5, 0.25])
    report = evaluate_wsol(maps, truth)
    assert report.max_box_acc_v2 == pytest.approx(2 / 3)
    assert report.max_box_acc == pytest.approx(0.5) and report.best_threshold == 0.01
    assert set(report.box_acc_v2) == {0.3, 0.5, 0.7}


def test_top1_and_gt_known_loc():
    maps, truth = _three_maps()
    predicted, labels = [1, 0, 1], [1, 1, 1]
    top1, gt_known, tau = localization_accuracy(maps, truth, predicted, labels)
    # Best τ is 0.41: maps 1 and 2 localise; map 2's class is wrong.
    assert (top1, gt_known, tau) == (pytest.approx(1 / 3), pytest.approx(2 / 3), 0.41)
    top1, gt_known, tau = localization_accuracy(maps, truth, predicted, labels, tau=0.3)
    assert (top1, gt_known, tau) == (0.0, pytest.approx(1 / 3), 0.3)
    report = evaluate_wsol(maps, truth, predicted=torch.tensor(predicted), labels=labels)
    assert report.top1_loc == pytest.approx(1 / 3) and report.gt_known_loc == pytest.approx(2 / 3)
    assert report.to_dict()["box_acc"][41] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        localization_accuracy(maps, truth, [1, 0], labels)


# -- PxAP -----------------------------------------------------------------------------------------


def test_pxap_on_a_known_precision_recall_curve():
    s = np.array([[0.9, 0.6], [0.3, 0.1]])
    mask = np.array([[True, False], [True, False]])
    # τ ∈ (0.6, 0.9]: P 1, R ½; (0.3, 0.6]: P ½, R ½; (0.1, 0.3]: P ⅔, R 1; ≤ 0.1: P ½, R 1.
    assert pxap([s], [mask]) == pytest.approx(1 * 0.5 + 2 / 3 * 0.5)
    # Pooled over images: the same pixels split over two images give the same number.
    assert pxap([s[:1], s[1:]], [mask[:1], mask[1:]]) == pytest.approx(5 / 6)
    curve = PixelPRCurve()
    curve.update(torch.tensor(s), torch.tensor(mask))
    precision, recall = curve.curve()
    np.testing.assert_allclose(precision[[0, 20, 50, 80, 95]], [0.5, 2 / 3, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(recall[[0, 20, 50, 80, 95]], [1.0, 1.0, 0.5, 0.5, 0.0])


def test_pxap_extremes_and_nodata():
    s = np.array([[1.0, 0.0, np.nan], [0.7, 0.2, np.nan]])
    mask = np.array([[True, False, True], [True, False, False]])
    assert pxap([s], [mask]) == pytest.approx(1.0)  # NaN pixels are left out
    # Reversed: the negatives (1.0, 0.8) come first; P ⅓ at R ½ (τ ≤ 0.3), P ½ at R 1 (τ = 0).
    assert pxap([1 - s], [mask]) == pytest.approx(1 / 3 * 0.5 + 0.5 * 0.5)
    assert pxap([s], [np.zeros_like(mask)]) is None
    assert np.isnan(PixelPRCurve([0.5]).curve()[1]).all()


# -- faithfulness ---------------------------------------------------------------------------------


class Linear(nn.Module):
    """logits = (Σ_i x_i, 0): class 0's softmax is σ(Σ x)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("unused", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.flatten(1).sum(1)
        return torch.stack([total, torch.zeros_like(total)], dim=1)


class KeptShare(nn.Module):
    """Class 0's softmax is exactly ``p = Σ_i w_i x_i / Σ_i w_i`` (logits log p, log(1 − p))."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights.flatten().double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = (x.flatten(1) * self.weights).sum(1) / self.weights.sum()
        return torch.stack([torch.log(p), torch.log1p(-p)], dim=1)


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_average_drop_and_increase_in_confidence_by_hand():
    x = torch.stack([torch.ones(1, 2, 2), -torch.ones(1, 2, 2)]).double()
    maps = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    # Class 0 for both: Y = σ(4), O = σ(2) (a drop); Y = σ(−4), O = σ(−1) (an increase).
    result = average_drop_increase(Linear(), x, maps, targets=0)
    drop = (sigmoid(4) - sigmoid(2)) / sigmoid(4)
    assert result.average_drop == pytest.approx(100 * drop / 2)
    assert result.increase_in_confidence == pytest.approx(50.0)
    np.testing.assert_allclose(result.explained_scores, [sigmoid(2), sigmoid(-1)])
    # Predicted classes (0, then 1): sample 2 drops from σ(4) to 1 − σ(−1) = σ(1).
    result = average_drop_increase(Linear(), x, maps)
    assert result.targets.tolist() == [0, 1]
    other = (sigmoid(4) - sigmoid(1)) / sigmoid(4)
    assert result.average_drop == pytest.approx(100 * (drop + other) / 2)
    assert result.increase_in_confidence == 0.0
    assert result.to_dict()["baseline"] == "none (x * map)"
    # With a baseline b the map blends: m x + (1 − m) b; b = 0.5: sample 1 sums to 1 + 1 + 0.5·2.
    result = average_drop_increase(Linear(), x[:1], maps[:1], 0, baseline=0.5)
    assert result.explained_scores.item() == pytest.approx(sigmoid(3))
    assert result.baseline == {"baseline": "constant", "values": [0.5]}


def test_deletion_and_insertion_auc_of_a_linear_probability():
    # p = share of kept pixels; 16 pixels in 4 steps: p = 1, ¾, ½, ¼, 0 → AUC ½, any order.
    model = KeptShare(torch.ones(4, 4))
    x = torch.ones(2, 1, 4, 4, dtype=torch.float64)
    maps = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0))
    deletion = perturbation_curve(model, x, maps, steps=4, baseline="zero")
    np.testing.assert_allclose(deletion.curves, [[1, 0.75, 0.5, 0.25, 0]] * 2, atol=1e-12)
    np.testing.assert_allclose(deletion.fractions, [0, 0.25, 0.5, 0.75, 1])
    assert deletion.auc == pytest.approx(0.5)
    insertion = perturbation_curve(model, x, maps, mode="insertion", steps=16, baseline="zero")
    assert insertion.auc == pytest.approx(0.5)
    assert insertion.curves[0, 3].item() == pytest.approx(3 / 16)
    assert deletion.to_dict()["baseline"] == "zero" and deletion.to_dict()["steps"] == 4


def test_deletion_and_insertion_reward_the_right_order():
    # Only pixel (0, 0) matters: a map that ranks it first deletes it at once.
    weights = torch.zeros(2, 2)
    weights[0, 0] = 1.0
    model = KeptShare(weights)
    x = torch.ones(2, 1, 2, 2, dtype=torch.float64)
    good = torch.tensor([[0.9, 0.1], [0.2, 0.3]])
    maps = torch.stack([good, 1 - good])  # sample 2 ranks pixel (0, 0) last
    deletion = perturbation_curve(model, x, maps, steps=4, baseline="zero")
    np.testing.assert_allclose(deletion.curves, [[1, 0, 0, 0, 0], [1, 1, 1, 1, 0]])
    np.testing.assert_allclose(deletion.aucs, [0.125, 0.875])
    insertion = perturbation_curve(model, x, maps, mode="insertion", steps=4, baseline="zero")
    np.testing.assert_allclose(insertion.aucs, [0.875, 0.125])
    # Ties go in raster order: a constant map removes pixel (0, 0) first.
    flat = perturbation_curve(model, x[:1], torch.zeros(1, 2, 2), steps=4, baseline="zero")
    assert flat.auc == pytest.approx(0.125)


def test_default_baseline_is_the_channel_mean_and_is_reported():
    model = KeptShare(torch.ones(3, 3))
    x = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    result = perturbation_curve(model, x, torch.rand(1, 3, 3), steps=3)
    assert result.baseline == {"baseline": "mean", "values": [1.0]}
    assert result.auc == pytest.approx(1.0)  # replacing ones by their mean removes nothing
    base, description = make_baseline(torch.tensor([[[[1.0, 3.0]], [[10.0, float("nan")]]]]))
    assert description == {"baseline": "mean", "values": [2.0, 10.0]}
    assert base.shape == (1, 2, 1, 1)
    with pytest.raises(ValueError):
        make_baseline(x, "noise")
    with pytest.raises(ValueError):
        make_baseline(x, [1.0, 2.0])


def test_blur_baseline_keeps_constants_and_mass():
    constant = torch.full((1, 2, 9, 9), 3.0, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(constant, 1.5), constant)
    impulse = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    impulse[0, 0, 10, 10] = 1.0
    blurred, description = make_baseline(impulse, "blur", blur_sigma=2.0)
    assert blurred.sum().item() == pytest.approx(1.0) and blurred[0, 0, 10, 10] < 0.1
    assert description == {"baseline": "blur", "sigma": 2.0}


def test_curves_do_not_depend_on_the_batch_size_and_restore_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, 4),
    )
    model.train()
    x, maps = torch.randn(3, 2, 6, 5), torch.rand(3, 6, 5)
    one = perturbation_curve(model, x, maps, steps=7, batch_size=1, baseline="blur")
    many = perturbation_curve(model, x, maps, steps=7, batch_size=64, baseline="blur")
    torch.testing.assert_close(one.curves, many.curves)
    assert model.training and all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError):
        perturbation_curve(model, x, maps[:, :5], steps=7)
    with pytest.raises(ValueError):
        perturbation_curve(model, x, maps, mode="both")


def test_occlusion_and_conservation_drops_by_hand():
    # p = (3 x₀ + x₁) / 4 on ones: Y = 1.
    model = KeptShare(torch.tensor([[3.0, 1.0], [0.0, 0.0]]))
    x = torch.ones(2, 1, 2, 2, dtype=torch.float64)
    maps = torch.tensor([[[0.9, 0.5], [0.85, 0.1]], [[0.9, 0.9], [0.9, 0.9]]])
    result = occlusion_conservation(model, x, maps, baseline="zero")
    # Sample 1, evidence = pixels 0 and 2: occluded p = ¼ (75 %), conserved p = ¾ (25 %).
    # Sample 2, evidence = every pixel: occluded p = 0 (100 %), conserved p = 1 (0 %).
    assert result.occlusion_drop == pytest.approx((75 + 100) / 2)
    assert result.conservation_drop == pytest.approx((25 + 0) / 2)
    np.testing.assert_allclose(result.occluded_scores, [0.25, 0.0], atol=1e-12)
    strict = occlusion_conservation(model, x, maps, baseline="zero", level=0.95)
    assert strict.occlusion_drop == pytest.approx(0.0)
    assert strict.conservation_drop == pytest.approx(100.0)
    assert strict.to_dict()["level"] == 0.95
