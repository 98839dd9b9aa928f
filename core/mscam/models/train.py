"""Training the bundled models on synthetic SAR chips: deterministic for a seed, minutes on a CPU.

The recipe (what `make model` runs, once per polarisation):

* data: chips of the four classes `ship`, `sea`, `land`, `bright` cut from synthetic
  Sentinel-1-like scenes (`mscam.sar.chips`), co-pol (VV or HH) and cross-pol (VH or HV) σ0 in
  dB; the dual-pol model reads both, the single-pol model the co-pol band only. Both see VV- and
  HH-flavoured chips, under the same generic card roles (`CO`, `CROSS`).
* augmentation: per-chip flips and 90° rotations (ships have any heading), a random calibration
  offset in dB, then the fixed dB windows of `mscam.sar.units.DB_WINDOWS` to [0, 1].
* architecture: `compact-fcn` (a convolutional head above the CAM target layer, so that
  ∂y/∂A varies within each channel), AdamW with a one-cycle schedule.
* hard-negative mining: the first model runs over whole synthetic scenes of other seeds; tiles it
  calls `ship` that hold no ship become extra negatives, and the model is fine-tuned on them.
* report: held-out chips from scenes of other seeds: accuracy, confusion, recall per ship length
  band and per polarisation flavour, and the spatial spread of ∂y/∂A at the target layer.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from mscam.models.architectures import DEFAULT_TARGET_LAYERS, build_architecture
from mscam.models.card import ModelCard
from mscam.models.loading import save_model
from mscam.sar.units import DB_WINDOWS

log = logging.getLogger(__name__)

#: Card roles and dB windows of each polarisation variant; HH shares VV's window, HV VH's.
VARIANTS: dict[str, dict[str, Any]] = {
    "dual": {
        "roles": ["CO", "CROSS"],
        "windows": [DB_WINDOWS["VV"], DB_WINDOWS["VH"]],
        "name": "mscam-sar-ships-dual",
        "what": "dual-pol (co-pol + cross-pol: VV+VH or HH+HV)",
    },
    "single": {
        "roles": ["CO"],
        "windows": [DB_WINDOWS["VV"]],
        "name": "mscam-sar-ships-single",
        "what": "single-pol (one co-polarised band: VV or HH)",
    },
}
#: Ship length bands (metres) of the per-size recall.
LENGTH_BANDS: tuple[tuple[float, float], ...] = ((0, 50), (50, 100), (100, 200), (200, 1e9))


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the recipe; the defaults are what ships as the bundled models."""

    polarisation: str = "dual"
    architecture: str = "compact-fcn"
    width: int = 32
    chip_size: int = 64
    train_per_class: int = 1500
    test_per_class: int = 300
    epochs: int = 10
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    db_jitter: float = 2.0
    mine_scenes: int = 6
    mine_size: int = 768
    finetune_epochs: int = 2
    exclude_families: str = ""
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
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "config": asdict(self.config),
            "classes": self.classes,
            "accuracy": self.accuracy,
            "confusion": self.confusion,
            "per_class_recall": self.per_class_recall,
            "seconds": self.seconds,
            "history": self.history,
            **self.extra,
        }


def variant(polarisation: str) -> dict[str, Any]:
    """The roles, windows and name of a polarisation variant (``dual`` or ``single``)."""
    if polarisation not in VARIANTS:
        raise ValueError(f"unknown polarisation {polarisation!r}; choose {', '.join(VARIANTS)}")
    return VARIANTS[polarisation]


def to_input(chips_db: np.ndarray | Tensor, polarisation: str = "dual") -> Tensor:
    """(N, 2, S, S) dB chips (co-pol, cross-pol) → the model's input: the variant's bands,
    clipped to its fixed dB windows and scaled to [0, 1]; NaN becomes 0."""
    spec = variant(polarisation)
    x = torch.as_tensor(chips_db, dtype=torch.float32)[:, : len(spec["roles"])]
    low = torch.tensor([w[0] for w in spec["windows"]]).view(1, -1, 1, 1)
    high = torch.tensor([w[1] for w in spec["windows"]]).view(1, -1, 1, 1)
    return torch.nan_to_num((x.clamp(low, high) - low) / (high - low), nan=0.0)


