"""Analytic power and sample size for a two-arm cluster randomized trial (the instant first answer).

The variance of the difference in arm means is inflated by the design effect
``1 + ((cv^2 + 1) m - 1) ICC`` (Donner and Klar 2000 for equal cluster sizes; Eldridge, Ashby and
Kerry 2006 for mean size ``m`` with coefficient of variation ``cv``), and the test is a t test on
``2 k - 2`` degrees of freedom (``k`` clusters per arm), i.e. the power of a two-sample t test on
cluster means, computed from the noncentral t distribution (both tails, like R's
``power.t.test(strict = TRUE)``). Binary outcomes use the variance ``p (1 - p)`` of each arm.

>>> result = crt_power(0.3, icc=0.05, cluster_size=20, clusters_per_arm=10)
>>> round(result.power, 4), round(result.design_effect, 2)
(0.5292, 1.95)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

OUTCOMES = ("continuous", "binary")


@dataclass(frozen=True)
class AnalyticPower:
    """Power of a two-arm CRT from the design-effect formula.

    ``effect`` is the difference in means (continuous) or proportions (binary: treatment minus
    control); ``se`` its standard error; ``ncp`` the noncentrality ``effect / se``; ``df`` the
    t degrees of freedom; ``effective_n`` the total number of individuals divided by the design
    effect.
    """

    power: float
    effect: float
    outcome: str
    clusters_per_arm: int
    cluster_size: float
    icc: float
    cv: float
    design_effect: float
    se: float
    ncp: float
    df: int
    alpha: float
    sides: int
    effective_n: float
    clusters_control: int | None = None    # the control arm's clusters (equal to clusters_per_arm unless given)

    def __repr__(self) -> str:
        return (f"AnalyticPower(power={self.power:.4f}, {self.outcome}, effect={self.effect:g}, "
                f"{self.clusters_per_arm} clusters/arm of mean size {self.cluster_size:g} (cv {self.cv:g}), "
                f"ICC={self.icc:g}, design effect={self.design_effect:.3f}, df={self.df}, alpha={self.alpha:g})")


def design_effect(cluster_size: float, icc: float, cv: float = 0.0) -> float:
    """``1 + ((cv^2 + 1) m - 1) ICC``: variance inflation of cluster sampling (Eldridge et al. 2006).

    >>> round(design_effect(10, 0.3), 12)
    3.7
    """
    _check_design(cluster_size=cluster_size, icc=icc, cv=cv)
    return float(1.0 + ((cv**2 + 1.0) * cluster_size - 1.0) * icc)


def crt_power(
    effect: float,
    *,
    icc: float,
    cluster_size: float,
    clusters_per_arm: int,
    sd: float = 1.0,
    p_control: float | None = None,
    outcome: str = "continuous",
    cv: float = 0.0,
    alpha: float = 0.05,
    sides: int = 2,
    clusters_control: int | None = None,
) -> AnalyticPower:
    """Power of a two-arm CRT with ``clusters_per_arm`` clusters of mean size ``cluster_size``.

    Continuous outcome: ``effect`` is the mean difference, ``sd`` the total SD of an individual
    outcome. Binary: pass ``outcome="binary"`` and ``p_control``; ``effect`` is
    ``p_treatment - p_control``. Unequal arms: ``clusters_per_arm`` is the treatment arm and
    ``clusters_control`` the control arm (the t test then has ``k_t + k_c - 2`` df).

    >>> round(crt_power(0.3, icc=0.05, cluster_size=20, clusters_per_arm=8, clusters_control=12).power, 4)
    0.5129

    >>> round(crt_power(0.1, outcome="binary", p_control=0.1, icc=0.05, cluster_size=50,
    ...                 clusters_per_arm=15).power, 3)
    0.812
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    _check_real(effect, "effect")
    _check_real(sd, "sd")
    _check_real(clusters_per_arm, "clusters_per_arm")
    if int(clusters_per_arm) != clusters_per_arm or clusters_per_arm < 2:
        raise ValueError(f"clusters_per_arm must be an integer of at least 2, got {clusters_per_arm}")
    if sides not in (1, 2):
        raise ValueError(f"sides must be 1 or 2, got {sides}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    kc = clusters_per_arm if clusters_control is None else clusters_control
    if int(kc) != kc or kc < 1 or clusters_per_arm + kc < 4:
        raise ValueError(f"clusters_control must be a whole number of at least 1, with at least 4 clusters "
                         f"in all, got {clusters_control}")
    deff = design_effect(cluster_size, icc, cv)
    k, kc = int(clusters_per_arm), int(kc)
    if outcome == "continuous":
        if sd <= 0:
            raise ValueError(f"sd must be positive, got {sd}")
        var_t = var_c = sd**2
    else:
        if p_control is None or not 0.0 < p_control < 1.0:
            raise ValueError(f"p_control must be in (0, 1) for a binary outcome, got {p_control}")
        p_treat = p_control + effect
        if not 0.0 < p_treat < 1.0:
            raise ValueError(f"p_control + effect must be in (0, 1), got {p_treat}")
        var_c, var_t = p_control * (1 - p_control), p_treat * (1 - p_treat)
    se = math.sqrt(deff / cluster_size * (var_t / k + var_c / kc))
    ncp = effect / se
    df = k + kc - 2
    power = _t_power(ncp, df, alpha, sides)
    return AnalyticPower(power=power, effect=float(effect), outcome=outcome, clusters_per_arm=k,
                         cluster_size=float(cluster_size), icc=float(icc), cv=float(cv), design_effect=deff,
                         se=se, ncp=ncp, df=df, alpha=float(alpha), sides=sides,
                         effective_n=(k + kc) * cluster_size / deff, clusters_control=kc)


def _check_real(value, name: str) -> None:
    """A finite real number, or a ValueError naming the argument (not numpy's or math's message)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def crt_clusters_needed(effect: float, *, power: float = 0.8, max_clusters: int = 10_000, **kwargs) -> int:
    """Smallest number of clusters per arm whose :func:`crt_power` reaches ``power``.

    >>> crt_clusters_needed(0.3, icc=0.05, cluster_size=20)
    19
    """
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    lo, hi = 2, 2
    while crt_power(effect, clusters_per_arm=hi, **kwargs).power < power:  # doubling, then bisection
        lo, hi = hi, hi * 2
        if hi > max_clusters:
            raise ValueError(f"more than max_clusters={max_clusters} clusters per arm would be needed")
    if crt_power(effect, clusters_per_arm=lo, **kwargs).power >= power:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if crt_power(effect, clusters_per_arm=mid, **kwargs).power >= power:
            hi = mid
        else:
            lo = mid
    return hi


def individuals_per_arm(effect: float, *, sd: float = 1.0, alpha: float = 0.05, power: float = 0.8) -> float:
    """Normal-approximation size of an individually randomized trial, ``2 (z_a/2 + z_b)^2 sd^2 / effect^2``.

    Multiplied by the design effect it gives Donner and Klar's (2000) cluster-trial size; Stata's
    ``sampsi``/``sampclus`` use the same formulas.

    >>> math.ceil(individuals_per_arm(4, sd=5))
    25
    """
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return float(2 * z**2 * sd**2 / effect**2)


def _t_power(ncp: float, df: int, alpha: float, sides: int) -> float:
    if sides == 2:
        crit = sps.t.ppf(1 - alpha / 2, df)
        return float(sps.nct.sf(crit, df, abs(ncp)) + sps.nct.cdf(-crit, df, abs(ncp)))
    crit = sps.t.ppf(1 - alpha, df)
    return float(sps.nct.sf(crit, df, ncp))


def _check_design(cluster_size: float, icc: float, cv: float) -> None:
    if not np.isfinite(cluster_size) or cluster_size < 1:
        raise ValueError(f"cluster_size must be at least 1, got {cluster_size}")
    if not 0.0 <= icc <= 1.0:
        raise ValueError(f"icc must be in [0, 1], got {icc}")
    if cv < 0:
        raise ValueError(f"cv must be non-negative, got {cv}")
