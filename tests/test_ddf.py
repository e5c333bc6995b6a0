"""Denominator degrees of freedom of the mixed models: lmerTest and pbkrtest parity (pinned), dense brute force.

Reference numbers: R 4.2, lmerTest 3.1-3 (Satterthwaite) and pbkrtest 0.5.2 (Kenward-Roger: ``vcovAdj`` and
``get_Lb_ddf``), made by tests/data/ddf_lmertest_R.R on tests/data/crt_small.csv (14 unbalanced clusters of
3 to 40, a cluster-level treatment and covariate, an individual covariate; the script simulates it from a
seed) and tests/data/callcenter_small.csv (10 centres, 193 representatives nested in them), and kept in
tests/data/ddf_lmertest.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crt_widgets.core.models import mixed_fast
from crt_widgets.core.models.ddf import NestedDdf, between_within_df, lb_ddf
from crt_widgets.core.models.mixed import mixed_model

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "ddf_lmertest.json").read_text())
CASES = {
    "intercept REML": ("y ~ arm + x", "trial", ["cluster"], "reml"),
    "cluster covariate REML": ("y ~ arm + baseline + x", "trial", ["cluster"], "reml"),
    "intercept ML": ("y ~ arm + x", "trial", ["cluster"], "ml"),
    "nested REML": ("call_CSAT ~ reason + age + group", "calls", ["center_ID", "rep_ID"], "reml"),
    "nested ML": ("call_CSAT ~ reason + age + group", "calls", ["center_ID", "rep_ID"], "ml"),
}
# the nested fits' variances agree with lme4's to about 1e-6 (the REML surface is flat there), which moves
# lmerTest's numerical Hessian and a p-value of 1e-7 in the fifth digit; the one-level ones agree to 1e-6
P_TOLERANCE = {"trial": 2e-6, "calls": 5e-5}
# lme4's coefficient names -> patsy's
R_NAMES = {"(Intercept)": "Intercept", "reasonproperty": "reason[T.property]", "grouptreat": "group[T.treat]"}


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {"trial": pd.read_csv(DATA / "crt_small.csv"), "calls": pd.read_csv(DATA / "callcenter_small.csv")}


def _reference(case: str, key: str) -> pd.Series:
    ref = REFERENCE[case]
    return pd.Series(ref[key], index=[R_NAMES.get(t, t) for t in ref["terms"]])


@pytest.mark.parametrize("case", sorted(CASES))
def test_satterthwaite_equals_lmertest(frames, case):
    formula, data, groups, method = CASES[case]
    fit = mixed_model(formula, frames[data], groups=groups, method=method, ddf="satterthwaite")
    df, se, p = (_reference(case, k) for k in ("satterthwaite_df", "se", "satterthwaite_p"))
    for term in df.index:
        assert fit.df[term] == pytest.approx(df[term], abs=1e-4), term
        assert fit.bse[term] == pytest.approx(se[term], rel=1e-6), term
        assert fit.pvalues[term] == pytest.approx(p[term], rel=P_TOLERANCE[data]), term


@pytest.mark.parametrize("case", sorted(c for c in CASES if "REML" in c))
def test_kenward_roger_equals_pbkrtest(frames, case):
    formula, data, groups, method = CASES[case]
    fit = mixed_model(formula, frames[data], groups=groups, method=method, ddf="kenward-roger")
    df, se, p = (_reference(case, k) for k in ("kr_df", "kr_se", "kr_p"))
    for term in df.index:
        assert fit.df[term] == pytest.approx(df[term], abs=1e-4), term
        assert fit.bse[term] == pytest.approx(se[term], rel=1e-6), term
        assert fit.pvalues[term] == pytest.approx(p[term], rel=P_TOLERANCE[data]), term
    order = [R_NAMES.get(t, t) for t in REFERENCE[case]["terms"]]
    np.testing.assert_allclose(fit.cov_params.loc[order, order], REFERENCE[case]["kr_vcov"], rtol=1e-6, atol=1e-12)
    # the model-based covariance is kept beside the adjusted one, which is larger
    assert np.all(np.diag(fit.cov_params) > np.diag(fit.cov_params_model))
    assert fit.bse[order[1]] > np.sqrt(fit.cov_params_model.loc[order[1], order[1]])


# -- brute force: the closed forms against dense N x N algebra on small data ------------------------------

def _dense(x, y, inner, outer, variances, reml=True):
    """Every ingredient from the explicit V (small N only)."""
    n = len(y)
    Zi = (inner[:, None] == np.unique(inner)[None, :]).astype(float)
    G = [Zi @ Zi.T, np.eye(n)]
    if outer is not None:
        Zo = (outer[:, None] == np.unique(outer)[None, :]).astype(float)
        G = [Zo @ Zo.T, *G]
    V = sum(v * g for v, g in zip(variances, G))
    Vi = np.linalg.inv(V)
    phi = np.linalg.inv(x.T @ Vi @ x)
    beta = phi @ x.T @ Vi @ y
    e = y - x @ beta
    P = Vi - Vi @ x @ phi @ x.T @ Vi
    m = len(G)
    trace = np.array([[np.trace(P @ G[k] @ P @ G[j]) for j in range(m)] for k in range(m)])
    K = np.array([[np.trace(Vi @ G[k] @ Vi @ G[j]) for j in range(m)] for k in range(m)])
    r = Vi @ e
    second = np.array([[r @ G[k] @ P @ G[j] @ r for j in range(m)] for k in range(m)])
    observed = -0.5 * (trace if reml else K) + second
    A = [x.T @ Vi @ G[k] @ Vi @ x for k in range(m)]
    return dict(phi=phi, trace=trace, K=K, observed=observed, A=A, V=V, G=G, Vi=Vi, P=P)


def _small(two_level: bool, seed: int = 4):
    rng = np.random.default_rng(seed)
    outer = np.repeat(np.arange(5), [9, 14, 6, 11, 8])
    inner = outer * 10 + rng.integers(0, 3, outer.size)        # 2-3 inner groups of unequal size per outer
    _, inner = np.unique(inner, return_inverse=True)
    x = np.column_stack([np.ones(outer.size), np.arange(5)[outer] % 2, rng.normal(size=outer.size)])
    y = x @ [1.0, 0.4, 0.2] + rng.normal(size=5)[outer] + 0.7 * rng.normal(size=inner.max() + 1)[inner] \
        + rng.normal(size=outer.size)
    return x, y, inner, (outer if two_level else None)


@pytest.mark.parametrize("two_level", [False, True])
@pytest.mark.parametrize("reml", [True, False])
def test_closed_forms_equal_dense_algebra(two_level, reml):
    x, y, inner, outer = _small(two_level)
    stats = mixed_fast.nested_stats(x, y, inner, outer)
    variances = np.array([0.8, 0.5, 1.3]) if two_level else np.array([0.6, 1.1])  # any point, not only the optimum
    ddf = NestedDdf(stats, variances, reml=reml)
    dense = _dense(x, y, inner, outer, variances, reml)
    A = ddf.centring
    np.testing.assert_allclose(ddf.cov, dense["phi"], rtol=1e-10)
    np.testing.assert_allclose(ddf.trace_PGPG, dense["trace"], rtol=1e-10)
    np.testing.assert_allclose(ddf.K, dense["K"], rtol=1e-10)
    np.testing.assert_allclose(ddf.observed_information, dense["observed"], rtol=1e-9, atol=1e-12)
    # A_k in the caller's columns: X'V^-1 G_k V^-1 X = A^-T A_k(centred) A^-1
    inv = np.linalg.inv(A)
    for k in range(len(variances)):
        np.testing.assert_allclose(inv.T @ ddf.A_x[k] @ inv, dense["A"][k], rtol=1e-10, atol=1e-12)


def test_observed_information_is_the_hessian_of_the_reml_likelihood():
    """Second differences of the REML log-likelihood in (s2_outer, s2_inner, s2), dense."""
    x, y, inner, outer = _small(True, seed=9)
    stats = mixed_fast.nested_stats(x, y, inner, outer)
    v0 = np.array([0.8, 0.5, 1.3])

    def loglik(v):
        d = _dense(x, y, inner, outer, v)
        _, logdet_v = np.linalg.slogdet(d["V"])
        _, logdet_x = np.linalg.slogdet(x.T @ d["Vi"] @ x)
        return -0.5 * (logdet_v + logdet_x + y @ d["P"] @ y)

    h = 1e-4
    hess = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            ei, ej = np.eye(3)[i] * h, np.eye(3)[j] * h
            hess[i, j] = (loglik(v0 + ei + ej) - loglik(v0 + ei - ej) - loglik(v0 - ei + ej) + loglik(v0 - ei - ej)) / (4 * h * h)
    np.testing.assert_allclose(NestedDdf(stats, v0).observed_information, -hess, rtol=1e-5)


def test_kenward_roger_adjustment_equals_dense_formula():
    """Phi_A = Phi + 2 Phi U Phi with U = sum W_kl (Q_kl - P_k Phi P_l), every matrix formed explicitly."""
    x, y, inner, outer = _small(True, seed=2)
    stats = mixed_fast.nested_stats(x, y, inner, outer)
    v = np.array([0.9, 0.4, 1.2])
    d = _dense(x, y, inner, outer, v)
    phi, Vi, G = d["phi"], d["Vi"], d["G"]
    P = [-x.T @ Vi @ g @ Vi @ x for g in G]
    Q = [[x.T @ Vi @ gk @ Vi @ gl @ Vi @ x for gl in G] for gk in G]
    W = 2 * np.linalg.inv(d["trace"])
    U = sum(W[k, j] * (Q[k][j] - P[k] @ phi @ P[j]) for k in range(3) for j in range(3))
    adjusted, df = NestedDdf(stats, v).kenward_roger()
    np.testing.assert_allclose(adjusted, phi + 2 * phi @ U @ phi, rtol=1e-9)
    # one contrast: Kenward-Roger's df is 2 (L'Phi L)^2 / (g' W g), g_k = L' Phi (-P_k) Phi L
    L = np.array([0.0, 1.0, 0.0])
    g = np.array([L @ phi @ -Pk @ phi @ L for Pk in P])
    assert df[1] == pytest.approx(2 * (L @ phi @ L) ** 2 / (g @ W @ g), rel=1e-9)
    assert lb_ddf(L[None, :], phi, np.array(P), W) == pytest.approx(df[1], rel=1e-9)


def test_balanced_one_way_layout_gives_clusters_minus_two():
    """Equal clusters, a cluster-level treatment: the REML t test is exactly the t test on cluster means,
    so both methods give K - 2 df for the treatment (and the KR adjustment vanishes)."""
    rng = np.random.default_rng(8)
    k, m = 12, 7
    g = np.repeat(np.arange(k), m)
    frame = pd.DataFrame({"g": g, "arm": np.arange(k)[g] % 2})
    frame["y"] = 0.3 * frame.arm + rng.normal(0, 0.8, k)[g] + rng.normal(size=k * m)
    for ddf in ("satterthwaite", "kenward-roger"):
        fit = mixed_model("y ~ arm", frame, groups="g", ddf=ddf)
        assert fit.df["arm"] == pytest.approx(k - 2, abs=1e-5), ddf
    kr = mixed_model("y ~ arm", frame, groups="g", ddf="kenward-roger")
    np.testing.assert_allclose(kr.cov_params, kr.cov_params_model, rtol=1e-6)
    means = frame.groupby("g").agg(y=("y", "mean"), arm=("arm", "first"))
    from scipy import stats

    t = stats.ttest_ind(means.y[means.arm == 1], means.y[means.arm == 0])
    assert kr.pvalues["arm"] == pytest.approx(t.pvalue, rel=1e-5)


def test_a_zero_cluster_variance_drops_out_of_satterthwaite():
    """At sigma_b^2 = 0 only the residual variance is estimated: the df are ordinary least squares' N - p."""
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(10), 8)
    frame = pd.DataFrame({"g": g, "arm": np.arange(10)[g] % 2, "y": rng.normal(size=80)})
    frame["y"] -= frame.groupby("g").y.transform("mean") * 0.9  # cluster means pulled together: no cluster variance
    fit = mixed_model("y ~ arm", frame, groups="g")
    assert fit.variance_components["g"] == 0.0
    np.testing.assert_allclose(fit.df, 80 - 2, rtol=1e-8)


