"""The clustered permutation test over a (constrained) randomization space, with its confidence interval.

Step 1 regresses the outcome on the adjustment covariates ignoring clustering (linear, logistic or
Poisson) and takes residuals on the response scale. Step 2 averages them by cluster and computes

    U = mean over treated clusters - mean over control clusters          (formula (5) of cvcrand's paper)

for the observed scheme and for every scheme of the space, in one pass (per-scheme sums of the
cluster means come from the packed schemes by table look-ups). The two-sided p-value is the share of
schemes with |U_s| >= |U|. With equal arms this is cvcrand's ``cptest`` exactly; with unequal arms
cptest codes arms +1/-1, which is not formula (5): we use (5).

The confidence interval inverts the test (the steps (i)-(iv) of the paper's Summary): a hypothesised
effect delta is removed from the treated clusters on the link scale (an offset in the regression),
and the interval is every delta whose p-value is at least alpha; its limits are found by root
finding on a bracket, and the point estimate is the delta at which the observed U is zero.

Rows with a missing outcome, cluster or covariate are dropped, and the result says how many.

>>> from crt_widgets.datasets import load_dickinson_outcome, dickinson_cvcrand_space_path
>>> result = permutation_test(load_dickinson_outcome(), "outcome", "county", dickinson_cvcrand_space_path(),
...     covariates=["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
...     categorical=["location", "incomecat"], family="binomial")
>>> round(result.p_value, 3)
0.042
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from crt_widgets.core.residuals import check_family, check_outcome, fit_glm, model_matrix
from crt_widgets.core.schemes import SchemeSet, enumerate_schemes, sample_schemes, unique_schemes
from crt_widgets.core.spaceio import SavedSpace, read_space

ALTERNATIVES = ("two-sided", "greater", "less")
# relative tolerance for ties between a scheme's statistic and the observed one
_TIE = 1e-9


# -- the space --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PermutationSpace:
    """Schemes over labelled clusters, and which of them was used."""

    schemes: SchemeSet
    observed: int
    cluster_ids: np.ndarray
    note: str = ""  # how the space was made, when the result should say (a sampled simple space)

    @property
    def observed_arm(self) -> np.ndarray:
        return self.schemes.matrix(np.array([self.observed]))[0]

    def __repr__(self) -> str:
        return f"PermutationSpace(n_schemes={len(self.schemes)}, n_clusters={len(self.cluster_ids)})"


def _find_scheme(schemes: SchemeSet, arm: np.ndarray) -> int:
    arm = np.asarray(arm).astype(int).ravel()
    if len(arm) != schemes.n_clusters or not np.isin(arm, (0, 1)).all():
        raise ValueError(f"observed: expected a 0/1 arm for each of the {schemes.n_clusters} clusters")
    key = SchemeSet.from_matrix(arm[None, :]).keys()[0]
    hits = np.flatnonzero(schemes.keys() == key)
    if not len(hits):
        raise ValueError("observed: the allocation that was used is not in the randomization space")
    return int(hits[0])


def resolve_space(space: Any, *, cluster_ids: Sequence | None = None, observed: Any = None,
                  data_clusters: np.ndarray | None = None) -> PermutationSpace:
    """Turn what the user passed as the space into schemes, labelled clusters and the observed scheme.

    ``space`` may be a path to a saved space (cvcrand's CSV or our JSON), a :class:`SavedSpace`, an
    ``Allocation`` (its design's constrained space, with the drawn scheme observed), a design
    (``ConstrainedDesign``, ``MatchedDesign``, ... with ``observed`` given), a :class:`SchemeSet` or a
    0/1 matrix. cvcrand's CSV has no cluster labels: its columns are taken to be the data's clusters
    in sorted order (as cptest does), unless ``cluster_ids`` says otherwise.
    ``observed`` is a scheme index, a 0/1 arm per cluster, or a mapping cluster -> arm.
    """
    position = None
    ids = None
    if isinstance(space, (str, Path)):
        space = read_space(space)
    if isinstance(space, SavedSpace):
        schemes, position, ids = space.schemes, space.chosen, space.cluster_ids
    elif hasattr(space, "design") and hasattr(space, "space_position"):  # an Allocation
        schemes, position, ids = space.design.space, space.space_position, space.design.cluster_ids
    elif isinstance(space, SchemeSet):
        schemes = space
    elif hasattr(space, "permutation_matrix") and hasattr(space, "cluster_ids"):  # a design
        design_space = getattr(space, "space", None)
        schemes = design_space if isinstance(design_space, SchemeSet) else SchemeSet.from_matrix(space.permutation_matrix())
        ids = np.asarray(space.cluster_ids)
    elif isinstance(space, np.ndarray) or isinstance(space, list):
        schemes = SchemeSet.from_matrix(np.asarray(space))
    else:
        raise ValueError(f"space: expected a saved space file, a design or allocation, or a 0/1 matrix; "
                         f"got {type(space).__name__}")
    if cluster_ids is not None:
        ids = np.asarray(cluster_ids)
    if ids is None:
        if data_clusters is None:
            raise ValueError("cluster_ids: the space has no cluster labels; pass cluster_ids")
        ids = np.sort(pd.unique(data_clusters))
        if len(ids) != schemes.n_clusters:
            raise ValueError(f"space: it has {schemes.n_clusters} cluster columns but the data have "
                             f"{len(ids)} clusters (the file has no cluster labels, so its columns are the "
                             "data's clusters in sorted order: every cluster needs individuals)")
    if len(pd.unique(ids)) != len(ids):
        raise ValueError("cluster_ids: the space's cluster labels are not unique")
    if len(ids) != schemes.n_clusters:
        raise ValueError(f"cluster_ids: {len(ids)} labels for a space of {schemes.n_clusters} clusters")
    if observed is not None:
        if isinstance(observed, dict):
            observed = _arm_from_mapping(observed, ids)
        if np.ndim(observed) == 0:
            position = int(observed)
            if not 0 <= position < len(schemes):
                raise ValueError(f"observed: scheme {position} is out of range (0..{len(schemes) - 1})")
        else:
            position = _find_scheme(schemes, observed)
    if position is None:
        raise ValueError("observed: say which scheme was used (the space does not mark one)")
    if len(schemes) < 2:
        raise ValueError("space: a permutation test needs at least 2 schemes")
    counts = schemes.treated_counts()
    if counts.min() == 0 or counts.max() == schemes.n_clusters:  # formula (5) needs both arms
        raise ValueError("space: some schemes have no treated or no control cluster")
    return PermutationSpace(schemes, int(position), ids)


def _arm_from_mapping(observed: dict, ids: np.ndarray) -> np.ndarray:
    """The arm of each cluster of ``ids`` from a mapping cluster -> arm (keys may be text or numbers)."""
    lookup = {str(k): v for k, v in observed.items()}
    missing = [k for k in ids if str(k) not in lookup]
    if missing:
        raise ValueError(f"observed: no arm given for cluster(s) {', '.join(map(str, missing[:10]))}")
    return np.array([lookup[str(k)] for k in ids])


def simple_space(cluster_ids: Sequence, n_treat: int, observed: Any, size: int = 50_000,
                 seed: int | None = None) -> PermutationSpace:
    """The unconstrained space: every scheme with ``n_treat`` treated if there are at most ``size``,
    else ``size`` schemes: the observed one and ``size - 1`` drawn uniformly from ``seed`` (duplicates removed).

    >>> len(simple_space(range(10), 5, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]).schemes)
    252
    """
    ids = np.asarray(cluster_ids)
    n = len(ids)
    if math.comb(n, n_treat) <= size:
        schemes = enumerate_schemes(n, n_treat)
        return resolve_space(schemes, cluster_ids=ids, observed=observed)
    if seed is None:  # fresh entropy, reported so that the p-value can be reproduced
        seed = int(np.random.SeedSequence().entropy % 2**63)
    sampled, _ = sample_schemes(n, n_treat, size, np.random.default_rng(seed))
    sampled = sampled.take(np.arange(min(len(sampled), size - 1)))  # room for the observed one
    arm = np.asarray(observed if not isinstance(observed, dict) else _arm_from_mapping(observed, ids))
    # the observed scheme joins the sample: the Monte Carlo p-value is then (1 + hits) / (1 + draws), valid
    schemes, _ = unique_schemes(SchemeSet(np.vstack([SchemeSet.from_matrix(arm[None, :]).packed, sampled.packed]), n))
    space = resolve_space(schemes, cluster_ids=ids, observed=observed)
    note = (f"simple space sampled: {len(schemes):,} of the {math.comb(n, n_treat):,} schemes "
            f"(the observed one included; seed {seed})")
    return PermutationSpace(space.schemes, space.observed, space.cluster_ids, note)


# -- the data --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PreparedData:
    """Outcome, design matrix and cluster index of the individuals, aligned with the space."""

    y: np.ndarray
    x: np.ndarray
    x_names: list[str]
    cluster_index: np.ndarray      # column of the space for each individual
    cluster_sizes: np.ndarray
    treated: np.ndarray            # observed arm of each individual's cluster
    family: str
    n_dropped: int


def prepare_data(data: pd.DataFrame, outcome: str, cluster: str, space: PermutationSpace,
                 covariates: Sequence[str], categorical: Sequence[str], family: str) -> PreparedData:
    """Validate the individual-level data and match its clusters to the space's by id."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    needed = [outcome, cluster, *covariates]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"data: column(s) not found: {', '.join(map(str, missing))}")
    unknown = [c for c in categorical if c not in covariates]
    if unknown:
        raise ValueError(f"categorical: {', '.join(unknown)} not among the covariates")
    complete = data[needed].notna().all(axis=1)
    frame = data.loc[complete]
    if frame.empty:
        raise ValueError("data: no rows left after dropping rows with missing values")
    y = check_outcome(frame[outcome], family, f"outcome {outcome!r}")
    x, names = model_matrix(frame, covariates, categorical)
    index = _match_clusters(frame[cluster].to_numpy(), space.cluster_ids)
    sizes = np.bincount(index, minlength=len(space.cluster_ids))
    if (sizes == 0).any():
        empty = space.cluster_ids[sizes == 0]
        raise ValueError(f"clusters with no individuals: {', '.join(map(str, empty[:10]))}")
    treated = space.observed_arm[index].astype(float)
    return PreparedData(y, x, names, index, sizes, treated, family, int((~complete).sum()))


def _match_clusters(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position in ``ids`` of each label; unmatched labels either way are an error."""
    pos = pd.Index(ids).get_indexer(labels)
    if (pos < 0).any():  # ids read from a file may be text where the data have numbers, or the reverse
        as_text = pd.Index(np.asarray(ids).astype(str)).get_indexer(np.asarray(labels).astype(str))
        if (as_text >= 0).sum() > (pos >= 0).sum():
            pos = as_text
    if (pos < 0).any():
        extra = pd.unique(labels[pos < 0])
        raise ValueError(f"cluster(s) in the data but not in the space: {', '.join(map(str, extra[:10]))}")
    absent = np.setdiff1d(np.arange(len(ids)), pos)
    if len(absent):
        raise ValueError(f"clusters with no individuals (in the space but not in the data): "
                         f"{', '.join(map(str, ids[absent][:10]))}")
    return pos


# -- the statistic ---------------------------------------------------------------------------------
def scheme_statistics(schemes: SchemeSet, cluster_values: np.ndarray) -> np.ndarray:
    """U for every scheme: mean of ``cluster_values`` over treated minus over control clusters."""
    treated_sum = schemes.treated_sums(cluster_values[:, None])[:, 0]
    n_treated = schemes.treated_counts()
    n = schemes.n_clusters
    return treated_sum / n_treated - (cluster_values.sum() - treated_sum) / (n - n_treated)


def p_values(distribution: np.ndarray, observed: float) -> dict[str, float]:
    """Two-sided and one-sided permutation p-values (ties within a relative 1e-9 count)."""
    tol = _TIE * max(abs(observed), float(np.max(np.abs(distribution))) * 1e-6, 1e-300)
    return {"two-sided": float(np.mean(np.abs(distribution) >= abs(observed) - tol)),
            "greater": float(np.mean(distribution >= observed - tol)),
            "less": float(np.mean(distribution <= observed + tol))}


class _Inverter:
    """U for every scheme as a function of the hypothesised effect delta (for the interval)."""

    def __init__(self, prep: PreparedData, space: PermutationSpace):
        self.prep, self.space = prep, space
        self._start = None
        if prep.family == "gaussian":
            # residuals are linear in delta: r(delta) = r(0) - delta * (I - H) W
            base = fit_glm(prep.x, prep.y, "gaussian")
            on_w = fit_glm(prep.x, prep.treated, "gaussian")
            self._u0 = scheme_statistics(space.schemes, self._means(prep.y - base.mu))
            self._uw = scheme_statistics(space.schemes, self._means(prep.treated - on_w.mu))

    def _means(self, resid: np.ndarray) -> np.ndarray:
        return np.bincount(self.prep.cluster_index, weights=resid, minlength=len(self.prep.cluster_sizes)) / self.prep.cluster_sizes

    def statistics(self, delta: float) -> np.ndarray:
        if self.prep.family == "gaussian":
            return self._u0 - delta * self._uw
        return scheme_statistics(self.space.schemes, self._means(self.prep.y - self._fit(delta).mu))

    def observed(self, delta: float) -> float:
        if self.prep.family == "gaussian":
            return float(self._u0[self.space.observed] - delta * self._uw[self.space.observed])
        r = self._means(self.prep.y - self._fit(delta).mu)
        arm = self.space.observed_arm.astype(bool)
        return float(r[arm].mean() - r[~arm].mean())

    def _fit(self, delta: float):
        """The outcome regression with offset delta * treated, warm-started from the last delta."""
        fit = fit_glm(self.prep.x, self.prep.y, self.prep.family, offset=delta * self.prep.treated, start=self._start)
        self._start = fit.coef if fit.converged else None
        return fit

    def p_value(self, delta: float) -> float:
        u = self.statistics(delta)
        return p_values(u, u[self.space.observed])["two-sided"]


# Effects beyond this on the logit / log scale (odds or rate ratios beyond e^30) are not searched:
# the fitted means saturate there, and such a limit is reported as infinite.
_MAX_LINK_EFFECT = 30.0


def _bracket(f, start: float, step: float, direction: int, cap: float = np.inf,
             limit: int = 60) -> tuple[float, float]:
    """Walk from ``start`` in ``direction`` doubling the step until f changes sign (within ``|delta| <= cap``)."""
    inner, f_inner = start, f(start)
    for _ in range(limit):
        outer = inner + direction * step
        if abs(outer) > cap:
            outer = direction * cap
            if outer == inner:
                break
        f_outer = f(outer)
        if np.sign(f_outer) != np.sign(f_inner) or f_outer == 0:
            return inner, outer
        if abs(outer) >= cap:
            break
        inner, f_inner, step = outer, f_outer, step * 2
    raise ValueError("no bracket")


def _cap(inv: _Inverter) -> float:
    return np.inf if inv.prep.family == "gaussian" else _MAX_LINK_EFFECT


def _estimate(inv: _Inverter, scale: float) -> float:
    """The delta at which the observed U is zero (U decreases with delta); infinite if there is none."""
    if inv.prep.family == "gaussian":
        return float(inv._u0[inv.space.observed] / inv._uw[inv.space.observed])
    direction = +1 if inv.observed(0.0) > 0 else -1
    try:
        a, b = _bracket(inv.observed, 0.0, scale, direction, cap=_cap(inv))
    except ValueError:  # e.g. no events in one arm: the estimate is at infinity
        return float(direction * np.inf)
    return float(optimize.brentq(inv.observed, min(a, b), max(a, b), xtol=1e-10))


def smallest_p_value(space: PermutationSpace) -> float:
    """The smallest two-sided p-value the space allows: the observed scheme and its mirror image
    (when the space holds it, it has the same |U|) always count."""
    mirror = SchemeSet.from_matrix(1 - space.observed_arm[None, :]).keys()[0]
    return (1 + int(np.any(space.schemes.keys() == mirror))) / len(space.schemes)


def _interval(inv: _Inverter, estimate: float, alpha: float, scale: float) -> tuple[float, float]:
    if smallest_p_value(inv.space) >= alpha:  # nothing can be rejected
        return -np.inf, np.inf
    f = lambda d: inv.p_value(d) - alpha + 1e-12  # >= 0 inside the interval
    start = float(np.clip(estimate, -_cap(inv), _cap(inv)))  # an infinite estimate: from the cap inwards
    limits = []
    for direction in (-1, +1):
        if np.isinf(estimate) and np.sign(estimate) == direction:
            limits.append(direction * np.inf)
            continue
        try:
            a, b = _bracket(f, start, scale, direction, cap=_cap(inv))
        except ValueError:
            limits.append(direction * np.inf)
            continue
        limits.append(float(optimize.brentq(f, min(a, b), max(a, b), xtol=1e-8 * max(1.0, abs(start)))))
    return limits[0], limits[1]


# -- the result ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PermutationResult:
    """A clustered permutation test.

    Attributes
    ----------
    statistic : the observed U (treated minus control mean of cluster-mean residuals).
    distribution : U for every scheme of the space (for histograms).
    p_value : p-value for ``alternative``; ``p_values`` has all three.
    n_schemes, n_clusters, n_individuals, n_dropped : sizes (rows dropped for missing values).
    estimate, conf_int : the effect on the link scale and its interval (when requested).
    """

    statistic: float
    distribution: np.ndarray
    p_value: float
    p_values: dict[str, float]
    alternative: str
    family: str
    n_schemes: int
    n_clusters: int
    n_individuals: int
    n_dropped: int
    observed_scheme: np.ndarray
    cluster_ids: np.ndarray
    estimate: float | None = None
    conf_int: tuple[float, float] | None = None
    conf_level: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def statement(self) -> str:
        """One sentence, like cptest's pvalue_statement."""
        side = {"two-sided": "two-sided", "greater": "one-sided (treatment > control)",
                "less": "one-sided (treatment < control)"}[self.alternative]
        text = (f"Clustered permutation test ({self.family}, {side}) over {self.n_schemes:,} schemes: "
                f"p-value = {self.p_value:.4g}")
        if self.conf_int is not None:
            text += (f"; effect {self.estimate:.4g} ({self.conf_level:.0%} CI {self.conf_int[0]:.4g} to "
                     f"{self.conf_int[1]:.4g}) on the {_SCALE[self.family]} scale")
        return text + "."

    def __repr__(self) -> str:
        ci = "" if self.conf_int is None else f", estimate={self.estimate:.4g}, conf_int=({self.conf_int[0]:.4g}, {self.conf_int[1]:.4g})"
        return (f"PermutationResult(statistic={self.statistic:.4g}, p_value={self.p_value:.4g}, "
                f"n_schemes={self.n_schemes}, family={self.family!r}{ci})")


_SCALE = {"gaussian": "mean difference", "binomial": "log odds ratio", "poisson": "log rate ratio"}


def permutation_test(
    data: pd.DataFrame,
    outcome: str,
    cluster: str,
    space: Any,
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    family: str = "gaussian",
    *,
    alternative: str = "two-sided",
    ci: bool = False,
    alpha: float = 0.05,
    cluster_ids: Sequence | None = None,
    observed: Any = None,
    simple_size: int = 50_000,
    seed: int | None = None,
) -> PermutationResult:
    """Clustered permutation test of the treatment effect over the randomization space.

    Parameters
    ----------
    data : one row per individual.
    outcome, cluster : column names of the outcome and the cluster id.
    space : the randomization space (see :func:`resolve_space`): a saved space file, an Allocation,
        a design with ``observed``, a SchemeSet or 0/1 matrix with ``cluster_ids`` and ``observed``,
        or ``"simple"`` with ``observed`` for the unconstrained space.
    covariates, categorical : adjustment covariates, and which are categorical.
    family : ``"gaussian"`` (continuous), ``"binomial"`` (binary 0/1) or ``"poisson"`` (counts).
    alternative : ``"two-sided"`` (default), ``"greater"`` or ``"less"``.
    ci : also invert the test for the effect estimate and its (1 - alpha) interval.
    cluster_ids : labels of the space's columns, when the space has none (a SchemeSet or matrix, or
        cvcrand's CSV; without them the CSV's columns are the data's clusters in sorted order).
    observed : the scheme that was used, when the space does not mark it: a scheme index, a 0/1 arm
        per cluster, or a mapping cluster -> arm.
    simple_size, seed : ``space="simple"`` enumerates every scheme with the observed number of treated
        clusters when there are at most ``simple_size``, else samples that many from ``seed``
        (the observed scheme included; the seed used is in ``notes``).
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative: must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    perm_space, prep = prepare_test(data, outcome, cluster, space, covariates, categorical, family,
                                    cluster_ids=cluster_ids, observed=observed, simple_size=simple_size, seed=seed)
    return run_test(prep, perm_space, alternative=alternative, ci=ci, alpha=alpha)


def prepare_test(data: pd.DataFrame, outcome: str, cluster: str, space: Any, covariates: Sequence[str] = (),
                 categorical: Sequence[str] = (), family: str = "gaussian", *, cluster_ids: Sequence | None = None,
                 observed: Any = None, simple_size: int = 50_000,
                 seed: int | None = None) -> tuple[PermutationSpace, PreparedData]:
    """Resolve the space and validate the data once (the test and the model-based companions share them)."""
    family = check_family(family)
    covariates, categorical = _names(covariates, "covariates"), _names(categorical, "categorical")
    if isinstance(space, str) and space == "simple":
        perm_space = _simple_from_observed(data, cluster, observed, cluster_ids, simple_size, seed)
    else:
        has_clusters = isinstance(data, pd.DataFrame) and cluster in data.columns
        perm_space = resolve_space(space, cluster_ids=cluster_ids, observed=observed,
                                   data_clusters=data[cluster].dropna().to_numpy() if has_clusters else None)
    return perm_space, prepare_data(data, outcome, cluster, perm_space, covariates, categorical, family)


def _simple_from_observed(data: pd.DataFrame, cluster: str, observed: Any, cluster_ids: Sequence | None,
                          size: int, seed: int | None) -> PermutationSpace:
    """The unconstrained space around the observed arms (a mapping cluster -> arm, or arms with cluster_ids)."""
    if observed is None or cluster_ids is None and not isinstance(observed, dict):
        raise ValueError("space='simple': pass observed as a mapping cluster -> arm (or with cluster_ids)")
    if isinstance(observed, dict):
        ids = np.asarray(list(observed))
        if isinstance(data, pd.DataFrame) and cluster in data.columns:  # every cluster of the data needs an arm
            _arm_from_mapping(observed, pd.unique(data[cluster].dropna()))
        arm = _arm_from_mapping(observed, ids)
    else:
        ids, arm = np.asarray(cluster_ids), np.asarray(observed)
    if len(arm) != len(ids) or not np.isin(arm, (0, 1)).all():
        raise ValueError(f"observed: expected a 0/1 arm for each of the {len(ids)} clusters")
    if size < 2:
        raise ValueError(f"simple_size: at least 2 schemes, got {size}")
    return simple_space(ids, int(arm.sum()), arm.astype(int), size=size, seed=seed)


def _names(columns: Sequence[str] | str | None, argument: str) -> list[str]:
    """Column names as a list (a single name is accepted as a string)."""
    if columns is None:
        return []
    names = [columns] if isinstance(columns, str) else list(columns)
    if len(set(names)) != len(names):
        raise ValueError(f"{argument}: a column is listed twice")
    return names


def run_test(prep: PreparedData, perm_space: PermutationSpace, *, alternative: str = "two-sided", ci: bool = False,
             alpha: float = 0.05) -> PermutationResult:
    """The test (and, with ``ci``, its inverted interval) on prepared data."""
    inv = _Inverter(prep, perm_space)
    u = inv.statistics(0.0)
    observed_u = float(u[perm_space.observed])
    pv = p_values(u, observed_u)
    notes = [perm_space.note] if perm_space.note else []
    if prep.n_dropped:
        notes.append(f"{prep.n_dropped} row(s) with missing values were dropped")
    arm = perm_space.observed_arm
    if arm.sum() != len(arm) - arm.sum():
        notes.append("unequal arms: U is formula (5) of the cvcrand paper, not cptest's +1/-1 coding")
    estimate = interval = None
    if ci:
        scale = _effect_scale(prep, u)
        estimate = _estimate(inv, scale)
        interval = _interval(inv, estimate, alpha, scale)
        if smallest_p_value(perm_space) >= alpha:
            notes.append(f"the space ({len(perm_space.schemes):,} schemes) is too small for a {1 - alpha:.0%} "
                         f"interval: its smallest p-value is {smallest_p_value(perm_space):.3g}, so no effect "
                         f"value is rejected at alpha = {alpha:g}")
        elif not np.all(np.isfinite(interval)):
            reach = "" if prep.family == "gaussian" else f" (searched to {_MAX_LINK_EFFECT:g} on the link scale)"
            notes.append(f"no effect value is rejected on one side{reach}: that limit is infinite"
                         + (" (all or no events in an arm?)" if not np.isfinite(estimate) else ""))
    return PermutationResult(
        statistic=observed_u, distribution=u, p_value=pv[alternative], p_values=pv, alternative=alternative,
        family=prep.family, n_schemes=len(perm_space.schemes), n_clusters=len(perm_space.cluster_ids),
        n_individuals=len(prep.y), n_dropped=prep.n_dropped, observed_scheme=arm,
        cluster_ids=perm_space.cluster_ids, estimate=estimate, conf_int=interval,
        conf_level=1 - alpha if ci else None, notes=notes)


def _effect_scale(prep: PreparedData, u: np.ndarray) -> float:
    """A step for bracketing: the permutation SD of U, put on the link scale."""
    sd = float(np.std(u)) or 1.0
    if prep.family == "gaussian":
        return sd
    mean = prep.y.mean()
    slope = mean * (1 - mean) if prep.family == "binomial" else mean  # d mu / d eta at the mean
    return sd / max(slope, 1e-6)
