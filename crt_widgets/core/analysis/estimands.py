"""Cluster-average and individual-average treatment effects (Kahan et al. 2023), on the difference and
ratio scales, by standardization, with cluster-robust intervals and the permutation test of each.

The two estimands weight the trial differently when outcomes depend on cluster size: the
individual-average effect counts every person once, the cluster-average effect every cluster once.
Each is estimated by independence estimating equations, the outcome regression of the analysis
(arm and covariates; linear, logistic or log-linear) weighted by 1 (individual-average) or by 1/n_i
(cluster-average), followed by standardization (g-computation): every person's mean is predicted with
the arm set to treated and to control, and averaged with the same weights,

    m_a = sum_ij w_ij mu(x_ij, arm = a) / sum_ij w_ij,

giving the difference m_1 - m_0 and, for binary and count outcomes, the ratio m_1 / m_0 (marginal risk
difference and risk ratio for a binary outcome; Kahan et al. 2023, Wang et al. 2022). Without
covariates m_a is the arm's mean of cluster means (cluster-average) or its pooled mean
(individual-average). Intervals: the cluster-robust sandwich of the stacked estimating equations
(regression and the two standardized means), each cluster's regression score corrected as the GEE's
(``se``: Mancl-DeRouen by default, see :mod:`crt_widgets.core.models.gee`), with t on K - p degrees
of freedom (the ratio's on the log scale); with ``se="kc"`` and no covariates the cluster-average
variance is exactly the unpooled two-sample variance s_1^2/k_1 + s_0^2/k_0 of the cluster means.

The permutation test of each estimand uses the matching cluster-level statistic over the same space
(the residuals of the covariate regression, as the main test): the cluster-average test compares
unweighted means of cluster-mean residuals (the main test's statistic), the individual-average test
size-weighted means.

>>> import numpy as np
>>> from crt_widgets.core.permutation.data import PreparedData
>>> cl = np.repeat(np.arange(4), [2, 2, 4, 4]); y = np.array([1.0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0])
>>> prep = PreparedData(y, np.ones((12, 1)), ["Intercept"], cl, np.array([2, 2, 4, 4]),
...                     np.array([1.0, 0, 1, 0])[cl], "binomial", 0)
>>> [(e.estimand, e.scale, round(e.estimate, 4)) for e in estimate_estimands(prep)[::2]]
[('cluster-average', 'risk difference', 0.375), ('individual-average', 'risk difference', 0.3333)]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from crt_widgets.core.models.gee import SE_LABELS, check_se, corrected_scores, fit_gee_arrays
from crt_widgets.core.models.residuals import fit_glm
from crt_widgets.core.permutation.data import PreparedData, p_values
from crt_widgets.core.permutation.space import PermutationSpace

__all__ = ["ESTIMANDS", "EstimandEstimate", "estimate_estimands", "weighted_scheme_statistics"]

ESTIMANDS = ("cluster-average", "individual-average")
_ZERO_MEAN = 1e-8  # a standardized mean below this is 0: the fit has no events in that arm (separation)
_SCALES = {"gaussian": (("mean difference", False),),
           "binomial": (("risk difference", False), ("risk ratio", True)),
           "poisson": (("mean difference", False), ("rate ratio", True))}


@dataclass(frozen=True)
class EstimandEstimate:
    """One estimand on one scale: the estimate (a difference or a ratio), its SE (of the difference, or
    of the log ratio), two-sided interval, Wald t p-value (two-sided) on ``df``, the standardized arm
    means, and the permutation p-value of the estimand's statistic (for the analysis' alternative)."""

    estimand: str
    scale: str
    estimate: float
    se: float
    conf_int: tuple[float, float]
    p_value: float
    df: float
    treated_mean: float
    control_mean: float
    permutation_p_value: float
    se_type: str
    note: str = ""

    @property
    def ratio(self) -> bool:
        return "ratio" in self.scale

    @property
    def method(self) -> str:
        scale = self.scale + (" (SE of the log ratio)" if self.ratio else "")
        return f"{self.estimand.capitalize()} {scale}, standardized, {SE_LABELS[self.se_type]}"

    def one_sided(self, alternative: str) -> float:
        """The Wald p-value for ``alternative`` (half the two-sided one in the effect's direction)."""
        if alternative == "two-sided":
            return self.p_value
        null = 1.0 if self.ratio else 0.0
        with_effect = (self.estimate > null) == (alternative == "greater")
        return self.p_value / 2 if with_effect else 1 - self.p_value / 2


def _mean(eta: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray]:
    """The mean and d mu / d eta for the canonical link."""
    if family == "gaussian":
        return eta, np.ones_like(eta)
    mu = special.expit(eta) if family == "binomial" else np.exp(np.minimum(eta, 300.0))
    return mu, (mu * (1 - mu) if family == "binomial" else mu)


def _standardized(prep: PreparedData, x: np.ndarray, weights: np.ndarray, se: str):
    """The standardized arm means (m_1, m_0) and, per correction, each cluster's influence on them (K x 2):
    (psi_i + G_a B^-1 u_i) / W, with psi_i = sum_j w_ij (mu_ij(a) - m_a), G_a = d/d beta sum w mu(a), u_i the
    corrected regression score and W = sum w (the stacked estimating equations' sandwich)."""
    fit = fit_gee_arrays(prep.y, x, prep.cluster_index, prep.family, "independence", weights=weights)
    k, total = len(prep.cluster_sizes), weights.sum()
    bread_inv = np.linalg.inv(fit.bread)
    means, own, gradients = np.empty(2), np.empty((k, 2)), np.empty((x.shape[1], 2))
    for column, arm in enumerate((1.0, 0.0)):
        x_arm = x.copy()
        x_arm[:, 1] = arm
        mu, slope = _mean(x_arm @ fit.beta, prep.family)
        means[column] = weights @ mu / total
        gradients[:, column] = (weights * slope) @ x_arm
        # cluster codes are 0..K-1, the order of the fit's per-cluster arrays
        own[:, column] = np.bincount(prep.cluster_index, weights=weights * (mu - means[column]), minlength=k)
    influence = {}
    for kind in (("md", "kc") if se == "avg" else (se,)):
        scores = corrected_scores(fit.cluster_information, fit.cluster_scores, kind)[0]
        influence[kind] = (own + scores @ bread_inv @ gradients) / total
    return means, influence


def weighted_scheme_statistics(space: PermutationSpace, cluster_values: np.ndarray,
                               cluster_weights: np.ndarray) -> np.ndarray:
    """For every scheme of the space: the weighted mean of ``cluster_values`` over its treated clusters
    minus over its control clusters (unit weights: :func:`~crt_widgets.core.permutation.data.scheme_statistics`).

    >>> from crt_widgets.core.spaces.schemes import enumerate_schemes
    >>> from crt_widgets.core.permutation.space import resolve_space
    >>> space = resolve_space(enumerate_schemes(3, 1), cluster_ids=np.arange(3), observed=[1, 0, 0])
    >>> weighted_scheme_statistics(space, np.array([3.0, 0.0, 1.0]), np.array([1.0, 1.0, 3.0])).tolist()
    [2.25, -1.5, -0.5]
    """
    stacked = np.column_stack([cluster_weights * cluster_values, cluster_weights])
    treated = space.schemes.treated_sums(stacked)
    control = (stacked.sum(axis=0) - treated if space.control is None
               else space.control.treated_sums(stacked))
    return treated[:, 0] / treated[:, 1] - control[:, 0] / control[:, 1]


def _permutation_p_values(full: PreparedData, space: PermutationSpace, alternative: str) -> dict[str, float]:
    """The permutation p-value of each estimand's cluster-level statistic on the covariate-regression residuals."""
    resid = full.y - fit_glm(full.x, full.y, full.family).mu
    means = np.bincount(full.cluster_index, weights=resid, minlength=len(full.cluster_sizes)) / full.cluster_sizes
    out = {}
    for estimand, weights in (("cluster-average", np.ones(len(means))), ("individual-average", full.cluster_sizes)):
        u = weighted_scheme_statistics(space, means, np.asarray(weights, dtype=float))
        out[estimand] = p_values(u, float(u[space.observed]))[alternative]
    return out


def estimate_estimands(prep: PreparedData, x: np.ndarray | None = None, space: PermutationSpace | None = None,
                       full: PreparedData | None = None, *, alpha: float = 0.05, se: str = "md",
                       alternative: str = "two-sided") -> list[EstimandEstimate]:
    """Both estimands on every scale of the outcome's family (difference; ratio for binary and count).

    ``x``: the regression's design, intercept first and the arm second (default: intercept and arm);
    ``space`` and ``full`` (the data aligned with the whole space, when ``prep`` keeps the compared
    clusters only): the permutation p-values, NaN without a space.
    """
    se = check_se(se)
    x = np.column_stack([np.ones(len(prep.y)), prep.treated]) if x is None else x
    k, p = len(prep.cluster_sizes), x.shape[1]
    df = k - p
    permutation = (_permutation_p_values(full if full is not None else prep, space, alternative)
                   if space is not None else {})
    sizes = prep.cluster_sizes[prep.cluster_index].astype(float)
    out = []
    for estimand, weights in (("cluster-average", 1.0 / sizes), ("individual-average", np.ones(len(sizes)))):
        (treated, control), influence = _standardized(prep, x, weights, se)
        for scale, ratio in _SCALES[prep.family]:
            if ratio and min(treated, control) < _ZERO_MEAN:  # no events in an arm: the ratio is 0 or infinite
                zero = "control" if control < _ZERO_MEAN else "treated"
                out.append(EstimandEstimate(estimand, scale, np.inf if zero == "control" else 0.0, np.nan,
                                            (np.nan, np.nan), np.nan, df, float(treated), float(control),
                                            permutation.get(estimand, np.nan), se,
                                            f"the {zero} arm's standardized mean is 0 (no events): no interval"))
                continue
            if ratio:
                estimate = treated / control
                contrast = np.array([1 / treated, -1 / control])       # d log(m1/m0) / d(m1, m0)
            else:
                estimate, contrast = treated - control, np.array([1.0, -1.0])
            variance = np.mean([np.sum((a @ contrast) ** 2) for a in influence.values()])
            sd = float(np.sqrt(variance))
            q = stats.t.ppf(1 - alpha / 2, df) if df > 0 else np.nan
            centre = np.log(estimate) if ratio else estimate
            low, high = centre - q * sd, centre + q * sd
            interval = (float(np.exp(low)), float(np.exp(high))) if ratio else (float(low), float(high))
            p_value = float(2 * stats.t.sf(abs(centre / sd), df)) if df > 0 else np.nan
            out.append(EstimandEstimate(estimand, scale, float(estimate), sd, interval, p_value, df, float(treated),
                                        float(control), permutation.get(estimand, np.nan), se))
    return out