def test_statsmodels_engine_gets_the_same_df(frames):
    fast = mixed_model("y ~ arm + x", frames["trial"], groups="cluster")
    slow = mixed_model("y ~ arm + x", frames["trial"], groups="cluster", engine="statsmodels")
    np.testing.assert_allclose(slow.df, fast.df, rtol=2e-3)


def test_between_within_df_by_brute_force():
    rng = np.random.default_rng(0)
    sizes = np.array([3, 7, 4, 9, 5, 6])
    g = np.repeat(np.arange(6), sizes)
    arm = np.array([0, 1, 0, 1, 1, 0])[g]
    baseline = np.array([1.2, 0.3, -0.4, 2.0, 0.1, 0.5])[g]
    x_ind = rng.normal(size=g.size)
    x = np.column_stack([np.ones(g.size), arm, baseline, x_ind, x_ind**2])
    # 3 cluster-level columns (intercept, arm, baseline), 2 individual ones; N = 34, K = 6
    assert between_within_df(x, g).tolist() == [3, 3, 3, 26, 26]
    # aliased cluster-level columns count once (rank), labels need not be 0..K-1
    x2 = np.column_stack([x, 2 * arm])
    assert between_within_df(x2, g * 10 + 5).tolist() == [3, 3, 3, 26, 26, 3]