def augment(x_db: Tensor, generator: torch.Generator, db_jitter: float) -> Tensor:
    """Per-chip flips and 90° rotations (labels do not change with heading) and a calibration
    offset: one uniform ±``db_jitter`` dB per chip plus ±``db_jitter``/4 dB per band."""
    n = x_db.shape[0]
    if db_jitter > 0:
        common = (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * db_jitter
        own = (torch.rand(n, x_db.shape[1], 1, 1, generator=generator) * 2 - 1) * db_jitter / 4
        x_db = x_db + common + own
    flips = torch.rand(n, 3, generator=generator) < 0.5
    x_db = torch.where(flips[:, 0, None, None, None], x_db.flip(-1), x_db)
    x_db = torch.where(flips[:, 1, None, None, None], x_db.flip(-2), x_db)
    # A transpose with the two flips spans all eight symmetries of the square (rotations too).
    return torch.where(flips[:, 2, None, None, None], x_db.transpose(-1, -2), x_db)


def predict(model: nn.Module, x: Tensor, batch: int = 256) -> Tensor:
    """Softmax probabilities of ``model`` on inputs ``x``, in batches."""
    model.eval()
    with torch.no_grad():
        return torch.cat(
            [torch.softmax(model(x[i : i + batch]), 1) for i in range(0, len(x), batch)]
        )


def evaluate(model: nn.Module, x: Tensor, y: Tensor, n_classes: int, batch: int = 256):
    """Accuracy and confusion matrix (rows true, columns predicted) of `model` on (x, y)."""
    predicted = predict(model, x, batch).argmax(1)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long)
    confusion.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    return float((predicted == y).float().mean()), confusion


def gradient_spread(model: nn.Module, target_layer: str, x: Tensor, class_index: int) -> float:
    """Mean over chips and channels of ``std_ij(g) / mean_ij |g|``, g = ∂y_c/∂A at the target
    layer: 0 when the gradient is constant within every channel (GAP + linear above the layer).
    Channels whose gradient is zero everywhere are left out."""
    model.eval()
    layer = model.get_submodule(target_layer)
    captured: dict[str, Tensor] = {}
    hook = layer.register_forward_hook(lambda _m, _i, out: captured.update(a=out))
    try:
        logits = model(x)
    finally:
        hook.remove()
    (grad,) = torch.autograd.grad(logits[:, class_index].sum(), captured["a"])
    flat = grad.detach().flatten(2).double()
    scale = flat.abs().mean(-1)
    used = scale > 0
    if not used.any():
        return 0.0
    return float((flat.std(-1, unbiased=False)[used] / scale[used]).mean())


def _chip_set(config: TrainConfig, n_per_class: int, seed: int, *, held_out: bool):
    """Chips of every polarisation flavour for the recipe: (dB (N, 2, S, S), labels, info)."""
    from mscam.sar.chips import build_chips

    chips = build_chips(n_per_class, chip_size=config.chip_size, seed=seed)
    lengths = getattr(chips, "lengths", None)
    info = {
        "class_names": list(chips.class_names),
        "lengths": None if lengths is None else np.asarray(lengths, np.float64),
        "flavour": np.array(getattr(chips, "polarisations", ["VV"] * len(chips))),
        "families": np.array(getattr(chips, "families", [""] * len(chips))),
    }
    return torch.from_numpy(np.ascontiguousarray(chips.x)), torch.as_tensor(chips.labels), info


