"""Cluster-average and individual-average estimands: against R (tests/data/estimands_R.R), against closed forms
without covariates, against the stacked estimating equations' sandwich with a numerical Jacobian, and their
permutation tests against a scheme-by-scheme computation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special

from crt_widgets.core.analysis.estimands import estimate_estimands, weighted_scheme_statistics
from crt_widgets.core.analysis.trial import _design, analyze_trial
from crt_widgets.core.models.gee import fit_gee_arrays, sandwich_covariances
from crt_widgets.core.permutation.data import PreparedData
from crt_widgets.core.permutation.test import prepare_test
from crt_widgets.core.spaces.schemes import enumerate_schemes

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "estimands_R.json").read_text())
SMALL = pd.read_csv(DATA / "gee_small.csv")
ARM = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1])  # clusters 1..12, as tests/data/gee_small_R.R drew them


def _prepared(outcome: str, family: str, covariates=("x",)):
    space, prep = prepare_test(SMALL, outcome, "cluster", enumerate_schemes(12, 6), list(covariates), [], family,
                               cluster_ids=np.arange(1, 13), observed=ARM)
    return space, prep


@pytest.mark.parametrize("estimand", ["cluster-average", "individual-average"])
@pytest.mark.parametrize("outcome,family", [("b", "binomial"), ("n", "poisson"), ("y", "gaussian")])
def test_standardized_effects_and_robust_se_match_r(estimand, outcome, family):
    ref = REFERENCE[estimand][family]
    space, prep = _prepared(outcome, family)
    found = [e for e in estimate_estimands(prep, _design(prep), space, se="robust") if e.estimand == estimand]
    difference = found[0]
    assert difference.treated_mean == pytest.approx(ref["treated_mean"], rel=1e-9)
    assert difference.control_mean == pytest.approx(ref["control_mean"], rel=1e-9)
    assert difference.estimate == pytest.approx(ref["difference"], rel=1e-9)
    assert difference.se == pytest.approx(ref["se_difference"], rel=1e-8)
    assert difference.df == 12 - 3
    if family != "gaussian":
        ratio = found[1]
        assert ratio.scale == {"binomial": "risk ratio", "poisson": "rate ratio"}[family]
        assert ratio.estimate == pytest.approx(ref["ratio"], rel=1e-9)
        assert ratio.se == pytest.approx(ref["se_log_ratio"], rel=1e-8)
        low, high = ratio.conf_int
        assert np.sqrt(low * high) == pytest.approx(ratio.estimate, rel=1e-12)  # symmetric on the log scale
    else:
        assert len(found) == 1 and difference.scale == "mean difference"


@pytest.mark.parametrize("estimand", ["cluster-average", "individual-average"])
def test_weighted_independence_corrections_equal_sandwich_vcovcl(estimand):
    """For a (weighted) linear model, sandwich::vcovCL's HC0, HC2 and HC3 (cadjust = TRUE) are the robust,
    Kauermann-Carroll and Mancl-DeRouen sandwiches of independence estimating equations."""
    data = SMALL.sort_values("cluster", kind="stable")
    sizes = data.groupby("cluster")["y"].transform("size").to_numpy()
    weights = 1 / sizes if estimand == "cluster-average" else None
    x = np.column_stack([np.ones(len(data)), data["arm"], data["x"]])
    fit = fit_gee_arrays(data["y"].to_numpy(float), x, data["cluster"].to_numpy(), "gaussian", "independence",
                         weights=weights)
    covariances, _ = sandwich_covariances(fit.cluster_information, fit.cluster_scores)
    for kind, expected in REFERENCE[estimand]["linear_se"].items():
        assert np.sqrt(np.diag(covariances[kind])) == pytest.approx(list(expected.values()), rel=1e-9), kind


def _two_level(family: str, seed: int = 8, covariate: bool = False):
    """14 clusters of unequal size (4 to 30), 7 treated, outcome means that grow with cluster size (so the two
    estimands differ)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(4, 31, 14)
    arm = np.array([1, 0] * 7)
    cluster = np.repeat(np.arange(14), sizes)
    x = rng.normal(size=len(cluster))
    # the effect grows with cluster size, so the two estimands differ
    eta = -0.4 + 0.05 * (sizes * arm)[cluster] + rng.normal(0, 0.4, 14)[cluster] + 0.5 * x
    y = {"gaussian": eta + rng.normal(size=len(eta)), "binomial": (rng.random(len(eta)) < special.expit(eta)) * 1.0,
         "poisson": rng.poisson(np.exp(eta)) * 1.0}[family]
    design = np.column_stack([np.ones(len(y)), x]) if covariate else np.ones((len(y), 1))
    prep = PreparedData(y, design, ["Intercept", "x"][: design.shape[1]], cluster, np.bincount(cluster),
                        arm[cluster].astype(float), family, 0)
    full = np.column_stack([np.ones(len(y)), prep.treated, x]) if covariate else None
    return prep, arm, full


