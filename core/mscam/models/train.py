"""Training the default model on synthetic SAR chips: deterministic for a seed, minutes on a CPU.

The recipe (what `make model` runs): chips of the four classes `ship`, `sea`, `land`, `bright`
from synthetic Sentinel-1-like scenes (`mscam.sar.chips`), VV and VH in dB scaled by the fixed dB
windows of `mscam.sar.units.DB_WINDOWS`, random flips and 90° rotations, the `compact-cnn`
architecture, AdamW with a cosine schedule, and a held-out split built from other scene seeds for
the accuracy and confusion matrix that go to `bench/model/`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from mscam.models.architectures import DEFAULT_TARGET_LAYERS, build_architecture
from mscam.models.card import ModelCard
from mscam.models.loading import save_model
from mscam.sar.units import DB_WINDOWS, db_window

log = logging.getLogger(__name__)

CHANNELS = ("VV", "VH")


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the recipe; the defaults are what ships as the bundled model."""

    architecture: str = "compact-cnn"
    width: int = 32
    chip_size: int = 64
    train_per_class: int = 1500
    test_per_class: int = 300
    epochs: int = 12
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2


@dataclass
class TrainReport:
    config: TrainConfig
    classes: list[str]
    accuracy: float
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    per_class_recall: dict[str, float]
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "config": self.config.__dict__,
            "classes": self.classes,
            "accuracy": self.accuracy,
            "confusion": self.confusion,
            "per_class_recall": self.per_class_recall,
            "seconds": self.seconds,
            "history": self.history,
        }


def windows() -> list[tuple[float, float]]:
    return [DB_WINDOWS[c] for c in CHANNELS]


def to_input(chips_db: np.ndarray) -> Tensor:
    """(N, 2, S, S) dB chips → the model's input: fixed dB windows scaled to [0, 1]."""
    return torch.from_numpy(np.nan_to_num(db_window(chips_db, windows()), nan=0.0))


def augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random flips and 90° rotations: ships have any heading, so the labels do not change."""
    if torch.rand((), generator=generator) < 0.5:
        x = x.flip(-1)
    if torch.rand((), generator=generator) < 0.5:
        x = x.flip(-2)
    return x.rot90(int(torch.randint(0, 4, (), generator=generator)), dims=(-2, -1))


def evaluate(model: nn.Module, x: Tensor, y: Tensor, n_classes: int, batch: int = 256):
    """Accuracy and confusion matrix (rows true, columns predicted) of `model` on (x, y)."""
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long)
    confusion.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    return float((predicted == y).float().mean()), confusion


def train(
    config: TrainConfig, out_dir: Path | None = None, progress: Callable[[str], None] | None = None
) -> tuple[nn.Module, ModelCard, TrainReport]:
    """Train the recipe's model; save it (card + weights) to `out_dir` when given."""
    from mscam.sar.chips import build_chips

    say = progress or log.info
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    say(f"building {config.train_per_class} + {config.test_per_class} chips per class")
    train_set = build_chips(config.train_per_class, chip_size=config.chip_size, seed=config.seed)
    # The held-out chips come from scenes of other seeds: no scene is in both splits.
    test_set = build_chips(
        config.test_per_class, chip_size=config.chip_size, seed=config.seed + 10_000
    )
    classes = list(train_set.class_names)
    x_train, y_train = to_input(train_set.x), torch.as_tensor(train_set.labels, dtype=torch.long)
    x_test, y_test = to_input(test_set.x), torch.as_tensor(test_set.labels, dtype=torch.long)

    model = build_architecture(
        config.architecture, in_channels=len(CHANNELS), num_classes=len(classes), width=config.width
    )
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps = config.epochs * ((len(x_train) + config.batch - 1) // config.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=steps)
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch):
            index = order[start : start + config.batch]
            loss = loss_fn(model(augment(x_train[index], generator)), y_train[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        accuracy, _ = evaluate(model, x_test, y_test, len(classes))
        history.append({"epoch": epoch + 1, "loss": total / len(order), "test_accuracy": accuracy})
        say(
            f"epoch {epoch + 1}/{config.epochs}: loss {total / len(order):.4f}, "
            f"held-out accuracy {accuracy:.3f}"
        )
    model.eval()
    accuracy, confusion = evaluate(model, x_test, y_test, len(classes))
    recall = {c: float(confusion[i, i] / max(1, confusion[i].sum())) for i, c in enumerate(classes)}
    card = ModelCard(
        name="mscam-sar-ships",
        version="1.0.0",
        architecture=config.architecture,
        architecture_kwargs={"width": config.width},
        classes=classes,
        target_classes=["ship"],
        input_channels=list(CHANNELS),
        input_units="dB",
        preprocessing={"type": "db_window", "windows": [list(w) for w in windows()]},
        chip_size=config.chip_size,
        target_layer=DEFAULT_TARGET_LAYERS[config.architecture],
        weights="weights.pt",
        description="Ships vs sea clutter, land and bright non-ship targets on Sentinel-1 IW "
        "GRD-like chips (VV+VH, sigma0 dB, 10 m). Trained on mscam's synthetic scenes only.",
        training={
            "recipe": "mscam.models.train",
            "config": config.__dict__,
            "held_out_accuracy": round(accuracy, 4),
        },
    )
    report = TrainReport(
        config,
        classes,
        accuracy,
        confusion.tolist(),
        recall,
        time.perf_counter() - started,
        history,
    )
    if out_dir is not None:
        save_model(model, card, out_dir)
        (Path(out_dir) / "training_report.json").write_text(json.dumps(report.to_dict(), indent=1))
    return model, card, report