def _fit(
    model: nn.Module,
    x_db: Tensor,
    y: Tensor,
    config: TrainConfig,
    epochs: int,
    lr: float,
    generator: torch.Generator,
    on_epoch: Callable[[int, float], None],
) -> None:
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    steps = epochs * ((len(x_db) + config.batch - 1) // config.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_db), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch):
            index = order[start : start + config.batch]
            batch = to_input(augment(x_db[index], generator, config.db_jitter), config.polarisation)
            loss = loss_fn(model(batch), y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        on_epoch(epoch, total / len(order))


def mine_hard_negatives(
    model: nn.Module, config: TrainConfig, classes: list[str], seed: int
) -> tuple[Tensor, Tensor, dict[str, int]]:
    """Tiles of whole synthetic scenes (seeds no chip came from) that ``model`` calls ``ship``
    although they hold no ship: the extra negatives, labelled land (≥ 30 % land), bright (a
    bright non-ship inside) or sea, with counts of tiles looked at and mined."""
    from mscam.sar.chips import CHIP_PROFILES
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.targets import sidelobe_margin

    size, step = config.chip_size, config.chip_size // 2
    ship_index = classes.index("ship")
    found_x, found_y, looked = [], [], 0
    for k in range(config.mine_scenes):
        scene = synthesize_scene(
            config.mine_size, CHIP_PROFILES[k % len(CHIP_PROFILES)], seed=seed + k
        )
        ships = np.array(
            [
                np.add(s["box"], np.multiply([-1, -1, 1, 1], sidelobe_margin(s["peak_db"])))
                for s in scene.ships
            ],
            np.int64,
        ).reshape(-1, 4)
        bright = np.array([n["box"] for n in scene.hard_negatives], np.int64).reshape(-1, 4)
        h, w = scene.shape
        spots = [
            (x, y)
            for y in range(0, h - size + 1, step)
            for x in range(0, w - size + 1, step)
            if scene.valid_mask[y : y + size, x : x + size].all() and not _hits(x, y, size, ships)
        ]
        if not spots:
            continue
        looked += len(spots)
        tiles = torch.from_numpy(
            np.stack(
                [
                    np.stack(
                        [
                            scene.vv_db[y : y + size, x : x + size],
                            scene.vh_db[y : y + size, x : x + size],
                        ]
                    )
                    for x, y in spots
                ]
            ).astype(np.float32)
        )
        p_ship = predict(model, to_input(tiles, config.polarisation))[:, ship_index]
        for (x, y), tile, p in zip(spots, tiles, p_ship.tolist()):
            if p < 0.5:
                continue
            land = scene.land_mask[y : y + size, x : x + size].mean()
            label = "land" if land >= 0.3 else "bright" if _hits(x, y, size, bright) else "sea"
            found_x.append(tile)
            found_y.append(classes.index(label))
    counts = {"tiles": looked, "mined": len(found_x)}
    if not found_x:
        return torch.empty(0, 2, size, size), torch.empty(0, dtype=torch.long), counts
    return torch.stack(found_x), torch.tensor(found_y), counts


def _hits(x: int, y: int, size: int, boxes: np.ndarray) -> bool:
    if boxes.size == 0:
        return False
    return bool(
        (
            (boxes[:, 0] <= x + size - 1)
            & (boxes[:, 2] >= x)
            & (boxes[:, 1] <= y + size - 1)
            & (boxes[:, 3] >= y)
        ).any()
    )


def held_out_metrics(
    model: nn.Module, x: Tensor, y: Tensor, info: dict[str, Any], polarisation: str
) -> dict[str, Any]:
    """Accuracy, confusion, recall per class, per ship length band and per flavour."""
    classes = info["class_names"]
    probabilities = predict(model, to_input(x, polarisation))
    predicted = probabilities.argmax(1)
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.long)
    confusion.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    ship = classes.index("ship")
    is_ship, said_ship = (y == ship).numpy(), (predicted == ship).numpy()
    out: dict[str, Any] = {
        "accuracy": float((predicted == y).float().mean()),
        "confusion": confusion.tolist(),
        "per_class_recall": {
            c: float(confusion[i, i] / max(1, confusion[i].sum())) for i, c in enumerate(classes)
        },
        "ship_precision": float((is_ship & said_ship).sum() / max(1, said_ship.sum())),
    }
    if info["lengths"] is not None:
        bands = {}
        for low, high in LENGTH_BANDS:
            inside = is_ship & (info["lengths"] >= low) & (info["lengths"] < high)
            name = (
                f"<{high:g} m"
                if low == 0
                else f"≥{low:g} m"
                if high > 1e8
                else f"{low:g}–{high:g} m"
            )
            bands[name] = {
                "n": int(inside.sum()),
                "recall": float(said_ship[inside].mean()) if inside.any() else None,
            }
        out["ship_recall_by_length"] = bands
    flavours = {}
    for flavour in sorted(set(info["flavour"].tolist())):
        rows = info["flavour"] == flavour
        flavours[flavour] = {
            "n": int(rows.sum()),
            "accuracy": float((predicted[rows] == y[rows]).float().mean()),
            "ship_recall": float(said_ship[rows & is_ship].mean())
            if (rows & is_ship).any()
            else None,
        }
    out["by_flavour"] = flavours
    return out


def train(
    config: TrainConfig, out_dir: Path | None = None, progress: Callable[[str], None] | None = None
) -> tuple[nn.Module, ModelCard, TrainReport]:
    """Train the recipe's model for ``config.polarisation``; save it (card + weights) to
    ``out_dir`` when given."""
    spec = variant(config.polarisation)
    say = progress or log.info
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    say(f"building {config.train_per_class} + {config.test_per_class} chips per class")
    x_train, y_train, train_info = _chip_set(
        config, config.train_per_class, config.seed, held_out=False
    )
    # The held-out chips come from scenes of other seeds: no scene is in both splits.
    x_test, y_test, test_info = _chip_set(
        config, config.test_per_class, config.seed + 10_000, held_out=True
    )
    classes = train_info["class_names"]
    chips_seconds = time.perf_counter() - started
    model = build_architecture(
        config.architecture,
        in_channels=len(spec["roles"]),
        num_classes=len(classes),
        width=config.width,
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    x_test_in = to_input(x_test, config.polarisation)

    def on_epoch(stage: str, total: int) -> Callable[[int, float], None]:
        def report(epoch: int, loss: float) -> None:
            accuracy, _ = evaluate(model, x_test_in, y_test, len(classes))
            history.append(
                {"stage": stage, "epoch": epoch + 1, "loss": loss, "test_accuracy": accuracy}
            )
            say(f"{stage} epoch {epoch + 1}/{total}: loss {loss:.4f}, held-out {accuracy:.3f}")

        return report

    _fit(
        model,
        x_train,
        y_train,
        config,
        config.epochs,
        config.lr,
        generator,
        on_epoch("train", config.epochs),
    )
    mining: dict[str, Any] = {"tiles": 0, "mined": 0}
    if config.mine_scenes > 0 and config.finetune_epochs > 0:
        # Scenes of seeds far from both chip splits' scene seeds.
        mined_x, mined_y, mining = mine_hard_negatives(model, config, classes, config.seed + 50_000)
        say(f"hard negatives: {mining['mined']} of {mining['tiles']} ship-free scene tiles")
        if len(mined_x):
            x_train = torch.cat([x_train, mined_x])
            y_train = torch.cat([y_train, mined_y])
            _fit(
                model,
                x_train,
                y_train,
                config,
                config.finetune_epochs,
                config.lr / 5,
                generator,
                on_epoch("fine-tune", config.finetune_epochs),
            )
    model.eval()
    metrics = held_out_metrics(model, x_test, y_test, test_info, config.polarisation)
    target_layer = DEFAULT_TARGET_LAYERS[config.architecture]
    ships = (y_test == classes.index("ship")).nonzero().flatten()[:64]
    spread = gradient_spread(model, target_layer, x_test_in[ships], classes.index("ship"))
    seconds = time.perf_counter() - started
    card = ModelCard(
        name=spec["name"],
        version="2.0.0",
        architecture=config.architecture,
        architecture_kwargs={"width": config.width},
        classes=classes,
        target_classes=["ship"],
        input_channels=list(spec["roles"]),
        input_units="dB",
        preprocessing={"type": "db_window", "windows": [list(w) for w in spec["windows"]]},
        chip_size=config.chip_size,
        target_layer=target_layer,
        weights="weights.pt",
        description=f"Ships vs sea clutter, land and bright non-ship targets, {spec['what']}, "
        "σ0 in dB at 10 m pixel spacing (Sentinel-1 IW GRD-like). Trained on mscam's synthetic "
        "scenes only, VV- and HH-flavoured.",
        training={
            "recipe": "mscam.models.train",
            "config": asdict(config),
            "held_out_accuracy": round(metrics["accuracy"], 4),
            "ship_recall_by_length": metrics.get("ship_recall_by_length"),
            "gradient_spread": round(spread, 4),
            "gradient_spread_definition": "mean over held-out ship chips and channels of "
            "std_ij(g)/mean_ij|g|, g = d(ship logit)/d(target layer); 0 = constant per channel",
            "hard_negatives": mining,
            "seconds": round(seconds),
        },
        pixel_spacing=10.0,
        spacing_range=[8.5, 11.5],
    )
    report = TrainReport(
        config,
        classes,
        metrics["accuracy"],
        metrics["confusion"],
        metrics["per_class_recall"],
        seconds,
        history,
        extra={
            "ship_precision": metrics["ship_precision"],
            "ship_recall_by_length": metrics.get("ship_recall_by_length"),
            "by_flavour": metrics["by_flavour"],
            "gradient_spread": spread,
            "hard_negatives": mining,
            "chips_seconds": chips_seconds,
            "n_train": len(x_train),
            "n_test": len(x_test),
        },
    )
    if out_dir is not None:
        save_model(model, card, out_dir)
        (Path(out_dir) / "training_report.json").write_text(json.dumps(report.to_dict(), indent=1))
    return model, card, report
