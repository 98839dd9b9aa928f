"""Tests of mscam.models: architectures, the model card, and safe loading and saving."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pickle
import shlex
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from mscam.errors import ModelError
from mscam.models import (
    ARCHITECTURES,
    DEFAULT_CARD_PATH,
    DEFAULT_TARGET_LAYERS,
    CompactFCN,
    LoadedModel,
    ModelCard,
    build_architecture,
    load_model,
    register_architecture,
    save_model,
)
from mscam.models.architectures import LSEPool2d
from mscam.training import gradient_spread
from torch import nn

# Documented size of each architecture's target-layer map for an (h, w) input.
FEATURE_SIZE: dict[str, Callable[[int, int], tuple[int, int]]] = {
    "compact-cnn": lambda h, w: (h // 8, w // 8),
    "compact-fcn": lambda h, w: (h // 8, w // 8),
    "resnet18-sar": lambda h, w: (math.ceil(h / 16), math.ceil(w / 16)),
}
FEATURE_CHANNELS = {"compact-cnn": 4, "compact-fcn": 4, "resnet18-sar": 8}  # times the width


def card_dict(**changes: Any) -> dict[str, Any]:
    """A valid card dict for a tiny compact CNN, with ``changes`` applied."""
    data: dict[str, Any] = {
        "name": "tiny-ships",
        "version": "0.1.0",
        "architecture": "compact-cnn",
        "architecture_kwargs": {"width": 4},
        "classes": ["sea", "ship", "land"],
        "target_classes": ["ship"],
        "input_channels": ["VV", "VH"],
        "input_units": "dB",
        "preprocessing": {"type": "db_window", "windows": [[-30, 10], [-35, 0]]},
        "chip_size": 32,
        "target_layer": "block4",
        "weights": "weights.pt",
        "description": "test model",
        "training": {"seed": 0, "data": "synthetic"},
    }
    data.update(changes)
    return data


def seeded_model(card: ModelCard, seed: int = 0) -> nn.Module:
    """Build the card's architecture with non-trivial weights and BatchNorm running statistics."""
    torch.manual_seed(seed)
    model = build_architecture(
        card.architecture,
        in_channels=card.in_channels,
        num_classes=card.num_classes,
        **card.architecture_kwargs,
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    model.train()
    with torch.no_grad():  # a train-mode pass moves the running statistics off their defaults
        model(torch.randn(4, card.in_channels, card.chip_size, card.chip_size))
    return model.eval()


@pytest.fixture
def card() -> ModelCard:
    return ModelCard.from_dict(card_dict())


@pytest.fixture
def saved(tmp_path: Path, card: ModelCard) -> tuple[Path, nn.Module]:
    """A model folder written by save_model, and the model it holds."""
    model = seeded_model(card)
    save_model(model, card, tmp_path / "model")
    return tmp_path / "model", model


def assert_one_line(exc: pytest.ExceptionInfo[ModelError], *parts: str) -> None:
    message = str(exc.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message


# --- architectures -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["compact-cnn", "compact-fcn", "resnet18-sar"])
@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("size", [(64, 64), (128, 128), (64, 96), (72, 100)])
def test_architecture_logits_and_target_layer(
    name: str, in_channels: int, size: tuple[int, int]
) -> None:
    torch.manual_seed(0)
    model = build_architecture(name, in_channels=in_channels, num_classes=3, width=4).eval()
    captured: dict[str, torch.Tensor] = {}
    layer = model.get_submodule(DEFAULT_TARGET_LAYERS[name])
    layer.register_forward_hook(lambda _m, _i, output: captured.update(map=output))
    with torch.no_grad():
        logits = model(torch.randn(2, in_channels, *size))
    assert logits.shape == (2, 3)
    assert captured["map"].shape == (2, FEATURE_CHANNELS[name] * 4, *FEATURE_SIZE[name](*size))


def test_documented_map_sizes_at_chip_sizes() -> None:
    assert FEATURE_SIZE["compact-cnn"](64, 64) == (8, 8)
    assert FEATURE_SIZE["compact-cnn"](128, 128) == (16, 16)
    assert FEATURE_SIZE["resnet18-sar"](64, 64) == (4, 4)
    assert FEATURE_SIZE["resnet18-sar"](128, 128) == (8, 8)


def test_lse_pooling_value_and_gradient_are_exact() -> None:
    maps = torch.tensor([[[[0.0, 1.0], [2.0, -1.0]]]], requires_grad=True)
    pooled = LSEPool2d(r=2.0)(maps)
    values = torch.tensor([0.0, 1.0, 2.0, -1.0])
    expected = (torch.log(torch.exp(2 * values).sum()) - math.log(4)) / 2
    torch.testing.assert_close(pooled, expected.view(1, 1))
    (grad,) = torch.autograd.grad(pooled.sum(), maps)
    torch.testing.assert_close(grad.flatten(), torch.softmax(2 * values, 0))  # sums to 1


def test_compact_fcn_gradient_at_the_target_layer_is_exact_and_varies_in_space() -> None:
    """A width-1 head made a pass-through of feature channel 0 (identity kernels, identity
    BatchNorm, class 0's 1x1 map = channel 0): then for a positive feature map A,
    ∂y_0/∂A_0 = s · softmax(r · s · A_0) (s = BatchNorm's 1/sqrt(1 + eps)), 0 elsewhere."""
    model = CompactFCN(in_channels=1, num_classes=2, width=1, lse_r=3.0).eval()
    with torch.no_grad():
        for conv in (model.head[0], model.head[3]):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
            if conv.bias is not None:
                conv.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[0, 0] = 1.0
    scale = 1 / math.sqrt(1 + model.head[1].eps)
    torch.manual_seed(0)
    features = (torch.rand(1, 4, 4, 4) + 0.1).requires_grad_()  # block4's output, 4·width channels
    logits = model.pool(model.classifier(model.head(features)))
    (grad,) = torch.autograd.grad(logits[0, 0], features)
    expected = scale * torch.softmax(3.0 * scale * features[0, 0].flatten(), 0)
    torch.testing.assert_close(grad[0, 0].flatten(), expected.detach())
    assert torch.count_nonzero(grad[0, 1:]) == 0
    assert float(grad[0, 0].std()) > 0


def test_gradient_spread_zero_for_gap_and_positive_for_the_fcn_head() -> None:
    torch.manual_seed(0)
    chips = torch.rand(4, 2, 64, 64)
    cnn = build_architecture("compact-cnn", in_channels=2, num_classes=3, width=4)
    fcn = build_architecture("compact-fcn", in_channels=2, num_classes=3, width=4)
    assert gradient_spread(cnn, "block4", chips, 0) == pytest.approx(0.0, abs=1e-6)
    assert gradient_spread(fcn, "block4", chips, 0) > 0.1


def test_every_registered_architecture_has_a_target_layer() -> None:
    assert set(DEFAULT_TARGET_LAYERS) == set(ARCHITECTURES)
    assert DEFAULT_TARGET_LAYERS["resnet18-sar"] == "layer4"


def test_default_sizes_and_torchvision_names() -> None:
    compact = build_architecture("compact-cnn", in_channels=2, num_classes=2)
    assert sum(p.numel() for p in compact.parameters()) < 500_000
    resnet = build_architecture("resnet18-sar", in_channels=2, num_classes=2)
    names = dict(resnet.named_children())
    assert {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"} <= set(names)
    assert [len(resnet.get_submodule(f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    assert [resnet.get_submodule(f"layer{i}.1.conv2").out_channels for i in range(1, 5)] == [
        64,
        128,
        256,
        512,
    ]
    assert 10_000_000 < sum(p.numel() for p in resnet.parameters()) < 12_000_000


def test_builds_are_reproducible_with_a_seed() -> None:
    torch.manual_seed(3)
    first = build_architecture("resnet18-sar", in_channels=1, num_classes=2, width=4)
    torch.manual_seed(3)
    second = build_architecture("resnet18-sar", in_channels=1, num_classes=2, width=4)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key


def test_unknown_architecture_lists_known_names() -> None:
    with pytest.raises(ModelError) as exc:
        build_architecture("vgg16")
    assert_one_line(exc, "vgg16", "compact-cnn", "resnet18-sar")


@pytest.mark.parametrize("kwargs", [{"depth": 3}, {"in_channels": 0}, {"width": 2.5}])
def test_bad_architecture_arguments_are_model_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ModelError) as exc:
        build_architecture("compact-cnn", **kwargs)
    assert_one_line(exc, "compact-cnn")


def test_register_architecture_refuses_a_duplicate_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_architecture("compact-cnn", target_layer="block4")(nn.Identity)
    assert ARCHITECTURES["compact-cnn"].__name__ == "CompactCNN"


# --- model card ----------------------------------------------------------------------------------


def test_card_json_round_trip(tmp_path: Path, card: ModelCard) -> None:
    path = tmp_path / "sub" / "card.json"
    card.save(path)
    assert ModelCard.load(path) == card
    assert json.loads(path.read_text(encoding="utf-8")) == card_dict()
    assert [p.name for p in path.parent.iterdir()] == ["card.json"]  # no temporary left behind


def test_card_with_generic_roles_and_spacing_round_trips(tmp_path: Path) -> None:
    data = card_dict(input_channels=["CO", "CROSS"], pixel_spacing=10.0, spacing_range=[8.5, 11.5])
    card = ModelCard.from_dict(data)
    card.save(tmp_path / "card.json")
    assert ModelCard.load(tmp_path / "card.json") == card
    assert json.loads((tmp_path / "card.json").read_text(encoding="utf-8")) == data
    assert card.in_channels == 2 and card.accepts_spacing(11.0) and not card.accepts_spacing(12.0)


def test_card_without_training_omits_it(tmp_path: Path) -> None:
    data = card_dict()
    del data["training"]
    card = ModelCard.from_dict(data)
    assert card.training is None
    card.save(tmp_path / "card.json")
    assert "training" not in json.loads((tmp_path / "card.json").read_text(encoding="utf-8"))


def test_card_derived_counts_and_class_index(card: ModelCard) -> None:
    assert (card.in_channels, card.num_classes) == (2, 3)
    assert card.class_index("ship") == 1
    with pytest.raises(ModelError) as exc:
        card.class_index("tank")
    assert_one_line(exc, "tank", "sea, ship, land")


def test_card_replace_validates_again(card: ModelCard) -> None:
    with pytest.raises(ModelError, match="target_classes"):
        dataclasses.replace(card, classes=["sea", "land"])


def _without(field: str) -> dict[str, Any]:
    data = card_dict()
    del data[field]
    return data


CARD_ERRORS = [
    (_without("classes"), "'classes' is missing"),
    (_without("weights"), "'weights' is missing"),
    (card_dict(colour="red"), "'colour' is unknown"),
    (card_dict(name=3), "'name' must be a string, got int"),
    (card_dict(version=""), "'version' must not be empty"),
    (card_dict(architecture="alexnet"), "unknown architecture 'alexnet'"),
    (card_dict(architecture_kwargs=[4]), "'architecture_kwargs' must be a JSON object"),
    (card_dict(architecture_kwargs={"in_channels": 3}), "must not set in_channels"),
    (card_dict(classes="ship"), "'classes' must be a list of strings, got str"),
    (card_dict(classes=[]), "'classes' must not be empty"),
    (card_dict(classes=["sea", "ship", "sea"]), "'classes' repeats 'sea'"),
    (card_dict(target_classes=["tank"]), "'target_classes' names 'tank' not in classes"),
    (card_dict(target_classes=[]), "'target_classes' must not be empty"),
    (card_dict(input_channels=["VV", 2]), "'input_channels' must hold non-empty strings"),
    (card_dict(input_units="dBm"), "'input_units' must be one of dB, linear, amplitude, DN"),
    (card_dict(preprocessing="db"), "'preprocessing' must be a JSON object"),
    (card_dict(preprocessing={"windows": [[0, 1], [0, 1]]}), "'preprocessing' needs a 'type'"),
    (
        card_dict(preprocessing={"type": "db_window", "windows": [[-30, 10]]}),
        "'preprocessing.windows' has 1 window(s) for 2 input channel(s)",
    ),
    (
        card_dict(preprocessing={"type": "db_window", "windows": [[10, -30], [0, 1]]}),
        "must have low < high",
    ),
    (
        card_dict(preprocessing={"type": "db_window", "windows": [[0, "a"], [0, 1]]}),
        "[low, high] number pairs",
    ),
    (card_dict(chip_size=64.0), "'chip_size' must be an integer, got float"),
    (card_dict(chip_size=True), "'chip_size' must be an integer, got bool"),
    (card_dict(chip_size=4), "'chip_size' must be at least 8"),
    (card_dict(target_layer="layer4/conv"), "'target_layer' must be a dotted module name"),
    (card_dict(weights="/etc/weights.pt"), "'weights' must be a file name relative"),
    (card_dict(weights="../other/weights.pt"), "'weights' must be a file name relative"),
    (card_dict(description=None), "'description' must be a string, got null"),
    (card_dict(training=["notes"]), "'training' must be a JSON object"),
]


@pytest.mark.parametrize(("data", "expected"), CARD_ERRORS)
def test_card_validation_errors(tmp_path: Path, data: dict[str, Any], expected: str) -> None:
    path = tmp_path / "card.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        ModelCard.load(path)
    assert_one_line(exc, str(path), expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ("", "is not valid JSON"),
    ],
)
def test_card_file_that_is_not_a_card(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "card.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        ModelCard.load(path)
    assert_one_line(exc, expected)


def test_missing_card_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        ModelCard.load(tmp_path / "nope.json")
    assert_one_line(exc, "model card not found", "nope.json")


def test_external_architecture_must_be_an_identifier() -> None:
    assert ModelCard.from_dict(card_dict(architecture="MyNet"), external_architecture=True)
    for name in ("my-net", "evil.py", "os.system"):
        with pytest.raises(ModelError, match="must name a callable"):
            ModelCard.from_dict(card_dict(architecture=name), external_architecture=True)


# --- saving and loading --------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["compact-cnn", "resnet18-sar"])
def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path, architecture: str) -> None:
    card = ModelCard.from_dict(
        card_dict(architecture=architecture, target_layer=DEFAULT_TARGET_LAYERS[architecture])
    )
    model = seeded_model(card, seed=7)
    card_path = save_model(model, card, tmp_path / "m")
    assert card_path == tmp_path / "m" / "card.json"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["card.json", "weights.pt"]

    loaded = load_model(card_path)
    assert isinstance(loaded, LoadedModel)
    assert loaded.card == card and loaded.card_path == card_path
    assert not loaded.model.training
    assert next(loaded.model.parameters()).device.type == "cpu"
    x = torch.randn(3, 2, 40, 48)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))


def test_load_from_a_folder_and_auto_device(saved: tuple[Path, nn.Module]) -> None:
    folder, _ = saved
    loaded = load_model(folder, device="auto")
    assert loaded.card_path == folder / "card.json"


def test_load_refuses_an_invalid_device(saved: tuple[Path, nn.Module]) -> None:
    with pytest.raises(ModelError) as exc:
        load_model(saved[0], device="tpu:9")
    assert_one_line(exc, "invalid device")


def test_folder_without_card(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        load_model(tmp_path)
    assert_one_line(exc, "has no card.json")


def _system_payload(marker: Path) -> object:
    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    return Payload()


def _open_payload(marker: Path) -> object:
    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    return Payload()


@pytest.mark.parametrize("payload", [_system_payload, _open_payload])
@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_hostile_pickle_is_refused_and_never_runs(
    saved: tuple[Path, nn.Module], tmp_path: Path, payload: Callable[[Path], object], writer: str
) -> None:
    folder, model = saved
    # Control: the payload really does create its marker when unpickled unsafely.
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(payload(control)))
    assert control.exists()

    marker = tmp_path / "pwned-marker"
    state = {**model.state_dict(), "fc.weight": payload(marker)}
    weights = folder / "weights.pt"
    if writer == "pickle":
        weights.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, weights)
    with pytest.raises(ModelError) as exc:
        load_model(folder)
    assert_one_line(exc, "refused weights file", "plain state dict")
    assert not marker.exists()


def test_pickled_whole_module_is_refused(saved: tuple[Path, nn.Module]) -> None:
    folder, model = saved
    torch.save(model, folder / "weights.pt")
    with pytest.raises(ModelError) as exc:
        load_model(folder)
    assert_one_line(exc, "refused weights file", "CompactCNN")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.write_bytes(b""), "weights file is empty"),
        (lambda p: p.unlink(), "weights file not found"),
        (
            lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
            "is corrupt or not a PyTorch weights file",
        ),
        (lambda p: p.write_bytes(bytes(range(256)) * 4), "weights file"),
        (lambda p: p.write_text("hello world"), "is corrupt or not a PyTorch weights file"),
        (lambda p: torch.save(torch.zeros(3), p), "holds a Tensor, not a state dict"),
        (
            lambda p: torch.save({"state_dict": {"a": torch.zeros(1)}, "epoch": 3}, p),
            "looks like a training checkpoint",
        ),
        (
            lambda p: torch.save({"fc.weight": torch.zeros(1), "note": "x"}, p),
            "non-tensor entries: note",
        ),
    ],
)
def test_damaged_weights(
    saved: tuple[Path, nn.Module], damage: Callable[[Path], Any], expected: str
) -> None:
    folder, _ = saved
    damage(folder / "weights.pt")
    with pytest.raises(ModelError) as exc:
        load_model(folder)
    assert_one_line(exc, expected)


