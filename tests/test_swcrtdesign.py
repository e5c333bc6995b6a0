"""crt_widgets.compat.swcrtdesign: swCRTdesign 4.0's swDsn and swPwr, against values R computed
(tests/data/swcrtdesign_R.R wrote tests/data/swcrtdesign_R.json; R does not run here)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from crt_widgets.compat.swcrtdesign import swDsn, swPwr

CASES = json.loads((Path(__file__).parent / "data" / "swcrtdesign_R.json").read_text())


def as_python(value):
    """JSON from R: lists become float arrays (null -> NaN), numbers stay numbers."""
    if isinstance(value, list):
        return np.array(value, dtype=float)
    return value


def design_of(case: dict) -> dict:
    return swDsn(**{k.replace(".", "_"): as_python(v) for k, v in case["swDsn_args"].items()})


def power_args(case: dict) -> dict:
    args = {k: as_python(v) for k, v in case["swPwr_args"].items()}
    args.pop("retDATA", None)
    return args


def test_the_reference_covers_what_swpwr_does():
    args = [c["swPwr_args"] for c in CASES.values()]
    dsn = [c["swDsn_args"] for c in CASES.values()]
    assert {a["distn"] for a in args} == {"gaussian", "binomial"}
    assert any("zeta" in a for a in args) and any("iac" in a for a in args)          # cohorts, both ways
    assert any("icc" in a for a in args) and any("tau" in a for a in args)           # both parameterizations
    assert any(np.ndim(a["n"]) == 1 for a in args) and any(np.ndim(a["n"]) == 2 for a in args)
    assert any("H" in a for a in args) and any(np.size(a["mu1"]) == 2 for a in args)
    assert any("extra.ctl.time" in d for d in dsn) and any("extra.trt.time" in d for d in dsn)
    assert any(d.get("all.ctl.time0") is False for d in dsn) and any("tx.effect.frac" in d for d in dsn)
    assert any("swBlk" in d and None in np.ravel(np.array(d["swBlk"], dtype=object)) for d in dsn)
    assert any(0 in np.atleast_1d(d["clusters"]) for d in dsn)
    assert len(CASES) == 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_swdsn_matches_r(name):
    case = CASES[name]
    ours = design_of(case)
    for key, value in case["swDsn"].items():
        expected = np.array(value if value is not None else np.nan, dtype=float)
        got = np.asarray(ours[key], dtype=float)
        assert got.size == expected.size, key
        np.testing.assert_array_equal(got.ravel(), expected.ravel(), err_msg=key)
    assert set(ours) == set(case["swDsn"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_swpwr_matches_r(name):
    case = CASES[name]
    design = design_of(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        power = swPwr(design, **power_args(case))
        full = swPwr(design, retDATA=True, **power_args(case))
    np.testing.assert_allclose(np.atleast_1d(power), np.atleast_1d(case["power"]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.atleast_1d(full["var_theta_WLS"]), np.atleast_1d(case["var_theta_WLS"]),
                               rtol=1e-6)
    assert np.ndim(power) == np.ndim(case["swPwr_args"]["mu1"])       # a number, or one power per level
    np.testing.assert_array_equal(np.atleast_1d(full["pwrWLS"]), np.atleast_1d(power))
    if "retDATA" in case:
        r = case["retDATA"]
        for key in ("tau", "eta", "rho", "gamma", "zeta"):
            assert full[key] == pytest.approx(r[key], abs=1e-12), key
        np.testing.assert_allclose(np.atleast_2d(full["var"]), np.atleast_2d(r["var"]), rtol=1e-6, atol=1e-12)
        assert list(full["Xmat"].shape) == r["Xmat_dim"] and list(full["Wmat"].shape) == r["Wmat_dim"]
        if "Wmat" in r:
            np.testing.assert_allclose(full["Xmat"], np.array(r["Xmat"]), atol=1e-12)
            np.testing.assert_allclose(full["Wmat"], np.array(r["Wmat"]), atol=1e-12)


def test_retdata_element_names_and_binomial_sigma():
    case = CASES["ex10_swblk_two_levels"]
    full = swPwr(design_of(case), retDATA=True, **power_args(case))
    assert list(full) == ["design", "n", "mu0", "mu1", "H", "tau", "eta", "rho", "sigma", "gamma", "zeta", "alpha",
                          "Xmat", "Wmat", "var", "var_theta_WLS", "pwrWLS"]
    assert np.isnan(full["sigma"]) and full["pwrWLS"].shape == (2,)


def test_levels_follow_r_column_major_order():
    design = swDsn([3, 3, 3], swBlk=[[0, 2, 2, 2], [0, 0, 1, 2], [0, 1, 1, 2]])
    assert design["TxLev"].tolist() == [2.0, 1.0] and design["nTxLev"] == 2


def test_zero_wave_and_na_columns():
    design = swDsn([3, 0, 2])
    assert design["n_waves"] == 2 and design["clusters"].tolist() == [3, 2] and design["total_time"] == 4
    blk = swDsn([2, 3], swBlk=[[0, None, 1, 1], [0, np.nan, 0, 1]])
    assert blk["total_time"] == 3 and blk["swDsn"].shape == (5, 3)


def test_fractional_effect_longer_than_the_exposure_is_cut_short():
    design = swDsn([1, 1], tx_effect_frac=[0.2, 0.4, 0.6, 0.8])
    np.testing.assert_array_equal(design["swDsn"], [[0, 0.2, 0.4], [0, 0, 0.2]])


# --- warnings R raises that change or question the answer -------------------------------------------------
def test_warnings():
    sw = swDsn([3, 3, 3, 3])
    with pytest.warns(UserWarning, match="equal weights on the 4 exposure times"):
        swPwr(sw, "gaussian", n=20, mu0=0, mu1=0.5, sigma=1, tau=0.2, H=1)
    with pytest.warns(UserWarning, match="H rescaled to sum to 1"):
        swPwr(sw, "gaussian", n=20, mu0=0, mu1=0.5, sigma=1, tau=0.2, H=[1, 1, 2, 2])
    with pytest.warns(UserWarning, match="sigma is ignored when distn='binomial'"):
        swPwr(sw, "binomial", n=20, mu0=0.3, mu1=0.2, sigma=1, tau=0.05)
    with pytest.warns(UserWarning, match="never crosses over to treatment"):
        swPwr(swDsn([5, 5], swBlk=[[0, 1], [0, 0]]), "gaussian", n=30, mu0=0, mu1=0.4, sigma=1, icc=0.05)
    with pytest.warns(UserWarning, match=r"tx_effect_frac outside \[0, 1\]"):
        swDsn([2, 2], tx_effect_frac=1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # R's notes on every call (cross-sectional assumed...) are not raised
        swPwr(sw, "gaussian", n=[20] * 12, mu0=0, mu1=0.5, sigma=1, tau=0.2, zeta=0.3)


# --- every message -------------------------------------------------------------------------------------------
SW = swDsn([3, 3, 3])
GAUSS = dict(distn="gaussian", n=20, mu0=0, mu1=0.5, sigma=1)
BAD_SWDSN = [
    (dict(clusters=[2.5, 3]), "clusters must hold whole numbers"),
    (dict(clusters=["a"]), "clusters must hold whole numbers"),
    (dict(clusters=[3, 3], extra_ctl_time=-1), "extra_ctl_time must be a whole number >= 0"),
    (dict(clusters=[3, 3], extra_trt_time=1.5), "extra_trt_time must be a whole number >= 0"),
    (dict(clusters=[3, 3], all_ctl_time0="no"), "all_ctl_time0 must be True or False"),
    (dict(clusters=[0, 0]), "at least one cluster"),
    (dict(clusters=[3, -1]), "at least one cluster"),
    (dict(clusters=[3, 3], tx_effect_frac=[np.nan]), "tx_effect_frac must be one or more finite numbers"),
    (dict(clusters=[3, 3], tx_effect_frac=0.5, swBlk=[[0, 1], [0, 0]]), "tx_effect_frac cannot be combined with swBlk"),
    (dict(clusters=[3, 3], extra_trt_time=1, swBlk=[[0, 1], [0, 0]]), "not both"),
    (dict(clusters=[3, 0], swBlk=[[0, 1], [0, 0]]), r"clusters must be whole numbers >= 1 with swBlk"),
    (dict(clusters=[3, 3], swBlk=[[0, 0.5], [0, 0]]), "swBlk must be a waves x time matrix of whole-number levels"),
    (dict(clusters=[3, 3], swBlk=[["a", 1], [0, 0]]), "swBlk must be a waves x time matrix"),
    (dict(clusters=[3, 3, 3], swBlk=[[0, 1], [0, 0]]), r"clusters must give one number per row of swBlk \(2\), got 3"),
    (dict(clusters=[3, 3], swBlk=[[None, None], [None, None]]), "swBlk has no observed period"),
]


@pytest.mark.parametrize("args, message", BAD_SWDSN)
def test_swdsn_messages(args, message):
    with pytest.raises(ValueError, match=message):
        swDsn(**args)


BAD_SWPWR = [
    (dict(design={"swDsn": 1}, **GAUSS), "design must be a swDsn"),
    (dict(design=SW, **{**GAUSS, "distn": "poisson"}), "distn must be 'gaussian' or 'binomial'"),
    (dict(design=SW, alpha=1.0, **GAUSS), r"alpha must be in \(0, 1\), got 1"),
    (dict(design=SW, alpha="x", **GAUSS), "alpha must be a finite number"),
    (dict(design=SW, **{**GAUSS, "n": 20.5}), "n must hold whole numbers"),
    (dict(design=SW, **{**GAUSS, "n": "a"}), "n must hold whole numbers"),
    (dict(design=SW, **{**GAUSS, "mu0": None}), "mu0 must be a finite number"),
    (dict(design=SW, **{**GAUSS, "mu1": [np.nan]}), "mu1 must hold finite numbers"),
    (dict(design=swDsn([3, 3], swBlk=[[0, 1, 2], [0, 0, 1]]), H=1, **{**GAUSS, "mu1": [0.5, 0.6]}),
     "H .* needs a 0/1 design; this one has 2 treatment levels"),
    (dict(design=swDsn([3, 3], tx_effect_frac=0.5), H=1, **GAUSS), "H cannot be combined with a design built"),
    (dict(design=SW, H=[0.5, 0.5], **GAUSS), "one weight per exposure time: 3 in this design, got 2"),
    (dict(design=SW, H=[0.5, np.nan, 0.5], **GAUSS), "H must hold finite numbers with a nonzero sum"),
    (dict(design=SW, H=[1, -1, 0], **GAUSS), "H must hold finite numbers with a nonzero sum"),
    (dict(design=SW, H="abc", **GAUSS), "H must hold finite numbers with a nonzero sum"),
    (dict(design=SW, **{**GAUSS, "mu1": [0.5, 0.6]}), r"one mean per treatment level of the design \(1\), got 2"),
    (dict(design=SW, distn="binomial", n=20, mu0=0.3, mu1=1.2, icc=0.05), r"mu0 and mu1 must be proportions in"),
    (dict(design=SW, distn="gaussian", n=20, mu0=0, mu1=0.5), r"sigma \(the residual SD\) is needed"),
    (dict(design=SW, tau=0.2, icc=0.05, **GAUSS), "the two parameterizations exclude each other"),
    (dict(design=SW, icc=1.2, **GAUSS), r"icc, cac and iac must be in \[0, 1\], got 1.2, 1, 0"),
    (dict(design=SW, icc=1, **GAUSS), "icc = 1 does not determine the random effects"),
    (dict(design=SW, iac=1, **GAUSS), "iac = 1 does not determine the random effects"),
    (dict(design=SW, icc=0.1, **{**GAUSS, "sigma": 0}), "sigma = 0 cannot be used with icc"),
    (dict(design=SW, tau=0.2, eta=0.1, rho=2, **GAUSS), r"rho must be in \[-1, 1\], got 2"),
    (dict(design=SW, tau=-0.2, **GAUSS), "tau, eta, gamma and zeta must be >= 0, got -0.2"),
    (dict(design=SW, tau=0.2, rho=0.5, **GAUSS), "rho must be 0 when tau or eta is 0"),
    (dict(design=SW, tau=0.2, **{**GAUSS, "sigma": 0}), "a gaussian outcome needs sigma, gamma or zeta above 0"),
    (dict(design=SW, tau="big", **GAUSS), "tau must be a finite number"),
    (dict(design=SW, tau=0.2, **{**GAUSS, "n": [20] * 8}), r"n must give one size per cluster \(9\), got 8"),
    (dict(design=SW, tau=0.2, **{**GAUSS, "n": np.full((9, 3), 20)}),
     r"n must be a clusters x time matrix \(9 x 4\), got shape \(9, 3\)"),
    (dict(design=SW, tau=0.2, **{**GAUSS, "n": np.full((9, 4, 1), 20)}), "n must be a scalar, a vector or a matrix"),
    (dict(design=SW, tau=0.2, **{**GAUSS, "n": [20] * 8 + [0]}), "n must be positive"),
    (dict(design=SW, tau=0.2, zeta=0.5, **{**GAUSS, "n": np.tile([10, 10, 12, 10], (9, 1))}),
     "closed cohort .* the same in all its periods"),
    (dict(design=SW, distn="binomial", n=20, mu0=0.3, mu1=0.2, tau=0.5), "must not exceed the binomial variance muBar"),
    (dict(design=swDsn([3, 3], swBlk=[[0, 1], [0, 1]]), tau=0.2, **GAUSS), "not estimable"),
    (dict(design=SW, tau=0.2, **{**GAUSS, "n": np.tile([20, 20, 20, 0], (9, 1))}), r"period\(s\) \[4\]"),
]


@pytest.mark.parametrize("args, message", BAD_SWPWR)
def test_swpwr_messages(args, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=message):
            swPwr(**args)
