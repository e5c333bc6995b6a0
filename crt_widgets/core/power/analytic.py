"""Analytic power and sample size of a cluster randomized trial, for every outcome (the instant first answer).

The effect estimate compares arm means of cluster-level outcomes. For each arm, the variance of one
cluster's mean on the analysis scale is ``between + within / m`` (``m`` individuals):

* continuous: ``between = sd^2 ICC``, ``within = sd^2 (1 - ICC)``;
* binary: the same with ``sd^2 = p (1 - p)`` of each arm; on the risk-ratio and odds-ratio scales the
  test is on the log scale, with the variances by the delta method (``Var(log p_hat) = Var(p_hat) / p^2``,
  ``Var(logit p_hat) = Var(p_hat) / (p (1 - p))^2``; Hayes and Moulton 2017, ch. 7);
* count (event rates with ``person_time`` per individual): ``between = k^2 lambda^2`` with ``k`` the
  coefficient of variation of the true cluster rates (``rate_cv``) and ``within = lambda / person_time``
  (Poisson), as Hayes and Bennett (1999); on the rate-ratio scale divided by ``lambda^2``.

Covariate adjustment multiplies ``between`` by ``1 - r2_cluster`` and ``within`` by ``1 - r2_individual``
(Teerenstra et al. 2012; Moerbeek 2006). Unequal cluster sizes: by their coefficient of variation ``cv``,
``between`` is multiplied by ``1 + cv^2`` (so that for a continuous outcome the variance is
``sd^2 DE / (m k)`` with Eldridge, Ashby and Kerry's 2006 design effect ``1 + ((cv^2 + 1) m - 1) ICC``);
or by the exact sizes ``cluster_sizes``: the information of an arm of ``k`` clusters is ``k`` times the
mean of ``1 / (between + within / m_i)`` over the sizes given (van Breukelen, Candel and Berger 2007; the
efficient, inverse-variance weighted analysis).

The test: ``test="t"`` (default) is the t test on ``clusters - arms`` df (``2 k - 2`` for two equal arms),
its power from the noncentral t distribution, both tails (R's ``power.t.test(strict = TRUE)``);
``test="z"`` is the normal approximation that the closed-form formulas, the Shiny CRT Calculator, PASS
and clusterPower report: ``Phi(|ncp| - z_{1 - alpha/2})`` (the opposite tail ignored, so that solving it
gives exactly ``k = (z_{1-alpha/2} + z_{power})^2 Var / effect^2``). Multi-arm trials (``n_arms`` arms
of ``clusters_per_arm``, each compared with the control): ``multiplicity="bonferroni"`` tests each
comparison at ``alpha / (n_arms - 1)``; ``"dunnett"`` at Dunnett's (1955) critical value for comparisons
with a common control (the equicorrelated multivariate t, correlation ``Var_C / (Var_T + Var_C)``); the
power reported is the power of one comparison (individual power).

Every numeric argument may be an array; they broadcast, so a power curve is one call. One of ``power``,
``clusters_per_arm``, ``cluster_size`` and ``effect`` may be left out (``None``) and is solved for
(integers rounded up: the smallest number of clusters or individuals reaching the power).

>>> result = crt_power(0.3, icc=0.05, cluster_size=20, clusters_per_arm=10)
>>> round(result.power, 4), round(result.design_effect, 2)
(0.5292, 1.95)
>>> crt_power(0.3, icc=0.05, cluster_size=20, power=0.8).clusters_per_arm
19
>>> crt_power(0.3, icc=[0.01, 0.05, 0.1], cluster_size=20, clusters_per_arm=10).power.round(3)
array([0.739, 0.529, 0.385])
"""
from __future__ import annotations

import math  # noqa: F401  (the examples use it)
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps

OUTCOMES = ("continuous", "binary", "count")
TESTS = ("t", "z")
SCALES = ("difference", "ratio", "odds_ratio")
MULTIPLICITY = ("none", "bonferroni", "dunnett")
DIRECTIONS = ("increase", "decrease")
# what crt_power can solve for, when left out (None)
SOLVABLE = ("power", "clusters_per_arm", "cluster_size", "effect")
MAX_CLUSTER_SIZE = 10_000_000