def test_glmm_reports_between_within_df():
    from crt_widgets.core.models.glmm import fit_random_intercept_glmm

    frame = pd.read_csv(DATA / "glmm_small.csv")   # 30 clusters, a cluster-level arm, an individual covariate
    k = frame.cluster.nunique()
    x = np.column_stack([np.ones(len(frame)), frame.treat, frame.x])
    fit = fit_random_intercept_glmm(frame.y.to_numpy(), x, frame.cluster.to_numpy(), "binomial", n_quad=5)
    assert fit.df.tolist() == [k - 2, k - 2, len(frame) - k - 1]
    from scipy import stats

    t = fit.coef / fit.se
    np.testing.assert_allclose(fit.pvalues, 2 * stats.t.sf(np.abs(t), fit.df))
    ci = fit.conf_int(0.1)
    np.testing.assert_allclose(ci[:, 1] - fit.coef, stats.t.ppf(0.95, fit.df) * fit.se)


@pytest.mark.parametrize("n_clusters, ddf", [(39, "kenward-roger"), (40, "satterthwaite")])
def test_analyze_trial_uses_kenward_roger_below_40_clusters(n_clusters, ddf):
    from crt_widgets.core.analysis.trial import analyze_trial

    rng = np.random.default_rng(n_clusters)
    sizes = rng.integers(3, 12, n_clusters)
    cl = np.repeat(np.arange(n_clusters), sizes)
    arm = np.arange(n_clusters) % 2
    data = pd.DataFrame({"cl": cl, "x": rng.normal(size=cl.size)})
    data["y"] = 0.3 * arm[cl] + 0.2 * data.x + rng.normal(0, 0.5, n_clusters)[cl] + rng.normal(size=cl.size)
    report = analyze_trial(data, "y", "cl", "simple", ["x"], cluster_ids=np.arange(n_clusters), observed=arm,
                           models=("mixed",), simple_size=200, seed=1)
    fit = mixed_model("y ~ treat + x", data.assign(treat=arm[cl]), groups="cl", ddf=ddf)
    row = report.table().iloc[1]
    assert row.se == pytest.approx(fit.bse["treat"], rel=1e-9)
    assert (row.ci_low, row.ci_high) == pytest.approx(tuple(fit.conf_int().loc["treat"]), rel=1e-9)
    assert report.mixed.p_value == pytest.approx(fit.pvalues["treat"], rel=1e-9)
    label = "Kenward-Roger SE and df" if ddf == "kenward-roger" else "Satterthwaite df"
    assert label in row.name and f"({ddf}: " in report.mixed.detail


