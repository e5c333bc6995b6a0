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