def test_missing_and_unexpected_keys(saved: tuple[Path, nn.Module]) -> None:
    folder, model = saved
    state = model.state_dict()
    removed = [key for key in state if key.startswith("block1")]
    for key in removed:
        del state[key]
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, folder / "weights.pt")
    with pytest.raises(ModelError) as exc:
        load_model(folder)
    assert_one_line(
        exc,
        "does not fit architecture 'compact-cnn'",
        "missing keys block1.0.weight",
        f"(+{len(removed) - 3} more)",
        "unexpected keys extra.weight",
    )


def test_shape_mismatch(saved: tuple[Path, nn.Module], card: ModelCard) -> None:
    folder, _ = saved
    wider = seeded_model(dataclasses.replace(card, architecture_kwargs={"width": 8}))
    torch.save(wider.state_dict(), folder / "weights.pt")
    with pytest.raises(ModelError) as exc:
        load_model(folder)
    assert_one_line(exc, "shape mismatch", "block1.0.weight (8, 2, 3, 3) vs (4, 2, 3, 3)", "more)")


def test_save_refuses_a_model_that_does_not_fit_its_card(tmp_path: Path, card: ModelCard) -> None:
    one_band = seeded_model(
        dataclasses.replace(card, input_channels=["HH"], preprocessing={"type": "none"})
    )
    with pytest.raises(ModelError) as exc:
        save_model(one_band, card, tmp_path / "m")
    assert_one_line(exc, "shape mismatch", "block1.0.weight (4, 1, 3, 3) vs (4, 2, 3, 3)")
    assert not (tmp_path / "m").exists()


