"""Models: CNN architectures for SAR chips, the model card, and safe loading and saving.

A model is a folder holding ``card.json`` (a ``ModelCard``) and the weights file it names. Load
one with ``load_model(path)`` (or ``load_model()`` for the bundled default model); weights are
only ever read with ``torch.load(weights_only=True)``.
"""

from mscam.models.architectures import (
    ARCHITECTURES,
    DEFAULT_TARGET_LAYERS,
    CompactCNN,
    ResNet18SAR,
    build_architecture,
    register_architecture,
)
from mscam.models.card import CARD_FILE_NAME, INPUT_UNITS, ModelCard
from mscam.models.loading import DEFAULT_CARD_PATH, LoadedModel, load_model, save_model

__all__ = [
    "ARCHITECTURES",
    "CARD_FILE_NAME",
    "DEFAULT_CARD_PATH",
    "DEFAULT_TARGET_LAYERS",
    "INPUT_UNITS",
    "CompactCNN",
    "LoadedModel",
    "ModelCard",
    "ResNet18SAR",
    "build_architecture",
    "load_model",
    "register_architecture",
    "save_model",
]
