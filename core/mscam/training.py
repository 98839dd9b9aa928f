"""Training the bundled models on synthetic SAR chips: deterministic for a seed, minutes on a CPU.

The recipe (what `make model` runs, once per polarisation, on the same chips):

* data: chips of the four classes `ship`, `sea`, `land`, `bright` cut from the wide synthetic
  world of `mscam.sar.chips` (ships 15–400 m, hard negatives, sea states, speckle looks,
  calibration offsets), VV- or HH-flavoured per scene, at pixel spacings drawn over
  `SPACING_RANGE`; co-pol (VV or HH) and cross-pol (VH or HV) σ0 in dB. The dual-pol model reads
  both bands, the single-pol model the co-pol band only; cards name them `CO` and `CROSS`.
* augmentation: per-chip flips, transposes (the eight symmetries of the square: ships have any
  heading) and a calibration offset in dB, then fixed dB windows (`DB_WINDOWS`) to [0, 1].
* architecture: `compact-fcn`, a convolutional head above the CAM target layer so that ∂y/∂A
  varies within each channel; AdamW with a one-cycle schedule.
* hard-negative mining: the trained model runs over whole synthetic scenes of other seeds; the
  tiles it calls `ship` that hold no ship become extra negatives, and it is fine-tuned on them.
* report: held-out chips from scenes of other seeds: accuracy, confusion, ship precision, recall
  per ship length band, per polarisation flavour and per chip family, and the spatial spread of
  ∂y/∂A at the target layer (`gradient_spread`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mscam.cam.gradient import gradient_spread
from mscam.errors import InputError
from mscam.models.architectures import DEFAULT_TARGET_LAYERS, build_architecture
from mscam.models.card import ModelCard
from mscam.models.loading import save_model
from mscam.radiometry.units import DB_WINDOWS

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
#: Pixel spacings (metres) the models train on and their cards accept as they are.
SPACING_RANGE = (8.5, 11.5)
#: What a card trained on finer scenes averaged to its spacing (fine_fraction 1) adds to its text.
FINE_NOTE = (
    " Every training scene was rendered 2-4x finer and averaged to about 10 m in linear power, as"
    " the pipeline averages a scene finer than the range a 10 m model accepts: chosen for such"
    " scenes (1-7 m products: ICEYE, Capella, Umbra, TerraSAR-X, COSMO-SkyMed, S1 SM)."
)
#: Ship length bands (metres) of the per-size recall.
LENGTH_BANDS: tuple[tuple[float, float], ...] = ((0, 50), (50, 100), (100, 200), (200, 1e9))


#: The version a trained card gets unless told (`mscam train --card-version`): 2.3.0 is the
#: single-pol model's wider recipe; the bundled dual-pol model and the twins are 2.2.0's.
CARD_VERSION = "2.3.0"


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the recipe; the defaults are what ships as the bundled models.
    ``exclude_families``: comma-separated chip families (``mscam.sar.chips.FAMILIES``) left out
    of training, for hold-out experiments. ``fine_fraction``: the share of chip scenes rendered
    2–4× finer and averaged back to the model's spacing (`mscam.sar.world.render_scene`)."""

    polarisation: str = "dual"
    architecture: str = "compact-fcn"
    width: int = 24
    chip_size: int = 64
    train_per_class: int = 2400
    test_per_class: int = 300
    epochs: int = 10
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    db_jitter: float = 2.0
    mine_scenes: int = 16
    mine_size: int = 768
    finetune_epochs: int = 3
    exclude_families: str = ""
    fine_fraction: float = 0.0
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
        raise InputError(f"unknown polarisation {polarisation!r}; choose {', '.join(VARIANTS)}")
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