def test_target_layer_must_exist(saved: tuple[Path, nn.Module]) -> None:
    folder, _ = saved
    data = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    data["target_layer"] = "layer4"
    (folder / "card.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        load_model(folder)
    assert_one_line(exc, "target layer 'layer4'", "not a module")


def test_default_model_missing_gives_a_clear_error() -> None:
    if DEFAULT_CARD_PATH.exists():
        loaded = load_model()
        assert loaded.card_path == DEFAULT_CARD_PATH
        pytest.skip("the bundled default model is present")
    with pytest.raises(ModelError) as exc:
        load_model()
    assert_one_line(exc, "bundled default model is missing", str(DEFAULT_CARD_PATH))


# --- user architecture files ---------------------------------------------------------------------

USER_ARCHITECTURE = """
from pathlib import Path
from torch import nn

Path(__file__).with_name("imported-marker").touch()  # proves when this file runs


class TinyNet(nn.Module):
    def __init__(self, in_channels, num_classes, hidden=4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


def not_a_module(in_channels, num_classes, **kwargs):
    return 42


def refuses(in_channels, num_classes, **kwargs):
    raise ValueError("hidden must be even")


class FlatNet(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.features = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        return self.head(self.features(x))
"""


def run_user_file(arch_file: Path) -> dict[str, Any]:
    """Run the user's file here, as its author would, and clear the marker it leaves."""
    namespace: dict[str, Any] = {"__file__": str(arch_file)}
    exec(compile(arch_file.read_text(encoding="utf-8"), str(arch_file), "exec"), namespace)
    arch_file.with_name("imported-marker").unlink()
    return namespace


@pytest.fixture
def user_model(tmp_path: Path) -> tuple[Path, Path, nn.Module]:
    """(architecture file, model folder, model) for the user architecture ``TinyNet``."""
    arch_file = tmp_path / "code" / "my_arch.py"
    arch_file.parent.mkdir()
    arch_file.write_text(textwrap.dedent(USER_ARCHITECTURE), encoding="utf-8")
    card = ModelCard.from_dict(
        card_dict(
            architecture="TinyNet", target_layer="features", architecture_kwargs={"hidden": 5}
        ),
        external_architecture=True,
    )
    torch.manual_seed(1)
    model = run_user_file(arch_file)["TinyNet"](in_channels=2, num_classes=3, hidden=5).eval()
    save_model(model, card, tmp_path / "m")
    return arch_file, tmp_path / "m", model


def test_user_architecture_file_loads_with_a_warning(
    user_model: tuple[Path, Path, nn.Module], caplog: pytest.LogCaptureFixture
) -> None:
    arch_file, folder, model = user_model
    with caplog.at_level(logging.WARNING, logger="mscam.models"):
        loaded = load_model(folder, architecture_file=arch_file)
    assert any(
        "running the Python code" in r.getMessage() and str(arch_file) in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    assert (arch_file.parent / "imported-marker").exists()
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))


