"""The bundled default model: loads safely, classifies fresh synthetic chips, and its recipe is
deterministic."""

from __future__ import annotations

import torch
from mscam.models import load_model
from mscam.models.train import TrainConfig, to_input, train
from mscam.sar.chips import build_chips


def test_default_model_classifies_unseen_chips():
    loaded = load_model()  # the bundled model, weights_only loading
    card = loaded.card
    assert card.target_classes == ["ship"] and card.input_channels == ["VV", "VH"]
    chips = build_chips(25, chip_size=card.chip_size, seed=424242)  # scenes never trained on
    assert list(chips.class_names) == card.classes
    with torch.no_grad():
        predicted = loaded.model(to_input(chips.x)).argmax(1)
    labels = torch.as_tensor(chips.labels)
    accuracy = float((predicted == labels).float().mean())
    sea = labels == card.classes.index("sea")
    assert accuracy >= 0.75, accuracy
    assert float((predicted[sea] == labels[sea]).float().mean()) >= 0.9


def test_training_recipe_is_deterministic_for_a_seed(tmp_path):
    config = TrainConfig(width=4, train_per_class=12, test_per_class=4, epochs=1, batch=16)
    first, card, report = train(config, tmp_path / "a")
    second, _, _ = train(config, tmp_path / "b")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert card.classes == ["ship", "sea", "land", "bright"]
    assert (tmp_path / "a" / "card.json").exists() and (tmp_path / "a" / "weights.pt").exists()
    assert sum(map(sum, report.confusion)) == 4 * 4
    assert load_model(tmp_path / "a").card.training["config"]["seed"] == 0
