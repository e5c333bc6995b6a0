"""The permutation test's size and its interval's coverage, by simulation.

Null outcomes come from a random-intercept model and the observed scheme is drawn uniformly from
the space, as the trial would draw it. Bands are 3.3 Monte Carlo standard errors wide (a false alarm
about once in a thousand runs); with the replicate counts below they separate 5% from 8%.

The continuous case is vectorised across replicates (one least-squares solve and one pass over
the schemes for all of them), and a few replicates are checked against ``permutation_test`` itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crt_widgets import ConstrainedDesign, permutation_test
from crt_widgets.core.permutation.test import p_values, simple_space

N_CLUSTERS, M = 16, 15


def _band(rate: float, reps: int) -> float:
    return 3.3 * np.sqrt(rate * (1 - rate) / reps)


def _clusters(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"cluster": np.arange(1, N_CLUSTERS + 1), "x": rng.normal(size=N_CLUSTERS).round(3),
                         "size": rng.normal(size=N_CLUSTERS).round(3)})


def _space(clusters, n_treat, constrained):
    if constrained:
        design = ConstrainedDesign(clusters, ["x", "size"], n_treat, cluster_id="cluster", cutoff=0.1)
        return design.space.schemes, design.cluster_ids
    arm = np.r_[np.ones(n_treat), np.zeros(N_CLUSTERS - n_treat)].astype(int)
    s = simple_space(clusters["cluster"].to_numpy(), n_treat, arm)
    return s.schemes, s.cluster_ids


def _null_outcomes(clusters, rng, reps):
    """(individuals, reps) continuous outcomes: 0.8 x + cluster intercept (SD 0.5) + noise; no effect."""
    cl = np.repeat(np.arange(N_CLUSTERS), M)
    x = clusters["x"].to_numpy()
    y = 0.8 * x[cl, None] + rng.normal(0, 0.5, (N_CLUSTERS, reps))[cl] + rng.normal(size=(len(cl), reps))
    return cl, x[cl], y


def _vectorised_p_values(schemes, cl, x, y, observed):
    """Two-sided p-value of each replicate (column of y), adjusted for x, at its observed scheme."""
    design = np.column_stack([np.ones(len(x)), x])
    resid = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    means = np.zeros((N_CLUSTERS, y.shape[1]))
    np.add.at(means, cl, resid)
    means /= M
    n_treated = schemes.treated_counts()[:, None]
    treated = schemes.treated_sums(means)
    u = treated / n_treated - (means.sum(axis=0) - treated) / (N_CLUSTERS - n_treated)
    u_obs = u[observed, np.arange(y.shape[1])]
    tol = 1e-9 * np.abs(u_obs)
    return np.mean(np.abs(u) >= np.abs(u_obs) - tol, axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("n_treat,constrained", [(8, True), (8, False), (5, True), (5, False)])
def test_size_is_nominal_for_continuous_outcomes(n_treat, constrained):
    reps = 3000
    clusters = _clusters(1)
    schemes, ids = _space(clusters, n_treat, constrained)
    rng = np.random.default_rng(100 + n_treat + constrained)
    observed = rng.integers(len(schemes), size=reps)
    cl, x, y = _null_outcomes(clusters, rng, reps)
    p = _vectorised_p_values(schemes, cl, x, y, observed)
    # the shortcut is the test: a few replicates through the public function
    for r in range(3):
        data = pd.DataFrame({"y": y[:, r], "cluster": ids[cl], "x": x})
        direct = permutation_test(data, "y", "cluster", schemes, ["x"], cluster_ids=ids, observed=int(observed[r]))
        assert direct.p_value == pytest.approx(p[r], abs=1e-12)
    size = np.mean(p <= 0.05)
    assert abs(size - 0.05) < _band(0.05, reps), size
    # and the p-values are uniform on the whole range, not only at 5%
    assert abs(np.mean(p <= 0.2) - 0.2) < _band(0.2, reps)


@pytest.mark.slow
@pytest.mark.parametrize("family,n_treat", [("binomial", 8), ("binomial", 5), ("poisson", 6)])
def test_size_is_nominal_for_binary_and_count_outcomes(family, n_treat):
    """Logistic / Poisson residuals, constrained space, equal and unequal arms (cptest warns about unequal)."""
    reps = 800
    clusters = _clusters(3)
    schemes, ids = _space(clusters, n_treat, True)
    rng = np.random.default_rng(200 + n_treat)
    cl = np.repeat(np.arange(N_CLUSTERS), 25)
    x = clusters["x"].to_numpy()[cl]
    eta = -0.4 + 0.5 * x[:, None] + rng.normal(0, 0.4, (N_CLUSTERS, reps))[cl]
    y = rng.random(eta.shape) < 1 / (1 + np.exp(-eta)) if family == "binomial" else rng.poisson(np.exp(eta))
    observed = rng.integers(len(schemes), size=reps)
    p = np.array([permutation_test(pd.DataFrame({"y": y[:, r], "cluster": ids[cl], "x": x}), "y", "cluster",
                                   schemes, ["x"], family=family, cluster_ids=ids, observed=int(observed[r])).p_value
                  for r in range(reps)])
    size = np.mean(p <= 0.05)
    assert abs(size - 0.05) < _band(0.05, reps), size


@pytest.mark.slow
def test_interval_covers_the_true_effect_continuous():
    clusters = _clusters(2)
    schemes, ids = _space(clusters, 8, True)
    rng = np.random.default_rng(7)
    reps, effect = 400, 0.6
    picks = rng.integers(len(schemes), size=reps)
    arms = schemes.matrix(picks)
    cl, x, y = _null_outcomes(clusters, rng, reps)
    y = y + effect * arms.T[cl]
    covered = 0
    for r in range(reps):
        data = pd.DataFrame({"y": y[:, r], "cluster": ids[cl], "x": x})
        res = permutation_test(data, "y", "cluster", schemes, ["x"], cluster_ids=ids, observed=int(picks[r]), ci=True)
        covered += res.conf_int[0] <= effect <= res.conf_int[1]
    coverage = covered / reps
    assert abs(coverage - 0.95) < _band(0.95, reps), coverage


@pytest.mark.slow
def test_interval_covers_the_true_log_odds_ratio():
    """Binary outcome, conditional log odds ratio 0.5, small cluster variation (SD 0.3 on the logit scale).

    The offset inversion targets an effect of the regression that ignores clustering, which is close
    to the conditional one when clusters vary little; coverage by a longer run is in the closing note.
    """
    rng = np.random.default_rng(8)
    clusters = _clusters(4)
    schemes, ids = _space(clusters, 8, True)
    reps, effect = 250, 0.5
    cl = np.repeat(np.arange(N_CLUSTERS), 30)
    covered = 0
    for _ in range(reps):
        pick = int(rng.integers(len(schemes)))
        arm = schemes.matrix(np.array([pick]))[0]
        x = rng.normal(size=len(cl))
        eta = -0.5 + 0.4 * x + effect * arm[cl] + rng.normal(0, 0.3, N_CLUSTERS)[cl]
        data = pd.DataFrame({"y": (rng.random(len(cl)) < 1 / (1 + np.exp(-eta))) * 1, "cluster": ids[cl], "x": x})
        res = permutation_test(data, "y", "cluster", schemes, ["x"], family="binomial", cluster_ids=ids,
                               observed=pick, ci=True)
        covered += res.conf_int[0] <= effect <= res.conf_int[1]
    coverage = covered / reps
    assert abs(coverage - 0.95) < _band(0.95, reps), coverage


def test_p_values_count_ties_and_sides():
    u = np.array([-2.0, -1.0, 0.5, 1.0, 1.0 + 1e-13, 3.0])
    pv = p_values(u, 1.0)
    assert pv == {"two-sided": 5 / 6, "greater": 3 / 6, "less": 5 / 6}
