"""The nested random-intercept mixed model: lme4 parity (pinned numbers), statsmodels parity, errors.

Reference numbers: R 4.2 / lme4 (Debian r-cran-lme4) on tests/data/callcenter_small.csv, produced by
tests/data/callcenter_small_lme4.R; its output is kept in tests/data/callcenter_small_lme4.txt.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.iolib.summary2 import Summary

from crt_widgets.core.models.mixed import MixedResult, mixed_model

DATA = Path(__file__).parent / "data" / "callcenter_small.csv"
NESTED = ["center_ID", "rep_ID"]
FORMULA = "call_CSAT ~ reason + age"

# lme4: lmer(call_CSAT ~ reason + age + (1 | center_ID/rep_ID)), fixef, VarCorr, logLik
LME4 = {
    "nested REML": dict(
        formula=FORMULA, groups=NESTED, method="reml",
        fe={"Intercept": 4.71844436405, "reason[T.property]": 0.203628773093, "age": 0.0188851826602},
        se={"Intercept": 0.268533701955, "reason[T.property]": 0.0244995988611, "age": 0.00103739799345},
        vc={"center_ID": 0.663120010204, "rep_ID": 0.730925363827, "residual": 0.407602709072},
        llf=-3253.885591),
    "nested ML": dict(
        formula=FORMULA, groups=NESTED, method="ml",
        fe={"Intercept": 4.71843918364, "reason[T.property]": 0.2036244502, "age": 0.0188850705061},
        se={"Intercept": 0.255226679934, "reason[T.property]": 0.0244909124112, "age": 0.00103703031777},
        vc={"center_ID": 0.593444213848, "rep_ID": 0.730874605936, "residual": 0.407313399338},
        llf=-3244.70756143),
    "centre REML": dict(
        formula=FORMULA, groups=["center_ID"], method="reml",
        fe={"Intercept": 4.72056927837, "reason[T.property]": 0.250484179465, "age": 0.0184471260324},
        se={"Intercept": 0.268417051455, "reason[T.property]": 0.0391715793228, "age": 0.00165026239},
        vc={"center_ID": 0.670996866025, "residual": 1.10851918418},
        llf=-4444.07330385),
    "group REML": dict(
        formula=FORMULA + " + group", groups=NESTED, method="reml",
        fe={"Intercept": 4.44473187709, "reason[T.property]": 0.203629613937, "age": 0.0188856859157,
            "group[T.treat]": 0.546634430737},
        se={"Intercept": 0.376014033021, "reason[T.property]": 0.02449963192, "age": 0.00103739950404,
            "group[T.treat]": 0.527982044025},
        vc={"center_ID": 0.656954801418, "rep_ID": 0.730925256078, "residual": 0.407603831554},
        llf=-3253.06957038),
}


@pytest.fixture(scope="module")
def calls() -> pd.DataFrame:
    return pd.read_csv(DATA)


@pytest.mark.parametrize("case", sorted(LME4))
def test_fast_engine_reaches_lme4_optimum(calls, case):
    ref = LME4[case]
    fit = mixed_model(ref["formula"], calls, groups=ref["groups"], method=ref["method"])
    for name, value in ref["fe"].items():
        assert fit.fe_params[name] == pytest.approx(value, rel=1e-6), name
        assert fit.bse[name] == pytest.approx(ref["se"][name], rel=1e-4), name
    for name, value in ref["vc"].items():
        assert fit.variance_components[name] == pytest.approx(value, rel=1e-4), name
    # lme4 stops at its own tolerance; our optimum is never below it and at most a hair above
    assert fit.llf == pytest.approx(ref["llf"], abs=1e-5)
    assert fit.llf >= ref["llf"] - 1e-6
    assert fit.converged


@pytest.mark.parametrize("case", ["nested REML", "nested ML", "centre REML", "group REML"])
def test_statsmodels_engine_agrees_and_stops_short_of_the_optimum(calls, case):
    ref = LME4[case]
    fast = mixed_model(ref["formula"], calls, groups=ref["groups"], method=ref["method"])
    slow = mixed_model(ref["formula"], calls, groups=ref["groups"], method=ref["method"], engine="statsmodels")
    assert slow.engine == "statsmodels" and slow.converged
    assert list(slow.fe_params.index) == list(fast.fe_params.index)
    np.testing.assert_allclose(slow.fe_params, fast.fe_params, rtol=1e-5)
    np.testing.assert_allclose(slow.bse, fast.bse, rtol=2e-3)
    for name, value in fast.variance_components.items():
        # statsmodels' centre variance is off by up to 0.3% here (its optimiser stops early)
        assert slow.variance_components[name] == pytest.approx(value, rel=5e-3), name
    # same likelihood definition (llf agrees to 1e-5), and statsmodels is never above the optimum
    assert slow.llf == pytest.approx(fast.llf, abs=1e-4)
    assert slow.llf <= fast.llf + 1e-9


def test_result_contract_and_summary(calls):
    import crt_widgets

    assert crt_widgets.mixed_model is mixed_model  # the lazy public name
    fit = mixed_model(FORMULA, calls, groups=NESTED)
    assert isinstance(fit, MixedResult)
    assert list(fit.fe_params.index) == ["Intercept", "reason[T.property]", "age"]
    assert set(fit.variance_components) == {"center_ID", "rep_ID", "residual"}
    assert fit.nobs == 3000 and fit.n_groups["center_ID"] == 10
    assert fit.n_groups["rep_ID"] == calls.groupby(["center_ID", "rep_ID"]).ngroups
    vc = fit.variance_components
    total = sum(vc.values())
    assert fit.icc["center_ID"] == pytest.approx(vc["center_ID"] / total)
    assert fit.icc["rep_ID"] == pytest.approx((vc["center_ID"] + vc["rep_ID"]) / total)
    t = fit.fe_params / fit.bse
    np.testing.assert_allclose(fit.tvalues, t)
    assert fit.ddf == "satterthwaite" and fit.tvalues.name == "t"
    ci = fit.conf_int()  # t quantiles on the Satterthwaite df
    np.testing.assert_allclose(ci.iloc[:, 1] - ci.iloc[:, 0], 2 * stats.t.ppf(0.975, fit.df) * fit.bse)
    np.testing.assert_allclose(fit.pvalues, 2 * stats.t.sf(np.abs(t), fit.df))
    assert fit.pvalues["age"] < 1e-10
    z = mixed_model(FORMULA, calls, groups=NESTED, ddf="z")
    assert np.isinf(z.df).all() and z.tvalues.name == "z"
    np.testing.assert_allclose(z.conf_int().iloc[:, 1] - z.conf_int().iloc[:, 0], 2 * 1.959963984540054 * z.bse)
    summary = fit.summary()
    assert isinstance(summary, Summary)
    text = str(summary)
    assert "reason[T.property]" in text and "Group Var" in text and "rep_ID Var" in text and "REML" in text
    assert "Satterthwaite" in text and " df " in text and text == str(fit)
    assert "MixedResult(REML" in repr(fit)


def test_variance_standard_errors_match_balanced_anova_theory():
    # balanced one-way layout: Var(REML sigma_b^2) ~= 2 (s_b^2 + s^2/n)^2/(a-1) + 2 s^4/(n^2 a (n-1))
    rng = np.random.default_rng(5)
    a, n, sb2, s2 = 400, 20, 1.0, 4.0
    g = np.repeat(np.arange(a), n)
    y = rng.normal(0, np.sqrt(sb2), a)[g] + rng.normal(0, np.sqrt(s2), a * n)
    fit = mixed_model("y ~ 1", pd.DataFrame({"y": y, "g": g}), groups="g")
    est_b, est_e = fit.variance_components["g"], fit.variance_components["residual"]
    theory_b = np.sqrt(2 * (est_b + est_e / n) ** 2 / (a - 1) + 2 * est_e**2 / (n**2 * a * (n - 1)))
    theory_e = np.sqrt(2 * est_e**2 / (a * (n - 1)))
    assert fit.variance_se["g"] == pytest.approx(theory_b, rel=1e-3)
    assert fit.variance_se["residual"] == pytest.approx(theory_e, rel=1e-3)


def test_params_is_the_fixed_effects_as_in_every_result(calls):
    """MixedResult had no ``params`` (GEEResult and statsmodels' results have it): the fixed effects."""
    fit = mixed_model(FORMULA, calls, NESTED)
    assert fit.params.equals(fit.fe_params) and list(fit.params.index) == list(fit.bse.index)


def test_inner_labels_are_nested_within_outer(calls):
    # relabelling reps 1..k inside every centre (labels reused across centres) gives the same fit
    relabelled = calls.assign(rep_ID=calls.groupby("center_ID").rep_ID.rank(method="dense").astype(int))
    assert relabelled.rep_ID.nunique() < calls.rep_ID.nunique()
    a = mixed_model(FORMULA, calls, groups=NESTED)
    b = mixed_model(FORMULA, relabelled, groups=NESTED)
    np.testing.assert_allclose(b.fe_params, a.fe_params, rtol=1e-10)
    assert b.llf == pytest.approx(a.llf, abs=1e-8)


def test_rows_with_missing_values_are_dropped(calls):
    holed = calls.copy()
    holed.loc[[3, 50, 700], "age"] = np.nan
    fit = mixed_model(FORMULA, holed, groups=NESTED)
    ref = mixed_model(FORMULA, calls.drop(index=[3, 50, 700]), groups=NESTED)
    assert fit.nobs == 2997
    np.testing.assert_allclose(fit.fe_params, ref.fe_params, rtol=1e-12)


def test_random_slopes_go_to_statsmodels(calls):
    fit = mixed_model("call_CSAT ~ age", calls, groups=["center_ID"], re_formula="1 + age")
    assert fit.engine == "statsmodels"
    assert fit.extra["cov_re"].shape == (2, 2)
    with pytest.raises(ValueError, match="re_formula"):
        mixed_model("call_CSAT ~ age", calls, groups=["center_ID"], re_formula="1 + age", engine="fast")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(data="empty"), "data is empty"),
        (dict(groups=["center_ID", "one"]), "'one' has one level within every 'center_ID'"),
        (dict(groups=["one"]), "grouping column 'one' has one level"),
        (dict(groups=["nope"]), "grouping column 'nope' is not a column"),
        (dict(formula="reason ~ age"), "outcome column 'reason' must be numeric"),
        (dict(formula="call_CSAT ~ age + height"), "names 'height'"),
        (dict(formula="call_CSAT ~ np.log(height)"), "names 'height'"),
        (dict(method="bayes"), "method must be one of"),
        (dict(engine="lme4"), "engine must be one of"),
        (dict(formula="call_CSAT ~ age + age2"), "rank deficient"),
        (dict(groups=["center_ID", "rep_ID", "month"]), "one or two nested"),
        (dict(ddf="containment"), "ddf must be one of"),
        (dict(ddf="kenward-roger", method="ml"), "ddf='kenward-roger' is defined for REML fits"),
        (dict(alpha=1.5), "alpha must be in"),
        (dict(formula="call_CSAT ~ age", groups=["center_ID"], re_formula="1 + age", ddf="satterthwaite"),
         "with random slopes"),
        # a constant outcome was a ZeroDivisionError from the df algebra; constant within every group, the
        # residual variance is 0 and the fit is meaningless
        (dict(formula="one ~ age"), "outcome 'one': the outcome is 1 for everyone"),
        (dict(formula="rep_mean ~ age", groups=["center_ID", "rep_ID"]), "does not vary within any 'rep_ID' group"),
        (dict(formula="center_mean ~ age", groups=["center_ID"]), "does not vary within any 'center_ID' group"),
    ],
)
def test_bad_input_raises_clear_value_error(calls, kwargs, message):
    data = calls.assign(one=1, age2=calls.age * 2,
                        center_mean=calls.groupby("center_ID")["call_CSAT"].transform("mean"),
                        rep_mean=calls.groupby(["center_ID", "rep_ID"])["call_CSAT"].transform("mean"))
    if kwargs.get("data") == "empty":
        kwargs = {**kwargs, "data": data.iloc[:0]}
    args = dict(formula=FORMULA, data=data, groups=NESTED) | kwargs
    with pytest.raises(ValueError, match=message):
        mixed_model(args.pop("formula"), args.pop("data"), args.pop("groups"), **args)


def test_recovers_simulation_parameters_on_many_centres():
    from crt_widgets.datasets import simulate_callcenter

    # 150 centres, about 18 reps each, 40 calls per rep: SE of the centre variance is about
    # 1.3 * sqrt(2/150) = 0.15, of the rep variance about 0.78 * sqrt(2/2700) = 0.02
    data = simulate_callcenter(108_000, n_centers=150, cap=None, seed=11)
    fit = mixed_model(FORMULA, data, groups=NESTED)
    vc = fit.variance_components
    assert vc["center_ID"] == pytest.approx(1.304, abs=4 * 0.15)
    assert vc["rep_ID"] == pytest.approx(0.776, abs=4 * 0.022)
    assert vc["residual"] == pytest.approx(0.3904, abs=4 * 0.0017)
    assert fit.fe_params["reason[T.property]"] == pytest.approx(0.2, abs=4 * 0.004)
    assert fit.fe_params["age"] == pytest.approx(0.02, abs=4 * 0.00016)
    assert fit.fe_params["Intercept"] == pytest.approx(3.901, abs=4 * 0.1)
