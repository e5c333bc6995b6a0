"""Fast nested random-intercept linear mixed model from per-group sufficient statistics.

Model: ``y = X beta + u_outer + u_inner + e`` with independent normal random intercepts for the
outer groups (e.g. centres), for the inner groups nested in them (e.g. representatives within
centres; optional) and residuals. With relative variances ``tau_o = s2_outer / s2`` and
``tau_i = s2_inner / s2``, the scaled covariance of the rows of one outer group is
``A + tau_o 1 1'`` where ``A = I + tau_i blockdiag(J)``. Both inverses follow from
Sherman-Morrison: for any columns ``a``, ``b`` of ``[X, y]``::

    a' W b = sum_rows a b - sum_inner tau_i / d_j  Sa_j Sb_j
             - sum_outer tau_o / h_g  Ta_g Tb_g,
    d_j = 1 + tau_i n_j,  Ta_g = sum_{j in g} Sa_j / d_j,  h_g = 1 + tau_o sum_{j in g} n_j / d_j,
    log|A + tau_o 1 1'| = sum_j log d_j + sum_g log h_g,

so after one pass over the rows (the cross-product matrix of ``[X, y]``, and the row count and
column sums of every inner group) each evaluation of the profiled (RE)ML deviance costs
O(groups x columns^2), whatever the number of rows. The deviance is lme4's: the same
parametrisation (relative standard deviations ``theta >= 0``) and the same REML criterion, so the
optimum is lme4's optimum.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> g = np.repeat(np.arange(20), 50)
>>> y = 1.0 + rng.normal(size=20)[g] + rng.normal(size=1000)
>>> stats = nested_stats(np.ones((1000, 1)), y, g, None)
>>> fit = fit_nested(stats, reml=True)
>>> bool(abs(fit.beta[0] - y.mean()) < 1e-9)  # balanced one-way layout: GLS mean = grand mean
True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class NestedStats:
    """Sufficient statistics of a nested random-intercept model (all a fit needs).

    ``inner_*`` arrays have one entry per inner group (the finest grouping level), ordered so that
    the inner groups of one outer group are contiguous; ``outer_starts`` indexes the first inner
    group of every outer group (``None`` for a one-level model, where the inner groups are the
    only groups). Columns are centred at ``shift`` (the intercept column is not) for precision.
    """

    n_obs: int
    cross: np.ndarray          # (k, k) cross products of the centred [X, y]
    inner_n: np.ndarray        # (R,) rows per inner group
    inner_sums: np.ndarray     # (R, k) column sums of the centred [X, y] per inner group
    outer_starts: np.ndarray | None  # (G,) first inner group of each outer group
    shift: np.ndarray          # (k,) value subtracted from each column
    intercept_col: int | None  # index of the all-ones column of X, if any

    @property
    def n_fe(self) -> int:
        return self.cross.shape[0] - 1

    @property
    def two_level(self) -> bool:
        return self.outer_starts is not None


@dataclass(frozen=True)
class NestedFit:
    """Optimum of the profiled deviance: parameters on the original (uncentred) scale."""

    theta: np.ndarray          # relative standard deviations (outer, inner) or (inner,)
    beta: np.ndarray
    cov_beta: np.ndarray       # sigma2 (X'WX)^-1
    sigma2: float              # residual variance
    variances: np.ndarray      # random-intercept variances, same order as theta
    deviance: float            # -2 log-likelihood (REML criterion when reml)
    reml: bool
    converged: bool
    n_evaluations: int


def nested_stats(X: np.ndarray, y: np.ndarray, inner: np.ndarray, outer: np.ndarray | None,
                 weights: np.ndarray | None = None, shift: np.ndarray | None = None) -> NestedStats:
    """One pass over the rows: cross products and per-inner-group counts and sums.

    ``inner`` and ``outer`` are integer codes 0..R-1 and 0..G-1 (``outer=None`` for one level);
    every inner group must lie inside one outer group (callers code inner groups within outer).
    Integer ``weights`` count each row that many times (a bootstrap resample without copying
    rows; inner groups left with no rows are dropped). ``shift`` overrides the centring values.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    data = np.empty((n, p + 1))
    data[:, :p] = X
    data[:, p] = y
    intercept_col = _intercept_column(X)
    # centre every column but the intercept: the cross products then carry no large common
    # offset, which keeps the subtractions in the deviance accurate to many digits
    if shift is None:
        shift = data.mean(axis=0)
    shift = np.array(shift, dtype=float)
    if intercept_col is None:  # without an intercept, centring would change the model
        shift[:] = 0.0
    else:
        shift[intercept_col] = 0.0
    data -= shift
    n_inner = int(inner.max()) + 1
    if weights is None:
        cross = data.T @ data
        counts = np.bincount(inner, minlength=n_inner).astype(float)
        sums = np.column_stack([np.bincount(inner, weights=data[:, j], minlength=n_inner) for j in range(p + 1)])
        n_obs = n
    else:
        w = np.asarray(weights, dtype=float)
        cross = (data * w[:, None]).T @ data
        counts = np.bincount(inner, weights=w, minlength=n_inner)
        sums = np.column_stack([np.bincount(inner, weights=w * data[:, j], minlength=n_inner) for j in range(p + 1)])
        n_obs = int(round(w.sum()))
    inner_outer = np.zeros(n_inner, dtype=np.int64)
    if outer is not None:
        inner_outer[inner] = outer
    keep = counts > 0
    return stats_from_groups(n_obs, cross, counts[keep], sums[keep], inner_outer[keep] if outer is not None else None,
                             shift, intercept_col)