@dataclass(frozen=True)
class AnalyticPower:
    """Power of a CRT (arrays when any input was an array, one entry per scenario).

    ``effect`` is on the scale asked for (difference in means or proportions or rates, risk or rate ratio,
    odds ratio); ``se`` the standard error of the estimate on the analysis scale (the log scale for ratios)
    and ``ncp = estimand / se``; ``df`` the t degrees of freedom (infinite for ``test="z"``);
    ``critical_value`` the test's (after any multiplicity adjustment); ``design_effect`` the variance over
    that of an individually randomized trial of the same size without covariates; ``effective_n`` the
    number of individuals divided by it. ``solved_for`` names the argument that was solved for, if any
    (``target_power`` the power asked for).
    """

    power: Any
    effect: Any
    outcome: str
    clusters_per_arm: Any
    cluster_size: Any
    icc: Any
    cv: Any
    design_effect: Any
    se: Any
    ncp: Any
    df: Any
    alpha: Any
    sides: Any
    effective_n: Any
    clusters_control: Any = None
    test: str = "t"
    scale: str = "difference"
    n_arms: Any = 2
    multiplicity: str = "none"
    critical_value: Any = float("nan")
    r2_cluster: Any = 0.0
    r2_individual: Any = 0.0
    solved_for: str | None = None
    target_power: Any = None
    inputs: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.power)

    def frame(self) -> pd.DataFrame:
        """One row per scenario: every input that varies, and the results (a tidy table for charts)."""
        shape = self.shape
        columns = {}
        for name, value in self.inputs.items():
            if np.ndim(value) and np.size(value) > 1:
                columns[name] = np.broadcast_to(value, shape).ravel()
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("inputs",) or isinstance(value, str) or value is None:
                continue
            columns.setdefault(f.name, np.broadcast_to(np.asarray(value, dtype=float), shape).ravel())
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        solved = f", solved for {self.solved_for}" if self.solved_for else ""
        extra = "" if self.test == "t" else f", {self.test} test"
        if self.scale != "difference":
            extra += f", {self.scale} scale"
        if np.ndim(self.power):
            power = np.asarray(self.power, dtype=float)
            return (f"AnalyticPower({self.outcome}{extra}, {power.size} scenarios of shape {power.shape}, "
                    f"power from {np.nanmin(power):.4f} to {np.nanmax(power):.4f}{solved})")
        arms = f", {self.n_arms} arms ({self.multiplicity})" if self.n_arms != 2 else ""
        clustering = f"k={self.inputs['rate_cv']:g}" if self.outcome == "count" else f"ICC={self.icc:g}"
        df = f"{self.df:g}" if isinstance(self.df, float) else str(self.df)
        return (f"AnalyticPower(power={self.power:.4f}, {self.outcome}{extra}, effect={self.effect:g}, "
                f"{self.clusters_per_arm} clusters/arm of mean size {self.cluster_size:g} (cv {self.cv:g}), "
                f"{clustering}, design effect={self.design_effect:.3f}, df={df}, alpha={self.alpha:g}"
                f"{arms}{solved})")


def design_effect(cluster_size: float, icc: float, cv: float = 0.0) -> float:
    """``1 + ((cv^2 + 1) m - 1) ICC``: variance inflation of cluster sampling (Eldridge et al. 2006).

    >>> round(design_effect(10, 0.3), 12)
    3.7
    """
    _check_design(cluster_size=cluster_size, icc=icc, cv=cv)
    return float(1.0 + ((cv**2 + 1.0) * cluster_size - 1.0) * icc)


# -- inputs ---------------------------------------------------------------------------------------------

def _number(value, name: str, integer: bool = False) -> np.ndarray:
    """A finite real number or array of them, or a ValueError naming the argument."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if array.dtype == object or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return array


def _choice(value: str, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


@dataclass(frozen=True)
class _Spec:
    """The non-numeric choices of one call."""

    outcome: str
    scale: str
    test: str
    multiplicity: str
    direction: str
    sizes: np.ndarray | None  # exact cluster sizes (a distribution), or None


def _validate(q: dict[str, np.ndarray], spec: _Spec) -> None:
    """Range checks of the numeric inputs present (each message names its argument)."""
    def bad(name, condition):
        return name in q and q[name] is not None and np.any(condition(q[name]))

    if bad("icc", lambda v: (v < 0) | (v > 1)):
        raise ValueError(f"icc must be in [0, 1], got {q['icc']}")
    if bad("cluster_size", lambda v: v < 1):
        raise ValueError(f"cluster_size must be at least 1, got {q['cluster_size']}")
    if bad("cv", lambda v: v < 0):
        raise ValueError(f"cv must be non-negative, got {q['cv']}")
    if bad("alpha", lambda v: (v <= 0) | (v >= 1)):
        raise ValueError(f"alpha must be in (0, 1), got {q['alpha']}")
    if bad("sides", lambda v: (v != 1) & (v != 2)):
        raise ValueError(f"sides must be 1 or 2, got {q['sides']}")
    if bad("clusters_per_arm", lambda v: (v != np.round(v)) | (v < 2)):
        raise ValueError(f"clusters_per_arm must be an integer of at least 2, got {q['clusters_per_arm']}")
    if bad("n_arms", lambda v: (v != np.round(v)) | (v < 2)):
        raise ValueError(f"n_arms must be an integer of at least 2, got {q['n_arms']}")
    for name in ("r2_cluster", "r2_individual"):
        if bad(name, lambda v: (v < 0) | (v >= 1)):
            raise ValueError(f"{name} must be in [0, 1), got {q[name]}")
    if bad("power", lambda v: (v <= 0) | (v >= 1)):
        raise ValueError(f"power must be in (0, 1), got {q['power']}")
    if spec.outcome == "continuous" and bad("sd", lambda v: v <= 0):
        raise ValueError(f"sd must be positive, got {q['sd']}")
    if spec.outcome == "binary" and bad("p_control", lambda v: (v <= 0) | (v >= 1)):
        raise ValueError(f"p_control must be in (0, 1) for a binary outcome, got {q['p_control']}")
    if spec.outcome == "count":
        if bad("rate_control", lambda v: v <= 0):
            raise ValueError(f"rate_control must be positive, got {q['rate_control']}")
        if bad("person_time", lambda v: v <= 0):
            raise ValueError(f"person_time must be positive, got {q['person_time']}")
        if bad("rate_cv", lambda v: v < 0):
            raise ValueError(f"rate_cv must be non-negative, got {q['rate_cv']}")
    if spec.scale != "difference" and bad("effect", lambda v: v <= 0):
        raise ValueError(f"effect: a {spec.scale.replace('_', ' ')} must be positive, got {q['effect']}")


# -- the model ------------------------------------------------------------------------------------------

def _arms(q: dict[str, np.ndarray], spec: _Spec, effect: np.ndarray, check: bool = True):
    """Per arm (control, treatment): between- and within-cluster variances on the analysis scale, and the
    estimand (difference, or log ratio)."""
    if spec.outcome == "continuous":
        variance = q["sd"] ** 2
        icc = q["icc"]
        parts = [(variance * icc, variance * (1 - icc))] * 2
        return parts, effect
    if spec.outcome == "binary":
        p0 = q["p_control"]
        if spec.scale == "difference":
            p1 = p0 + effect
            what = "p_control + effect"
        elif spec.scale == "ratio":
            p1 = p0 * effect
            what = "p_control * effect (the treatment arm's risk)"
        else:  # any positive odds ratio gives a risk in (0, 1)
            odds = effect * p0 / (1 - p0)
            p1 = odds / (1 + odds)
            what = None
        if check and what and np.any((p1 <= 0) | (p1 >= 1)):
            raise ValueError(f"{what} must be in (0, 1), got {p1}")
        icc = q["icc"]
        parts = []
        for p in (p0, p1):
            v = p * (1 - p)
            factor = {"difference": 1.0, "ratio": 1 / p**2, "odds_ratio": 1 / v**2}[spec.scale]
            parts.append((v * icc * factor, v * (1 - icc) * factor))
        estimand = effect if spec.scale == "difference" else np.log(effect)
        return parts, estimand
    rate0 = q["rate_control"]
    rate1 = rate0 + effect if spec.scale == "difference" else rate0 * effect
    if check and np.any(rate1 <= 0):
        raise ValueError(f"rate_control + effect must be positive, got {rate1}")
    k2, t = q["rate_cv"] ** 2, q["person_time"]
    parts = []
    for rate in (rate0, rate1):
        factor = 1.0 if spec.scale == "difference" else 1 / rate**2
        parts.append((k2 * rate**2 * factor, rate / t * factor))
    estimand = effect if spec.scale == "difference" else np.log(effect)
    return parts, estimand


def _arm_variance(between, within, q, spec: _Spec, k) -> np.ndarray:
    """Variance of one arm's mean of ``k`` cluster means (covariate-adjusted)."""
    b = between * (1 - q["r2_cluster"])
    w = within * (1 - q["r2_individual"])
    if spec.sizes is None:
        return (b * (1 + q["cv"] ** 2) + w / q["cluster_size"]) / k
    sizes = spec.sizes.reshape((1,) * np.ndim(b) + (-1,))
    information = np.mean(1.0 / (np.asarray(b)[..., None] + np.asarray(w)[..., None] / sizes), axis=-1)
    return 1.0 / (k * information)


