"""crt.icc: Donner's ANOVA estimator with Searle's interval, the REML and latent-scale ICCs with profile
intervals, against values pinned from R (tests/data/icc_R.R) and against hand computation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crt_widgets as crt
from crt_widgets.core.models.icc import latent_icc

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "icc_R.json").read_text())
SMALL = pd.read_csv(DATA / "gee_small.csv")


def _data(name):
    if name == "dickinson":
        return crt.datasets.load_dickinson_outcome(), "outcome", "county"
    return SMALL, name.split("_")[1], "cluster"


@pytest.mark.parametrize("case,method,alpha,tolerance", [
    ("small_y", "anova", 0.05, 1e-12), ("small_y", "anova_90", 0.10, 1e-12), ("small_b", "anova", 0.05, 1e-12),
    ("dickinson", "anova", 0.05, 1e-12),
    # the REML and ML optima agree with lme4's to a few 1e-6 in the ICC (the criterion is flat there: the
    # deviances agree to 1e-12); the limits depend on the optimum only through the minimum of the deviance
    ("small_y", "reml", 0.05, 2e-6), ("small_y", "reml_90", 0.10, 2e-6), ("dickinson", "reml", 0.05, 2e-6),
    ("small_b", "latent", 0.05, 2e-6), ("dickinson", "latent", 0.05, 2e-6),
])
def test_matches_r(case, method, alpha, tolerance):
    data, outcome, cluster = _data(case)
    ref = REFERENCE[case][method]
    result = crt.icc(data, outcome, cluster, method=method.split("_")[0], alpha=alpha)
    assert result.estimate == pytest.approx(ref["estimate"], rel=max(tolerance, 1e-5))
    assert result.ci_low == pytest.approx(ref["ci_low"], rel=tolerance)
    assert result.ci_high == pytest.approx(ref["ci_high"], rel=tolerance)
    assert result.conf_level == pytest.approx(1 - alpha) and result.ci_low < result.estimate < result.ci_high
    if method.startswith("anova"):
        for key in ("msb", "msw", "m0"):
            assert result.details[key] == pytest.approx(ref[key], rel=1e-12)
    if method.startswith("reml"):
        assert result.details["reml_deviance"] == pytest.approx(ref["reml_deviance"], rel=1e-10)


def test_reml_equals_anova_for_equal_cluster_sizes():
    """With equal sizes and a positive estimate the REML and ANOVA estimators coincide (Searle, Casella and
    McCulloch 1992): the Dickinson counties, 16 x 300."""
    data, outcome, cluster = _data("dickinson")
    reml = crt.icc(data, outcome, cluster, method="reml").estimate
    assert reml == pytest.approx(crt.icc(data, outcome, cluster).estimate, rel=1e-6)


def test_anova_by_hand_and_searle_is_exact_for_equal_sizes():
    """Three clusters of three: MSB = 7, MSW = 1, m0 = 3, ICC = 6/9; with equal sizes Searle's limits are
    (F/F_u - 1)/(F/F_u + m - 1) with F_u the F quantiles on (2, 6) df."""
    data = pd.DataFrame({"cl": np.repeat([1, 2, 3], 3), "y": [1.0, 2, 3, 4, 5, 6, 2, 3, 4]})
    result = crt.icc(data, "y", "cl")
    assert result.estimate == pytest.approx(6 / 9, rel=1e-14)
    f_low, f_high = 7 / stats.f.ppf(0.975, 2, 6), 7 / stats.f.ppf(0.025, 2, 6)
    assert result.ci_low == pytest.approx((f_low - 1) / (f_low + 2), rel=1e-12)
    assert result.ci_high == pytest.approx((f_high - 1) / (f_high + 2), rel=1e-12)
    assert repr(result) == "ICCResult(anova: 0.6667, 95% CI -0.01208 to 0.9892; 3 clusters, 9 individuals)"


def test_negative_anova_estimate_is_kept_and_said():
    data = pd.DataFrame({"cl": np.repeat([1, 2, 3], 4), "y": [0.0, 1, 2, 3] * 3})  # identical clusters
    result = crt.icc(data, "y", "cl")
    assert result.estimate == pytest.approx((0 - 5 / 3) / (0 + 3 * 5 / 3))  # MSB = 0
    assert "negative" in result.notes[0]


def test_reml_interval_reaches_zero_when_the_boundary_is_inside():
    """Clusters that barely differ: theta = 0 is within the profile cut, so the lower limit is exactly 0."""
    rng = np.random.default_rng(4)
    data = pd.DataFrame({"cl": np.repeat(np.arange(6), 10), "y": rng.normal(size=60)})
    result = crt.icc(data, "y", "cl", method="reml")
    assert result.ci_low == 0.0 and result.ci_high > 0


def test_rows_with_missing_values_are_dropped():
    data = SMALL.copy()
    data.loc[data.index[:4], "y"] = np.nan
    result = crt.icc(data, "y", "cluster")
    assert result.n_dropped == 4 and result.nobs == len(SMALL) - 4


def test_latent_icc_formula():
    assert latent_icc(1.0, "binomial", 0.3) == pytest.approx(1 / (1 + np.pi**2 / 3))
    assert latent_icc(0.5, "poisson", 2.0) == pytest.approx(0.5 / (0.5 + np.log(1.5)))
    assert np.isnan(latent_icc(0.5, "poisson", 0.0))
    with pytest.raises(ValueError, match="latent-scale ICC is for binomial or poisson"):
        latent_icc(0.5, "gaussian", 2.0)


@pytest.mark.parametrize("kwargs,message", [
    ({"cluster": "site"}, "cluster: 'site' is not a column of data"),
    ({"outcome": "z"}, "outcome: 'z' is not a column of data"),
    ({"method": "glmm"}, "method: must be one of anova, reml, latent, got 'glmm'"),
    ({"alpha": 1.0}, "alpha: must be in (0, 1)"),
    ({"method": "latent"}, "method: 'latent' is for a binary outcome (0/1); 'y' has other values"),
    ({"data": SMALL.assign(y="a")}, "outcome: 'y' must be numeric"),
    ({"data": SMALL.assign(y=3.0)}, "outcome: 'y' is 3 for everyone; the ICC of a constant is undefined"),
    ({"data": SMALL.assign(cluster=7)}, ("cluster: 'cluster' has one cluster (after dropping missing values); "
                                        "an ICC needs at least two")),
    ({"data": SMALL.assign(cluster=np.arange(len(SMALL)))}, "every cluster of 'cluster' has one person"),
    ({"data": SMALL.assign(y=np.inf)}, "outcome: 'y' has infinite values"),
    ({"data": [1, 2]}, "data: expected a pandas DataFrame"),
])
def test_bad_input_names_the_argument(kwargs, message):
    args = {"data": SMALL, "outcome": "y", "cluster": "cluster"} | kwargs
    with pytest.raises(ValueError) as info:
        crt.icc(**args)
    assert message in str(info.value)