def stats_from_groups(n_obs: int, cross: np.ndarray, counts: np.ndarray, sums: np.ndarray,
                      inner_outer: np.ndarray | None, shift: np.ndarray, intercept_col: int | None) -> NestedStats:
    """Assemble :class:`NestedStats` from per-inner-group counts and sums (and their outer codes)."""
    starts = None
    if inner_outer is not None:
        order = np.argsort(inner_outer, kind="stable")
        counts, sums, inner_outer = counts[order], sums[order], inner_outer[order]
        starts = np.flatnonzero(np.r_[True, np.diff(inner_outer) != 0])
    return NestedStats(n_obs=int(n_obs), cross=cross, inner_n=counts, inner_sums=sums, outer_starts=starts,
                       shift=np.asarray(shift, dtype=float), intercept_col=intercept_col)


def weighted_quadratic(stats: NestedStats, tau: np.ndarray) -> tuple[np.ndarray, float]:
    """``[X, y]' W [X, y]`` and ``log|V / s2|`` at relative variances ``tau`` (outer, inner).

    Written as a sum of non-negative parts (within-inner-group scatter, weighted scatter of the
    inner-group means around their outer group's weighted mean, and the outer groups' means) so
    that no large terms cancel, even when a variance ratio is huge.
    """
    tau_inner = float(tau[-1])
    n, S = stats.inner_n, stats.inner_sums
    means = S / n[:, None]
    within = stats.cross - (S.T / n) @ S
    d = 1.0 + tau_inner * n
    w = n / d
    logdet = float(np.log(d).sum())
    if not stats.two_level:
        return within + (means.T * w) @ means, logdet
    tau_outer = float(tau[0])
    starts = stats.outer_starts
    G = np.add.reduceat(w, starts)
    outer_means = np.add.reduceat(means * w[:, None], starts, axis=0) / G[:, None]
    sizes = np.diff(np.r_[starts, n.size])
    dev = means - np.repeat(outer_means, sizes, axis=0)
    Q = within + (dev.T * w) @ dev + (outer_means.T * (G / (1.0 + tau_outer * G))) @ outer_means
    logdet += float(np.log1p(tau_outer * G).sum())
    return Q, logdet