def _evaluate(q: dict[str, np.ndarray], spec: _Spec, check: bool = True) -> dict[str, np.ndarray]:
    """Power and its by-products at the (broadcast) inputs in ``q``."""
    k = q["clusters_per_arm"]
    kc = q["clusters_control"] if q.get("clusters_control") is not None else k
    parts, estimand = _arms(q, spec, q["effect"], check)
    (b0, w0), (b1, w1) = parts
    var_control = _arm_variance(b0, w0, q, spec, kc)
    var_treat = _arm_variance(b1, w1, q, spec, k)
    se = np.sqrt(var_control + var_treat)
    ncp = estimand / se
    m = q["cluster_size"]
    individual = (b0 + w0) / (m * kc) + (b1 + w1) / (m * k)
    deff = se**2 / individual
    n_arms = q["n_arms"]
    df = (n_arms - 1) * k + kc - n_arms if spec.test == "t" else np.full(np.shape(se), np.inf)
    alpha, sides = q["alpha"], q["sides"]
    comparisons = n_arms - 1
    if spec.multiplicity == "bonferroni":
        alpha = alpha / comparisons
    if spec.multiplicity == "dunnett":
        correlation = var_control / (var_control + var_treat)
        crit = dunnett_critical_value(comparisons, correlation, df, q["alpha"], sides)
    elif spec.test == "t":
        crit = sps.t.ppf(1 - alpha / sides, df)
    else:
        crit = sps.norm.ppf(1 - alpha / sides)
    power = _power(ncp, df, crit, sides, spec.test)
    return dict(power=power, se=se, ncp=ncp, df=df, design_effect=deff, critical_value=crit,
                effective_n=(comparisons * k + kc) * m / deff, clusters_control=kc)


def _power(ncp, df, crit, sides, test: str) -> np.ndarray:
    ncp, df, crit, sides = np.broadcast_arrays(*map(np.asarray, (ncp, df, crit, sides)))
    if test == "z":
        return np.where(sides == 2, sps.norm.cdf(np.abs(ncp) - crit), sps.norm.cdf(ncp - crit))
    # the opposite tail as sf(c; -|ncp|), equal to cdf(-c; |ncp|): scipy's nct.cdf returns NaN there for
    # some |ncp| > 7 (where the tail is below 1e-12), its sf does not
    opposite = sps.nct.sf(crit, df, -np.abs(ncp))
    opposite = np.where(np.isnan(opposite) & (np.abs(ncp) > 7), 0.0, opposite)
    two = sps.nct.sf(crit, df, np.abs(ncp)) + opposite
    one = sps.nct.sf(crit, df, ncp)
    return np.where(sides == 2, two, one)


# -- Dunnett's critical value ---------------------------------------------------------------------------

_HERMITE = np.polynomial.hermite.hermgauss(64)
_LEGENDRE = np.polynomial.legendre.leggauss(96)


