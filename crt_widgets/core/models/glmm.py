"""Random-intercept GLMM (logistic or Poisson) by maximum likelihood with adaptive Gauss-Hermite quadrature.

statsmodels has no maximum-likelihood GLMM (its Bayesian mixed GLMs are variational and understate
the uncertainty), so the cluster-randomized trial's binary and count outcomes get this small,
exact one: the same likelihood as R's ``lme4::glmer(y ~ x + (1 | cluster), nAGQ = n_quad)``
(``n_quad = 1`` is the Laplace approximation). Each likelihood evaluation finds every cluster's
posterior mode by vectorised Newton steps (sums by ``np.bincount``), then integrates on nodes
centred and scaled there. Wald t tests use the "between-within" denominator df (SAS's
``DDFM=BETWITHIN``, recommended for cluster trials' GLMMs by Li and Redden 2015): clusters minus the
cluster-level coefficients for a cluster-level term, N - clusters - within-cluster coefficients otherwise.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> g = np.repeat(np.arange(30), 50)
>>> x = np.column_stack([np.ones(1500), rng.normal(size=1500)])
>>> eta = -0.5 + 0.8 * x[:, 1] + rng.normal(0, 0.7, 30)[g]
>>> fit = fit_random_intercept_glmm(rng.random(1500) < 1 / (1 + np.exp(-eta)), x, g, "binomial")
>>> bool(abs(fit.coef[1] - 0.8) < 0.2)
True
>>> fit.df.tolist()                   # intercept: 30 clusters - 1; the covariate: 1500 - 30 - 1
[29, 1469]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special
from scipy import stats as sps
from statsmodels.tools.numdiff import approx_hess3

from crt_widgets.core.models.ddf import between_within_df

_NEWTON_STEPS = 50
_HALVINGS = 40


@dataclass(frozen=True)
class GLMMFit:
    """Fixed effects, their covariance, the random-intercept SD, and the log-likelihood; ``df`` the
    between-within denominator df of every coefficient, ``pvalues`` and ``conf_int()`` Wald t on them."""

    coef: np.ndarray
    cov: np.ndarray
    sigma: float
    loglik: float
    n_quad: int
    converged: bool
    df: np.ndarray | None = None

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    @property
    def pvalues(self) -> np.ndarray:
        df = np.full(self.coef.size, np.inf) if self.df is None else self.df
        return 2 * sps.t.sf(np.abs(self.coef / self.se), df)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """Wald intervals, one row per coefficient (lower, upper), t quantiles on ``df``."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        df = np.full(self.coef.size, np.inf) if self.df is None else self.df
        half = sps.t.ppf(1 - alpha / 2, df) * self.se
        return np.column_stack([self.coef - half, self.coef + half])


def _log_density(y: np.ndarray, eta: np.ndarray, family: str) -> np.ndarray:
    if family == "binomial":
        return y * eta - np.logaddexp(0.0, eta)
    return y * eta - np.exp(eta) - special.gammaln(y + 1)


def _mean_and_weight(eta: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray]:
    if family == "binomial":
        mu = special.expit(eta)
        return mu, mu * (1 - mu)
    mu = np.exp(eta)
    return mu, mu


class _Likelihood:
    def __init__(self, y, x, groups, family, n_quad):
        self.y, self.x, self.g, self.family = np.asarray(y, float), np.asarray(x, float), groups, family
        self.k = int(groups.max()) + 1
        self.nodes, self.weights = np.polynomial.hermite.hermgauss(n_quad)
        self.b = np.zeros(self.k)

    def _sum(self, v):
        return np.bincount(self.g, weights=v, minlength=self.k)

    def _log_posterior(self, offset: np.ndarray, b: np.ndarray, sigma2: float) -> np.ndarray:
        """Each cluster's log posterior of its intercept (up to a constant): strictly concave in b."""
        return self._sum(_log_density(self.y, offset + b[self.g], self.family)) - b**2 / (2 * sigma2)

    def _modes(self, offset: np.ndarray, sigma2: float) -> np.ndarray:
        """Posterior mode of every cluster's intercept at once: Newton ascent, each cluster's step halved
        until its log posterior does not fall. Plain Newton from a far start (the warm start can be a
        line search's wild trial point) overshoots where the weights vanish and never returns, which
        corrupts the likelihood and its Hessian."""
        b = self.b if np.all(np.isfinite(self.b)) else np.zeros(self.k)
        value = self._log_posterior(offset, b, sigma2)
        for _ in range(_NEWTON_STEPS):
            mu, w = _mean_and_weight(offset + b[self.g], self.family)
            step = (self._sum(self.y - mu) - b / sigma2) / (self._sum(w) + 1 / sigma2)
            for _ in range(_HALVINGS):
                new = self._log_posterior(offset, b + step, sigma2)
                worse = new < value - 1e-12 * (1 + np.abs(value))
                if not worse.any():
                    break
                step = np.where(worse, step / 2, step)
            step = np.where(worse, 0.0, step)  # a cluster that cannot gain stays where it is
            b, value = b + step, np.where(worse, value, new)
            if np.max(np.abs(step)) < 1e-10:
                break
        return b

    def __call__(self, theta: np.ndarray) -> float:
        beta, log_sigma = theta[:-1], theta[-1]
        sigma2 = np.exp(2 * log_sigma)
        offset = self.x @ beta
        b = self.b = self._modes(offset, sigma2)
        _, w = _mean_and_weight(offset + b[self.g], self.family)
        scale = 1 / np.sqrt(self._sum(w) + 1 / sigma2)
        total = np.zeros(self.k)
        logs = []
        for z, wq in zip(self.nodes, self.weights):
            node = b + np.sqrt(2) * scale * z
            ll = self._sum(_log_density(self.y, offset + node[self.g], self.family))
            logs.append(ll - node**2 / (2 * sigma2) + np.log(wq) + z**2)
        total = special.logsumexp(np.vstack(logs), axis=0)
        per_cluster = total + np.log(np.sqrt(2) * scale) - 0.5 * np.log(2 * np.pi * sigma2)
        return -float(per_cluster.sum())