@pytest.mark.parametrize("family", ["gaussian", "binomial"])
def test_without_covariates_the_corrections_have_closed_forms(family):
    """No covariates: the cluster-average means are the arms' means of cluster means and the individual-average
    ones the pooled means. Each cluster's leverage is 1/k_a (cluster-average) or n_i/N_a (individual-average),
    so KC gives the unpooled variance s_1^2/k_1 + s_0^2/k_0 of the cluster means exactly, robust the same with
    k_a - 1 replaced by k_a, MD with (k_a - 1)^2 / k_a ... in the denominators."""
    prep, arm, _ = _two_level(family)
    means = np.bincount(prep.cluster_index, weights=prep.y) / prep.cluster_sizes
    n = prep.cluster_sizes.astype(float)
    got = {(e.estimand, e.scale, kind): e for kind in ("robust", "kc", "md")
           for e in estimate_estimands(prep, se=kind)}
    difference = "mean difference" if family == "gaussian" else "risk difference"
    parts = {}
    for a in (1, 0):
        cm = means[arm == a]
        k = len(cm)
        m_ca = cm.mean()
        deviations = (cm - m_ca) ** 2
        weights, total = n[arm == a], n[arm == a].sum()
        m_ia = weights @ cm / total
        ia_terms = weights**2 * (cm - m_ia) ** 2 / total**2
        parts[a] = {"m_ca": m_ca, "m_ia": m_ia,
                    "ca": {"robust": deviations.sum() / k**2, "kc": deviations.sum() / (k * (k - 1)),
                           "md": deviations.sum() / (k - 1) ** 2},
                    "ia": {"robust": ia_terms.sum(), "kc": (ia_terms / (1 - weights / total)).sum(),
                           "md": (ia_terms / (1 - weights / total) ** 2).sum()}}
    for kind in ("robust", "kc", "md"):
        ca = got[("cluster-average", difference, kind)]
        ia = got[("individual-average", difference, kind)]
        assert ca.estimate == pytest.approx(parts[1]["m_ca"] - parts[0]["m_ca"], rel=1e-10)
        assert ia.estimate == pytest.approx(parts[1]["m_ia"] - parts[0]["m_ia"], rel=1e-10)
        assert ca.se**2 == pytest.approx(parts[1]["ca"][kind] + parts[0]["ca"][kind], rel=1e-9)
        assert ia.se**2 == pytest.approx(parts[1]["ia"][kind] + parts[0]["ia"][kind], rel=1e-9)
        if family == "binomial":  # the log risk ratio by the delta method
            rr = got[("cluster-average", "risk ratio", kind)]
            assert rr.estimate == pytest.approx(parts[1]["m_ca"] / parts[0]["m_ca"], rel=1e-10)
            expected = parts[1]["ca"][kind] / parts[1]["m_ca"] ** 2 + parts[0]["ca"][kind] / parts[0]["m_ca"] ** 2
            assert rr.se**2 == pytest.approx(expected, rel=1e-9)
    # unweighted (cluster) and weighted (individual) estimands really differ here
    assert abs(got[("cluster-average", difference, "kc")].estimate
               - got[("individual-average", difference, "kc")].estimate) > 0.01


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_robust_se_is_the_stacked_estimating_equations_sandwich(family):
    """theta = (beta, m_1, m_0) solves sum_i psi_i(theta) = 0; the sandwich A^-1 (sum psi_i psi_i') A^-T with
    A the numerical Jacobian gives the same SE of the difference and of the log ratio."""
    prep, _, x = _two_level(family, seed=3, covariate=True)
    link_inverse = special.expit if family == "binomial" else np.exp
    for estimand in ("cluster-average", "individual-average"):
        w = 1 / prep.cluster_sizes[prep.cluster_index] if estimand == "cluster-average" else np.ones(len(prep.y))
        found = [e for e in estimate_estimands(prep, x, se="robust") if e.estimand == estimand]
        beta = fit_gee_arrays(prep.y, x, prep.cluster_index, family, "independence", weights=w).beta
        theta = np.r_[beta, found[0].treated_mean, found[0].control_mean]

        def psi(theta, w=w):
            b, m1, m0 = theta[:3], theta[3], theta[4]
            rows = [w[:, None] * (prep.y - link_inverse(x @ b))[:, None] * x]
            for arm, m in ((1.0, m1), (0.0, m0)):
                xa = x.copy()
                xa[:, 1] = arm
                rows.append((w * (link_inverse(xa @ b) - m))[:, None])
            per_row = np.hstack(rows)
            return np.stack([np.bincount(prep.cluster_index, weights=c) for c in per_row.T], axis=1)

        assert np.abs(psi(theta).sum(axis=0)).max() < 1e-8
        step = 1e-6
        jacobian = np.column_stack([(psi(theta + step * e).sum(0) - psi(theta - step * e).sum(0)) / (2 * step)
                                    for e in np.eye(5)])
        inverse = np.linalg.inv(jacobian)
        scores = psi(theta)
        cov = inverse @ scores.T @ scores @ inverse.T
        difference = np.array([0, 0, 0, 1, -1.0])
        log_ratio = np.array([0, 0, 0, 1 / theta[3], -1 / theta[4]])
        assert found[0].se == pytest.approx(np.sqrt(difference @ cov @ difference), rel=1e-6)
        assert found[1].se == pytest.approx(np.sqrt(log_ratio @ cov @ log_ratio), rel=1e-6)


