"""The registry of CAM methods: name → class (what `mscam.METHODS` is).

Below `cam.options` (which reads each class's keyword options from it) and `cam.__init__`.
"""

from __future__ import annotations

from mscam.cam.base import BaseCAM
from mscam.cam.gradient import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from mscam.cam.ms_cam import MSCAM
from mscam.cam.score import ScoreCAM
from mscam.cam.self_matching import SelfMatchingCAM

METHODS: dict[str, type[BaseCAM]] = {
    cls.name: cls
    for cls in (
        MSCAM,
        SelfMatchingCAM,
        GradCAM,
        GradCAMPlusPlus,
        XGradCAM,
        LayerCAM,
        HiResCAM,
        ScoreCAM,
    )
}
