"""Analytic power for every outcome: R and clusterPower parity (pinned), textbook closed forms, brute force, simulation.

Reference numbers: tests/data/power_R.json, made by tests/data/power_R.R (R 4.2): base R's power.t.test;
clusterPower 0.7.0's closed forms (cpa.normal, cpa.binary, cpa.count, sourced from the CRAN source); Dunnett's
critical values from mvtnorm 1.1-3; and textbook formulas written out in R (delta-method ratio scales,
covariate adjustment, exact cluster sizes, multi-arm trials).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crt_widgets as crt
from crt_widgets.core.power.analytic import crt_power, dunnett_critical_value, power_curve

R = json.loads((Path(__file__).parent / "data" / "power_R.json").read_text())


def _rows(key):
    return pd.DataFrame(R[key]).to_dict("records")


def _opposite_tail(result) -> float:
    """The lower tail the strict two-sided t power adds (clusterPower counts the upper tail only)."""
    return float(stats.nct.sf(result.critical_value, result.df, -abs(result.ncp)))  # = cdf(-c; |ncp|)


# -- parity with R -------------------------------------------------------------------------------------

@pytest.mark.parametrize("row", _rows("power_t_test"), ids=str)
def test_t_power_equals_r_power_t_test(row):
    r = crt_power(row["d"], icc=row["icc"], cluster_size=row["m"], clusters_per_arm=row["k"])
    assert r.power == pytest.approx(row["power"], abs=1e-10)


def test_the_same_grid_is_one_vectorised_call():
    grid = pd.DataFrame(R["power_t_test"])
    r = crt_power(grid.d.to_numpy(), icc=grid.icc.to_numpy(), cluster_size=grid.m.to_numpy(),
                  clusters_per_arm=grid.k.to_numpy())
    np.testing.assert_allclose(r.power, grid.power, atol=1e-10)
    assert r.power.shape == (len(grid),) and r.df.tolist() == (2 * grid.k - 2).tolist()


@pytest.mark.parametrize("row", _rows("cpa_normal"), ids=str)
def test_continuous_t_power_equals_clusterpower(row):
    r = crt_power(row["d"], icc=row["icc"], cluster_size=row["m"], clusters_per_arm=row["k"], cv=row["cv"])
    assert r.power - _opposite_tail(r) == pytest.approx(row["power"], abs=1e-10)


@pytest.mark.parametrize("row", _rows("cpa_binary"), ids=str)
def test_binary_power_equals_clusterpower(row):
    test = "t" if row["tdist"] else "z"
    r = crt_power(row["p1"] - row["p2"], outcome="binary", p_control=row["p2"], icc=row["icc"],
                  cluster_size=row["m"], clusters_per_arm=row["k"], cv=row["cv"], test=test)
    expected = row["power"] + (_opposite_tail(r) if test == "t" else 0.0)
    assert r.power == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("row", _rows("cpa_count"), ids=str)
def test_count_power_equals_hayes_bennett_in_clusterpower(row):
    """cpa.count is Hayes and Bennett's (1999) formula with c - 1 clusters (their t correction): our normal
    approximation with c - 1 clusters per arm; person-time per cluster = cluster_size x person_time."""
    common = dict(outcome="count", rate_control=row["r2"], rate_cv=row["cvb"], cluster_size=100,
                  person_time=row["py"] / 100, test="z")
    r = crt_power(row["r1"] - row["r2"], clusters_per_arm=row["k"] - 1, **common)
    assert r.power == pytest.approx(row["power"], abs=1e-10)
    # solving: clusterPower's uniroot answer c, against ours + 1 (the same formula, rounded up)
    solved = crt_power(row["r1"] - row["r2"], power=0.8, **common)
    assert solved.clusters_per_arm == math.ceil(row["nclusters"] - 1 - 1e-9)
    # the ratio scale gives the same power only through the delta method: compare with its own formula
    ratio = crt_power(row["r1"] / row["r2"], scale="ratio", clusters_per_arm=row["k"] - 1, **common)
    y = row["py"]
    v = (row["cvb"] ** 2 + 1 / (row["r2"] * y) + row["cvb"] ** 2 + 1 / (row["r1"] * y)) / (row["k"] - 1)
    assert ratio.power == pytest.approx(stats.norm.cdf(abs(math.log(row["r1"] / row["r2"])) / math.sqrt(v)
                                                       - stats.norm.ppf(0.975)), abs=1e-12)


@pytest.mark.parametrize("row", _rows("dunnett"), ids=str)
def test_dunnett_critical_value_equals_mvtnorm(row):
    df = row["df"] if isinstance(row["df"], (int, float)) and np.isfinite(row["df"]) else np.inf  # R's Inf
    c = dunnett_critical_value(row["q"], row["r"], df, row["alpha"], row["sides"])
    # exact in R for one-sided limits (TVPACK) and two comparisons; three two-sided ones are quasi-Monte Carlo there
    quasi_monte_carlo = row["sides"] == 2 and row["q"] == 3
    assert float(c) == pytest.approx(row["critical"], abs=1e-6 if quasi_monte_carlo else 1e-10)


def test_dunnett_table_values():
    """Dunnett (1955) two-sided 5% table, correlation 0.5: 2 comparisons 2.21 (infinite df), 2.57 (10 df);
    4 comparisons 2.44 (infinite df)."""
    assert float(dunnett_critical_value(2, 0.5, np.inf, 0.05)) == pytest.approx(2.21, abs=0.005)
    assert float(dunnett_critical_value(2, 0.5, 10, 0.05)) == pytest.approx(2.57, abs=0.005)
    assert float(dunnett_critical_value(4, 0.5, np.inf, 0.05)) == pytest.approx(2.44, abs=0.005)


@pytest.mark.parametrize("row", _rows("ratio"), ids=str)
def test_ratio_scales_equal_the_delta_method_in_r(row):
    common = dict(outcome="binary", scale=row["scale"], p_control=row["p0"], icc=row["icc"], cluster_size=row["m"],
                  clusters_per_arm=row["k"])
    assert crt_power(row["effect"], test="z", **common).power == pytest.approx(row["power_z"], abs=1e-10)
    assert crt_power(row["effect"], **common).power == pytest.approx(row["power_t"], abs=1e-10)


@pytest.mark.parametrize("row", _rows("covariates"), ids=str)
def test_covariate_adjustment_equals_teerenstra(row):
    r = crt_power(row["d"], icc=row["icc"], cluster_size=row["m"], clusters_per_arm=row["k"],
                  r2_cluster=row["r2c"], r2_individual=row["r2i"])
    assert r.power == pytest.approx(row["power"], abs=1e-10)


@pytest.mark.parametrize("row", R["exact_sizes"]["table"] if isinstance(R["exact_sizes"]["table"], list)
                         else pd.DataFrame(R["exact_sizes"]["table"]).to_dict("records"), ids=str)
def test_exact_cluster_sizes_equal_van_breukelen(row):
    sizes = R["exact_sizes"]["sizes"]
    r = crt_power(row["d"], icc=row["icc"], cluster_sizes=sizes, clusters_per_arm=len(sizes))
    assert r.power == pytest.approx(row["power"], abs=1e-10)
    assert r.cluster_size == pytest.approx(np.mean(sizes))


@pytest.mark.parametrize("row", _rows("multi_arm"), ids=str)
def test_multi_arm_power_equals_r(row):
    r = crt_power(row["d"], icc=row["icc"], cluster_size=row["m"], clusters_per_arm=row["k"], n_arms=row["arms"],
                  multiplicity=row["method"])
    quasi_monte_carlo = row["method"] == "dunnett" and row["arms"] == 4  # three comparisons: R's QMC critical value
    assert r.power == pytest.approx(row["power"], abs=1e-6 if quasi_monte_carlo else 1e-10)
    assert r.df == row["arms"] * row["k"] - row["arms"]


# -- brute force and closed forms ------------------------------------------------------------------------

def test_exact_sizes_information_equals_dense_gls():
    """Var of the GLS treatment effect with V formed explicitly, for clusters of the given sizes in each arm."""
    sizes, icc, sd = [3, 7, 12, 5], 0.15, 1.3
    rows = []
    for arm in (0, 1):
        for j, m in enumerate(sizes):
            rows += [(arm, f"{arm}-{j}")] * m
    arm = np.array([a for a, _ in rows], dtype=float)
    cluster = np.array([c for _, c in rows])
    same = cluster[:, None] == cluster[None, :]
    V = sd**2 * (icc * same + (1 - icc) * np.eye(len(rows)))
    X = np.column_stack([np.ones(len(rows)), arm])
    var = np.linalg.inv(X.T @ np.linalg.solve(V, X))[1, 1]
    r = crt_power(0.4, icc=icc, sd=sd, cluster_sizes=sizes, clusters_per_arm=len(sizes))
    assert r.se ** 2 == pytest.approx(var, rel=1e-12)


def test_normal_solution_equals_the_closed_form_sample_size():
    """Donner and Klar: k = (z_{1-a/2} + z_power)^2 2 sd^2 DE / (m effect^2), rounded up."""
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    for effect, icc, m in [(0.3, 0.05, 20), (0.2, 0.01, 100), (0.5, 0.2, 8)]:
        de = 1 + (m - 1) * icc
        k = z**2 * 2 * de / (m * effect**2)
        solved = crt_power(effect, icc=icc, cluster_size=m, power=0.8, test="z")
        assert solved.clusters_per_arm == max(2, math.ceil(k))
        exact = crt_power(icc=icc, cluster_size=m, clusters_per_arm=k, power=0.8, test="z") if k == int(k) else None
        assert exact is None or exact.effect == pytest.approx(effect)


def test_binary_z_uses_the_average_variance():
    """Equal arms: sigma^2 = (p0 (1 - p0) + p1 (1 - p1)) / 2 in the usual formula."""
    p0, p1, icc, m, k = 0.2, 0.3, 0.03, 40, 9
    sigma2 = (p0 * (1 - p0) + p1 * (1 - p1)) / 2
    ncp = (p1 - p0) / math.sqrt(2 * sigma2 * (1 + (m - 1) * icc) / (m * k))
    r = crt_power(p1 - p0, outcome="binary", p_control=p0, icc=icc, cluster_size=m, clusters_per_arm=k, test="z")
    assert r.power == pytest.approx(stats.norm.cdf(ncp - stats.norm.ppf(0.975)), abs=1e-14)


@pytest.mark.parametrize("kwargs", [
    dict(effect=0.3, icc=0.05, cluster_size=20),
    dict(effect=0.1, outcome="binary", p_control=0.2, icc=0.02, cluster_size=50, test="z"),
    dict(effect=0.7, outcome="binary", scale="odds_ratio", p_control=0.3, icc=0.05, cluster_size=30),
    dict(effect=0.75, outcome="count", scale="ratio", rate_control=0.1, rate_cv=0.2, cluster_size=40, person_time=2),
    dict(effect=0.3, icc=0.05, cluster_size=20, n_arms=4, multiplicity="dunnett"),
])
def test_solved_clusters_are_the_smallest_reaching_the_power(kwargs):
    effect = kwargs.pop("effect")
    k = crt_power(effect, power=0.85, **kwargs).clusters_per_arm
    assert crt_power(effect, clusters_per_arm=k, **kwargs).power >= 0.85
    assert k == 2 or crt_power(effect, clusters_per_arm=k - 1, **kwargs).power < 0.85


def test_solved_cluster_size_and_effect():
    m = crt_power(0.3, icc=0.02, clusters_per_arm=15, power=0.8).cluster_size
    assert m == int(m)
    assert crt_power(0.3, icc=0.02, clusters_per_arm=15, cluster_size=m).power >= 0.8
    assert crt_power(0.3, icc=0.02, clusters_per_arm=15, cluster_size=m - 1).power < 0.8
    detectable = crt_power(icc=0.05, cluster_size=25, clusters_per_arm=10, power=0.8)
    assert detectable.solved_for == "effect" and detectable.power == pytest.approx(0.8, abs=1e-9)
    # a risk ratio below 1: the one nearest 1 that reaches the power
    rr = crt_power(outcome="binary", scale="ratio", p_control=0.3, icc=0.02, cluster_size=50, clusters_per_arm=12,
                   power=0.8, direction="decrease")
    assert rr.effect < 1 and rr.power == pytest.approx(0.8, abs=1e-9)
    closer = crt_power(rr.effect + 0.01, outcome="binary", scale="ratio", p_control=0.3, icc=0.02, cluster_size=50,
                       clusters_per_arm=12)
    assert closer.power < 0.8


def test_solving_over_arrays_and_unreachable_answers():
    k = crt_power(0.3, icc=np.array([0.01, 0.05, 0.1]), cluster_size=20, power=0.8).clusters_per_arm
    assert k.tolist() == [crt_power(0.3, icc=i, cluster_size=20, power=0.8).clusters_per_arm for i in (0.01, 0.05, 0.1)]
    # with 3 clusters per arm no cluster size reaches 90% when the ICC is 0.2: NaN in an array, an error alone
    m = crt_power(0.5, icc=np.array([0.01, 0.2]), clusters_per_arm=3, power=0.9).cluster_size
    assert np.isfinite(m[0]) and np.isnan(m[1])
    with pytest.raises(ValueError, match="cluster_size: no cluster size reaches power 0.9.*limit"):
        crt_power(0.5, icc=0.2, clusters_per_arm=3, power=0.9)
    with pytest.raises(ValueError, match="more than max_clusters=50"):
        crt_power(0.01, icc=0.05, cluster_size=20, power=0.9, max_clusters=50)


def test_arrays_broadcast_like_loops():
    icc = np.array([0.01, 0.05, 0.1])[:, None]
    k = np.arange(4, 9)[None, :]
    grid = crt_power(0.3, icc=icc, cluster_size=30, clusters_per_arm=k, test="z")
    assert grid.power.shape == (3, 5)
    for i, rho in enumerate(icc.ravel()):
        for j, kk in enumerate(k.ravel()):
            assert grid.power[i, j] == crt_power(0.3, icc=rho, cluster_size=30, clusters_per_arm=int(kk), test="z").power
    frame = grid.frame()
    assert len(frame) == 15 and {"icc", "clusters_per_arm", "power", "df"} <= set(frame.columns)
    assert "15 scenarios" in repr(grid)


# -- simulation: ratio scales and counts, analysed by a cluster-level t test ---------------------------------------

def _beta_binomial_trials(rng, n_trials, k, m, p0, p1, icc):
    """Cluster event counts: cluster risks ~ Beta with mean p and ICC ``icc`` (1 / (a + b + 1)), then binomial."""
    out = []
    for p in (p0, p1):
        total = 1 / icc - 1
        risk = rng.beta(p * total, (1 - p) * total, size=(n_trials, k))
        out.append(rng.binomial(m, risk) / m)
    return out


@pytest.mark.parametrize("scale, effect", [("ratio", 1.3), ("odds_ratio", 0.6)])
def test_binary_ratio_power_matches_simulated_trials(scale, effect):
    """Beta-binomial clusters, a t test on the clusters' log risks (log odds): the delta method's power. (With
    40,000 trials the simulated power is within 2 Monte Carlo SEs of it here: the approximation is good.)"""
    rng = np.random.default_rng(20240515)
    p0, icc, m, k, n_trials = 0.4, 0.02, 100, 10, 4000
    design = dict(outcome="binary", scale=scale, p_control=p0, icc=icc, cluster_size=m, clusters_per_arm=k)
    r = crt_power(effect, **design)
    p1 = p0 * effect if scale == "ratio" else (effect * p0 / (1 - p0)) / (1 + effect * p0 / (1 - p0))
    control, treated = _beta_binomial_trials(rng, n_trials, k, m, p0, p1, icc)
    transform = np.log if scale == "ratio" else (lambda p: np.log(p / (1 - p)))
    # the delta method needs no empty clusters: at these sizes one in about 10^7 is
    assert control.min() > 0 and treated.min() > 0 and treated.max() < 1
    p = stats.ttest_ind(transform(treated), transform(control), axis=1).pvalue
    rate = np.mean(p < 0.05)
    assert abs(rate - r.power) < 3 * math.sqrt(r.power * (1 - r.power) / n_trials), (rate, r.power)


@pytest.mark.parametrize("scale, effect, m, t, k", [("difference", -0.05, 50, 2.0, 12), ("ratio", 0.8, 100, 5.0, 8)])
def test_count_power_matches_simulated_trials(scale, effect, m, t, k):
    """True cluster rates gamma with CV k (Hayes and Bennett's model), Poisson counts over the person-time, a t
    test on the cluster rates (log rates). The log scale needs counts that are not small: the delta method's
    variance is then within about 1% (at 10 events per cluster it is 4% low, and the power 0.02 too high)."""
    rng = np.random.default_rng(7)
    rate0, k_cv, n_trials = 0.2, 0.15, 4000
    design = dict(outcome="count", scale=scale, rate_control=rate0, rate_cv=k_cv, cluster_size=m, person_time=t,
                  clusters_per_arm=k)
    r = crt_power(effect, **design)
    rate1 = rate0 + effect if scale == "difference" else rate0 * effect
    rates = []
    for rate in (rate0, rate1):
        true = rate * rng.gamma(1 / k_cv**2, k_cv**2, size=(n_trials, k))
        rates.append(rng.poisson(true * m * t) / (m * t))
    control, treated = rates
    transform = (lambda x: x) if scale == "difference" else np.log
    assert scale == "difference" or (control.min() > 0 and treated.min() > 0)
    p = stats.ttest_ind(transform(treated), transform(control), axis=1).pvalue
    rate = np.mean(p < 0.05)
    assert abs(rate - r.power) < 3 * math.sqrt(r.power * (1 - r.power) / n_trials), (rate, r.power)


# -- curves ---------------------------------------------------------------------------------------------------------

def test_power_curve_is_a_tidy_table_with_an_icc_band():
    curve = power_curve(0.3, against="clusters_per_arm", values=range(4, 21), icc=0.05, cluster_size=[20, 50],
                        band=(0.02, 0.1))
    assert len(curve) == 2 * 17 and set(curve.line) == {"cluster_size = 20", "cluster_size = 50"}
    row = curve[(curve.cluster_size == 50) & (curve.clusters_per_arm == 10)].iloc[0]
    assert row.power == crt_power(0.3, icc=0.05, cluster_size=50, clusters_per_arm=10).power
    assert row.power_low == crt_power(0.3, icc=0.1, cluster_size=50, clusters_per_arm=10).power
    assert row.power_high == crt_power(0.3, icc=0.02, cluster_size=50, clusters_per_arm=10).power
    assert (curve.power_low <= curve.power).all() and (curve.power <= curve.power_high).all()
    against_icc = power_curve(0.3, against="icc", values=[0.0, 0.05, 0.1], cluster_size=20, clusters_per_arm=10)
    assert against_icc.power.is_monotonic_decreasing and "power_low" not in against_icc
    sizes = power_curve(0.3, against="cluster_size", icc=0.05, clusters_per_arm=10)
    assert sizes.power.is_monotonic_increasing and crt.power_curve is power_curve


# -- bad input -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(test="wald"), "test must be one of"),
    (dict(scale="ratio"), "scale: a continuous outcome"),
    (dict(outcome="count", icc=None, rate_control=0.1), "rate_cv: a count outcome needs"),
    (dict(outcome="count", rate_control=0.1, rate_cv=0.2), "icc: a count outcome takes rate_cv"),
    (dict(outcome="count", icc=None, rate_cv=0.2), "rate_control: a count outcome needs"),
    (dict(outcome="count", icc=None, rate_control=0.1, rate_cv=0.2, scale="odds_ratio"), "scale: counts"),
    (dict(outcome="count", icc=None, rate_control=-1, rate_cv=0.2), "rate_control must be positive"),
    (dict(outcome="binary", p_control=0.2, scale="ratio", effect=-2), "effect: a ratio must be positive"),
    (dict(outcome="binary", p_control=0.6, scale="ratio", effect=2), r"p_control \* effect"),
    (dict(p_control=0.2), "p_control is for binary outcomes"),
    (dict(rate_control=0.2), "rate_control and rate_cv are for count outcomes"),
    (dict(r2_cluster=1.0), "r2_cluster must be in"),
    (dict(r2_individual=-0.1), "r2_individual must be in"),
    (dict(n_arms=2.5), "n_arms must be an integer"),
    (dict(multiplicity="holm"), "multiplicity must be one of"),
    (dict(direction="up"), "direction must be one of"),
    (dict(cluster_sizes=[10, 20]), "cluster_size: give either"),
    (dict(cluster_size=None, cluster_sizes=[10, 20], cv=0.3), "cv: the exact cluster_sizes"),
    (dict(cluster_size=None, cluster_sizes=[0, 20]), "cluster_sizes must be"),
    (dict(power=0.8), "give all but one"),
    (dict(power=1.2, clusters_per_arm=None), "power must be in"),
    (dict(clusters_per_arm=None, power=0.8, clusters_control=5), "clusters_control: solving"),
    (dict(icc=None), "icc: give the intra-cluster correlation"),
    (dict(icc=[0.1, 2.0]), "icc must be in"),
    (dict(scale="log"), "scale must be one of"),
    (dict(sides=3), "sides must be 1 or 2"),
    (dict(sd=0), "sd must be positive"),
    (dict(outcome="count", icc=None, rate_control=0.1, rate_cv=0.2, person_time=0), "person_time must be positive"),
    (dict(outcome="count", icc=None, rate_control=0.1, rate_cv=-0.2), "rate_cv must be non-negative"),
    (dict(outcome="count", icc=None, rate_control=0.1, rate_cv=0.2, effect=-0.2), r"rate_control \+ effect must be"),
    (dict(outcome="binary", p_control=0.97, effect=None, clusters_per_arm=2, cluster_size=5, power=0.99),
     "effect: no increase in the outcome reaches power 0.99"),
])
def test_bad_input_names_the_argument(kwargs, message):
    args = dict(effect=0.3, icc=0.05, cluster_size=20, clusters_per_arm=10) | kwargs
    with pytest.raises(ValueError, match=message):
        crt_power(args.pop("effect"), **args)


@pytest.mark.parametrize("kwargs, message", [
    (dict(against="alpha"), "against must be one of"),
    (dict(icc=[0.01, 0.1], cluster_size=[10, 20]), "at most one argument as a list"),
    (dict(band=(0.01, 0.05, 0.1)), "band must be"),
    (dict(against="icc", icc=None, band=(0.01, 0.1)), "band_of: the band is over 'icc'"),
    (dict(clusters_per_arm=5), "clusters_per_arm: the curve is against it"),
    (dict(values=[]), "values: give at least one point"),
    (dict(against="effect", values=[0.1, 0.2], clusters_per_arm=5), "effect: the curve is against the effect"),
])
def test_power_curve_bad_input(kwargs, message):
    args = dict(icc=0.05, cluster_size=20) | kwargs
    if args.get("icc") is None:
        args.pop("icc")
    if args.get("against") == "icc":
        args["clusters_per_arm"] = 10
    with pytest.raises(ValueError, match=message):
        power_curve(0.3, **args)
    with pytest.raises(ValueError, match="effect: give the effect to detect"):
        power_curve(icc=0.05, cluster_size=20)
