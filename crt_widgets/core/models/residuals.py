"""Step 1 of the clustered permutation test: an outcome regression that ignores clustering.

Linear for continuous outcomes, logistic for binary and Poisson (log link) for counts, fitted by
iteratively reweighted least squares with an optional offset (the hypothesised effect when a
confidence interval is found by inverting the test). Residuals are on the response scale.

>>> import numpy as np
>>> x = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
>>> fit = fit_glm(x, np.array([0.0, 1.0, 1.0, 3.0]), "gaussian")
>>> np.round(fit.coef, 3).tolist()
[-0.1, 0.9]
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from crt_widgets.core.covariates import categorical_levels, finite_values

FAMILIES = ("gaussian", "binomial", "poisson")
# cvcrand's outcome types, and ours
FAMILY_ALIASES = {"continuous": "gaussian", "binary": "binomial", "count": "poisson",
                  "gaussian": "gaussian", "binomial": "binomial", "poisson": "poisson"}


def check_family(family: str) -> str:
    """The canonical family name for ``family`` (also accepts cvcrand's outcome types)."""
    try:
        return FAMILY_ALIASES[str(family).lower()]
    except KeyError:
        raise ValueError(f"family: must be one of gaussian/continuous, binomial/binary, poisson/count; "
                         f"got {family!r}") from None


def check_outcome(y: np.ndarray, family: str, name: str = "outcome") -> np.ndarray:
    """Validate outcome values for the family; returns them as floats."""
    if not (pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y)):
        raise ValueError(f"{name}: must be numeric, got values like {pd.Series(y).iloc[:3].tolist()}")
    y = np.asarray(y, dtype=float)
    if not np.isfinite(y).all():
        raise ValueError(f"{name}: contains infinite values")
    if family == "binomial" and not np.isin(y, (0.0, 1.0)).all():
        bad = np.unique(y[~np.isin(y, (0.0, 1.0))])[:5]
        raise ValueError(f"{name}: a binary outcome must be 0 or 1; found {bad.tolist()}")
    if family == "poisson" and ((y < 0).any() or (y != np.round(y)).any()):
        bad = np.unique(y[(y < 0) | (y != np.round(y))])[:5]
        raise ValueError(f"{name}: a count outcome must be a non-negative whole number; found {bad.tolist()}")
    return y


def constant_outcome_note(y: np.ndarray, family: str) -> str | None:
    """Why no model can be fitted when the outcome does not vary (all 0, all 1, or one value), or None
    when it varies.

    >>> constant_outcome_note(np.zeros(5), "binomial")
    'the outcome is 0 for everyone (no events): a model cannot be fitted'
    """
    y = np.asarray(y, dtype=float)
    if len(y) == 0 or np.ptp(y) > 0:
        return None
    if y[0] == 0 and family in ("binomial", "poisson"):
        what = "no events"
    elif y[0] == 1 and family == "binomial":
        what = "an event for everyone"
    else:
        what = "constant"
    return f"the outcome is {y[0]:g} for everyone ({what}): a model cannot be fitted"


def model_matrix(data: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Intercept plus covariates; categorical ones dummy-coded with the design's reference-level rule."""
    columns = [np.ones(len(data))]
    names = ["Intercept"]
    for name in covariates:
        col = data[name]
        if name in categorical:
            for level in categorical_levels(col)[1:]:
                columns.append((col == level).to_numpy(dtype=float))
                names.append(f"{name}[T.{level}]")
        else:
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                raise ValueError(f"covariate {name!r} is not numeric ({col.dtype}); declare it categorical")
            columns.append(finite_values(col, name))
            names.append(name)
    return np.column_stack(columns), names


@dataclass(frozen=True)
class GLMFit:
    """Coefficients, fitted means and convergence of a GLM fit."""

    coef: np.ndarray
    mu: np.ndarray
    iterations: int
    converged: bool


def _solve(xtwx: np.ndarray, xtwz: np.ndarray) -> np.ndarray:
    # least squares on the normal equations copes with collinear covariates (cluster-level dummies)
    return np.linalg.lstsq(xtwx, xtwz, rcond=None)[0]


def _mean(eta: np.ndarray, family: str) -> np.ndarray:
    # expit never overflows; the log link is capped where exp would (e^300 is already absurd for a count)
    return special.expit(eta) if family == "binomial" else np.exp(np.minimum(eta, 300.0))


def _negative_loglik(y: np.ndarray, eta: np.ndarray, family: str) -> float:
    """Minus the log-likelihood up to a constant (what IRLS lowers)."""
    if family == "binomial":
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))
    return float(np.sum(np.exp(np.minimum(eta, 300.0)) - y * eta))


