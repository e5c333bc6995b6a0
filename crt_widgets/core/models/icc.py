"""The intracluster correlation coefficient (ICC) from individual-level data, with a confidence interval.

``icc(data, outcome, cluster, method)``:

* ``"anova"`` (default): the one-way analysis-of-variance estimator for unequal cluster sizes (Donner
  1986), (MSB - MSW) / (MSB + (m0 - 1) MSW) with m0 = (N - sum n_i^2 / N) / (k - 1), and Searle's
  (1971) F-based interval, exact for equal sizes and the usual approximation (with m0) otherwise.
  It is not truncated at 0: a negative estimate says the clusters vary less than chance would make them.
* ``"reml"``: sigma_b^2 / (sigma_b^2 + sigma^2) from the random-intercept linear mixed model fitted by
  REML (:mod:`crt_widgets.core.models.mixed_fast`, lme4's criterion), with the profile-likelihood
  interval of the relative SD theta = sigma_b / sigma (the ICC is theta^2 / (1 + theta^2), so the
  interval carries over), from 0 when the REML deviance at theta = 0 is within the chi-square cut.
* ``"latent"`` (binary 0/1 outcomes): the latent-scale ICC sigma_b^2 / (sigma_b^2 + pi^2 / 3) of the
  random-intercept logistic model fitted by maximum likelihood (adaptive quadrature, 10 nodes, as
  lme4's ``glmer(..., nAGQ = 10)``), with the profile-likelihood interval of sigma_b.

>>> import numpy as np, pandas as pd
>>> data = pd.DataFrame({"cl": [1, 1, 1, 2, 2, 2, 3, 3, 3], "y": [1.0, 2, 3, 4, 5, 6, 2, 3, 4]})
>>> result = icc(data, "y", "cl")
>>> round(result.estimate, 4)   # MSB = 7, MSW = 1, m0 = 3: (7 - 1) / (7 + 2)
0.6667
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = ["icc", "ICCResult", "anova_icc", "latent_icc", "METHODS"]

METHODS = ("anova", "reml", "latent")
_LOGISTIC_VARIANCE = np.pi**2 / 3  # the variance of the standard logistic distribution (the latent scale)


def latent_icc(cluster_variance: float, family: str, mean_outcome: float) -> float:
    """The ICC of a random-intercept GLMM on the latent scale: the cluster variance over itself plus the
    distribution's variance on the link scale, pi^2/3 for the logit (binary), and for the log link the
    log-normal approximation ln(1 + 1/lambda) with lambda the mean count (Nakagawa, Johnson and
    Schielzeth 2017).

    >>> round(latent_icc(1.0, "binomial", 0.3), 4)
    0.2331
    """
    if family == "binomial":
        return cluster_variance / (cluster_variance + _LOGISTIC_VARIANCE)
    if family == "poisson":
        return cluster_variance / (cluster_variance + np.log1p(1 / mean_outcome)) if mean_outcome > 0 else float("nan")
    raise ValueError(f"family: latent-scale ICC is for binomial or poisson, got {family!r}")


@dataclass(frozen=True, repr=False)
class ICCResult:
    """An ICC estimate with its (1 - alpha) interval; ``details`` holds the pieces (mean squares and m0, or
    the variance components), ``notes`` anything the reader should know."""

    estimate: float
    ci_low: float
    ci_high: float
    method: str
    conf_level: float
    n_clusters: int
    nobs: int
    n_dropped: int = 0
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def conf_int(self) -> tuple[float, float]:
        return self.ci_low, self.ci_high

    def __repr__(self) -> str:
        return (f"ICCResult({self.method}: {self.estimate:.4g}, {self.conf_level:.0%} CI {self.ci_low:.4g} to "
                f"{self.ci_high:.4g}; {self.n_clusters} clusters, {self.nobs} individuals)")


def anova_icc(y: np.ndarray, clusters: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float, dict]:
    """Donner's (1986) ANOVA estimator and Searle's F interval from arrays (cluster codes 0..k-1).

    >>> y = np.array([1.0, 2, 3, 4, 5, 6, 2, 3, 4]); g = np.repeat([0, 1, 2], 3)
    >>> est, low, high, parts = anova_icc(y, g)
    >>> round(est, 4), parts["msb"], parts["msw"], parts["m0"]
    (0.6667, 7.0, 1.0, 3.0)
    """
    n = np.bincount(clusters).astype(float)
    k, total = len(n), n.sum()
    means = np.bincount(clusters, weights=y) / n
    grand = y.mean()
    msb = float(n @ (means - grand) ** 2 / (k - 1))
    msw = float(np.sum((y - means[clusters]) ** 2) / (total - k))
    m0 = float((total - (n @ n) / total) / (k - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = (msb - msw) / (msb + (m0 - 1) * msw)
        f = msb / msw
        f_low = f / stats.f.ppf(1 - alpha / 2, k - 1, total - k)
        f_high = f / stats.f.ppf(alpha / 2, k - 1, total - k)
        low = (f_low - 1) / (f_low + m0 - 1) if np.isfinite(f_low) else 1.0
        high = (f_high - 1) / (f_high + m0 - 1) if np.isfinite(f_high) else 1.0
    return float(estimate), float(low), float(high), {"msb": msb, "msw": msw, "m0": m0, "F": float(f)}


def _profile_limits(excess, estimate: float, upper_cap: float) -> tuple[float, float]:
    """Where ``excess`` (deviance above its minimum, less the chi-square cut) crosses 0 each side of
    ``estimate`` (>= 0): 0 below when it never does, ``inf`` above when it does not by ``upper_cap``."""
    low = 0.0
    if estimate > 0 and excess(0.0) > 0:
        low = optimize.brentq(excess, 0.0, estimate, xtol=1e-12, rtol=1e-12)
    step, inner = max(estimate, 0.05), estimate
    while True:
        outer = inner + step
        if outer > upper_cap:
            return low, np.inf
        if excess(outer) > 0:
            return low, optimize.brentq(excess, inner, outer, xtol=1e-12, rtol=1e-12)
        inner, step = outer, step * 2


def _reml_icc(y: np.ndarray, clusters: np.ndarray, alpha: float) -> tuple[float, float, float, dict]:
    from crt_widgets.core.models import mixed_fast

    summary = mixed_fast.nested_stats(np.ones((len(y), 1)), y, clusters, None)
    fit = mixed_fast.fit_nested(summary, reml=True)
    theta = float(fit.theta[0])
    cut = stats.chi2.ppf(1 - alpha, 1)
    excess = lambda t: mixed_fast.profiled_deviance(np.array([t]), summary, True) - fit.deviance - cut  # noqa: E731
    low, high = _profile_limits(excess, theta, upper_cap=1e6)
    to_icc = lambda t: t**2 / (1 + t**2)  # noqa: E731
    details = {"cluster_variance": float(fit.variances[0]), "residual_variance": float(fit.sigma2),
               "theta": theta, "theta_ci": (low, high), "reml_deviance": float(fit.deviance)}
    return to_icc(theta), to_icc(low), 1.0 if np.isinf(high) else to_icc(high), details


def _latent_icc_profile(y: np.ndarray, clusters: np.ndarray, alpha: float) -> tuple[float, float, float, dict]:
    from crt_widgets.core.models.glmm import fit_random_intercept_glmm, profile_loglik

    x = np.ones((len(y), 1))
    fit = fit_random_intercept_glmm(y, x, clusters, "binomial", n_quad=10)
    best, sigma = fit.loglik, fit.sigma
    cut = stats.chi2.ppf(1 - alpha, 1)
    start = fit.coef

    def excess(s: float) -> float:
        return 2 * (best - profile_loglik(y, x, clusters, "binomial", s, 10, start)[0]) - cut

    low, high = _profile_limits(excess, sigma, upper_cap=50.0)  # sigma 50 on the logit scale: an ICC of 0.9987
    to_icc = lambda s: latent_icc(s**2, "binomial", 0.0)  # noqa: E731
    details = {"cluster_sd": sigma, "sigma_ci": (low, high), "loglik": best, "intercept": float(fit.coef[0])}
    return to_icc(sigma), to_icc(low), 1.0 if np.isinf(high) else to_icc(high), details


def icc(data: pd.DataFrame, outcome: str, cluster: str, method: str = "anova", alpha: float = 0.05) -> ICCResult:
    """The intracluster correlation of ``outcome`` in ``data`` (one row per person), with its interval.

    ``method``: ``"anova"`` (Donner's estimator, Searle's interval), ``"reml"`` (random-intercept LMM,
    profile interval) or ``"latent"`` (binary outcome: random-intercept logistic GLMM, latent scale, profile
    interval). Rows with a missing outcome or cluster are dropped (``n_dropped``).

    >>> from crt_widgets.datasets import load_dickinson_outcome
    >>> result = icc(load_dickinson_outcome(), "outcome", "county")
    >>> round(result.estimate, 4), round(result.ci_low, 4), round(result.ci_high, 4)
    (0.0164, 0.0075, 0.0427)
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    for argument, column in (("outcome", outcome), ("cluster", cluster)):
        if column not in data.columns:
            raise ValueError(f"{argument}: {column!r} is not a column of data")
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    column = data[outcome]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise ValueError(f"outcome: {outcome!r} must be numeric, got {column.dtype}")
    complete = column.notna() & data[cluster].notna()
    y = column[complete].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise ValueError(f"outcome: {outcome!r} has infinite values")
    codes, labels = pd.factorize(data.loc[complete, cluster], sort=True)
    k, n = len(labels), len(y)
    if k < 2:
        raise ValueError(f"cluster: {cluster!r} has {'one cluster' if k == 1 else 'no clusters'} "
                         f"(after dropping missing values); an ICC needs at least two")
    if n - k < 1:
        raise ValueError(f"cluster: every cluster of {cluster!r} has one person; an ICC needs a cluster of two or more")
    if np.ptp(y) == 0:
        raise ValueError(f"outcome: {outcome!r} is {y[0]:g} for everyone; the ICC of a constant is undefined")
    if method == "latent" and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"method: 'latent' is for a binary outcome (0/1); {outcome!r} has other values")
    compute = {"anova": anova_icc, "reml": _reml_icc, "latent": _latent_icc_profile}[method]
    estimate, low, high, details = compute(y, codes, alpha)
    notes = []
    if method == "anova" and estimate < 0:
        notes.append("the ANOVA estimate is negative (between-cluster variation below chance); it is not truncated")
    return ICCResult(estimate, low, high, method, 1 - alpha, k, n, int((~complete).sum()), details, notes)