def _coverage(c, comparisons, correlation, df, sides) -> float:
    """P(all |T_i| <= c) (two-sided) or P(all T_i <= c) for ``comparisons`` equicorrelated t's: the normal
    part by Gauss-Hermite over the shared component, the chi part by Gauss-Legendre in log(chi^2 / df)."""
    x, wx = _HERMITE
    shared = np.sqrt(2.0) * x
    root_r, root_1r = np.sqrt(correlation), np.sqrt(1 - correlation)
    if np.isinf(df):
        scales, weights = np.ones(1), np.ones(1)
    else:
        lo, hi = (np.log(sps.chi2.ppf(p, df) / df) for p in (1e-15, 1 - 1e-15))
        u, wu = _LEGENDRE
        z = lo + (hi - lo) * (u + 1) / 2
        # density of z = log(chi^2_df / df): f_chi2(df e^z) df e^z
        weights = wu * (hi - lo) / 2 * np.exp(sps.chi2.logpdf(df * np.exp(z), df) + np.log(df) + z)
        scales = np.exp(z / 2)
    limit = c * scales[:, None]
    upper = special.ndtr((limit - root_r * shared[None, :]) / root_1r)
    if sides == 2:
        inside = upper - special.ndtr((-limit - root_r * shared[None, :]) / root_1r)
    else:
        inside = upper
    normal_part = (inside ** comparisons) @ (wx / np.sqrt(np.pi))
    return float(weights @ normal_part)


