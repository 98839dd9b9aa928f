"""One settings table under every front end: `mscam.scene.settings.SETTINGS` against
`SceneSettings`, the command line's flags and the Processing algorithms' parameters (real QGIS,
pytest-qgis). A range, default or choice that drifts in one front end fails here."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import mscam
import pytest
from mscam.cli import build_parser, main
from mscam.cli.explain import scene_settings
from mscam.errors import InputError
from mscam.radiometry.units import UNITS
from mscam.scene.pipeline import MAX_OVERLAP, SceneSettings
from mscam.scene.settings import (
    DETECT,
    DEVICES,
    METHOD_NAMES,
    SETTINGS,
    UNIT_NAMES,
    Setting,
)

ROOT = Path(__file__).resolve().parent.parent
RANGED = [s for s in SETTINGS.values() if s.minimum is not None or s.maximum is not None]


def sub_parser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[command]


def flag_action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def out_of_range(setting: Setting) -> list[float]:
    """Values just outside the setting's range (and NaN for floats)."""
    step = setting.step or 1
    values = []
    if setting.minimum is not None:
        values.append(setting.minimum if setting.open_minimum else setting.minimum - step)
    if setting.maximum is not None:
        values.append(setting.maximum + step)
    return values + ([float("nan")] if setting.kind is float else [])


# -- the table and SceneSettings ------------------------------------------------------------------


def test_the_table_names_every_scene_setting_with_its_default():
    fields = dataclasses.fields(SceneSettings)
    assert set(SETTINGS) == {f.name for f in fields}
    for field in fields:
        assert SETTINGS[field.name].default == field.default, field.name
    assert tuple(mscam.METHODS) == METHOD_NAMES == SETTINGS["method"].choices
    assert UNITS == UNIT_NAMES == SETTINGS["units"].choices
    assert SETTINGS["device"].choices == DEVICES
    assert MAX_OVERLAP == SETTINGS["overlap"].maximum  # the pipeline's name kept


@pytest.mark.parametrize("setting", RANGED, ids=lambda s: s.name)
def test_scene_settings_refuse_values_out_of_the_tables_range_in_one_line(setting):
    for value in out_of_range(setting):
        with pytest.raises(InputError) as refused:
            SceneSettings(**{setting.name: setting.kind(value) if value == value else value})
        message = str(refused.value)
        assert "\n" not in message
        assert message.startswith(setting.name.replace("_", " ") + " must be ")
        assert setting.range_text() in message and message.endswith(f"got {value}")
    lowest = setting.lowest if setting.minimum is not None else setting.maximum
    SceneSettings(**{setting.name: setting.kind(lowest)})  # the edges are accepted
    if setting.maximum is not None:
        SceneSettings(**{setting.name: setting.kind(setting.maximum)})


def test_scene_settings_check_choices_from_the_table():
    with pytest.raises(InputError, match="unknown units 'decibel'; choose one of: DN, linear"):
        SceneSettings(units="decibel")
    assert SceneSettings(units="db").units == "db"  # units are matched without regard to case
    with pytest.raises(InputError, match="unknown method"):
        SceneSettings(method="gradcam")
    assert SceneSettings(device="cuda:1").device == "cuda:1"  # device choices are open


def test_ranges_are_spelled_from_the_table():
    assert SETTINGS["overlap"].range_text() == f"[0, {MAX_OVERLAP}]"
    assert SETTINGS["threshold"].range_text() == "(0, 1]"
    assert SETTINGS["threshold"].lowest == 0.01  # what a GUI offers above the open minimum
    assert SETTINGS["tile"].range_text() == "at least 8"
    assert SETTINGS["pixel_spacing"].range_text() == "positive"


