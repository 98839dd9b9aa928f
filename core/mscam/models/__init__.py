"""Models: CNN architectures for SAR chips, the model card, and safe loading and saving.

A model is a folder holding ``card.json`` (a ``ModelCard``) and the weights file it names. Load
one with ``load_model(path)`` (or ``load_model()`` for the bundled default model, the dual-pol
one); weights are only ever read with ``torch.load(weights_only=True)``. Two models are bundled,
dual-pol and single-pol: ``choose_bundled_model`` picks one from a scene's band roles.
"""

from mscam.models.architectures import (
    ARCHITECTURES,
    DEFAULT_TARGET_LAYERS,
    CompactCNN,
    CompactFCN,
    ResNet18SAR,
    build_architecture,
    register_architecture,
)
from mscam.models.card import CARD_FILE_NAME, INPUT_UNITS, ModelCard
from mscam.models.loading import DEFAULT_CARD_PATH, LoadedModel, load_model, save_model
from mscam.models.select import (
    DUAL_POL_CARD_PATH,
    FINE_DUAL_POL_CARD_PATH,
    FINE_SINGLE_POL_CARD_PATH,
    SINGLE_POL_CARD_PATH,
    ModelChoice,
    choose_bundled_model,
)

__all__ = [
    "ARCHITECTURES",
    "CARD_FILE_NAME",
    "DEFAULT_CARD_PATH",
    "DEFAULT_TARGET_LAYERS",
    "DUAL_POL_CARD_PATH",
    "FINE_DUAL_POL_CARD_PATH",
    "FINE_SINGLE_POL_CARD_PATH",
    "INPUT_UNITS",
    "SINGLE_POL_CARD_PATH",
    "CompactCNN",
    "CompactFCN",
    "LoadedModel",
    "ModelCard",
    "ModelChoice",
    "ResNet18SAR",
    "build_architecture",
    "choose_bundled_model",
    "load_model",
    "register_architecture",
    "save_model",
]
