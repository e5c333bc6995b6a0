"""crt.gee against geepack and the published small-sample corrections (pinned from R), against statsmodels'
bias-reduced covariance, and the closed-form (Woodbury) algebra against dense n_i x n_i matrices."""
from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import linalg, stats

import crt_widgets as crt
from crt_widgets.core.models.gee import fit_gee_arrays, sandwich_covariances

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "gee_small_R.json").read_text())
SMALL = pd.read_csv(DATA / "gee_small.csv")
R_NAMES = {"(Intercept)": "Intercept", "locationUrban": "location[T.Urban]"}


def _dickinson():
    data = crt.datasets.load_dickinson_outcome()
    scheme = np.array([0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0])  # the chosen scheme of cvcrand's space
    return data.assign(arm=scheme[data["county"] - 1])


CASES = {"small_gaussian": ("y ~ arm + x", "cluster", "gaussian"),
         "small_binomial": ("b ~ arm + x", "cluster", "binomial"),
         "small_poisson": ("n ~ arm + x", "cluster", "poisson"),
         "dickinson_binomial": ("outcome ~ arm + inciis + location", "county", "binomial")}


def _r(values: dict) -> pd.Series:
    return pd.Series(values).rename(lambda name: R_NAMES.get(name, name))


@pytest.mark.parametrize("case", CASES)
def test_matches_geepack_and_the_published_corrections(case):
    """geeglm(corstr = "exchangeable"): coefficients, robust SE, alpha and scale; MD, KC, FG and their average
    by the dense published formulas in R (tests/data/gee_small_R.R). Agreement is to rounding (1e-9)."""
    formula, cluster, family = CASES[case]
    data = _dickinson() if case.startswith("dickinson") else SMALL
    ref = REFERENCE[case]
    fit = crt.gee(formula, data, cluster, family=family)
    coef = _r(ref["coef"])
    assert fit.params[coef.index].to_numpy() == pytest.approx(coef.to_numpy(), rel=1e-9, abs=1e-12)
    assert fit.corr_param == pytest.approx(ref["alpha"], rel=1e-9)
    assert fit.scale == pytest.approx(ref["scale"], rel=1e-9)
    san_se = _r(ref["san_se"])
    assert fit.standard_errors.loc[san_se.index, "robust"].to_numpy() == pytest.approx(san_se.to_numpy(), rel=1e-9)
    for kind in ("robust", "md", "kc", "fg", "avg"):
        expected = _r(ref["se"][kind])
        assert fit.standard_errors.loc[expected.index, kind].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-9)
    # the default correction is MD, with t on K - p df
    assert fit.se == "md" and fit.df == fit.n_clusters - len(fit.params)
    assert fit.bse["arm"] == pytest.approx(_r(ref["se"]["md"])["arm"], rel=1e-9)


def test_some_pinned_values_spelled_out():
    """A few of the pinned numbers as a reader would check them (small trial, binary outcome)."""
    fit = crt.gee("b ~ arm + x", SMALL, "cluster", family="binomial", se="kc")
    assert round(fit.params["arm"], 6) == round(REFERENCE["small_binomial"]["coef"]["arm"], 6)
    assert fit.df == 9 and fit.n_clusters == 12
    t = fit.params["arm"] / fit.bse["arm"]
    assert fit.pvalues["arm"] == pytest.approx(2 * stats.t.sf(abs(t), 9), rel=1e-12)
    low, high = fit.conf_int(0.1).loc["arm"]
    assert high - fit.params["arm"] == pytest.approx(stats.t.ppf(0.95, 9) * fit.bse["arm"], rel=1e-12)
    assert fit.params["arm"] - low == pytest.approx(high - fit.params["arm"], rel=1e-12)