def test_the_table_imports_without_torch():
    script = textwrap.dedent("""
        import importlib.abc, sys

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError("No module named 'torch'", name=name)

        sys.meta_path.insert(0, NoTorch())
        from mscam.scene.settings import SETTINGS
        print(len(SETTINGS), "torch" in sys.modules)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(SETTINGS)), "False"]


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["explain", "batch"])
def test_explain_and_batch_have_a_flag_per_setting_as_the_table_says(command):
    parser = sub_parser(command)
    for setting in SETTINGS.values():
        if setting.cli_flag is None:
            assert not any(setting.name == a.dest for a in parser._actions)
            continue
        action = flag_action(parser, setting.cli_flag)
        assert action.dest == setting.name
        if setting.name == "method_options":
            assert action.default == []
            continue
        assert action.default == setting.default and action.type is setting.kind
        closed = setting.choices and not setting.open_choices and setting.case_sensitive
        assert action.choices == (list(setting.choices) if closed else None)
        assert setting.range_text() in action.help
        if setting.default is not None:
            assert f"(default {setting.default})" in action.help


def test_localize_shares_the_tables_flags():
    parser = sub_parser("localize")
    for name in ("threshold", "merge_gap", "lattice", "units", "bands"):
        setting = SETTINGS[name]
        action = flag_action(parser, setting.cli_flag)
        # threshold, merge gap and lattice default to the run's (None: from the heatmap's tags)
        run_default = name in ("threshold", "merge_gap", "lattice")
        assert action.dest == name and action.default == (None if run_default else setting.default)
        assert ("the run's" in action.help) is run_default
        assert action.type is setting.kind and setting.range_text() in action.help


def test_scene_settings_come_from_the_parsed_flags_by_one_function():
    parse = sub_parser("explain").parse_args
    assert scene_settings(parse(["in.tif", "--heatmap", "h.tif"])) == SceneSettings()
    args = parse(
        "in.tif --heatmap h.tif --method grad-cam --option batch_size=8 --target-class ship "
        "--tile 32 --overlap 0.5 --threshold 0.3 --min-score 0.2 --merge-gap -1 --lattice keep "
        "--batch 4 "
        "--device cpu --threads 2 --units dB --bands VV,VH --pixel-spacing 10 "
        "--model card.json --architecture-file net.py".split()
    )
    assert scene_settings(args) == SceneSettings(
        model="card.json",
        architecture_file="net.py",
        method="grad-cam",
        method_options=(("batch_size", 8),),
        target_class="ship",
        tile=32,
        overlap=0.5,
        threshold=0.3,
        min_score=0.2,
        merge_gap=-1,
        lattice="keep",
        batch=4,
        device="cpu",
        threads=2,
        units="dB",
        bands=("VV", "VH"),
        pixel_spacing=10.0,
    )


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--overlap", "0.95", "overlap must be in [0, 0.9]"),
        ("--threshold", "0", "threshold must be in (0, 1], got 0.0"),
        ("--min-score", "1.5", "min score must be in [0, 1], got 1.5"),
        ("--threads", "0", "threads must be in [1, 256], got 0"),
        ("--merge-gap", "-2", "merge gap must be at least -1, got -2"),
        ("--units", "decibel", "unknown units 'decibel'"),
    ],
)
def test_the_cli_refuses_out_of_range_flags_in_one_line(flag, value, message, tmp_path, capsys):
    heatmap = tmp_path / "h.tif"
    code = main(["explain", str(tmp_path / "missing.tif"), "--heatmap", str(heatmap), flag, value])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("mscam: error: ") and message in err
    assert err.count("\n") == 1 and not heatmap.exists()


# -- the Processing algorithms (real QGIS) --------------------------------------------------------


@pytest.fixture(scope="module")
def registry(qgis_app):
    from qgis.core import QgsApplication

    from mscam_qgis.provider import MscamProvider

    registry = QgsApplication.processingRegistry()
    provider = None
    if registry.providerById("mscam") is None:
        provider = MscamProvider()
        registry.addProvider(provider)
    yield registry
    if provider is not None:
        registry.removeProvider(provider)


SCENE_ALGORITHMS = ["mscam:explain", "mscam:batch", "mscam:localize", "mscam:sanity"]


@pytest.mark.qgis
@pytest.mark.parametrize("algorithm_id", SCENE_ALGORITHMS)
def test_processing_parameters_have_the_tables_defaults_ranges_and_choices(registry, algorithm_id):
    from qgis.core import QgsProcessingParameterDefinition

    algorithm = registry.algorithmById(algorithm_id)
    shared = 0
    for setting in SETTINGS.values():
        parameter = algorithm.parameterDefinition(setting.parameter or "")
        if parameter is None:
            continue
        shared += 1
        default = setting.unset if setting.default is None else setting.default
        assert parameter.defaultValue() in (default, None if default == "" else default)
        assert parameter.description() == setting.label
        advanced = bool(parameter.flags() & QgsProcessingParameterDefinition.FlagAdvanced)
        assert advanced == setting.advanced, setting.name
        if parameter.type() == "number":
            low = setting.unset if setting.unset is not None else setting.lowest
            assert parameter.minimum() == pytest.approx(low), setting.name
            if setting.maximum is not None:
                assert parameter.maximum() == pytest.approx(setting.maximum), setting.name
        elif parameter.type() == "enum":
            choices = list(setting.choices)
            if setting.unset is not None:
                choices.insert(0, setting.unset)
            assert parameter.options() == choices
            assert parameter.usesStaticStrings()
    assert shared >= {"mscam:localize": 1, "mscam:sanity": 3}.get(algorithm_id, 9)


@pytest.mark.qgis
def test_explain_exposes_every_processing_setting_and_units_and_bands_advanced(registry):
    explain = registry.algorithmById("mscam:explain")
    batch = registry.algorithmById("mscam:batch")
    for setting in SETTINGS.values():
        if setting.parameter is not None:
            assert explain.parameterDefinition(setting.parameter) is not None, setting.name
    for algorithm in (explain, batch):
        units = algorithm.parameterDefinition("UNITS")
        assert units.options() == [DETECT, *UNIT_NAMES] and units.defaultValue() == DETECT
        bands = algorithm.parameterDefinition("BANDS")
        assert bands.type() == "string" and bands.flags() & bands.FlagOptional
        assert units.flags() & units.FlagAdvanced and bands.flags() & bands.FlagAdvanced
    assert explain.parameterDefinition("OVERLAP").maximum() == MAX_OVERLAP


@pytest.mark.qgis
@pytest.mark.parametrize("algorithm_id", ["mscam:explain", "mscam:batch"])
def test_processing_values_become_the_same_scene_settings(registry, algorithm_id):
    from qgis.core import QgsProcessingContext

    from mscam_qgis.algorithms.base import scene_values

    algorithm = registry.algorithmById(algorithm_id)
    options = importlib_options(algorithm_id)
    context = QgsProcessingContext()
    assert SceneSettings(**scene_values(algorithm, {}, context, options)) == SceneSettings()
    given = {"UNITS": "dB", "BANDS": " VV, VH ", "THRESHOLD": 0.3, "METHOD": "grad-cam"}
    values = scene_values(algorithm, given, context, options)
    assert SceneSettings(**values) == SceneSettings(
        units="dB", bands=("VV", "VH"), threshold=0.3, method="grad-cam"
    )


def importlib_options(algorithm_id: str) -> tuple[str, ...]:
    from mscam_qgis.algorithms import batch, explain

    return {"mscam:explain": explain, "mscam:batch": batch}[algorithm_id].SCENE_OPTIONS


@pytest.mark.qgis
@pytest.mark.parametrize("algorithm_id", ["mscam:explain", "mscam:batch"])
def test_processing_refuses_what_the_table_refuses(registry, algorithm_id):
    algorithm = registry.algorithmById(algorithm_id)
    for name in ("overlap", "threshold", "min_score"):
        setting = SETTINGS[name]
        parameter = algorithm.parameterDefinition(setting.parameter)
        for value in out_of_range(setting)[:2]:
            assert not parameter.checkValueIsAcceptable(value), (name, value)
        assert parameter.checkValueIsAcceptable(setting.lowest)
        assert parameter.checkValueIsAcceptable(setting.maximum)
    method = algorithm.parameterDefinition("METHOD")
    assert not method.checkValueIsAcceptable("gradcam")
    assert method.checkValueIsAcceptable("grad-cam")