def chip_arguments(config: TrainConfig, n_per_class: int, seed: int) -> dict[str, Any]:
    """The :func:`mscam.sar.chips.build_chips` arguments of a split: VV- and HH-flavoured
    scenes (drawn per scene), pixel spacings over the card's accepted range, ships 15–400 m."""
    return {
        "n_per_class": n_per_class,
        "chip_size": config.chip_size,
        "seed": seed,
        "polarisation": "random",
        "pixel_spacing": SPACING_RANGE,
        **({"fine_fraction": config.fine_fraction} if config.fine_fraction else {}),
    }


def chip_set(arguments: dict[str, Any], cache: Path | None = None):
    """:func:`build_chips` for ``arguments``, read from ``cache`` when it holds this very set (the
    dual- and single-pol models train on the same chips; building them is most of the time)."""
    from mscam.sar.chips import ChipSet, build_chips

    # The key covers the arguments and the synthetic world's code: a changed generator is a miss.
    digest = hashlib.sha1(json.dumps(arguments, sort_keys=True).encode())
    for source in sorted(Path(build_chips.__code__.co_filename).parent.glob("*.py")):
        digest.update(source.read_bytes())
    key = digest.hexdigest()[:16]
    path = None if cache is None else Path(cache) / f"chips-{key}.npz"
    if path is not None and path.is_file():
        with np.load(path) as data:
            return ChipSet(
                x=data["x"],
                labels=data["labels"],
                class_names=tuple(data["class_names"].tolist()),
                boxes=[],
                origins=data["origins"],
                scenes=[],
                families=data["families"],
                lengths_m=data["lengths_m"],
                polarisation=data["polarisation"],
                pixel_spacing=data["pixel_spacing"],
            )
    chips = build_chips(**arguments)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp.npz")
        np.savez(
            partial,
            x=chips.x,
            labels=chips.labels,
            class_names=np.array(chips.class_names),
            origins=chips.origins,
            families=chips.families,
            lengths_m=chips.lengths_m,
            polarisation=chips.polarisation,
            pixel_spacing=chips.pixel_spacing,
        )
        partial.replace(path)
    return chips


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
    """Tiles of whole synthetic scenes (seeds no chip came from), cut on the scene pipeline's
    grid and labelled from the truth (:func:`mscam.sar.chips.scene_tiles`), that ``model`` calls
    ``ship`` although they hold no ship: the extra negatives, with their own labels (sea, land,
    bright), and the counts of ship-free tiles looked at and mined. Scenes cycle through open
    sea, coast and wind farm of the wide world, a share ``fine_fraction`` of them rendered finer
    and averaged back as the chips' are."""
    from mscam.sar.chips import scene_tiles
    from mscam.sar.world import random_scene_arguments, render_scene

    ship = classes.index("ship")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4D494E45]))
    found_x, found_y, looked = [], [], 0
    for k in range(config.mine_scenes):
        arguments = random_scene_arguments(
            ("open", "coast", "farm")[k % 3],
            rng,
            size=config.mine_size,
            pixel_spacing=SPACING_RANGE,
            fine_fraction=config.fine_fraction,
        )
        try:
            tiles = scene_tiles(render_scene(arguments), config.chip_size)
        except InputError:  # a small scene may hold no tile clear of its nodata border
            continue
        negative = tiles.labels != ship
        looked += int(negative.sum())
        x = torch.from_numpy(np.ascontiguousarray(tiles.x[negative]))
        p_ship = predict(model, to_input(x, config.polarisation))[:, ship]
        hard = (p_ship >= 0.5).numpy()
        found_x.append(x[hard])
        found_y.append(torch.as_tensor(tiles.labels[negative][hard]))
    size = config.chip_size
    mined_x = torch.cat(found_x) if found_x else torch.empty(0, 2, size, size)
    mined_y = torch.cat(found_y) if found_y else torch.empty(0, dtype=torch.long)
    return mined_x, mined_y.long(), {"tiles": looked, "mined": len(mined_x)}


