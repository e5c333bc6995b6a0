"""Model-based companions of the permutation test (GEE, random-intercept models) against statsmodels directly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from crt_widgets.core.analysis.trial import analyze_trial
from crt_widgets.core.spaces.schemes import enumerate_schemes


@pytest.fixture(scope="module")
def trial():
    """12 clusters of unequal size, 6 treated, a random intercept, an individual covariate."""
    rng = np.random.default_rng(11)
    sizes = rng.integers(15, 40, 12)
    cl = np.repeat(np.arange(12), sizes)
    arm = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1])
    x = rng.normal(size=len(cl))
    eta = -0.3 + 0.5 * arm[cl] + 0.4 * x + rng.normal(0, 0.6, 12)[cl]
    return pd.DataFrame({"cl": cl, "treat": arm[cl], "x": x, "y": eta + rng.normal(size=len(cl)),
                         "b": (rng.random(len(cl)) < 1 / (1 + np.exp(-eta))).astype(int),
                         "n": rng.poisson(np.exp(eta))}), arm


def _analyze(trial, outcome, family, models=("gee", "mixed")):
    data, arm = trial
    schemes = enumerate_schemes(12, 6)
    return analyze_trial(data, outcome, "cl", schemes, ["x"], family=family, cluster_ids=np.arange(12),
                         observed=arm, models=models)


@pytest.mark.parametrize("outcome,family,sm_family", [("y", "gaussian", sm.families.Gaussian()),
                                                      ("b", "binomial", sm.families.Binomial()),
                                                      ("n", "poisson", sm.families.Poisson())])
def test_gee_row_is_crt_gee_with_mancl_derouen_and_k_minus_p_df(trial, outcome, family, sm_family):
    """The GEE row is crt.gee (geepack's moment estimators, Mancl-DeRouen SE, t on K - p = 12 - 3 = 9 df), which
    is statsmodels' bias-reduced GEE with ``ddof_scale=0`` (statsmodels' default divides the scale by N - p).
    Changed from the statsmodels default and t on K - 2 = 10 df before crt.gee existed."""
    import warnings

    from crt_widgets import gee

    data, _ = trial
    report = _analyze(trial, outcome, family, models=("gee",))
    model = smf.gee(f"{outcome} ~ treat + x", "cl", data, family=sm_family, cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(cov_type="bias_reduced", ddof_scale=0)
    assert report.gee.effect == pytest.approx(fit.params["treat"], rel=1e-6)
    assert report.gee.se == pytest.approx(fit.bse["treat"], rel=1e-6)
    direct = gee(f"{outcome} ~ treat + x", data, "cl", family=family)
    assert report.gee.effect == pytest.approx(direct.params["treat"], rel=1e-10)
    assert report.gee.se == pytest.approx(direct.bse["treat"], rel=1e-10)
    assert report.gee.p_value == pytest.approx(direct.pvalues["treat"], rel=1e-10)
    assert report.gee.icc == pytest.approx(direct.corr_param, rel=1e-10)
    assert report.gee.df == 9 == direct.df
    half = report.gee.conf_int[1] - report.gee.effect
    assert half == pytest.approx(2.262157162740992 * fit.bse["treat"], rel=1e-6)  # qt(0.975, 9)
    assert report.mixed is None


def test_gee_row_of_the_dickinson_analysis_matches_r():
    """`crt-widgets analyze --example dickinson --ci`'s GEE: geeglm's log odds ratio and the Mancl-DeRouen SE by
    the published formula, pinned in tests/data/gee_small_R.json (dickinson_analyze), t on 16 - 8 = 8 df."""
    import json
    from pathlib import Path

    from crt_widgets.commands.analyze import DICKINSON
    from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome

    ref = json.loads((Path(__file__).parent / "data" / "gee_small_R.json").read_text())["dickinson_analyze"]
    report = analyze_trial(load_dickinson_outcome(), "outcome", "county", dickinson_cvcrand_space_path(),
                           DICKINSON["covariates"], DICKINSON["categorical"], "binomial", models=("gee",))
    assert report.gee.effect == pytest.approx(ref["coef"]["arm"], rel=1e-9)
    assert report.gee.se == pytest.approx(ref["se"]["md"]["arm"], rel=1e-9)
    assert report.gee.icc == pytest.approx(ref["alpha"], rel=1e-9)
    assert report.gee.df == 8 and report.table().loc[report.gee.method, "df"] == 8
    assert round(report.gee.effect, 4) == 0.4200 and round(report.gee.se, 4) == 0.2367
    for kind in ("robust", "kc", "fg", "avg"):
        assert f"{kind} {ref['se'][kind]['arm']:.4g}" in report.gee.detail


def test_linear_mixed_model_equals_statsmodels_reml(trial):
    data, _ = trial
    report = _analyze(trial, "y", "gaussian", models=("mixed",))
    fit = smf.mixedlm("y ~ treat + x", data, groups=data["cl"]).fit(reml=True)
    assert fit.cov_re.iloc[0, 0] > 0.05  # away from the boundary, where optimisers may disagree
    assert report.mixed.effect == pytest.approx(fit.fe_params["treat"], abs=1e-5)
    # 12 clusters (< 40): Kenward-Roger's adjusted SE, a little above the model-based one, and its df
    from crt_widgets.core.models.mixed import mixed_model

    kr = mixed_model("y ~ treat + x", data, groups="cl", ddf="kenward-roger")
    assert kr.cov_params_model.loc["treat", "treat"] ** 0.5 == pytest.approx(fit.bse["treat"], rel=1e-3)
    assert report.mixed.se == pytest.approx(kr.bse["treat"], rel=1e-9) and report.mixed.se > fit.bse["treat"]
    assert report.mixed.p_value == pytest.approx(kr.pvalues["treat"], rel=1e-9)
    assert "Kenward-Roger" in report.mixed.method and f"t on {kr.df['treat']:.2f} df" in report.mixed.detail


def test_glmm_companion_and_the_table(trial):
    report = _analyze(trial, "b", "binomial")
    table = report.table()
    assert list(table.columns) == ["effect", "se", "ci_low", "ci_high", "p_value", "df", "icc", "note"]
    assert len(table) == 3 and table["df"].tolist()[1:] == [9, 10]  # GEE: K - p; GLMM: K - 2
    perm = report.permutation
    assert perm.conf_int[0] < perm.estimate < perm.conf_int[1]
    # three estimates of one log odds ratio from 12 clusters: same sign, within each other's intervals
    for method in table.index[1:]:
        row = table.loc[method]
        assert row.ci_low < perm.estimate < row.ci_high
    assert "ML, adaptive quadrature" in report.mixed.method and "TrialAnalysis" in repr(report)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_table_follows_the_alternative(trial, alternative):
    """The permutation p-value is permutation_test's; the models' are their Wald tests' one-sided p-values."""
    from scipy import stats

    from crt_widgets import permutation_test

    data, arm = trial
    report = analyze_trial(data, "y", "cl", enumerate_schemes(12, 6), ["x"], cluster_ids=np.arange(12),
                           observed=arm, alternative=alternative)
    alone = permutation_test(data, "y", "cl", enumerate_schemes(12, 6), ["x"], cluster_ids=np.arange(12),
                             observed=arm, alternative=alternative)
    table = report.table()
    column = f"p_value ({alternative})"
    assert table[column].iloc[0] == alone.p_value
    two = _analyze(trial, "y", "gaussian")
    for row, m in zip(table.index[1:], (two.gee, two.mixed)):
        # from the Wald statistic: the two-sided p-value gives |t|, the effect's sign gives its side
        t = np.sign(m.effect) * stats.norm.isf(m.p_value / 2)
        expected = stats.norm.sf(t) if alternative == "greater" else stats.norm.cdf(t)
        assert table.loc[row, column] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("kwargs,match", [({"models": ("gee", "bayes")}, "models: unknown bayes"),
                                          ({"alpha": 1.5}, "alpha"), ({"alternative": "both"}, "alternative")])