@pytest.mark.parametrize("outcome,family", [("y", "gaussian"), ("b", "binomial"), ("n", "poisson")])
def test_md_equals_statsmodels_bias_reduced_with_geepacks_scale(outcome, family):
    """statsmodels' ``bias_reduced`` covariance is Mancl-DeRouen; with ``ddof_scale=0`` its moment estimators
    are geepack's, so the whole fit agrees."""
    import warnings

    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    sm_family = {"gaussian": sm.families.Gaussian(), "binomial": sm.families.Binomial(),
                 "poisson": sm.families.Poisson()}[family]
    model = smf.gee(f"{outcome} ~ arm + x", "cluster", SMALL.sort_values("cluster", kind="stable"), family=sm_family,
                    cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = model.fit(ddof_scale=0, cov_type="bias_reduced")
    fit = crt.gee(f"{outcome} ~ arm + x", SMALL, "cluster", family=family)
    assert fit.params.to_numpy() == pytest.approx(reference.params.to_numpy(), rel=1e-6)
    assert fit.bse.to_numpy() == pytest.approx(reference.bse.to_numpy(), rel=1e-6)
    assert fit.corr_param == pytest.approx(float(model.cov_struct.dep_params), rel=1e-6)


def _dense(y, x, clusters, family, fit, weights):
    """The textbook computation: V_i, D_i, H_ii as n_i x n_i matrices, scores and corrections from them."""
    eta = x @ fit.beta
    mu = {"gaussian": eta, "binomial": 1 / (1 + np.exp(-eta)), "poisson": np.exp(eta)}[family]
    v = {"gaussian": np.ones_like(eta), "binomial": mu * (1 - mu), "poisson": mu}[family]
    parts = []
    for label in np.unique(clusters):
        rows = clusters == label
        n = rows.sum()
        corr = np.full((n, n), fit.corr_param) + (1 - fit.corr_param) * np.eye(n)
        root = np.sqrt(v[rows] / weights[rows])
        V = fit.scale * root[:, None] * corr * root[None, :]
        D = v[rows][:, None] * x[rows]  # d mu / d beta for a canonical link
        parts.append((D, np.linalg.inv(V), y[rows] - mu[rows]))
    B = sum(D.T @ Vinv @ D for D, Vinv, _ in parts)
    B_inv = np.linalg.inv(B)
    out = {"information": np.array([D.T @ Vinv @ D for D, Vinv, _ in parts]),
           "scores": np.array([D.T @ Vinv @ e for D, Vinv, e in parts])}

    def sandwich(adjust):
        meat = sum(np.outer(u, u) for u in (adjust(D, Vinv, e) for D, Vinv, e in parts))
        return B_inv @ meat @ B_inv

    def hat(D, Vinv):
        return np.eye(len(D)) - D @ B_inv @ D.T @ Vinv

    out["robust"] = sandwich(lambda D, Vinv, e: D.T @ Vinv @ e)
    out["md"] = sandwich(lambda D, Vinv, e: D.T @ Vinv @ np.linalg.solve(hat(D, Vinv), e))
    out["kc"] = sandwich(lambda D, Vinv, e: D.T @ Vinv @ np.real(linalg.sqrtm(np.linalg.inv(hat(D, Vinv)))) @ e)
    out["fg"] = sandwich(lambda D, Vinv, e: (1 - np.minimum(0.75, np.diag(D.T @ Vinv @ D @ B_inv))) ** -0.5
                         * (D.T @ Vinv @ e))
    return out


@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
@pytest.mark.parametrize("corr,weighted", [("exchangeable", False), ("exchangeable", True), ("independence", True)])
def test_closed_forms_equal_the_dense_n_by_n_formulas(family, corr, weighted):
    """Sherman-Morrison information and scores, and the push-through form of the MD/KC corrections (one p x p
    eigendecomposition per cluster), equal the n_i x n_i computation (scipy's sqrtm for KC), weights included."""
    rng = np.random.default_rng(5)
    sizes = rng.integers(3, 12, 9)
    clusters = np.repeat(np.arange(9), sizes)
    order = rng.permutation(len(clusters))  # unsorted rows
    clusters = clusters[order]
    x = np.column_stack([np.ones(len(clusters)), (clusters % 2), rng.normal(size=len(clusters))])
    eta = 0.2 + 0.4 * x[:, 1] + 0.3 * x[:, 2] + rng.normal(0, 0.4, 9)[clusters]
    y = {"gaussian": eta + rng.normal(size=len(eta)), "binomial": (rng.random(len(eta)) < 1 / (1 + np.exp(-eta))) * 1.0,
         "poisson": rng.poisson(np.exp(eta)) * 1.0}[family]
    weights = rng.uniform(0.5, 2.0, len(y)) if weighted else np.ones(len(y))
    fit = fit_gee_arrays(y, x, clusters, family, corr, weights=weights if weighted else None)
    assert fit.converged and (fit.corr_param != 0) == (corr == "exchangeable")
    dense = _dense(y, x, clusters, family, fit, weights)
    # the fit's information and scores omit the scale (it cancels from every sandwich)
    assert fit.cluster_information / fit.scale == pytest.approx(dense["information"], rel=1e-9, abs=1e-12)
    assert fit.cluster_scores / fit.scale == pytest.approx(dense["scores"], rel=1e-9, abs=1e-12)
    assert np.abs(dense["scores"].sum(axis=0)).max() < 1e-8  # the estimating equations are solved
    covariances, top = sandwich_covariances(fit.cluster_information, fit.cluster_scores)
    assert 0 < top < 1
    for kind in ("robust", "md", "kc", "fg"):
        assert covariances[kind] == pytest.approx(dense[kind], rel=1e-8, abs=1e-14), kind
    assert covariances["avg"] == pytest.approx((dense["md"] + dense["kc"]) / 2, rel=1e-8)


def test_memory_is_linear_in_cluster_size():
    """4 clusters of 100,000: a dense n_i x n_i matrix would be 80 GB; the fit stays within a few copies of
    the data (traced peak under 150 MB for 400,000 rows of 4 columns)."""
    rng = np.random.default_rng(2)
    cluster = np.repeat(np.arange(4), 100_000)
    data = pd.DataFrame({"cl": cluster, "arm": cluster % 2, "x": rng.normal(size=cluster.size)})
    data["y"] = 0.3 * data["arm"] + rng.normal(0, 0.3, 4)[cluster] + rng.normal(size=cluster.size)
    tracemalloc.start()
    try:
        fit = crt.gee("y ~ arm + x", data, "cl")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fit.df == 1 and np.isfinite(fit.bse).all()
    assert peak < 150 * 2**20


def test_rows_in_any_order_and_text_cluster_ids_give_the_same_fit():
    base = crt.gee("y ~ arm + x", SMALL, "cluster")
    shuffled = SMALL.sample(frac=1.0, random_state=3).assign(cluster=lambda d: "c" + d["cluster"].astype(str))
    again = crt.gee("y ~ arm + x", shuffled, "cluster")
    assert again.params.to_numpy() == pytest.approx(base.params.to_numpy(), rel=1e-10)
    assert again.standard_errors.to_numpy() == pytest.approx(base.standard_errors.to_numpy(), rel=1e-10)


def test_missing_values_are_dropped_and_counted():
    data = SMALL.copy()
    data.loc[data.index[:5], "x"] = np.nan
    data.loc[data.index[5:7], "cluster"] = np.nan
    fit = crt.gee("y ~ arm + x", data, "cluster")
    assert fit.n_dropped == 7 and fit.nobs == len(SMALL) - 7
    direct = crt.gee("y ~ arm + x", SMALL.iloc[7:], "cluster")
    assert fit.params.to_numpy() == pytest.approx(direct.params.to_numpy(), rel=1e-12)


def test_independence_is_least_squares_with_the_cluster_sandwich():
    """corr="independence": OLS coefficients; the robust SE is the CR0 cluster-robust SE."""
    import statsmodels.formula.api as smf

    fit = crt.gee("y ~ arm + x", SMALL, "cluster", corr="independence", se="robust")
    ols = smf.ols("y ~ arm + x", SMALL).fit(cov_type="cluster", cov_kwds={"groups": SMALL["cluster"],
                                                                          "use_correction": False})
    assert fit.corr_param == 0 and fit.params.to_numpy() == pytest.approx(ols.params.to_numpy(), rel=1e-10)
    assert fit.bse.to_numpy() == pytest.approx(ols.bse.to_numpy(), rel=1e-10)


def test_result_reads_like_statsmodels():
    fit = crt.gee("b ~ arm + x", SMALL, "cluster", family="binomial", df=20, alpha=0.1)
    assert fit.df == 20 and list(fit.conf_int().columns) == ["[0.05", "0.95]"]
    assert fit.pvalues["x"] == pytest.approx(2 * stats.t.sf(abs(fit.tvalues["x"]), 20))
    assert list(fit.standard_errors.columns) == ["robust", "md", "kc", "fg", "avg"]
    assert fit.method == "GEE (exchangeable), Mancl-DeRouen SE, t on 20 df"
    text = fit.summary()
    assert "Mancl-DeRouen SE" in text and "t on 20 df" in text and "P>|t|" in text and "arm" in text
    assert repr(fit).startswith("GEEResult(binomial, exchangeable rho=") and len(repr(fit)) < 300
    assert fit.cov_params().shape == (3, 3)


def test_a_cluster_with_leverage_one_leaves_md_and_kc_undefined():
    """A covariate that is non-zero in one cluster only: that cluster alone fits its coefficient (leverage 1),
    so (I - H_ii) is singular; MD and KC are NaN and the result says why; robust and FG remain."""
    data = SMALL.assign(only_one=(SMALL["cluster"] == 3).astype(float))
    fit = crt.gee("y ~ arm + x + only_one", data, "cluster", se="kc")
    assert np.isnan(fit.bse["arm"]) and np.isfinite(fit.standard_errors["robust"]).all()
    assert np.isfinite(fit.standard_errors["fg"]).all()
    assert any("leverage 1" in note for note in fit.notes) and "leverage 1" in fit.summary()


@pytest.mark.parametrize("kwargs,message", [
    ({"se": "bias_reduced"}, "se: must be one of robust, md, kc, fg, avg, got 'bias_reduced'"),
    ({"corr": "ar1"}, "corr: must be one of exchangeable, independence"),
    ({"family": "gamma"}, "family: must be one of"),
    ({"cluster": "site"}, "cluster: 'site' is not a column of data"),
    ({"formula": "y ~ arm + z"}, "formula: 'z' not a column of data"),
    ({"formula": "y arm"}, "formula: expected a string 'outcome ~ terms'"),
    ({"formula": "y ~ arm +"}, "formula: 'y ~ arm +' could not be read"),
    ({"formula": "x ~ arm", "family": "binomial"}, "outcome 'x': a binary outcome must be 0 or 1"),
    ({"alpha": 0}, "alpha: must be in (0, 1)"),
    ({"df": -1}, "df: must be positive"),
    ({"fg_bound": 1.5}, "fg_bound: must be in (0, 1)"),
    ({"formula": "y ~ arm + x + I(2 * x)"}, "are collinear"),
])
def test_bad_input_names_the_argument(kwargs, message):
    args = {"formula": "y ~ arm + x", "data": SMALL, "cluster": "cluster"} | kwargs
    with pytest.raises(ValueError) as info:
        crt.gee(**args)
    assert message in str(info.value)


def test_too_few_clusters_and_constant_outcomes():
    one = SMALL[SMALL["cluster"] == 1]
    with pytest.raises(ValueError, match="cluster: 'cluster' has 1 cluster; GEE needs at least two"):
        crt.gee("y ~ x", one, "cluster")
    three = SMALL[SMALL["cluster"] <= 3]
    with pytest.raises(ValueError, match=r"3 coefficients from 3 clusters leave no degrees of freedom \(K - p = 0\)"):
        crt.gee("y ~ arm + x", three, "cluster")
    with pytest.raises(ValueError, match=r"outcome 'b': the outcome is 0 for everyone \(no events\): a model cannot be fitted"):
        crt.gee("b ~ arm", SMALL.assign(b=0), "cluster", family="binomial")
    with pytest.raises(ValueError, match=r"outcome 'y': the outcome is 2.5 for everyone \(constant\)"):
        crt.gee("y ~ arm", SMALL.assign(y=2.5), "cluster")
    with pytest.raises(ValueError, match="data: expected a pandas DataFrame"):
        crt.gee("y ~ arm", SMALL.to_numpy(), "cluster")
    with pytest.raises(ValueError, match="data: no rows left"):
        crt.gee("y ~ arm", SMALL.assign(y=np.nan), "cluster")



def test_a_correlation_below_the_positive_definite_range_falls_back_to_independence():
    """12 clinics of 5 to 23 people whose outcomes are negatively correlated within clinics: the moment estimate
    of rho (-0.0455) is below -1 / (23 - 1), where no exchangeable working correlation is positive definite in
    the largest clinic. Clipped to 1e-8 inside the range, that clinic's working matrix was singular: no
    convergence in 100 iterations and SEs of 336,230 for the arm (geepack carries on with the indefinite
    matrix). Outside the range the fit uses the independence working correlation, and says so."""
    data = pd.read_csv(DATA / "gee_negative_rho.csv")
    fit = crt.gee("y ~ arm + x", data, "clinic")
    independence = crt.gee("y ~ arm + x", data, "clinic", corr="independence")
    assert fit.converged and fit.corr_param == 0
    assert fit.params.to_numpy() == pytest.approx(independence.params.to_numpy(), rel=1e-10)
    assert fit.bse.to_numpy() == pytest.approx(independence.bse.to_numpy(), rel=1e-10)
    assert fit.bse["arm"] == pytest.approx(0.2099, abs=5e-5)
    assert any("independence working correlation" in note for note in fit.notes)


def test_the_trial_table_says_when_the_gee_fell_back_to_independence():
    """analyze_trial's GEE row dropped the fit's note on the working correlation (the row read as a plain
    exchangeable GEE)."""
    from crt_widgets.core.analysis.trial import analyze_trial

    data = pd.read_csv(DATA / "gee_negative_rho.csv")
    observed = data.drop_duplicates("clinic").set_index("clinic")["arm"].to_dict()
    gee = analyze_trial(data, "y", "clinic", "simple", ["x"], observed=observed, models=["gee"]).gee
    assert gee.effect == pytest.approx(crt.gee("y ~ arm + x", data, "clinic", corr="independence").params["arm"])
    assert "independence working correlation" in gee.note