def test_permutation_p_values_scheme_by_scheme():
    """10 clusters, every 5-of-10 scheme: the individual-average test compares size-weighted arm means of the
    cluster-mean residuals (here, without covariates, the pooled means of the outcome), the cluster-average
    one the unweighted means (the main test's statistic)."""
    rng = np.random.default_rng(12)
    sizes = rng.integers(2, 25, 10)
    cluster = np.repeat(np.arange(10), sizes)
    arm = np.array([1, 1, 0, 1, 0, 0, 1, 0, 1, 0])
    data = pd.DataFrame({"cl": cluster, "y": rng.normal(size=len(cluster)) + 0.08 * sizes[cluster] * arm[cluster]})
    report = analyze_trial(data, "y", "cl", enumerate_schemes(10, 5), cluster_ids=np.arange(10), observed=arm,
                           models=(), estimands=True)
    schemes = enumerate_schemes(10, 5).matrix()
    means = np.bincount(cluster, weights=data["y"]) / sizes

    def pooled(s):
        return (sizes * means)[s == 1].sum() / sizes[s == 1].sum() - (sizes * means)[s == 0].sum() / sizes[s == 0].sum()

    observed = pooled(arm)
    brute = np.mean([abs(pooled(s)) >= abs(observed) - 1e-12 for s in schemes])
    ia = next(e for e in report.estimands if e.estimand == "individual-average")
    ca = next(e for e in report.estimands if e.estimand == "cluster-average")
    assert ia.permutation_p_value == pytest.approx(brute, abs=1e-15)
    assert ca.permutation_p_value == report.permutation.p_value
    assert ia.permutation_p_value != ca.permutation_p_value
    table = report.table()
    assert table.loc["Clustered permutation test, individual-average (size-weighted) statistic", "p_value"] == brute