def test_bad_arguments(trial, kwargs, match):
    data, arm = trial
    with pytest.raises(ValueError, match=match):
        analyze_trial(data, "y", "cl", enumerate_schemes(12, 6), cluster_ids=np.arange(12), observed=arm, **kwargs)


def test_treatment_collinear_with_a_cluster_covariate(trial):
    data, arm = trial
    with pytest.raises(ValueError, match="treatment is collinear"):
        analyze_trial(data, "y", "cl", enumerate_schemes(12, 6), ["treat"], cluster_ids=np.arange(12),
                      observed=arm, models=("gee",))


def test_collinear_covariates_are_dropped_even_in_sorted_data(trial):
    """A covariate that is a copy of another is aliased (as in R), wherever the rows that show it are."""
    data, arm = trial
    doubled = data.assign(x2=2 * data["x"]).sort_values("cl")
    report = analyze_trial(doubled, "y", "cl", enumerate_schemes(12, 6), ["x", "x2"], cluster_ids=np.arange(12),
                           observed=arm, models=("gee",))
    single = _analyze(trial, "y", "gaussian", models=("gee",))
    assert report.gee.effect == pytest.approx(single.gee.effect, rel=1e-8)


@pytest.mark.parametrize("family, cluster_sd, true_icc, tolerance", [
    ("gaussian", 0.5, 0.25 / 1.25, 0.06),                          # response scale: 0.25 / (0.25 + 1)
    ("binomial", 1.0, 1 / (1 + np.pi**2 / 3), 0.08),               # latent scale: 0.233
    ("poisson", 0.5, 0.25 / (0.25 + np.log1p(1 / (3 * np.exp(0.125)))), 0.08),  # log-normal approximation: 0.492
])
def test_models_recover_the_icc(family, cluster_sd, true_icc, tolerance):
    """150 clusters of 40 from a random-intercept model; the tolerance is about 3 standard errors of the
    estimated ICC at this size (the cluster variance's SE is about its value times sqrt(2 / 150))."""
    from scipy.special import expit

    from crt_widgets.core.analysis.trial import gee_estimate, mixed_estimate
    from crt_widgets.core.permutation.data import PreparedData

    rng = np.random.default_rng(31)
    k, m = 150, 40
    cluster = np.repeat(np.arange(k), m)
    eta = rng.normal(0, cluster_sd, k)[cluster]
    y = {"gaussian": lambda: eta + rng.normal(size=k * m),
         "binomial": lambda: (rng.random(k * m) < expit(-0.5 + eta)).astype(float),
         "poisson": lambda: rng.poisson(3 * np.exp(eta)).astype(float)}[family]()
    prep = PreparedData(y, np.ones((k * m, 1)), ["Intercept"], cluster, np.full(k, m),
                        (np.arange(k) % 2)[cluster].astype(float), family, 0)
    mixed = mixed_estimate(prep)
    assert mixed.icc == pytest.approx(true_icc, abs=tolerance)
    if family == "gaussian":  # the GEE's exchangeable working correlation is the same ICC on this scale
        assert gee_estimate(prep).icc == pytest.approx(true_icc, abs=tolerance)


def test_latent_icc_is_for_binary_and_count_models():
    from crt_widgets.core.analysis.trial import latent_icc

    assert latent_icc(0.5, "poisson", 2.0) == pytest.approx(0.5 / (0.5 + np.log(1.5)))
    with pytest.raises(ValueError, match="latent-scale ICC is for binomial or poisson"):
        latent_icc(0.5, "gaussian", 2.0)