def test_bad_input_of_the_algebra_and_the_intervals(frames):
    x, y, inner, outer = _small(True)
    stats = mixed_fast.nested_stats(x, y, inner, outer)
    with pytest.raises(ValueError, match=r"variances: give 3 values"):
        NestedDdf(stats, [1.0, 1.0])
    with pytest.raises(ValueError, match="variances must be finite, non-negative, with a positive residual"):
        NestedDdf(stats, [1.0, -0.5, 1.0])
    with pytest.raises(ValueError, match="L: contrasts need 3 columns"):
        NestedDdf(stats, [1.0, 0.5, 1.0]).satterthwaite([[1.0, 0.0]])
    fit = mixed_model("y ~ arm + x", frames["trial"], groups="cluster")
    with pytest.raises(ValueError, match="alpha must be in"):
        fit.conf_int(alpha=2)
    from crt_widgets.core.models.glmm import fit_random_intercept_glmm

    glmm = pd.read_csv(DATA / "glmm_small.csv")
    x = np.column_stack([np.ones(len(glmm)), glmm.treat])
    g = fit_random_intercept_glmm(glmm.y.to_numpy(), x, glmm.cluster.to_numpy(), "binomial", n_quad=3)
    with pytest.raises(ValueError, match="alpha must be in"):
        g.conf_int(alpha=0)