def _halve_until_downhill(x, y, offset, family, coef, eta, proposal, eta_new):
    """Step halving, as R's glm.fit: a big Newton step that does not lower minus the log-likelihood
    is halved (without it IRLS can run away from a warm start, e.g. when one arm is all events).
    Small steps are not checked: near the optimum Newton's step is safe and the check costs a pass."""
    objective = _negative_loglik(y, eta, family)
    for _ in range(50):
        value = _negative_loglik(y, eta_new, family)
        if np.isfinite(value) and value <= objective + 1e-12 * abs(objective):
            break
        proposal = (coef + proposal) / 2
        eta_new = x @ proposal + offset
    return proposal, eta_new


def fit_glm(x: np.ndarray, y: np.ndarray, family: str, offset: np.ndarray | float = 0.0,
            start: np.ndarray | None = None, tol: float = 1e-10, max_iter: int = 100) -> GLMFit:
    """Fit a GLM with canonical link (identity, logit, log) by IRLS, with an offset."""
    offset = np.broadcast_to(np.asarray(offset, dtype=float), y.shape)
    if family == "gaussian":
        coef = _solve(x.T @ x, x.T @ (y - offset))
        return GLMFit(coef, x @ coef + offset, 1, True)
    if start is None:
        ybar = np.clip(y.mean(), 1e-6, 1 - 1e-6) if family == "binomial" else max(y.mean(), 1e-6)
        eta0 = np.log(ybar / (1 - ybar)) if family == "binomial" else np.log(ybar)
        coef = np.zeros(x.shape[1])  # start from the intercept-only fit (column 0 is the intercept)
        coef[0] = eta0 - float(np.mean(offset))
    else:
        coef = np.asarray(start, dtype=float).copy()
    eta = x @ coef + offset
    mu_old = None
    for it in range(1, max_iter + 1):
        mu = _mean(eta, family)
        if mu_old is not None and it > 3 and np.max(np.abs(mu - mu_old)) < tol:
            break  # the fitted means have settled (coefficients may drift for ever under separation)
        mu_old = mu
        w = np.maximum(mu * (1 - mu) if family == "binomial" else mu, 1e-12)
        z = eta - offset + (y - mu) / w
        xw = x * w[:, None]
        proposal = _solve(xw.T @ x, xw.T @ z)
        eta_new = x @ proposal + offset
        if not np.all(np.isfinite(eta_new)) or np.max(np.abs(eta_new - eta)) > 1.0:
            proposal, eta_new = _halve_until_downhill(x, y, offset, family, coef, eta, proposal, eta_new)
        step = np.max(np.abs(proposal - coef))
        coef, eta = proposal, eta_new
        if step < tol * (1 + np.max(np.abs(coef))):
            break
    mu = _mean(x @ coef + offset, family)
    converged = it < max_iter
    if not converged:
        warnings.warn(f"the {family} outcome regression did not converge in {max_iter} iterations",
                      UserWarning, stacklevel=2)
    return GLMFit(coef, mu, it, converged)


@dataclass(frozen=True, eq=False)
class OffsetFit:
    """One fit of :class:`OffsetRegression`: coefficients, cluster means of the response residuals, and
    their derivatives with respect to delta."""

    delta: float
    coef: np.ndarray
    coef_slope: np.ndarray          # d coef / d delta
    residual_means: np.ndarray      # per cluster: mean of y - mu(delta)
    residual_slopes: np.ndarray     # per cluster: d residual mean / d delta
    iterations: int
    converged: bool