def _solve(stats: NestedStats, tau: np.ndarray, reml: bool):
    """Profiled quantities at ``tau``: deviance, centred beta, its Cholesky factor, r'Wr."""
    Q, logdet = weighted_quadratic(stats, tau)
    p = stats.n_fe
    chol = linalg.cho_factor(Q[:p, :p], lower=True)
    beta = linalg.cho_solve(chol, Q[:p, p])
    rwr = max(float(Q[p, p] - Q[:p, p] @ beta), np.finfo(float).tiny)
    nu = stats.n_obs - p if reml else stats.n_obs
    deviance = logdet + nu * (1.0 + LOG_2PI + np.log(rwr / nu))
    if reml:
        deviance += 2.0 * float(np.log(np.diag(chol[0])).sum())
    return deviance, beta, chol, rwr / nu


def profiled_deviance(theta: np.ndarray, stats: NestedStats, reml: bool = True) -> float:
    """lme4's profiled deviance (REML criterion when ``reml``) at relative SDs ``theta``."""
    try:
        return _solve(stats, np.square(theta), reml)[0]
    except np.linalg.LinAlgError:  # numerically singular X'WX far from the optimum: steer away
        return float(np.finfo(float).max)


def full_deviance(variances: np.ndarray, stats: NestedStats, reml: bool = True) -> float:
    """-2 log-likelihood at variances (random intercepts..., residual), beta profiled out.

    Used for the observed information of the variance components.
    """
    sigma2 = float(variances[-1])
    tau = np.asarray(variances[:-1], dtype=float) / sigma2
    Q, logdet = weighted_quadratic(stats, tau)
    p = stats.n_fe
    chol = linalg.cho_factor(Q[:p, :p], lower=True)
    beta = linalg.cho_solve(chol, Q[:p, p])
    rwr = float(Q[p, p] - Q[:p, p] @ beta)
    nu = stats.n_obs - p if reml else stats.n_obs
    dev = logdet + nu * (LOG_2PI + np.log(sigma2)) + rwr / sigma2
    if reml:
        dev += 2.0 * float(np.log(np.diag(chol[0])).sum())
    return dev


def fit_nested(stats: NestedStats, reml: bool = True, start: np.ndarray | None = None,
               polish: bool = True) -> NestedFit:
    """Minimise the profiled deviance over ``theta >= 0`` and return the estimates.

    ``start``: relative SDs to start from (e.g. a previous fit's ``theta`` when refitting many
    similar data sets); ``polish=False`` skips the final Nelder-Mead polish (the quasi-Newton
    optimum is then good to about 1e-6 in theta, plenty for a decision in a simulation).
    """
    n_theta = 2 if stats.two_level else 1
    x0 = np.ones(n_theta) if start is None else np.maximum(np.asarray(start, float), 1e-3)
    fun = lambda th: profiled_deviance(th, stats, reml)  # noqa: E731
    # the quasi-Newton stage works on tau = theta^2: in theta every point with a zero component
    # is stationary (the deviance depends on theta^2), which can stop a gradient method there
    fun_tau = lambda tau: profiled_deviance(np.sqrt(np.maximum(tau, 0.0)), stats, reml)  # noqa: E731
    if n_theta == 1:
        res = _fit_one_level(fun)
    else:
        # coarse-to-fine: a bounded quasi-Newton run, then a polish from its end point; the
        # deviance is cheap (no pass over rows), so tight tolerances cost little
        res = optimize.minimize(fun_tau, x0**2, method="L-BFGS-B", bounds=[(0.0, None)] * n_theta,
                                options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500})
        res.x = np.sqrt(np.maximum(res.x, 0.0))
    theta, n_eval, converged = res.x, res.nfev, bool(res.success)
    if polish:
        res2 = optimize.minimize(fun, res.x, method="Nelder-Mead",
                                 options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 2000})
        if res2.fun <= res.fun:
            theta = np.abs(res2.x)  # the deviance depends on theta^2 only
        n_eval += res2.nfev
        converged = converged or bool(res2.success)
    deviance, beta_c, chol, sigma2 = _solve(stats, np.square(theta), reml)
    p = stats.n_fe
    cov_c = sigma2 * linalg.cho_solve(chol, np.eye(p))
    beta, cov = _uncentre(stats, beta_c, cov_c)
    return NestedFit(theta=theta, beta=beta, cov_beta=cov, sigma2=sigma2, variances=sigma2 * theta**2,
                     deviance=float(deviance), reml=reml, converged=converged,
                     n_evaluations=int(n_eval))