def fit_random_intercept_glmm(y: np.ndarray, x: np.ndarray, groups: np.ndarray, family: str,
                              n_quad: int = 10, start: np.ndarray | None = None) -> GLMMFit:
    """Maximum-likelihood fit of ``family`` (``"binomial"`` or ``"poisson"``) with a random intercept per group.

    ``groups`` are integer codes 0..k-1. Standard errors of the fixed effects come from the
    numerical Hessian of the log-likelihood (as lme4 reports them).
    """
    if family not in ("binomial", "poisson"):
        raise ValueError(f"family: the GLMM is for 'binomial' or 'poisson' outcomes, got {family!r}")
    if n_quad < 1:
        raise ValueError("n_quad: at least 1 node (1 is the Laplace approximation)")
    _, groups = np.unique(np.asarray(groups), return_inverse=True)
    nll = _Likelihood(y, x, groups, family, n_quad)
    if start is None:
        from crt_widgets.core.models.residuals import fit_glm

        start = np.append(fit_glm(np.asarray(x, float), np.asarray(y, float), family).coef, np.log(0.3))
    result = optimize.minimize(nll, start, method="BFGS", options={"gtol": 1e-6, "maxiter": 500})
    theta = result.x
    # central differences of the log-likelihood (Ridout 2009, eq. 9), steps scaled to each parameter
    hessian = approx_hess3(theta, nll, epsilon=1e-4 * np.maximum(1.0, np.abs(theta)))
    cov = np.linalg.pinv(hessian)
    p = x.shape[1]
    return GLMMFit(theta[:p], cov[:p, :p], float(np.exp(theta[-1])), -float(result.fun), n_quad,
                   bool(result.success or result.status == 2), between_within_df(x, groups))


def profile_loglik(y: np.ndarray, x: np.ndarray, groups: np.ndarray, family: str, sigma: float, n_quad: int = 10,
                   start: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The log-likelihood maximised over the fixed effects at a given random-intercept SD ``sigma``
    (its profile, for likelihood intervals of sigma and the latent ICC), and the maximising coefficients;
    ``sigma = 0`` is the GLM without the random intercept (the limit of the likelihood).

    >>> import numpy as np
    >>> g = np.repeat(np.arange(4), 5); y = np.array([0, 1] * 10, float); x = np.ones((20, 1))
    >>> round(profile_loglik(y, x, g, "binomial", 0.0)[0], 4)   # 20 log(1/2)
    -13.8629
    """
    y, x = np.asarray(y, float), np.asarray(x, float)
    if sigma <= 0:
        from crt_widgets.core.models.residuals import fit_glm

        coef = fit_glm(x, y, family).coef
        return float(_log_density(y, x @ coef, family).sum()), coef
    _, groups = np.unique(np.asarray(groups), return_inverse=True)
    nll = _Likelihood(y, x, groups, family, n_quad)
    if start is None:
        from crt_widgets.core.models.residuals import fit_glm

        start = fit_glm(x, y, family).coef
    log_sigma = float(np.log(sigma))
    result = optimize.minimize(lambda beta: nll(np.append(beta, log_sigma)), np.asarray(start, float), method="BFGS",
                               options={"gtol": 1e-8, "maxiter": 500})
    return -float(result.fun), result.x


def _numerical_hessian(f, theta: np.ndarray) -> np.ndarray:
    k = len(theta)
    h = 1e-4 * np.maximum(1.0, np.abs(theta))
    out = np.zeros((k, k))
    f0 = f(theta)
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            if i == j:
                val = (f(theta + ei) - 2 * f0 + f(theta - ei)) / h[i] ** 2
            else:
                val = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)) / (4 * h[i] * h[j])
            out[i, j] = out[j, i] = val
    return out
