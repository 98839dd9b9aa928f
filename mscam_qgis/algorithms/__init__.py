"""The MS-CAM Processing algorithms, one module each."""

from .evaluate import EvaluateAlgorithm
from .explain import ExplainAlgorithm
from .localize import LocalizeAlgorithm
from .synthesize import SynthesizeAlgorithm

ALGORITHMS = (ExplainAlgorithm, LocalizeAlgorithm, EvaluateAlgorithm, SynthesizeAlgorithm)

__all__ = [
    "ALGORITHMS",
    "EvaluateAlgorithm",
    "ExplainAlgorithm",
    "LocalizeAlgorithm",
    "SynthesizeAlgorithm",
]
