"""The random-intercept GLMM against lme4's glmer, numbers pinned from tests/data/glmm_small_lme4.R."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crt_widgets.core.models.glmm import fit_random_intercept_glmm

DATA = Path(__file__).parent / "data" / "glmm_small.csv"
# glmer(y ~ treat + x + (1 | cluster), nAGQ = q): fixef, se, random-intercept sd, logLik (tests/data/glmm_small_lme4.txt)
LME4 = {
    ("binomial", 1): ([-0.24461701, 0.56294799, 0.48846768], [0.20941675, 0.29742525, 0.07537778], 0.64250815, -612.895225),
    ("binomial", 10): ([-0.24466648, 0.56311440, 0.48839773], [0.20999409, 0.29828795, 0.07546342], 0.64459331, -612.806543),
    ("poisson", 1): ([0.22858841, 0.27745678, 0.21098024], [0.13872935, 0.19524328, 0.02547270], 0.45862846, -1482.521005),
    # lme4 leaves constants out of its adaptive-quadrature Poisson log-likelihood: not compared
    ("poisson", 10): ([0.22856558, 0.27743651, 0.21097546], [0.13884822, 0.19540045, 0.02555194], 0.45885611, None),
}


@pytest.fixture(scope="module")
def small():
    return pd.read_csv(DATA)


@pytest.mark.parametrize("family,n_quad", list(LME4))
def test_equals_lme4(small, family, n_quad):
    coef, se, sd, loglik = LME4[(family, n_quad)]
    y = small["y" if family == "binomial" else "count"].to_numpy()
    x = np.column_stack([np.ones(len(small)), small["treat"], small["x"]])
    fit = fit_random_intercept_glmm(y, x, small["cluster"].to_numpy(), family, n_quad=n_quad)
    # lme4 stops a little short of the Laplace optimum (our log-likelihood is higher), hence the looser tolerance
    np.testing.assert_allclose(fit.coef, coef, atol=2e-5 if n_quad > 1 else 5e-5)
    np.testing.assert_allclose(fit.se, se, rtol=1e-3 if n_quad > 1 else 1e-2)  # lme4's Laplace SEs approximate the Hessian
    assert fit.sigma == pytest.approx(sd, rel=2e-4)
    if loglik is not None:
        assert fit.loglik >= loglik - 1e-5  # at least as high as lme4's optimum
        assert fit.loglik == pytest.approx(loglik, abs=1e-4)


def test_bad_arguments(small):
    x = np.ones((len(small), 1))
    with pytest.raises(ValueError, match="family"):
        fit_random_intercept_glmm(small["y"].to_numpy(), x, small["cluster"].to_numpy(), "gaussian")
    with pytest.raises(ValueError, match="n_quad"):
        fit_random_intercept_glmm(small["y"].to_numpy(), x, small["cluster"].to_numpy(), "binomial", n_quad=0)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_optimum_and_standard_errors_do_not_depend_on_the_search_path(family):
    """150 clusters of 40 with a cluster SD of 1 (binary) or 0.5 (counts). The likelihood warm-starts every
    cluster's mode from its last call, and a line search can leave those far away; the fit must still sit
    at a stationary point of the exact likelihood, with the SEs of its exact Hessian, whatever the start.
    (Undamped Newton modes once left this binary fit at a non-stationary point, gradient ~1800, with
    negative variances.)"""
    from scipy.special import expit

    from crt_widgets.core.models import glmm

    rng = np.random.default_rng(31)
    k, m = 150, 40
    cluster = np.repeat(np.arange(k), m)
    eta = rng.normal(0, 1.0 if family == "binomial" else 0.5, k)[cluster]
    y = ((rng.random(k * m) < expit(-0.5 + eta)) if family == "binomial" else rng.poisson(3 * np.exp(eta))).astype(float)
    x = np.column_stack([np.ones(k * m), (np.arange(k) % 2)[cluster]])
    fit = fit_random_intercept_glmm(y, x, cluster, family, n_quad=10)
    fresh = glmm._Likelihood(y, x, cluster, family, 10)
    theta = np.append(fit.coef, np.log(fit.sigma))
    gradient = [(fresh(theta + 1e-6 * e) - fresh(theta - 1e-6 * e)) / 2e-6 for e in np.eye(3)]
    assert np.max(np.abs(gradient)) < 1e-2
    from statsmodels.tools.numdiff import approx_hess3

    exact_se = np.sqrt(np.diag(np.linalg.pinv(approx_hess3(theta, fresh))))[:2]  # statsmodels' own steps
    assert np.all(fit.se > 0) and fit.se == pytest.approx(exact_se, rel=1e-4)
    other = fit_random_intercept_glmm(y, x, cluster, family, n_quad=10, start=np.array([1.0, -1.0, np.log(3.0)]))
    assert other.coef == pytest.approx(fit.coef, abs=1e-4) and other.loglik == pytest.approx(fit.loglik, abs=1e-6)