def test_card_alone_never_imports_the_user_file(user_model: tuple[Path, Path, nn.Module]) -> None:
    arch_file, folder, _ = user_model
    with pytest.raises(ModelError) as exc:
        load_model(folder)
    assert_one_line(exc, "unknown architecture 'TinyNet'", "explicit architecture file")
    assert not (arch_file.parent / "imported-marker").exists()


@pytest.mark.parametrize(
    ("architecture", "expected"),
    [
        ("Missing", "defines no callable 'Missing'"),
        ("not_a_module", "returned int, not a torch.nn.Module"),
        ("refuses", "failed to build: ValueError: hidden must be even"),
    ],
)
def test_user_architecture_errors(
    user_model: tuple[Path, Path, nn.Module], architecture: str, expected: str
) -> None:
    arch_file, folder, _ = user_model
    data = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    data["architecture"] = architecture
    (folder / "card.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        load_model(folder, architecture_file=arch_file)
    assert_one_line(exc, expected)


def test_user_architecture_file_problems(
    tmp_path: Path, user_model: tuple[Path, Path, nn.Module]
) -> None:
    _, folder, _ = user_model
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    not_python = tmp_path / "arch.txt"
    not_python.write_text("", encoding="utf-8")
    for path, expected in [
        (broken, "failed to import: RuntimeError: boom"),
        (not_python, "must be a Python .py file"),
        (tmp_path / "absent.py", "architecture file not found"),
    ]:
        with pytest.raises(ModelError) as exc:
            load_model(folder, architecture_file=path)
        assert_one_line(exc, expected)


def test_target_layer_must_output_a_feature_map(
    tmp_path: Path, user_model: tuple[Path, Path, nn.Module]
) -> None:
    arch_file, _, _ = user_model
    card = ModelCard.from_dict(
        card_dict(architecture="FlatNet", target_layer="features", architecture_kwargs={}),
        external_architecture=True,
    )
    model = run_user_file(arch_file)["FlatNet"](in_channels=2, num_classes=3)
    save_model(model, card, tmp_path / "flat")
    with pytest.raises(ModelError) as exc:
        load_model(tmp_path / "flat", architecture_file=arch_file)
    assert_one_line(exc, "target layer 'features' outputs (1, 2), not a (B, C, h, w) feature map")