class OffsetRegression:
    """The outcome regression refitted with the offset ``delta * treated`` for many values of delta.

    What inverting the permutation test needs (each trial effect delta is one refit). Three savings
    over independent fits, none of which changes the estimates beyond the convergence tolerance:

    * each fit starts from the nearest previous one moved along its derivative,
      ``d coef / d delta = -(X'WX)^{-1} X'W t`` (implicit differentiation of the score equations), so
      Newton's method starts within O(step^2) of the optimum;
    * when the covariates and the arm are constant within clusters (cluster-level covariates, as in
      cvcrand's examples), the likelihood depends on the data only through each cluster's size and
      outcome total: the fit runs on the clusters (binomial with n_j trials, Poisson with exposure n_j);
    * the design is held column by column and every product with it is numpy's own single-threaded
      loop (``einsum``): the products are thin, and BLAS threads waiting for a core of a shared machine
      made each of them several times slower; with few columns ``X'WX`` is one such product with the
      precomputed column products.

    The derivative of each cluster's mean residual, ``-mean_j(w (t + x . d coef / d delta))``, comes with
    every fit: the interval's root finding uses it to predict where the p-value steps.

    >>> rng = np.random.default_rng(0)
    >>> cluster = np.repeat(np.arange(6), 50)
    >>> treated = (cluster % 2).astype(float)
    >>> x = np.column_stack([np.ones(300), rng.normal(size=300)])
    >>> y = (rng.random(300) < 0.4).astype(float)
    >>> fit = OffsetRegression(x, y, "binomial", treated, cluster, 6).fit(0.3)
    >>> old = fit_glm(x, y, "binomial", offset=0.3 * treated)
    >>> bool(np.allclose(fit.coef, old.coef, atol=1e-9))
    True
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, family: str, treated: np.ndarray, cluster_index: np.ndarray,
                 n_clusters: int, tol: float = 1e-10, max_iter: int = 100) -> None:
        if family not in ("binomial", "poisson"):
            raise ValueError(f"family: OffsetRegression fits binomial or poisson, got {family!r}")
        self.family, self.tol, self.max_iter = family, tol, max_iter
        self.n_clusters = n_clusters
        sizes = np.bincount(cluster_index, minlength=n_clusters).astype(float)
        first = np.full(n_clusters, -1)
        first[cluster_index[::-1]] = np.arange(len(cluster_index))[::-1]
        same = lambda rows: (np.array_equal(x[rows], x[first][cluster_index[rows]])
                             and np.array_equal(treated[rows], treated[first][cluster_index[rows]]))
        # a few rows first: individual-level covariates usually show at once, without a pass over all
        self.cluster_level = bool((first >= 0).all() and same(slice(0, 1000)) and same(slice(None)))
        if self.cluster_level:
            rows, self._t = x[first], treated[first]
            self._y = np.bincount(cluster_index, weights=y, minlength=n_clusters) / sizes
            self._weights, self._index = sizes, None
        else:
            rows, self._y, self._t, self._weights, self._index = x, y, treated, None, cluster_index
        self._xt = np.ascontiguousarray(rows.T)  # (p, n): one contiguous row per column of the design
        self._sizes = sizes
        p = x.shape[1]
        # X'WX as one product with the column products (rows of the upper triangle), when that is cheaper
        self._pairs = np.triu_indices(p) if p <= 5 else None
        self._products = None
        if self._pairs is not None:
            self._products = np.empty((len(self._pairs[0]), self._xt.shape[1]))
            for row, (i, j) in enumerate(zip(*self._pairs)):
                np.multiply(self._xt[i], self._xt[j], out=self._products[row])
        self._fits: list[OffsetFit] = []

    # -- pieces of one Newton step -------------------------------------------------------------------
    def _mean(self, eta: np.ndarray) -> np.ndarray:
        if self.family == "poisson":
            return _mean(eta, self.family)
        with np.errstate(over="ignore"):  # exp(-eta) = inf gives mu = 0, as it should
            out = np.exp(-eta)
        out += 1.0
        return np.reciprocal(out, out=out)

    def _linear(self, coef: np.ndarray) -> np.ndarray:
        return np.einsum("kn,k->n", self._xt, coef)

    def _information(self, w: np.ndarray) -> np.ndarray:
        """X'WX for IRLS weights w (times the cluster sizes on the cluster level)."""
        ww = w if self._weights is None else w * self._weights
        p = self._xt.shape[0]
        if self._products is None:
            return np.einsum("kn,jn,n->kj", self._xt, self._xt, ww)
        upper = np.einsum("kn,n->k", self._products, ww)
        out = np.empty((p, p))
        out[self._pairs] = upper
        out[self._pairs[1], self._pairs[0]] = upper
        return out

    def _loglik_terms(self, eta: np.ndarray) -> float:
        cumulant = np.logaddexp(0.0, eta) if self.family == "binomial" else np.exp(np.minimum(eta, 300.0))
        terms = cumulant - self._y * eta
        return float(np.sum(terms if self._weights is None else terms * self._weights))

    def _gradient(self, mu: np.ndarray) -> np.ndarray:
        r = self._y - mu
        return np.einsum("kn,n->k", self._xt, r if self._weights is None else r * self._weights)

    def _start(self, delta: float, offset: np.ndarray) -> np.ndarray:
        if self._fits:
            near = min(self._fits, key=lambda f: abs(f.delta - delta))
            if near.converged:
                return near.coef + (delta - near.delta) * near.coef_slope
        # as fit_glm: the intercept-only fit, column 0 being the intercept
        ybar = float(np.average(self._y, weights=self._weights))
        ybar = np.clip(ybar, 1e-6, 1 - 1e-6) if self.family == "binomial" else max(ybar, 1e-6)
        coef = np.zeros(self._xt.shape[0])
        coef[0] = (np.log(ybar / (1 - ybar)) if self.family == "binomial" else np.log(ybar)) \
            - float(np.average(offset, weights=self._weights))
        return coef

    # -- the fit -------------------------------------------------------------------------------------------
    def fit(self, delta: float) -> OffsetFit:
        """The fit with offset ``delta * treated`` (remembered: the same delta is not fitted twice)."""
        delta = float(delta)
        for f in self._fits:
            if f.delta == delta:
                return f
        offset = delta * self._t
        coef = self._start(delta, offset)
        eta = self._linear(coef) + offset
        mu_old, previous_step = None, np.inf
        for it in range(1, self.max_iter + 1):
            mu = self._mean(eta)
            if mu_old is not None and it > 3 and np.max(np.abs(mu - mu_old)) < self.tol:
                break  # the fitted means have settled (coefficients may drift for ever under separation)
            mu_old = mu
            w = np.maximum(mu * (1 - mu) if self.family == "binomial" else mu, 1e-12)
            proposal = coef + _solve(self._information(w), self._gradient(mu))
            eta_new = self._linear(proposal) + offset
            halved = not np.all(np.isfinite(eta_new)) or np.max(np.abs(eta_new - eta)) > 1.0
            if halved:
                proposal, eta_new = self._halve(coef, eta, proposal, eta_new, offset)
            step = np.max(np.abs(proposal - coef))
            coef, eta = proposal, eta_new
            limit = self.tol * (1 + np.max(np.abs(coef)))
            # Newton's steps shrink quadratically near the optimum: when the next one, step^3 /
            # previous^2, would already be a thousandth of the tolerance, this fit is as converged as after it
            if step < limit or (not halved and step < 1e-4 and step ** 3 < 1e-3 * limit * previous_step ** 2):
                break
            previous_step = step
        converged = it < self.max_iter
        if not converged:
            warnings.warn(f"the {self.family} outcome regression did not converge in {self.max_iter} iterations",
                          UserWarning, stacklevel=2)
        mu = self._mean(eta)
        w = np.maximum(mu * (1 - mu) if self.family == "binomial" else mu, 1e-12)
        ww = w if self._weights is None else w * self._weights
        coef_slope = -_solve(self._information(w), np.einsum("kn,n->k", self._xt, ww * self._t))
        dmu = w * (self._t + self._linear(coef_slope))
        fit = OffsetFit(delta, coef, coef_slope, self._cluster_means(self._y - mu), -self._cluster_means(dmu),
                        it, converged)
        self._fits = (self._fits + [fit])[-8:]
        return fit

    def _cluster_means(self, values: np.ndarray) -> np.ndarray:
        if self._index is None:
            return values
        return np.bincount(self._index, weights=values, minlength=self.n_clusters) / self._sizes

    def _halve(self, coef, eta, proposal, eta_new, offset):
        """Step halving as R's glm.fit (see :func:`_halve_until_downhill`)."""
        objective = self._loglik_terms(eta)
        for _ in range(50):
            value = self._loglik_terms(eta_new)
            if np.isfinite(value) and value <= objective + 1e-12 * abs(objective):
                break
            proposal = (coef + proposal) / 2
            eta_new = self._linear(proposal) + offset
        return proposal, eta_new
