"""The MS-CAM Processing algorithms, one module each."""

from .batch import BatchAlgorithm
from .evaluate import EvaluateAlgorithm
from .explain import ExplainAlgorithm
from .localize import LocalizeAlgorithm
from .sanity import SanityAlgorithm
from .synthesize import SynthesizeAlgorithm

ALGORITHMS = (
    ExplainAlgorithm,
    BatchAlgorithm,
    LocalizeAlgorithm,
    EvaluateAlgorithm,
    SanityAlgorithm,
    SynthesizeAlgorithm,
)

__all__ = [
    "ALGORITHMS",
    "BatchAlgorithm",
    "EvaluateAlgorithm",
    "ExplainAlgorithm",
    "LocalizeAlgorithm",
    "SanityAlgorithm",
    "SynthesizeAlgorithm",
]