def held_out_metrics(model: nn.Module, chips, polarisation: str) -> dict[str, Any]:
    """Accuracy, confusion, ship precision, and recall per class, per ship length band, per
    polarisation flavour and per chip family, on a held-out ``ChipSet``."""
    classes = list(chips.class_names)
    y = torch.as_tensor(chips.labels)
    probabilities = predict(model, to_input(chips.x, polarisation))
    predicted = probabilities.argmax(1)
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.long)
    confusion.index_put_((y, predicted), torch.ones_like(y), accumulate=True)
    ship = classes.index("ship")
    is_ship, said_ship = (y == ship).numpy(), (predicted == ship).numpy()
    right = (predicted == y).numpy()
    bands = {}
    for low, high in LENGTH_BANDS:
        inside = is_ship & (chips.lengths_m >= low) & (chips.lengths_m < high)
        bands[_band_name(low, high)] = {
            "n": int(inside.sum()),
            "recall": float(said_ship[inside].mean()) if inside.any() else None,
        }
    flavours = {}
    for flavour in sorted(set(chips.polarisation.tolist())):
        rows = chips.polarisation == flavour
        flavours[flavour] = {
            "n": int(rows.sum()),
            "accuracy": float(right[rows].mean()),
            "ship_recall": float(said_ship[rows & is_ship].mean())
            if (rows & is_ship).any()
            else None,
        }
    families = {}
    for family in sorted(set(chips.families.tolist())):
        rows = chips.families == family
        # For a ship family: called ship; for any other: not called ship (a false alarm).
        ok = said_ship[rows] if family.startswith("ship") else ~said_ship[rows]
        families[family] = {
            "n": int(rows.sum()),
            "correct_class": float(right[rows].mean()),
            "ship_decision_right": float(ok.mean()),
        }
    return {
        "accuracy": float(right.mean()),
        "confusion": confusion.tolist(),
        "per_class_recall": {
            c: float(confusion[i, i] / max(1, confusion[i].sum())) for i, c in enumerate(classes)
        },
        "ship_precision": float((is_ship & said_ship).sum() / max(1, said_ship.sum())),
        "ship_recall_by_length": bands,
        "by_flavour": flavours,
        "by_family": families,
    }


def _band_name(low: float, high: float) -> str:
    if low == 0:
        return f"<{high:g} m"
    return f">={low:g} m" if high > 1e8 else f"{low:g}-{high:g} m"