def test_weighted_scheme_statistics_with_a_control_arm_left_out():
    """A comparison that leaves a third arm out: each scheme's control set is given, not the complement."""
    from crt_widgets.core.permutation.space import PermutationSpace
    from crt_widgets.core.spaces.schemes import SchemeSet

    treated = SchemeSet.from_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]]))
    control = SchemeSet.from_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 1]]))
    space = PermutationSpace(treated, 0, np.arange(4), control=control)
    values, weights = np.array([4.0, 2.0, 1.0, 0.0]), np.array([1.0, 1.0, 3.0, 2.0])
    u = weighted_scheme_statistics(space, values, weights)
    assert u.tolist() == [4 - (2 + 3) / 4, 2 - 4 / 3]


def test_analyze_trial_adds_the_estimands_and_their_table():
    space_args = {"cluster_ids": np.arange(1, 13), "observed": ARM}
    report = analyze_trial(SMALL, "b", "cluster", enumerate_schemes(12, 6), ["x"], family="binomial",
                           estimands=True, gee_se="kc", **space_args)
    table = report.table()
    methods = list(table.index)
    assert methods[1] == "GEE (exchangeable), Kauermann-Carroll SE"
    assert "Cluster-average risk difference, standardized, Kauermann-Carroll SE" in methods
    assert "Individual-average risk ratio (SE of the log ratio), standardized, Kauermann-Carroll SE" in methods
    estimands = report.estimands_table()
    assert estimands.shape == (4, 9) and set(estimands.index.get_level_values(0)) == {"cluster-average",
                                                                                       "individual-average"}
    rr = estimands.loc[("cluster-average", "risk ratio")]
    assert rr.ci_low < rr.estimate < rr.ci_high and rr.estimate == pytest.approx(rr.treated_mean / rr.control_mean)
    assert (estimands["df"] == 9).all() and (table.loc[methods[1], "df"] == 9)
    without = analyze_trial(SMALL, "b", "cluster", enumerate_schemes(12, 6), ["x"], family="binomial", **space_args)
    with pytest.raises(ValueError, match=r"estimands: this analysis was run without them"):
        without.estimands_table()
    with pytest.raises(ValueError, match="gee_se: must be one of robust, md, kc, fg, avg, got 'hc3'"):
        analyze_trial(SMALL, "b", "cluster", enumerate_schemes(12, 6), family="binomial", gee_se="hc3", **space_args)


def test_one_sided_p_values_of_a_ratio_are_about_one():
    space, prep = _prepared("b", "binomial")
    rr = estimate_estimands(prep, _design(prep), space)[1]
    assert rr.estimate > 1 and rr.one_sided("greater") == pytest.approx(rr.p_value / 2)
    assert rr.one_sided("less") == pytest.approx(1 - rr.p_value / 2)


def test_command_line_estimands_and_correction(capsys):
    import json

    from crt_widgets.cli import main
    from crt_widgets.commands.analyze import GEE_SE
    from crt_widgets.core.models.gee import SE_TYPES

    assert GEE_SE == SE_TYPES
    assert main(["analyze", "--example", "dickinson", "--ci", "--estimands", "--gee-se", "kc", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    methods = [row["method"] for row in doc["estimates"]]
    assert "GEE (exchangeable), Kauermann-Carroll SE" in methods
    assert "Individual-average risk difference, standardized, Kauermann-Carroll SE" in methods
    assert methods[-1] == "Clustered permutation test, individual-average (size-weighted) statistic"
    assert main(["analyze", "--example", "dickinson", "--estimands"]) == 2
    assert "--estimands: goes with --ci" in capsys.readouterr().err
