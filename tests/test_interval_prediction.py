"""The permutation interval of binary and count outcomes, found with a dozen refits, is the old one.

The old path refitted the outcome regression (``fit_glm``, warm-started from the previous delta) at
every point of a walk out from the estimate and of Brent's method on the bracket. The new path refits
along the regression's derivative (:class:`OffsetRegression`), finds the estimate by Newton's method
and predicts each limit from every scheme's linearized statistic, confirming it by two fits. These
tests pin the fits to ``fit_glm`` and the estimate and limits to the old path's within the root
finder's tolerance (1e-10 for the estimate, 1e-8 relative for a limit), on enumerated spaces of 12-16
clusters with individual-level and cluster-level covariates (equal arms: the mirror scheme ties).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from crt_widgets.core.models.residuals import OffsetRegression, fit_glm
from crt_widgets.core.permutation import interval
from crt_widgets.core.permutation.data import p_values, scheme_statistics
from crt_widgets.core.permutation.test import prepare_test
from crt_widgets.core.spaces.schemes import enumerate_schemes


def _trial(seed: int, n_clusters: int, family: str, individual: bool):
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), rng.integers(5, 60, n_clusters))
    arm = np.zeros(n_clusters, int)
    arm[rng.choice(n_clusters, n_clusters // 2, replace=False)] = 1
    x1 = rng.normal(size=len(cluster)) if individual else rng.normal(size=n_clusters)[cluster]
    eta = -0.3 + 0.4 * x1 + 0.5 * arm[cluster] + rng.normal(0, 0.3, n_clusters)[cluster]
    y = ((rng.random(len(cluster)) < 1 / (1 + np.exp(-eta))) * 1.0 if family == "binomial"
         else rng.poisson(np.exp(eta)) * 1.0)
    data = pd.DataFrame({"y": y, "cl": cluster, "x1": x1})
    space, prep = prepare_test(data, "y", "cl", enumerate_schemes(n_clusters, n_clusters // 2), ["x1"], (), family,
                               cluster_ids=np.arange(n_clusters), observed=arm)
    return space, prep


CASES = [(seed, [12, 14, 16][seed % 3], ["binomial", "poisson"][seed % 2], seed % 4 < 2) for seed in range(8)]


@pytest.mark.parametrize("family", ["binomial", "poisson"])
@pytest.mark.parametrize("individual", [True, False])
def test_offset_regression_is_fit_glm(family, individual):
    space, prep = _trial(5, 12, family, individual)
    regression = OffsetRegression(prep.x, prep.y, family, prep.treated, prep.cluster_index, 12)
    assert regression.cluster_level is not individual
    start = None
    for delta in (0.0, 0.4, 0.41, -0.2, 1.5):  # warm starts from near and far
        fit = regression.fit(delta)
        old = fit_glm(prep.x, prep.y, family, offset=delta * prep.treated, start=start)
        start = old.coef
        np.testing.assert_allclose(fit.coef, old.coef, atol=1e-9)
        means = np.bincount(prep.cluster_index, weights=prep.y - old.mu) / prep.cluster_sizes
        np.testing.assert_allclose(fit.residual_means, means, atol=1e-11)
        # the derivative that steers the search is the derivative
        h = 1e-5
        up, down = (OffsetRegression(prep.x, prep.y, family, prep.treated, prep.cluster_index, 12).fit(delta + s * h)
                    for s in (1, -1))
        np.testing.assert_allclose(fit.residual_slopes, (up.residual_means - down.residual_means) / (2 * h),
                                   rtol=1e-5, atol=1e-9)
    assert regression.fit(0.4) is regression.fit(0.4)  # a delta is fitted once


def _old_path(space, prep):
    """The interval as before: fit_glm warm-started from the previous delta at every point, the walk from
    the estimate and Brent's method (the estimate by the walk and Brent's method on the observed U)."""
    state = {"start": None}
    arm, control = space.observed_arm.astype(bool), space.observed_control.astype(bool)

    def means(delta):
        fit = fit_glm(prep.x, prep.y, prep.family, offset=delta * prep.treated, start=state["start"])
        state["start"] = fit.coef if fit.converged else None
        return np.bincount(prep.cluster_index, weights=prep.y - fit.mu) / prep.cluster_sizes

    def observed(delta):
        r = means(delta)
        return float(r[arm].mean() - r[control].mean())

    def p_value(delta):
        u = scheme_statistics(space.schemes, means(delta), space.control)
        return p_values(u, u[space.observed])["two-sided"]

    u0 = scheme_statistics(space.schemes, means(0.0), space.control)
    scale = interval.effect_scale(prep, u0)
    a, b = interval._bracket(observed, 0.0, scale, 1 if observed(0.0) > 0 else -1, cap=interval.MAX_LINK_EFFECT)
    estimate = optimize.brentq(observed, min(a, b), max(a, b), xtol=1e-10)
    f = lambda d: p_value(d) - 0.05 + 1e-12
    xtol = 1e-8 * max(1.0, abs(estimate))
    limits = []
    for direction in (-1, 1):
        inner, outer = interval._bracket(f, estimate, scale, direction, cap=interval.MAX_LINK_EFFECT)
        limits.append(optimize.brentq(f, min(inner, outer), max(inner, outer), xtol=xtol))
    return estimate, limits, scale, xtol


@pytest.mark.parametrize("seed,n_clusters,family,individual", CASES)
def test_predicted_interval_is_the_old_one(seed, n_clusters, family, individual):
    space, prep = _trial(seed, n_clusters, family, individual)
    old_estimate, old_limits, scale, xtol = _old_path(space, prep)
    inv = interval.Inverter(prep, space)
    estimate = interval.point_estimate(inv, scale)
    assert estimate == pytest.approx(old_estimate, abs=2e-10)
    low, high = interval.confidence_interval(inv, estimate, 0.05, scale)
    assert low == pytest.approx(old_limits[0], abs=2 * xtol) and high == pytest.approx(old_limits[1], abs=2 * xtol)
    # each limit is a step of the p-value across alpha, within the tolerance
    for limit, direction in ((low, -1), (high, 1)):
        assert inv.p_value(limit - direction * xtol) >= 0.05 > inv.p_value(limit + direction * xtol)
    # the walk and Brent's method (the fallback) on the same fits agree too
    for limit, direction in ((low, -1), (high, 1)):
        brent = interval._bracketed_limit(inv, estimate, direction, 0.05, scale, xtol)
        assert limit == pytest.approx(brent, abs=2 * xtol)


def test_without_predictions_the_walk_and_brent_decide(monkeypatch):
    space, prep = _trial(3, 12, "poisson", False)
    inv = interval.Inverter(prep, space)
    scale = interval.effect_scale(prep, inv.statistics(0.0))
    estimate = interval.point_estimate(inv, scale)
    predicted = interval.confidence_interval(inv, estimate, 0.05, scale)
    monkeypatch.setattr(interval, "_MAX_PREDICTIONS", 0)
    fresh = interval.Inverter(prep, space)
    walked = interval.confidence_interval(fresh, estimate, 0.05, scale)
    np.testing.assert_allclose(predicted, walked, atol=2e-8 * max(1.0, abs(estimate)))