def train(
    config: TrainConfig,
    out_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    chip_cache: Path | None = None,
    version: str = CARD_VERSION,
) -> tuple[nn.Module, ModelCard, TrainReport]:
    """Train the recipe's model for ``config.polarisation``; save it (card + weights) to
    ``out_dir`` when given. ``chip_cache``: a folder keeping built chip sets for the next run;
    ``version``: the card's version."""
    from mscam.sar.chips import FAMILIES

    spec = variant(config.polarisation)
    say = progress or log.info
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    say(f"chips: {config.train_per_class} + {config.test_per_class} per class")
    train_set = chip_set(chip_arguments(config, config.train_per_class, config.seed), chip_cache)
    # Held-out chips come from scenes of other seeds, and from every family: a family left out
    # of training (taken out of the same chips, so its class just has fewer) is tested on.
    test_set = chip_set(
        chip_arguments(config, config.test_per_class, config.seed + 10_000), chip_cache
    )
    excluded = [f for f in config.exclude_families.split(",") if f]
    unknown = sorted(set(excluded) - set(FAMILIES))
    if unknown:
        raise InputError(f"unknown chip families {unknown}; choose from {', '.join(FAMILIES)}")
    keep = np.flatnonzero(~np.isin(train_set.families, excluded))
    classes = list(train_set.class_names)
    x_train = torch.from_numpy(np.ascontiguousarray(train_set.x[keep]))
    y_train = torch.as_tensor(train_set.labels[keep])
    y_test = torch.as_tensor(test_set.labels)
    chips_seconds = time.perf_counter() - started
    model = build_architecture(
        config.architecture,
        in_channels=len(spec["roles"]),
        num_classes=len(classes),
        width=config.width,
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    x_test_in = to_input(test_set.x, config.polarisation)

    def on_epoch(stage: str, total: int) -> Callable[[int, float], None]:
        def report(epoch: int, loss: float) -> None:
            entry = {"stage": stage, "epoch": epoch + 1, "loss": loss}
            # Held-out accuracy at the end of each stage only: an evaluation costs a tenth of an
            # epoch, and the schedule does not depend on it.
            if epoch + 1 == total:
                entry["test_accuracy"], _ = evaluate(model, x_test_in, y_test, len(classes))
            history.append(entry)
            accuracy = f", held-out {entry['test_accuracy']:.3f}" if epoch + 1 == total else ""
            say(f"{stage} epoch {epoch + 1}/{total}: loss {loss:.4f}{accuracy}")

        return report

    fit = on_epoch("train", config.epochs)
    _fit(model, x_train, y_train, config, config.epochs, config.lr, generator, fit)
    mining: dict[str, Any] = {"scenes": 0, "tiles": 0, "mined": 0}
    if config.mine_scenes > 0 and config.finetune_epochs > 0:
        # Scenes of seeds far from both chip splits' scene seeds.
        mined_x, mined_y, counts = mine_hard_negatives(model, config, classes, config.seed + 50_000)
        mining = {"scenes": config.mine_scenes, **counts}
        say(f"hard negatives: {mining['mined']} of {mining['tiles']} ship-free scene tiles")
        x_train = torch.cat([x_train, mined_x])
        y_train = torch.cat([y_train, mined_y])
        fit = on_epoch("fine-tune", config.finetune_epochs)
        _fit(model, x_train, y_train, config, config.finetune_epochs, config.lr / 5, generator, fit)
    model.eval()
    metrics = held_out_metrics(model, test_set, config.polarisation)
    target_layer = DEFAULT_TARGET_LAYERS[config.architecture]
    ships = (y_test == classes.index("ship")).nonzero().flatten()[:128]
    spread = gradient_spread(model, target_layer, x_test_in[ships], classes.index("ship"))
    seconds = time.perf_counter() - started
    fine = config.fine_fraction >= 1.0
    card = ModelCard(
        name=spec["name"] + ("-fine" if fine else ""),
        version=version,
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
        "sigma0 in dB at about 10 m pixel spacing (Sentinel-1 IW GRD-like). Trained on mscam's "
        "synthetic scenes only, VV- and HH-flavoured; CO is VV or HH, CROSS is VH or HV."
        + (FINE_NOTE if fine else ""),
        training={
            "recipe": "mscam.training",
            "config": asdict(config),
            "held_out_accuracy": round(metrics["accuracy"], 4),
            "ship_precision": round(metrics["ship_precision"], 4),
            "ship_recall_by_length": metrics["ship_recall_by_length"],
            "gradient_spread": round(spread, 4),
            "gradient_spread_definition": "mean over held-out ship chips and target-layer "
            "channels of std_ij(g) / mean_ij |g|, g = d(ship logit)/d(target layer output); 0 "
            "when g is constant within each channel (global average pooling + linear)",
            "hard_negatives": mining,
            "seconds": round(seconds),
        },
        pixel_spacing=10.0,
        spacing_range=list(SPACING_RANGE),
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
            "ship_recall_by_length": metrics["ship_recall_by_length"],
            "by_flavour": metrics["by_flavour"],
            "by_family": metrics["by_family"],
            "gradient_spread": spread,
            "hard_negatives": mining,
            "chips_seconds": chips_seconds,
            "n_train": len(x_train),
            "n_test": len(test_set),
        },
    )
    if out_dir is not None:
        save_model(model, card, out_dir)
        (Path(out_dir) / "training_report.json").write_text(json.dumps(report.to_dict(), indent=1))
    return model, card, report
