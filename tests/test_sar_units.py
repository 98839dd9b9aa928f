"""SAR units, band roles and the fixed dB windows: exact values on hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest
from mscam.errors import InputError
from mscam.radiometry.units import (
    UNITS,
    amplitude_to_sigma0,
    check_units,
    db_to_linear,
    db_window,
    detect_band_roles,
    detect_units,
    dn_to_sigma0,
    linear_to_db,
    sigma0_to_amplitude,
    sigma0_to_dn,
    to_model_units,
    windows_for_roles,
)


def test_dn_to_sigma0_hand_values() -> None:
    # σ0 = DN² / A²: 600²/600² = 1, 60²/600² = 0.01, 1000²/500² = 4; DN 0 is nodata.
    np.testing.assert_allclose(dn_to_sigma0(np.array([600, 60, 6000])), [1.0, 0.01, 100.0])
    assert dn_to_sigma0(np.array([1000]), calibration=500.0)[0] == pytest.approx(4.0)
    assert np.isnan(dn_to_sigma0(np.array([0]))[0])


def test_db_conversions_hand_values() -> None:
    np.testing.assert_allclose(
        linear_to_db(np.array([1.0, 0.1, 0.001, 100.0])), [0.0, -10.0, -30.0, 20.0], atol=1e-12
    )
    # The floor: 10·log10(max(σ0, 1e-5)) so zero and negative σ0 give -50 dB, not -inf.
    np.testing.assert_array_equal(linear_to_db(np.array([0.0, -0.3, 1e-7])), [-50.0, -50.0, -50.0])
    assert np.isnan(linear_to_db(np.array([np.nan]))[0])
    np.testing.assert_allclose(db_to_linear(np.array([-20.0, 0.0, 3.0])), [0.01, 1.0, 10**0.3])


def test_amplitude_round_trip() -> None:
    assert amplitude_to_sigma0(np.array([0.5]))[0] == pytest.approx(0.25)
    assert sigma0_to_amplitude(np.array([0.25]))[0] == pytest.approx(0.5)
    assert sigma0_to_amplitude(np.array([-1.0]))[0] == 0.0  # noise-subtracted negatives clip


def test_dn_sigma0_db_round_trip_is_exact_on_dn() -> None:
    dn = np.array([2, 19, 33, 600, 6000, 18973, 65535], np.uint16)
    sigma0 = dn_to_sigma0(dn)
    back = sigma0_to_dn(db_to_linear(linear_to_db(sigma0)))
    np.testing.assert_array_equal(back, dn)
    # DN 1 is σ0 = 2.8e-6, below the 1e-5 floor: it reads as -50 dB.
    assert linear_to_db(dn_to_sigma0(np.array([1])))[0] == -50.0
    assert sigma0_to_dn(np.array([np.nan, 0.0]))[0] == 0  # NaN → DN 0 (nodata)
    assert sigma0_to_dn(np.array([0.0]))[0] == 1  # a valid zero stays valid (DN 1)


@pytest.mark.parametrize(
    ("values", "source", "target", "expected"),
    [
        ([0, 600, 6000], "DN", "dB", [np.nan, 0.0, 20.0]),
        ([0, 600, 60], "DN", "linear", [np.nan, 1.0, 0.01]),
        ([-20.0, 0.0, 10.0], "dB", "linear", [0.01, 1.0, 10.0]),
        ([-20.0, 0.0], "dB", "amplitude", [0.1, 1.0]),
        ([0.1, 2.0], "amplitude", "dB", [-20.0, 10 * np.log10(4.0)]),
        ([0.01, 1.0], "linear", "DN", [60.0, 600.0]),
        ([-10.0, np.nan], "db", "DB", [-10.0, np.nan]),
    ],
)
def test_to_model_units(values: list, source: str, target: str, expected: list) -> None:
    out = to_model_units(np.array(values), source, target)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_declared_nodata_becomes_nan() -> None:
    out = to_model_units(np.array([-9999.0, -12.0]), "dB", "dB", nodata=-9999.0)
    assert np.isnan(out[0]) and out[1] == pytest.approx(-12.0)
    assert np.isnan(to_model_units(np.array([5.0]), "linear", "dB", nodata=5.0)[0])


def test_db_to_db_equals_the_round_trip_through_sigma0() -> None:
    rng = np.random.default_rng(4)
    db = rng.uniform(-70, 20, 1000).astype(np.float32)
    db[::97] = np.nan
    db[::101] = -9999.0
    out = to_model_units(db, "dB", "dB", nodata=-9999.0)
    linear = to_model_units(db, "dB", "linear", nodata=-9999.0)
    np.testing.assert_allclose(out, to_model_units(linear, "linear", "dB"), rtol=0, atol=1e-4)
    assert np.nanmin(out) == -50.0 and np.isnan(out[::101]).all() and np.isnan(out[::97]).all()


def test_unknown_units_rejected() -> None:
    assert check_units("db") == "dB" and check_units("LINEAR") == "linear"
    with pytest.raises(InputError, match="unknown SAR units"):
        to_model_units(np.ones(2), "watts", "dB")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"dtype": "uint16"}, "DN"),
        ({"dtype": "float32", "name": "VV_dB.tif"}, "dB"),
        ({"dtype": "float32", "unit_type": "dB"}, "dB"),
        ({"dtype": "float32", "description": "Amplitude_VH"}, "amplitude"),
        ({"dtype": "float32", "metadata": {"SAR_UNITS": "intensity"}}, "linear"),
        ({"dtype": "int16", "unit_type": "decibel"}, "dB"),  # a label beats the integer dtype
        ({"dtype": "float32", "sample": np.array([-21.0, -15.0, -8.0, 2.0, np.nan])}, "dB"),
        ({"dtype": "float32", "sample": np.array([0.0, 0.02, 0.5, 3.0])}, "linear"),
        # A metadata item without "unit" in its key is not a unit label.
        ({"dtype": "float32", "metadata": {"NOTE": "db"}, "sample": np.array([0.1])}, "linear"),
        ({"dtype": "uint16", "override": "linear"}, "linear"),
        ({"dtype": "float32", "name": "VV_dB.tif", "override": "amplitude"}, "amplitude"),
    ],
)
def test_detect_units_rule(kwargs: dict, expected: str) -> None:
    dtype = kwargs.pop("dtype")
    assert detect_units(dtype, **kwargs) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # a float band with no label and no data
        {"sample": np.array([np.nan, np.nan])},
        {"sample": np.array([-500.0, 300.0, -2.0, 900.0])},  # neither dB-like nor non-negative
    ],
)
def test_detect_units_refuses_to_guess(kwargs: dict) -> None:
    with pytest.raises(InputError, match="units"):
        detect_units("float32", **kwargs)


def test_detect_band_roles_rule_and_overrides() -> None:
    assert detect_band_roles(2, descriptions=["Sigma0_VH", "Sigma0_VV"]) == ("VH", "VV")
    pols = [{"POLARISATION": "HH"}, {"polarization": "hv"}]
    assert detect_band_roles(2, metadata=pols) == ("HH", "HV")
    # Only polarisation keys count: an unrelated item that says VV is ignored.
    assert detect_band_roles(1, metadata=[{"NOTE": "VV"}], descriptions=["HH_dB"]) == ("HH",)
    assert detect_band_roles(2) == ("VV", "VH")  # positional default
    assert detect_band_roles(3) == ("VV", "VH", "band3")
    assert detect_band_roles(2, descriptions=["VV", "VH"], override=["hh", "hv"]) == ("HH", "HV")
    with pytest.raises(InputError, match="2 band roles given for 1"):
        detect_band_roles(1, override=["VV", "VH"])
    with pytest.raises(InputError, match="repeat"):
        detect_band_roles(2, descriptions=["VV", "VV"])
    with pytest.raises(InputError, match="unknown band role"):
        detect_band_roles(1, override=["XY"])


def test_db_window_fixed_not_per_chip() -> None:
    chip = np.array([[[-30.0, -10.0, 10.0, 20.0]], [[-35.0, -17.5, 0.0, np.nan]]])
    out = db_window(chip, windows_for_roles(["VV", "VH"]))
    np.testing.assert_allclose(out[0, 0], [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(out[1, 0, :3], [0.0, 0.5, 1.0])
    assert np.isnan(out[1, 0, 3])
    # A flat empty-sea chip stays dark: a per-chip min-max would have stretched it.
    flat = np.full((1, 1, 8, 8), -25.0)
    np.testing.assert_allclose(db_window(flat, [(-30.0, 10.0)]), 0.125)


def test_db_window_checks_shapes() -> None:
    with pytest.raises(InputError, match="2 bands"):
        db_window(np.zeros((3, 4, 4)), [(-30, 10), (-35, 0)])
    with pytest.raises(InputError, match="low < high"):
        db_window(np.zeros((1, 4, 4)), [(0, 0)])
    with pytest.raises(InputError, match="no dB window"):
        windows_for_roles(["band3"])


def test_unit_type_decides_and_a_db_word_wins_within_a_label() -> None:
    # The unit type outranks the description and the file name, whatever they say.
    assert detect_units("float32", unit_type="dB", description="linear", name="x_amp.tif") == "dB"
    assert detect_units("uint16", unit_type="sigma0", description="VV_dB") == "linear"
    assert detect_units("int16", unit_type="amplitude") == "amplitude"
    assert detect_units("float32", unit_type="DN") == "DN"
    # "Sigma0_VV_dB" is sigma0 in dB; an unknown unit type ("m") is no word at all.
    assert detect_units("float32", description="Sigma0_VV_dB") == "dB"
    assert detect_units("float32", unit_type="m", description="Sigma0_VV_dB") == "dB"
    # Complex samples are read as |z|: amplitude unless a label says otherwise.
    assert detect_units("complex64") == "amplitude"
    assert detect_units("complex64", unit_type="dB") == "dB"


def test_infinite_values_are_nodata_in_every_conversion() -> None:
    values = np.array([np.inf, -np.inf, -10.0])
    for target in UNITS:
        out = to_model_units(values, "dB", target)
        assert np.isnan(out[:2]).all() and np.isfinite(out[2]), target