def dunnett_critical_value(comparisons, correlation, df, alpha, sides=2) -> np.ndarray:
    """Critical value ``c`` with ``P(max_i |T_i| <= c) = 1 - alpha`` (``sides=2``; ``max_i T_i`` for 1) for
    ``comparisons`` t statistics on ``df`` df (``inf``: normal) with common correlation ``correlation``
    (0.5 for equal arms): Dunnett's (1955) many-to-one comparisons. One comparison gives the t quantile.
    Computed once for each distinct combination of the (broadcast) arguments.

    >>> round(float(dunnett_critical_value(2, 0.5, np.inf, 0.05)), 4)   # Dunnett's table: 2.21
    2.2121
    >>> round(float(dunnett_critical_value(1, 0.5, 10, 0.05)), 6) == round(float(sps.t.ppf(0.975, 10)), 6)
    True
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (comparisons, correlation, df, alpha, sides)))
    shape = arrays[0].shape
    table = np.column_stack([a.ravel() for a in arrays])
    unique, index = np.unique(table, axis=0, return_inverse=True)
    out = np.empty(len(unique))
    for i, (q, r, nu, a, s) in enumerate(unique):  # one root per distinct design (a handful), not per scenario
        if q == 1:
            out[i] = sps.norm.ppf(1 - a / s) if np.isinf(nu) else sps.t.ppf(1 - a / s, nu)
            continue
        lo, hi = 0.0, 50.0
        for _ in range(60):  # bisection: coverage increases in c
            mid = (lo + hi) / 2
            if _coverage(mid, int(q), r, nu, int(s)) < 1 - a:
                lo = mid
            else:
                hi = mid
        out[i] = (lo + hi) / 2
    return out[np.ravel(index)].reshape(shape)


# -- the public function --------------------------------------------------------------------------------

def crt_power(
    effect: Any = None,
    *,
    icc: Any = None,
    cluster_size: Any = None,
    clusters_per_arm: Any = None,
    sd: Any = 1.0,
    p_control: Any = None,
    rate_control: Any = None,
    person_time: Any = 1.0,
    rate_cv: Any = None,
    outcome: str = "continuous",
    scale: str = "difference",
    cv: Any = 0.0,
    cluster_sizes: Any = None,
    r2_cluster: Any = 0.0,
    r2_individual: Any = 0.0,
    alpha: Any = 0.05,
    sides: Any = 2,
    test: str = "t",
    clusters_control: Any = None,
    n_arms: Any = 2,
    multiplicity: str = "none",
    power: Any = None,
    direction: str = "increase",
    max_clusters: int = 10_000,
) -> AnalyticPower:
    """Power of a CRT, or, with ``power`` given and one of ``clusters_per_arm``, ``cluster_size``,
    ``effect`` left out, the value of that one which reaches it (the module docstring has the formulas).

    Continuous outcome: ``effect`` is the mean difference, ``sd`` the total SD of an individual outcome.
    Binary: ``outcome="binary"``, ``p_control``, and ``effect`` on ``scale`` ``"difference"``
    (``p_treatment - p_control``), ``"ratio"`` (risk ratio) or ``"odds_ratio"``. Count:
    ``outcome="count"``, the control rate ``rate_control`` per unit of ``person_time`` (each individual's
    follow-up), ``rate_cv`` (Hayes and Bennett's k; counts take no ``icc``), ``effect`` a rate difference
    or (``scale="ratio"``) a rate ratio. ``clusters_per_arm`` is each treatment arm's, ``clusters_control``
    the control arm's (default equal). ``cluster_sizes``: the exact sizes of an arm's clusters (or a
    sample of their distribution) instead of ``cluster_size`` and ``cv``. ``multiplicity`` applies with
    ``n_arms > 2`` (two arms are one comparison). ``direction`` says which way a
    detectable effect is sought. Unreachable answers raise for scalar inputs and are NaN in arrays.

    >>> round(crt_power(0.3, icc=0.05, cluster_size=20, clusters_per_arm=8, clusters_control=12).power, 4)
    0.5129

    >>> round(crt_power(0.1, outcome="binary", p_control=0.1, icc=0.05, cluster_size=50,
    ...                 clusters_per_arm=15).power, 3)
    0.812
    >>> round(crt_power(0.6, outcome="count", scale="ratio", rate_control=0.02, person_time=12, rate_cv=0.25,
    ...                 cluster_size=100, clusters_per_arm=8, test="z").power, 3)
    0.845
    >>> round(crt_power(icc=0.05, cluster_size=20, clusters_per_arm=12, power=0.9).effect, 4)
    0.4325
    """
    outcome = _choice(outcome, "outcome", OUTCOMES)
    test = _choice(test, "test", TESTS)
    scale = _choice(scale, "scale", SCALES)
    multiplicity = _choice(multiplicity, "multiplicity", MULTIPLICITY)
    direction = _choice(direction, "direction", DIRECTIONS)
    if outcome == "continuous" and scale != "difference":
        raise ValueError(f"scale: a continuous outcome is compared by its difference in means, got {scale!r}")
    if outcome == "count" and scale == "odds_ratio":
        raise ValueError("scale: counts are compared by a rate difference or a rate ratio ('ratio'), not 'odds_ratio'")
    if outcome != "binary" and p_control is not None:
        raise ValueError(f"p_control is for binary outcomes; this outcome is {outcome!r}")
    if outcome != "count" and (rate_control is not None or rate_cv is not None):
        raise ValueError(f"rate_control and rate_cv are for count outcomes; this outcome is {outcome!r}")
    if outcome == "count":
        if icc is not None:
            raise ValueError("icc: a count outcome takes rate_cv, the coefficient of variation of the true cluster "
                             "rates (Hayes and Bennett 1999), instead of an ICC")
        if rate_control is None:
            raise ValueError("rate_control: a count outcome needs the control arm's event rate per unit of person_time")
        if rate_cv is None:
            raise ValueError("rate_cv: a count outcome needs the coefficient of variation k of the true cluster rates "
                             "(0 for none)")
        icc = 0.0  # a placeholder, reported as NaN below: counts' clustering is rate_cv
    elif icc is None:
        raise ValueError("icc: give the intra-cluster correlation")
    if outcome == "binary" and p_control is None:
        raise ValueError(f"p_control must be in (0, 1) for a binary outcome, got {p_control}")
    sizes = None
    if cluster_sizes is not None:
        if cluster_size is not None:
            raise ValueError("cluster_size: give either cluster_size (with cv) or cluster_sizes, not both")
        if np.any(np.asarray(cv) != 0):
            raise ValueError("cv: the exact cluster_sizes replace the coefficient of variation; leave cv at 0")
        sizes = _number(cluster_sizes, "cluster_sizes").ravel()
        if sizes.size == 0 or np.any(sizes < 1):
            raise ValueError(f"cluster_sizes must be one or more sizes of at least 1, got {cluster_sizes!r}")
        cluster_size = float(sizes.mean())
    missing = [name for name, value in (("power", power), ("clusters_per_arm", clusters_per_arm),
                                        ("cluster_size", cluster_size), ("effect", effect)) if value is None]
    if len(missing) != 1:
        raise ValueError("give all but one of power, clusters_per_arm, cluster_size and effect (the one left out is "
                         f"solved for); missing: {', '.join(missing) or 'none'}")
    solve = missing[0] if missing[0] != "power" else None
    if solve == "clusters_per_arm" and clusters_control is not None:
        raise ValueError("clusters_control: solving for clusters_per_arm keeps the arms equal; leave clusters_control out")
    raw = dict(effect=effect, icc=icc, cluster_size=cluster_size, clusters_per_arm=clusters_per_arm, sd=sd,
               p_control=p_control, rate_control=rate_control, person_time=person_time, rate_cv=rate_cv, cv=cv,
               r2_cluster=r2_cluster, r2_individual=r2_individual, alpha=alpha, sides=sides,
               clusters_control=clusters_control, n_arms=n_arms, power=power)
    q = {name: (None if value is None else _number(value, name)) for name, value in raw.items()}
    _check_broadcast(q)
    if outcome == "count":
        q["icc"] = np.array(np.nan)
    spec = _Spec(outcome, scale, test, multiplicity, direction, sizes)
    _validate(q, spec)
    if q["clusters_control"] is not None:
        kc = q["clusters_control"]
        k = q["clusters_per_arm"] if q["clusters_per_arm"] is not None else 2
        if np.any((kc != np.round(kc)) | (kc < 1) | (k + kc < 4)):
            raise ValueError(f"clusters_control must be a whole number of at least 1, with at least 4 clusters "
                             f"in all, got {clusters_control}")
    if multiplicity != "none" and np.all(q["n_arms"] == 2):
        multiplicity = "none"  # two arms are one comparison: nothing to adjust
        spec = _Spec(outcome, scale, test, multiplicity, direction, sizes)
    scalar = all(np.ndim(v) == 0 for v in q.values() if v is not None)
    if solve is not None:
        q[solve] = _solve(solve, q, spec, max_clusters, scalar)
    out = _evaluate(q, spec)
    target = q["power"]
    result = AnalyticPower(
        power=out["power"], effect=q["effect"], outcome=outcome, clusters_per_arm=q["clusters_per_arm"],
        cluster_size=q["cluster_size"], icc=q["icc"], cv=q["cv"], design_effect=out["design_effect"], se=out["se"],
        ncp=out["ncp"], df=out["df"], alpha=q["alpha"], sides=q["sides"], effective_n=out["effective_n"],
        clusters_control=out["clusters_control"], test=test, scale=scale, n_arms=q["n_arms"],
        multiplicity=multiplicity, critical_value=out["critical_value"], r2_cluster=q["r2_cluster"],
        r2_individual=q["r2_individual"], solved_for=solve, target_power=target,
        inputs={name: value for name, value in q.items() if value is not None})
    return _scalars(result) if scalar else _broadcast(result)


def _check_broadcast(arrays: dict[str, np.ndarray | None]) -> None:
    """A ValueError naming the first two arguments whose shapes do not broadcast together (numpy's own message
    names none), before any work."""
    given = [(name, np.shape(value)) for name, value in arrays.items() if value is not None and np.ndim(value)]
    for i, (name, shape) in enumerate(given):
        for other, other_shape in given[:i]:
            try:
                np.broadcast_shapes(shape, other_shape)
            except ValueError:
                raise ValueError(f"{other} (shape {other_shape}) and {name} (shape {shape}) do not broadcast "
                                 "together: give arrays of one length, or shapes such as (n, 1) and (m,) for a "
                                 "grid") from None
    try:
        np.broadcast_shapes(*(shape for _, shape in given))
    except ValueError:
        raise ValueError("the array arguments (" + ", ".join(f"{n} {s}" for n, s in given)
                         + ") do not broadcast together") from None


def _scalars(result: AnalyticPower) -> AnalyticPower:
    """Plain Python numbers for a scalar call (ints where a count is meant)."""
    ints = {"clusters_per_arm", "clusters_control", "n_arms", "sides"}
    changes = {}
    for f in fields(result):
        value = getattr(result, f.name)
        if isinstance(value, np.ndarray) or isinstance(value, np.generic):
            number = float(value)
            changes[f.name] = int(number) if f.name in ints or (f.name == "df" and np.isfinite(number)
                                                                and result.test == "t") else number
    if result.solved_for == "cluster_size":
        changes["cluster_size"] = float(changes["cluster_size"])
    changes["inputs"] = {k: (float(v) if np.ndim(v) == 0 else v) for k, v in result.inputs.items()}
    return _replace(result, changes)


def _broadcast(result: AnalyticPower) -> AnalyticPower:
    shape = np.shape(result.power)
    changes = {}
    for name in ("effect", "clusters_per_arm", "cluster_size", "icc", "cv", "alpha", "sides", "df",
                 "clusters_control", "n_arms", "critical_value", "r2_cluster", "r2_individual", "design_effect",
                 "se", "ncp", "effective_n"):
        changes[name] = np.broadcast_to(np.asarray(getattr(result, name), dtype=float), shape).copy()
    return _replace(result, changes)


def _replace(result: AnalyticPower, changes: dict) -> AnalyticPower:
    from dataclasses import replace

    return replace(result, **changes)


# -- solving ------------------------------------------------------------------------------------------------

def _shape(q: dict) -> tuple[int, ...]:
    return np.broadcast_shapes(*(np.shape(v) for v in q.values() if v is not None))


def _with(q: dict, name: str, value) -> dict:
    trial = dict(q)
    trial[name] = value
    return trial


def _power_at(q: dict, spec: _Spec, name: str, value) -> np.ndarray:
    return _evaluate(_with(q, name, value), spec, check=False)["power"]


def _solve(name: str, q: dict, spec: _Spec, max_clusters: int, scalar: bool) -> np.ndarray:
    shape = _shape(q)
    target = np.broadcast_to(q["power"], shape)
    if name == "clusters_per_arm":
        guess = _normal_clusters(q, spec, shape)
        answer = _integer_search(lambda k: _power_at(q, spec, name, k) >= target, 2, max_clusters, shape, guess)
        if np.any(np.isnan(answer)) and scalar:
            raise ValueError(f"more than max_clusters={max_clusters} clusters per arm would be needed")
        return answer
    # the solved quantity moves only the noncentrality (df and critical value stay, unless Dunnett's critical
    # value follows the arms' variances): find the noncentrality the power needs once, then solve the cheap ncp
    cheap = spec.multiplicity != "dunnett"
    if cheap:
        needed = _needed_ncp(q, spec, shape, target)
        two = np.broadcast_to(q["sides"], shape) == 2

        def reaches(name_, value):
            ncp = _evaluate_ncp(_with(q, name_, value), spec)
            return np.where(two, np.abs(ncp), ncp) >= needed
    else:
        def reaches(name_, value):
            return _power_at(q, spec, name_, value) >= target
    if name == "cluster_size":
        answer = _integer_search(lambda m: reaches(name, m), 1, MAX_CLUSTER_SIZE, shape)
        if np.any(np.isnan(answer)) and scalar:
            limit = float(_power_at(q, spec, name, float(MAX_CLUSTER_SIZE)))
            raise ValueError(f"cluster_size: no cluster size reaches power {float(q['power']):g} with these clusters "
                             f"(the limit as clusters grow is {limit:.4f}); add clusters instead")
        return answer
    answer = _effect_search(lambda u: reaches("effect", _effect_from_u(u, q, spec)),
                            lambda grid: _grid_reaches(q, spec, grid, cheap, target), q, spec, shape)
    if np.any(np.isnan(answer)) and scalar:
        raise ValueError(f"effect: no {spec.direction} in the outcome reaches power {float(q['power']):g} with this design")
    return answer


def _evaluate_ncp(q: dict, spec: _Spec) -> np.ndarray:
    """The noncentrality alone (no distribution function): cheap."""
    k = q["clusters_per_arm"]
    kc = q["clusters_control"] if q.get("clusters_control") is not None else k
    parts, estimand = _arms(q, spec, q["effect"], check=False)
    (b0, w0), (b1, w1) = parts
    return estimand / np.sqrt(_arm_variance(b0, w0, q, spec, kc) + _arm_variance(b1, w1, q, spec, k))


def _needed_ncp(q: dict, spec: _Spec, shape, target) -> np.ndarray:
    """The noncentrality (>= 0) at which the power reaches the target, for each scenario's df, critical value and
    sides: one bisection per distinct combination (power increases in the noncentrality)."""
    probe = dict(q)
    for name in ("clusters_per_arm", "cluster_size", "effect"):  # any value: df and critical value do not depend on it
        if probe[name] is None:
            null_effect = 0.0 if spec.scale == "difference" else 1.0
            probe[name] = {"clusters_per_arm": 2.0, "cluster_size": 1.0}.get(name, null_effect)
    out = _evaluate(probe, spec, check=False)
    columns = [np.broadcast_to(np.asarray(v, dtype=float), shape).ravel()
               for v in (out["df"], out["critical_value"], q["sides"], target)]
    table = np.column_stack(columns)
    unique, index = np.unique(table, axis=0, return_inverse=True)
    df, crit, sides, goal = unique.T
    lo, hi = np.zeros(len(unique)), np.full(len(unique), 100.0)
    for _ in range(70):
        mid = (lo + hi) / 2
        ok = _power(mid, df, crit, sides, spec.test) >= goal
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return hi[np.ravel(index)].reshape(shape)


def _normal_clusters(q: dict, spec: _Spec, shape) -> np.ndarray:
    """Clusters per arm that the normal approximation needs (continuous; the variance falls as 1 / k): where
    the t test's answer search starts."""
    one = _evaluate_ncp(_with(q, "clusters_per_arm", 1.0), spec)
    z = sps.norm.ppf(1 - np.asarray(q["alpha"]) / np.asarray(q["sides"])) + sps.norm.ppf(np.asarray(q["power"]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.broadcast_to((np.maximum(z, 0) / np.abs(one)) ** 2, shape)


def _integer_search(reaches, low: int, high: int, shape, guess=None) -> np.ndarray:
    """Smallest integer in [low, high] that ``reaches`` (monotone: False then True), by a vectorised
    bisection over all scenarios at once; NaN where even ``high`` does not. A ``guess`` near the answer
    narrows the bracket first (a check below it, then steps doubling above it)."""
    lo = np.full(shape, low - 1.0)  # invariant: lo does not reach (low - 1 by convention), hi does (checked last)
    hi = np.full(shape, float(high))
    if guess is not None:
        guess = np.where(np.isfinite(guess), guess, high)
        below = np.clip(np.floor(guess) - 1, low, high)
        lo = np.where(~reaches(below), below, lo)
        step = np.clip(np.ceil(guess) + 1, lo + 1, high)
        for _ in range(40):
            ok = reaches(step)
            hi = np.where(ok, np.minimum(hi, step), hi)
            lo = np.where(ok, lo, np.maximum(lo, step))
            if np.all(ok | (step >= high)):
                break
            step = np.where(ok, step, np.minimum(2 * step, high))
    while np.any(hi - lo > 1):
        mid = np.floor((lo + hi) / 2)
        active = hi - lo > 1
        ok = reaches(np.where(active, mid, hi))
        hi = np.where(active & ok, mid, hi)
        lo = np.where(active & ~ok, mid, lo)
    return np.where(reaches(hi), hi, np.nan)


def _effect_from_u(u: np.ndarray, q: dict, spec: _Spec) -> np.ndarray:
    """Effects on the requested scale, moving away from the null as ``u`` goes from 0 to 1."""
    up = spec.direction == "increase"
    if spec.outcome == "continuous":
        return (1 if up else -1) * q["sd"] * u / (1 - u)
    if spec.outcome == "binary":
        p0 = q["p_control"]
        p1 = p0 + u * (1 - p0) if up else p0 * (1 - u)
        if spec.scale == "difference":
            return p1 - p0
        if spec.scale == "ratio":
            return p1 / p0
        return (p1 / (1 - p1)) / (p0 / (1 - p0))
    rate0 = q["rate_control"]
    rate1 = rate0 / (1 - u) if up else rate0 * (1 - u)
    return rate1 - rate0 if spec.scale == "difference" else rate1 / rate0


def _grid_view(q: dict) -> dict:
    return {k: (None if v is None else np.asarray(v)[..., None]) for k, v in q.items()}


def _grid_reaches(q: dict, spec: _Spec, u: np.ndarray, cheap: bool, target) -> np.ndarray:
    """Whether each effect of a grid (last axis) reaches the target power."""
    expanded = _grid_view(q)
    effects = _effect_from_u(u, expanded, spec)
    if cheap:
        needed = _needed_ncp(q, spec, _shape(q), target)[..., None]
        ncp = _evaluate_ncp(_with(expanded, "effect", effects), spec)
        two = np.asarray(q["sides"])[..., None] == 2
        return np.where(two, np.abs(ncp), ncp) >= needed
    return _power_at(expanded, spec, "effect", effects) >= np.asarray(target)[..., None]


def _effect_search(reaches, reaches_grid, q: dict, spec: _Spec, shape) -> np.ndarray:
    """The effect nearest the null whose power reaches the target: the first crossing on a grid moving away
    from the null (power can fall again far out, e.g. a risk ratio near 0 on the log scale), then
    bisection. Vectorised over scenarios."""
    grid = np.linspace(0.0, 1.0, 202)[1:-1]
    reached = reaches_grid(np.broadcast_to(grid, shape + grid.shape))
    found = reached.any(axis=-1)
    first = np.argmax(reached, axis=-1)
    lo = np.where(first > 0, grid[np.maximum(first - 1, 0)], 0.0)
    hi = grid[first]
    for _ in range(60):
        mid = (lo + hi) / 2
        ok = reaches(mid)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(found, _effect_from_u(hi, q, spec), np.nan)


def crt_clusters_needed(effect: float, *, power: float = 0.8, max_clusters: int = 10_000, **kwargs) -> int:
    """Smallest number of clusters per arm whose :func:`crt_power` reaches ``power``.

    >>> crt_clusters_needed(0.3, icc=0.05, cluster_size=20)
    19
    """
    _number(power, "power")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    return crt_power(effect, power=power, clusters_per_arm=None, max_clusters=max_clusters, **kwargs).clusters_per_arm


def individuals_per_arm(effect: float, *, sd: float = 1.0, alpha: float = 0.05, power: float = 0.8) -> float:
    """Normal-approximation size of an individually randomized trial, ``2 (z_a/2 + z_b)^2 sd^2 / effect^2``.

    Multiplied by the design effect it gives Donner and Klar's (2000) cluster-trial size; Stata's
    ``sampsi``/``sampclus`` use the same formulas.

    >>> math.ceil(individuals_per_arm(4, sd=5))
    25
    """
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return float(2 * z**2 * sd**2 / effect**2)


# -- curves -------------------------------------------------------------------------------------------------

CURVE_AXES = ("clusters_per_arm", "cluster_size", "icc", "rate_cv", "effect")


def power_curve(effect: Any = None, *, against: str = "clusters_per_arm", values: Any = None,
                band: tuple[float, float] | None = None, band_of: str | None = None, **design) -> pd.DataFrame:
    """Power against one design quantity, as a tidy table for a chart (one row per point of every line).

    ``against`` names the x axis (kept in ``frame.attrs["against"]``) (``"clusters_per_arm"``, ``"cluster_size"``, ``"icc"``; ``"rate_cv"`` or
    ``"effect"``), ``values`` its points (a sensible range if left out). Every other argument is
    :func:`crt_power`'s; one given as a list draws one line per value (column ``line``). ``band=(low,
    high)`` adds the power at both ends of a range of the ICC (``rate_cv`` for counts; ``band_of``
    names another quantity) as ``power_low``/``power_high``: the band a chart shades.

    >>> curve = power_curve(0.3, against="clusters_per_arm", values=range(4, 9), icc=0.05, cluster_size=20,
    ...                     band=(0.02, 0.1))
    >>> curve[["clusters_per_arm", "power", "power_low", "power_high"]].round(3).iloc[0].tolist()
    [4.0, 0.21, 0.157, 0.276]
    """
    if against not in CURVE_AXES:
        raise ValueError(f"against must be one of {CURVE_AXES}, got {against!r}")
    if against == "effect":
        if effect is not None:
            raise ValueError("effect: the curve is against the effect; give its points as values")
    elif effect is None:
        raise ValueError("effect: give the effect to detect")
    if against in design:
        raise ValueError(f"{against}: the curve is against it; give its points as values, not as {against}=")
    outcome = design.get("outcome", "continuous")
    band_of = band_of or ("rate_cv" if outcome == "count" else "icc")
    if band is not None:
        if band_of == against:
            raise ValueError(f"band_of: the band is over {band_of!r}, which is the x axis; choose another")
        if len(band) != 2:
            raise ValueError(f"band must be (low, high), got {band!r}")
    if values is None:
        values = _default_values(against, design)
    points = _number(list(values) if not isinstance(values, np.ndarray) else values, "values").ravel()
    if points.size == 0:
        raise ValueError("values: give at least one point")
    # lines: the design arguments given as sequences (besides the x axis)
    line_names = [k for k, v in design.items() if isinstance(v, (list, tuple, np.ndarray)) and k != "cluster_sizes"
                  and np.ndim(v) == 1 and len(v) > 1]
    if len(line_names) > 1:
        raise ValueError(f"give at most one argument as a list (one line per value), got {line_names}")
    kwargs = dict(design)
    line = None
    if line_names:
        line = np.asarray(design[line_names[0]])
        kwargs[line_names[0]] = line[:, None]
    args = dict(kwargs)
    args[against] = points[None, :] if line is not None else points
    if against == "effect":
        result = crt_power(args.pop("effect"), **args)
    else:
        result = crt_power(effect, **args)
    shape = np.shape(result.power)
    frame = pd.DataFrame({against: np.broadcast_to(args[against], shape).ravel(),
                          "power": np.ravel(result.power)})
    if line is not None:
        frame.insert(0, line_names[0], np.broadcast_to(kwargs[line_names[0]], shape).ravel())
        frame.insert(0, "line", [f"{line_names[0]} = {v:g}" for v in frame[line_names[0]]])
    if band is not None:
        ends = []
        for end in band:
            shifted = dict(args)
            shifted[band_of] = end
            ends.append(np.ravel(np.broadcast_to((crt_power(shifted.pop("effect"), **shifted) if against == "effect"
                                                  else crt_power(effect, **shifted)).power, shape)))
        frame["power_low"] = np.minimum(*ends)
        frame["power_high"] = np.maximum(*ends)
        frame["band_of"] = band_of
        frame["band_low"], frame["band_high"] = float(min(band)), float(max(band))
    frame.attrs["against"] = against
    return frame


def _default_values(against: str, design: dict) -> np.ndarray:
    if against == "clusters_per_arm":
        return np.arange(2, 41)
    if against == "cluster_size":
        return np.unique(np.round(np.geomspace(2, 500, 40)))
    if against in ("icc", "rate_cv"):
        return np.linspace(0.0, 0.3 if against == "icc" else 1.0, 31)
    sd = design.get("sd", 1.0)
    return np.linspace(0.0, float(np.max(sd)), 41)[1:]


# -- checks kept for callers of the scalar helpers ------------------------------------------------------------

def _check_design(cluster_size: float, icc: float, cv: float) -> None:
    if not np.isfinite(cluster_size) or cluster_size < 1:
        raise ValueError(f"cluster_size must be at least 1, got {cluster_size}")
    if not 0.0 <= icc <= 1.0:
        raise ValueError(f"icc must be in [0, 1], got {icc}")
    if cv < 0:
        raise ValueError(f"cv must be non-negative, got {cv}")
