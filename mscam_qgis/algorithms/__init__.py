"""The MS-CAM Processing algorithms, one module each."""

from .evaluate import EvaluateAlgorithm
from .explain import ExplainAlgorithm
from .localize import LocalizeAlgorithm
from .sanity import SanityAlgorithm
from .synthesize import SynthesizeAlgorithm

ALGORITHMS = (
    ExplainAlgorithm,
    LocalizeAlgorithm,
    EvaluateAlgorithm,
    SanityAlgorithm,
    SynthesizeAlgorithm,
)

__all__ = [
    "ALGORITHMS",
    "EvaluateAlgorithm",
    "ExplainAlgorithm",
    "LocalizeAlgorithm",
    "SanityAlgorithm",
    "SynthesizeAlgorithm",
]