def test_satterthwaite_at_a_variance_estimated_on_its_boundary():
    """A stepped-wedge trial whose cluster-period variance is estimated at 0 (lme4: a singular fit). The fast
    engine stops at 2e-19, not exactly 0, so the component stayed in the Satterthwaite algebra, whose information
    matrix is then singular: df of -0.02 and NaN p-values and intervals. A variance under lme4's singularity
    tolerance (theta < 1e-4, i.e. 1e-8 of the residual variance) drops out, as in lmerTest (pinned:
    tests/data/ddf_boundary_R.R)."""
    reference = json.loads((DATA / "ddf_boundary_R.json").read_text())
    data = pd.read_csv(DATA / "ddf_boundary.csv")
    fit = mixed_model("y ~ treatment + C(period)", data, ["cluster", "period"], ddf="satterthwaite")
    names = {"(Intercept)": "Intercept", **{f"period{k}": f"C(period)[T.{k}]" for k in range(2, 6)}}
    terms = [names.get(t, t) for t in reference["terms"]]
    assert fit.variance_components["period"] < 1e-8 * fit.variance_components["residual"]
    assert fit.df[terms].to_numpy() == pytest.approx(reference["satterthwaite_df"], rel=1e-4)
    assert fit.pvalues[terms].to_numpy() == pytest.approx(reference["satterthwaite_p"], rel=1e-4)
    kr = mixed_model("y ~ treatment + C(period)", data, ["cluster", "period"], ddf="kenward-roger")
    assert kr.bse[terms].to_numpy() == pytest.approx(reference["kr_se"], rel=1e-4)
    assert kr.df[terms].to_numpy() == pytest.approx(reference["kr_df"], rel=1e-3)
