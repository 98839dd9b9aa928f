"""Evaluation: WSOL localisation metrics, faithfulness tests and scene-level scores.

- :mod:`mscam.eval.boxes`: boxes of a map at a threshold (8-connected components), IoU.
- :mod:`mscam.eval.wsol`: BoxAcc, MaxBoxAcc, MaxBoxAccV2, Top-1 / GT-known Loc, PxAP (numpy).
- :mod:`mscam.eval.faithfulness`: Average Drop, Increase in Confidence, deletion / insertion,
  occlusion / conservation (torch, batched, on the model's device).
- :mod:`mscam.eval.scene`: a heatmap GeoTIFF against truth boxes in a GeoPackage (GDAL, lazily).
- :mod:`mscam.eval.sanity`: sanity controls (cascading model-parameter randomisation, Spearman
  against the trained maps, the image-only and element-wise-weight controls).
- :mod:`mscam.eval.sanity_scene`: the sanity check on a scene's hottest tiles and its figure
  (`mscam sanity`).

>>> import numpy as np
>>> from mscam.eval import box_iou
>>> float(box_iou([[0, 0, 1, 1]], [[0, 0, 3, 1]])[0, 0])   # 4 pixels of 8
0.5
"""

from mscam.eval.boxes import (
    box_iou,
    boxes_from_map,
    component_boxes,
    label_components,
    thresholded_components,
)
from mscam.eval.faithfulness import (
    EVIDENCE_LEVEL,
    ConfidenceChange,
    EvidenceTest,
    PerturbationCurve,
    average_drop_increase,
    gaussian_blur,
    make_baseline,
    occlusion_conservation,
    perturbation_curve,
)
from mscam.eval.sanity import (
    ChannelMeanMSCAM,
    SanityReport,
    cascading_randomisation,
    fully_randomised,
    image_gated_gradcam,
    image_only,
    sanity_check,
    spearman,
)
from mscam.eval.sanity_scene import scene_sanity
from mscam.eval.scene import (
    DEFAULT_THRESHOLDS,
    detection_scores,
    evaluate_scene,
    greedy_match,
    match_boxes,
    truth_pixel_boxes,
)
from mscam.eval.wsol import (
    IOU_DELTAS_V2,
    THRESHOLDS,
    PixelPRCurve,
    WSOLReport,
    best_ious,
    box_acc,
    box_acc_curve,
    box_accuracy,
    evaluate_wsol,
    localization_accuracy,
    max_box_acc,
    max_box_acc_v2,
    pxap,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "EVIDENCE_LEVEL",
    "IOU_DELTAS_V2",
    "THRESHOLDS",
    "ChannelMeanMSCAM",
    "ConfidenceChange",
    "EvidenceTest",
    "PerturbationCurve",
    "PixelPRCurve",
    "SanityReport",
    "WSOLReport",
    "average_drop_increase",
    "best_ious",
    "box_acc",
    "box_acc_curve",
    "box_accuracy",
    "box_iou",
    "boxes_from_map",
    "cascading_randomisation",
    "component_boxes",
    "detection_scores",
    "evaluate_scene",
    "evaluate_wsol",
    "fully_randomised",
    "gaussian_blur",
    "greedy_match",
    "image_gated_gradcam",
    "image_only",
    "label_components",
    "localization_accuracy",
    "make_baseline",
    "match_boxes",
    "max_box_acc",
    "max_box_acc_v2",
    "occlusion_conservation",
    "perturbation_curve",
    "pxap",
    "sanity_check",
    "scene_sanity",
    "spearman",
    "thresholded_components",
    "truth_pixel_boxes",
]