def _fit_one_level(fun) -> optimize.OptimizeResult:
    """One variance ratio: Brent's bounded search on s = theta / (1 + theta) in [0, 1), which
    covers every theta >= 0, then the boundary theta = 0 if it is better."""
    to_theta = lambda s: s / (1.0 - s)  # noqa: E731
    res = optimize.minimize_scalar(lambda s: fun(np.array([to_theta(s)])), bounds=(0.0, 1.0 - 1e-9),
                                   method="bounded", options={"xatol": 1e-12, "maxiter": 500})
    theta, value = np.array([to_theta(res.x)]), float(res.fun)
    at_zero = fun(np.zeros(1))
    if at_zero <= value:
        theta, value = np.zeros(1), at_zero
    return optimize.OptimizeResult(x=theta, fun=value, nfev=res.nfev + 1, success=bool(res.success))


def variance_covariance(stats: NestedStats, fit: NestedFit) -> np.ndarray:
    """Covariance of the variance estimates (random intercepts..., residual): inverse observed information.

    Central second differences of the (RE)ML log-likelihood with beta profiled out, with relative
    steps; a component at its boundary (0) gets a one-sided step and may be NaN.
    """
    v = np.r_[fit.variances, fit.sigma2]
    k = v.size
    step = 1e-4 * np.maximum(v, 1e-8 * fit.sigma2)
    f = lambda x: -0.5 * full_deviance(x, stats, fit.reml)  # noqa: E731
    H = np.empty((k, k))
    for i in range(k):  # a loop over at most three parameters
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * step[i], np.eye(k)[j] * step[j]
            H[i, j] = H[j, i] = (f(v + ei + ej) - f(v + ei - ej) - f(v - ei + ej) + f(v - ei - ej)) / (4 * step[i] * step[j])
    try:
        return np.linalg.inv(-H)
    except np.linalg.LinAlgError:  # pragma: no cover - singular information at a boundary
        return np.full((k, k), np.nan)


def centring_matrix(stats: NestedStats) -> np.ndarray:
    """``A`` with ``beta = A beta_c`` (plus the outcome's shift on the intercept): the map from the
    coefficients of the centred columns to the caller's, an exact reparametrisation.

    >>> import numpy as np
    >>> stats = nested_stats(np.column_stack([np.ones(4), [1.0, 2, 3, 4]]), np.arange(4.0), np.array([0, 0, 1, 1]), None)
    >>> centring_matrix(stats).tolist()
    [[1.0, -2.5], [0.0, 1.0]]
    """
    p = stats.n_fe
    A = np.eye(p)
    ic = stats.intercept_col
    if ic is not None:
        A[ic, :] -= stats.shift[:p]
        A[ic, ic] = 1.0
    return A


def _uncentre(stats: NestedStats, beta_c: np.ndarray, cov_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map estimates for the centred columns back to the caller's columns (an exact reparametrisation)."""
    ic = stats.intercept_col
    if ic is None:
        return beta_c, cov_c
    A = centring_matrix(stats)
    beta = A @ beta_c
    beta[ic] += stats.shift[stats.n_fe]
    return beta, A @ cov_c @ A.T


def _intercept_column(X: np.ndarray) -> int | None:
    if X.shape[0] == 0:
        return None
    ones = np.flatnonzero(np.all(X == 1.0, axis=0))
    return int(ones[0]) if ones.size else None


def coefficient_test(stats: NestedStats, column: int, reml: bool = True, start: np.ndarray | None = None,
                     polish: bool = False) -> tuple[float, float, NestedFit]:
    """Estimate and standard error of one fixed effect (by column index), and the fit."""
    fit = fit_nested(stats, reml=reml, start=start, polish=polish)
    return float(fit.beta[column]), float(np.sqrt(fit.cov_beta[column, column])), fit
