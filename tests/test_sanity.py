"""Sanity controls (Adebayo et al. 2018): cascading randomisation, Spearman, the controls, the
`mscam sanity` command and the `mscam:sanity` Processing algorithm."""

from __future__ import annotations

import json
from pathlib import Path

import mscam
import numpy as np
import pytest
import torch
from conftest import make_splitnet
from mscam.cam import MSCAM, create_explainer
from mscam.cli import main
from mscam.eval.sanity import (
    ALL,
    TRAINED,
    ChannelMeanMSCAM,
    average_ranks,
    cascading_randomisation,
    fully_randomised,
    image_gated_gradcam,
    image_only,
    randomisation_blocks,
    sanity_check,
    spearman,
)
from mscam.models import CompactCNN
from torch import nn


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Shuffled(nn.Module):
    """Modules registered in another order than they run: the stages follow the forward pass."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 2)
        self.late = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.early = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.late(self.early(x))).flatten(1))


def test_stages_run_from_the_output_down_one_per_block(inputs):
    compact = CompactCNN(in_channels=2, num_classes=3, width=4).eval()
    x = torch.rand(2, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    stages = [stage for stage, _, _ in cascading_randomisation(compact, x)]
    assert stages == [TRAINED, "fc", "block4", "block3", "block2", ALL]
    assert randomisation_blocks(Shuffled(), inputs) == ["fc", "late", "early"]
    blocks = [done for _, done, _ in cascading_randomisation(Shuffled(), inputs)]
    assert blocks == [(), ("fc",), ("fc", "late"), ("fc", "late", "early")]
    wrapped = nn.Sequential(make_splitnet())  # one container: its blocks are looked into
    assert randomisation_blocks(wrapped, inputs) == ["0.head", "0.features"]


def test_each_stage_redraws_its_block_and_keeps_the_others(splitnet, inputs):
    trained = _state(splitnet)
    seen = {}
    for stage, _, network in cascading_randomisation(splitnet, inputs, seed=3):
        seen[stage] = _state(network)
    head = [k for k in trained if k.startswith("head.")]
    features = [k for k in trained if k.startswith("features.")]
    assert all(torch.equal(seen[TRAINED][k], trained[k]) for k in trained)
    assert all(torch.equal(seen["head"][k], trained[k]) for k in features)
    assert not any(torch.equal(seen["head"][k], trained[k]) for k in head if "weight" in k)
    assert all(torch.equal(seen[ALL][k], seen["head"][k]) for k in head)
    # BatchNorm back to its construction state, running statistics included.
    assert torch.equal(seen[ALL]["features.1.running_mean"], torch.zeros(6))
    assert torch.equal(seen[ALL]["features.1.running_var"], torch.ones(6))
    assert not torch.equal(seen[ALL]["features.0.weight"], trained["features.0.weight"])


def test_full_randomisation_changes_the_logits_deterministically(splitnet, inputs):
    state = torch.random.get_rng_state()
    first = fully_randomised(splitnet, inputs, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    again = fully_randomised(splitnet, inputs, seed=1)
    other = fully_randomised(splitnet, inputs, seed=2)
    with torch.no_grad():
        trained, random = splitnet(inputs), first(inputs)
        assert (trained - random).abs().max() > 0.05
        assert torch.equal(random, again(inputs))
        assert not torch.equal(random, other(inputs))


def test_sanity_check_leaves_the_model_unchanged_and_trained_is_exactly_one(splitnet, inputs):
    before = _state(splitnet)
    splitnet.head.train()  # a mixed train/eval state must survive too
    report = sanity_check(
        splitnet, inputs, ["grad-cam", "ms-cam", "layer-cam"], target=1, target_layer="features"
    )
    assert all(torch.equal(before[k], v) for k, v in splitnet.state_dict().items())
    assert splitnet.head.training and not splitnet.features.training
    assert not any(m._forward_hooks for m in splitnet.modules())
    assert report.stages == [TRAINED, "head", ALL]
    for method, row in report.methods.items():
        assert row["stages"] == report.stages
        assert row["spearman"][0] == 1.0 and row["pearson"][0] == 1.0
        assert row["constant_tiles"][0] == 0
        assert row["pxap"] is None
        assert report.maps[method].shape == (3, 3, 20, 16)
    # Recomputed by hand: the fully randomised stage against the trained maps.
    random = fully_randomised(splitnet, inputs)
    trained_maps = create_explainer("grad-cam", splitnet, "features")(inputs, 1)
    random_maps = create_explainer("grad-cam", random, "features")(inputs, 1)
    expected = spearman(trained_maps, random_maps)
    expected = expected[np.isfinite(expected)]
    assert report.methods["grad-cam"]["spearman"][-1] == pytest.approx(expected.mean(), abs=1e-12)
    assert report.methods["grad-cam"]["spearman"][-1] < 0.99


def test_pxap_per_stage_and_the_image_control(splitnet, inputs):
    masks = np.zeros((3, 20, 16), bool)
    masks[:, 5:10, 4:8] = True
    report = sanity_check(splitnet, inputs, ["ms-cam"], 1, "features", masks=masks)
    assert len(report.methods["ms-cam"]["pxap"]) == 3
    assert all(0 <= v <= 1 for v in report.methods["ms-cam"]["pxap"])
    image = image_only(inputs).numpy()
    assert np.allclose(report.image, image)
    rho = spearman(image, report.maps["ms-cam"][0]).mean()
    assert report.image_only["spearman_with_trained"]["ms-cam"] == pytest.approx(rho)
    assert 0 <= report.image_only["pxap"] <= 1


def test_unknown_method_is_refused(splitnet, inputs):
    with pytest.raises(ValueError, match="unknown method no-such-cam"):
        sanity_check(splitnet, inputs, ["no-such-cam"], 1, "features")


def test_spearman_by_hand_with_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    # ranks [1, 2.5, 2.5, 4] and [1.5, 1.5, 3, 4]: covariance 3.75, variances 4.5 and 4.5.
    a = np.array([[1.0, 2.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    b = np.array([[1.0, 1.0, 2.0, 3.0], [9.0, 4.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    rho = spearman(a, b)
    assert rho[0] == pytest.approx(5 / 6, abs=1e-15)
    assert rho[1] == -1.0  # a monotone decreasing relation, whatever the values
    assert np.isnan(rho[2])  # a constant map has no ranking
    assert spearman(a[:2], a[:2]).tolist() == [1.0, 1.0]


def test_channel_mean_control_is_ms_cam_when_the_gradient_is_flat(inputs):
    torch.manual_seed(0)
    flat_head = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    ).eval()
    control = ChannelMeanMSCAM(flat_head, "1")(inputs, 2)
    assert torch.allclose(control, MSCAM(flat_head, "1")(inputs, 2), atol=1e-5)
    # Above a non-linear head ω_ele varies over space: the control is another map.
    spatial = make_splitnet()
    different = ChannelMeanMSCAM(spatial, "features")(inputs, 1)
    assert (different - MSCAM(spatial, "features")(inputs, 1)).abs().max() > 0.05


def test_image_gated_gradcam_is_the_normalised_product(splitnet, inputs):
    grad_cam = create_explainer("grad-cam", splitnet, "features")(inputs, 1)
    gated = image_gated_gradcam(grad_cam, inputs)
    product = grad_cam * image_only(inputs)
    low = product.flatten(1).min(1).values[:, None, None]
    high = product.flatten(1).max(1).values[:, None, None]
    assert torch.allclose(gated, (product - low) / (high - low), atol=1e-6)


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_scene(tmp_path_factory) -> tuple[Path, Path]:
    from mscam.sar.synth import synthesize_scene
    from mscam.sar.synth_io import write_scene

    folder = tmp_path_factory.mktemp("sanity-scene")
    tif, gpkg = folder / "dense.tif", folder / "dense.gpkg"
    write_scene(synthesize_scene(192, "dense", 5), tif, gpkg)
    return tif, gpkg


def mscam_cli(capsys, *args: str) -> tuple[int, str, str]:
    """`mscam ARGS…` in this process (the same `main` as the console script): code, out, err."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_the_json_and_the_figure(synthetic_scene, tmp_path, capsys):
    tif, gpkg = synthetic_scene
    out = tmp_path / "sanity"
    code, stdout, stderr = mscam_cli(
        capsys,
        "sanity", str(tif), "--out", str(out), "--tiles", "3", "--method", "grad-cam", "ms-cam",
        "--truth", str(gpkg), "--device", "cpu", "--seed", "4", "--quiet",
    )  # fmt: skip
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["sanity.json", "sanity.png"]
    report = json.loads((out / "sanity.json").read_text())
    assert list(report["methods"]) == ["grad-cam", "ms-cam"]
    assert {"model", "tiles", "seed", "stages", "image_only", "target_probability"} <= set(report)
    assert report["seed"] == 4 and len(report["tiles"]) == 3
    probabilities = [t["probability"] for t in report["tiles"]]
    assert probabilities == sorted(probabilities, reverse=True)
    for row in report["methods"].values():
        assert row["stages"][0] == TRAINED and row["stages"][-1] == ALL
        assert row["spearman"][0] == 1.0
        assert len(row["spearman"]) == len(row["stages"]) == len(row["pxap"])
    assert set(report["image_only"]) >= {"spearman_with_trained", "pxap"}
    png = (out / "sanity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Spearman" in stdout and "ms-cam" in stdout


def test_cli_bad_input_is_one_line_and_leaves_nothing(synthetic_scene, tmp_path, capsys):
    tif, _ = synthetic_scene
    out = tmp_path / "never"
    code, _, stderr = mscam_cli(
        capsys, "sanity", str(tif), "--out", str(out), "--method", "grad-cam", "nope-cam"
    )
    assert code == 1
    assert stderr.strip().count("\n") == 0, stderr
    assert "unknown method 'nope-cam'" in stderr
    assert not out.exists()
    code, _, stderr = mscam_cli(capsys, "sanity", str(tmp_path / "none.tif"), "--out", str(out))
    assert code == 1 and not out.exists()
    assert stderr.strip().startswith("mscam: error:") and stderr.strip().count("\n") == 0


# -- QGIS -----------------------------------------------------------------------------------------


@pytest.mark.qgis
def test_processing_algorithm_writes_both_files(qgis_processing, qgis_iface, tmp_path):
    import processing
    from qgis.core import QgsApplication

    from mscam_qgis import classFactory

    plugin = classFactory(qgis_iface)
    plugin.initGui()
    try:
        from mscam.sar.synth import synthesize_scene
        from mscam.sar.synth_io import write_scene

        tif, gpkg = tmp_path / "calm.tif", tmp_path / "calm.gpkg"
        write_scene(synthesize_scene(160, "dense", 6), tif, gpkg)
        algorithm = QgsApplication.processingRegistry().algorithmById("mscam:sanity")
        assert algorithm is not None
        assert [p.name() for p in algorithm.parameterDefinitions()] == [
            "INPUT", "MODEL", "METHODS", "TILES", "TRUTH", "SEED", "DEVICE", "ARCHITECTURE_FILE",
            "OUTPUT",
        ]  # fmt: skip
        assert [o.name() for o in algorithm.outputDefinitions()] == ["OUTPUT", "JSON", "PNG"]
        assert algorithm.flags() & algorithm.FlagSupportsBatch
        assert algorithm.flags() & algorithm.FlagCanCancel
        methods = algorithm.parameterDefinition("METHODS")
        assert methods.options() == list(mscam.METHODS)
        assert methods.defaultValue() == [m for m in mscam.METHODS if m != "score-cam"]
        results = processing.run(
            "mscam:sanity",
            {
                "INPUT": str(tif),
                "METHODS": ["grad-cam", "ms-cam"],
                "TILES": 2,
                "TRUTH": str(gpkg),
                "DEVICE": "cpu",
                "OUTPUT": str(tmp_path / "out"),
            },
        )
        report = json.loads(Path(results["JSON"]).read_text())
        assert list(report["methods"]) == ["grad-cam", "ms-cam"]
        assert report["methods"]["ms-cam"]["pxap"] is not None
        assert Path(results["PNG"]).read_bytes()[:4] == b"\x89PNG"
        assert Path(results["OUTPUT"]) == tmp_path / "out"
    finally:
        plugin.unload()
