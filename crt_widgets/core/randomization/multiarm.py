"""Multi-arm and factorial covariate-constrained randomization (ED-LEAD's design), as a declaration.

Candidates come from the balanced stratified generator (:mod:`crt_widgets.core.randomization.stratified`; with
no strata, complete randomization to K arms of near-equal size) and are scored for covariate
balance across arms; the constrained space keeps the best ones and one is chosen uniformly.

Balance metrics (covariates standardised to mean 0 and sd 1 with the n - 1 denominator, a
categorical covariate as dummies with its first level dropped, exactly as the two-arm engine;
``w_k`` the user weights; ``m_ak`` the mean of covariate k in arm a):

- ``balance="arms"``, ``metric="l2"``: ``sum_k w_k * mean over arm pairs (m_ak - m_bk)^2``, i.e.
  twice the between-arm variance of the arm means (n - 1 denominator over arms). With K = 2 this
  is the cvcrand paper's l2 (formula 3, mean differences of standardised covariates).
  ``metric="l1"``: ``sum_k w_k * mean over arm pairs |m_ak - m_bk|`` (the paper's l1 at K = 2).
  The two-arm engine (:mod:`crt_widgets.core.randomization.candidates`) follows cvcrand's code scale (sums over
  the treated arm) instead: at K = 2 its score is ours times ``(n_T n_C / n)^2`` (l2) or
  ``n_T n_C / n`` (l1) — a constant, so the same schemes are kept.
- ``balance="margins"`` (factorial designs): for every factor, the difference of covariate means
  between the arms with and without it (each main-effect comparison):
  ``sum_f v_f sum_k w_k d_fk^2`` (l2) or ``|d_fk|`` (l1), ``v_f`` the factor weights.

The cutoff is R's type-7 quantile of all candidate scores (ties at the cutoff kept), or the
``n_best`` best schemes (one rule for every design: :mod:`crt_widgets.core.randomization.acceptance`). Duplicate candidates are removed (exactly, row by row) before scoring.

Saved space (CSV, :meth:`MultiArmAllocation.save_space`): a header ``scheme,chosen,score,<unit
ids...>`` then one row per allocation of the constrained space: its number (1..S), ``1`` for the
allocation used and ``0`` otherwise, its balance score, and each unit's arm label.
:func:`read_multiarm_space` reads it back.

>>> from crt_widgets.datasets import simulate_edlead
>>> eds = simulate_edlead(seed=1)
>>> design = MultiArmDesign(eds, ["volume", "location"], factors=["a", "b", "c"], categorical=["location"],
...     strata="health_system", cluster_id="ed", size=20_000, cutoff=0.05, seed=7)
>>> allocation = design.draw()
>>> allocation.arm_sizes().tolist(), len(design.space_index)
([10, 10, 10, 10, 10, 10, 10, 10], 1000)
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.covariates import CovariateMatrix, prepare_covariates
from crt_widgets.core.randomization.acceptance import CutoffRule, rule_changes
from crt_widgets.core.randomization.allocation import AllocationRecord
from crt_widgets.core.randomization.scored import ScoredDesign
from crt_widgets.core.seeds import check_seed
from crt_widgets.core.io.files import from_chunks
from crt_widgets.core.io.spacefiles import arm_space_chunks, write_arm_space
from crt_widgets.core.spaces.space import RandomizationSpace
from crt_widgets.core.randomization.arms import Arms
from crt_widgets.core.randomization.balanced_sampler import check_whole_number, check_draws_memory
from crt_widgets.core.randomization.stratified import StratifiedDesign
from crt_widgets.core.diagnostics.tables import baseline_table, score_summary
from crt_widgets.core.diagnostics.validity import Validity, cluster_coincidence, pair_table_limit

METRICS = ("l2", "l1")
BALANCES = ("arms", "margins")
DEFAULT_SIZE = 100_000
_CHUNK = 50_000


# -- scores ----------------------------------------------------------------------------------------
def arm_sums(draws: np.ndarray, z: np.ndarray, n_arms: int) -> tuple[np.ndarray, np.ndarray]:
    """Per draw, the sum of each covariate column in each arm, and each arm's size.

    Returns (sums (n_draws, K, p), counts (n_draws, K)); one matrix product per arm (one-hot rows).
    """
    sums = np.empty((len(draws), n_arms, z.shape[1]))
    counts = np.empty((len(draws), n_arms))
    for a in range(n_arms):
        onehot = (draws == a).astype(np.float64)
        sums[:, a] = onehot @ z
        counts[:, a] = onehot.sum(axis=1)
    return sums, counts


def multiarm_scores(draws: np.ndarray, z: np.ndarray, weights: np.ndarray, n_arms: int,
                    metric: str = "l2", balance: str = "arms", levels: np.ndarray | None = None,
                    factor_weights: np.ndarray | None = None) -> np.ndarray:
    """Balance score of each allocation (rows of ``draws``, arm indices) on the covariates ``z``
    (already standardised, one column per covariate or dummy) with column ``weights``.

    >>> z = np.array([[-1.0], [1.0], [-1.0], [1.0]])
    >>> multiarm_scores(np.array([[0, 0, 1, 1], [0, 1, 0, 1]]), z, np.ones(1), 2).tolist()
    [0.0, 4.0]
    """
    draws = np.asarray(draws)
    z = np.asarray(z, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    out = np.empty(len(draws))
    pairs = list(itertools.combinations(range(n_arms), 2))
    total = z.sum(axis=0)
    for start in range(0, len(draws), _CHUNK):
        block = draws[start: start + _CHUNK]
        sums, counts = arm_sums(block, z, n_arms)
        if balance == "arms":
            with np.errstate(invalid="ignore", divide="ignore"):
                means = sums / counts[:, :, None]
            if metric == "l2":
                dev = means - means.mean(axis=1, keepdims=True)
                per_cov = 2.0 * (dev ** 2).sum(axis=1) / (n_arms - 1)
            else:
                per_cov = sum(np.abs(means[:, a] - means[:, b]) for a, b in pairs) / len(pairs)
            out[start: start + len(block)] = per_cov @ w
        else:
            fw = np.ones(levels.shape[1]) if factor_weights is None else factor_weights
            score = np.zeros(len(block))
            n = counts.sum(axis=1)
            for f in range(levels.shape[1]):
                on = levels[:, f].astype(bool)
                s_on, n_on = sums[:, on].sum(axis=1), counts[:, on].sum(axis=1)
                d = s_on / n_on[:, None] - (total - s_on) / (n - n_on)[:, None]
                score += fw[f] * ((d ** 2 if metric == "l2" else np.abs(d)) @ w)
            out[start: start + len(block)] = score
    return out


def unique_rows(draws: np.ndarray) -> tuple[np.ndarray, int]:
    """Positions of the first occurrence of each distinct row (in order), and the duplicate count.

    A 64-bit hash finds candidate duplicates fast; rows with equal hashes are then compared
    element by element, so the result is exact.
    """
    n, m = draws.shape
    mult = np.random.default_rng(0x5EED).integers(1, 2 ** 63, m, dtype=np.uint64) | np.uint64(1)
    h = np.zeros(n, dtype=np.uint64)
    for i in range(m):
        h += draws[:, i].astype(np.uint64) * mult[i]
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same_hash = np.flatnonzero(hs[1:] == hs[:-1])
    if len(same_hash) == 0:
        return np.arange(n), 0
    drop = np.zeros(n, dtype=bool)
    # groups of equal hashes: compare each row with every earlier row of its group (groups are tiny)
    starts = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1]])
    ends = np.r_[starts[1:], n]
    for s, e in zip(starts, ends):
        if e - s < 2:
            continue
        rows = np.sort(order[s:e])
        for i, r in enumerate(rows[1:], 1):
            if any(np.array_equal(draws[r], draws[q]) for q in rows[:i] if not drop[q]):
                drop[r] = True
    keep = np.flatnonzero(~drop)
    return keep, int(drop.sum())


# -- validity ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PairValidity:
    """How often each unit pair shares an arm in the constrained space, against the unconstrained design.

    Attributes
    ----------
    constrained : :class:`~crt_widgets.core.validity.Validity` of the constrained space (counts, tables).
    unconstrained_fraction : (n, n) the unconstrained design's same-arm rate of each pair: exact for
        two units of one stratum (``[r m (m + 1) + (K - r) m (m - 1)] / (s (s - 1))`` for a stratum of
        ``s = m K + r``), and for units of different strata the mean over all candidates of
        ``sum_a c_ja c_la / (s_j s_l)`` (the design orders units within a stratum at random, so
        every such pair of the two strata has this rate).
    """

    constrained: Validity
    unconstrained_fraction: np.ndarray | None  # None when the space is too large for pair counts

    @property
    def cluster_ids(self) -> np.ndarray:
        return self.constrained.cluster_ids

    @property
    def available(self) -> bool:
        """Whether the pair counts were computed (see :attr:`Validity.unavailable`)."""
        return self.constrained.available

    @property
    def unavailable(self) -> str:
        return self.constrained.unavailable

    @property
    def same_fraction(self) -> np.ndarray:
        return self.constrained.same_fraction

    @property
    def difference(self) -> np.ndarray:
        """Constrained minus unconstrained same-arm rate, per pair."""
        return self.same_fraction - self.unconstrained_fraction

    @property
    def max_abs_difference(self) -> float:
        i, j = np.triu_indices(len(self.cluster_ids), k=1)
        return float(np.max(np.abs(self.difference[i, j])))

    def pairs(self, top: int | None = 10) -> pd.DataFrame:
        """Unit pairs ordered by how far their constrained rate departs from the unconstrained one."""
        i, j = np.triu_indices(len(self.cluster_ids), k=1)
        ids = self.cluster_ids
        table = pd.DataFrame({"unit_1": ids[i], "unit_2": ids[j],
                              "same_arm": self.constrained.same_counts[i, j],
                              "fraction": self.same_fraction[i, j],
                              "unconstrained": self.unconstrained_fraction[i, j],
                              "difference": self.difference[i, j]})
        table = table.reindex(table["difference"].abs().sort_values(ascending=False, kind="stable").index)
        return table.reset_index(drop=True).head(top) if top else table.reset_index(drop=True)

    def table(self) -> pd.DataFrame:
        """The descriptive table of the constrained space (as the two-arm ``Validity.table``)."""
        return self.constrained.table()

    def messages(self, tolerance: float = 0.0) -> list[str]:
        """Pairs the constraint ties together or keeps apart, beyond what the unconstrained design does
        (pairs of a small stratum are never together by design and are not reported)."""
        if not self.constrained.available:
            return self.constrained.messages()
        i, j = np.triu_indices(len(self.cluster_ids), k=1)
        f, u = self.same_fraction[i, j], self.unconstrained_fraction[i, j]
        ids = self.cluster_ids
        out = []
        for text, mask in [("always in the same arm", (f >= 1.0) & (u < 1.0 - tolerance)),
                           ("never in the same arm", (f <= 0.0) & (u > tolerance))]:
            if mask.any():
                shown = ", ".join(f"{ids[a]}-{ids[b]}" for a, b in zip(i[mask][:8], j[mask][:8]))
                more = f" (+{int(mask.sum()) - 8} more)" if mask.sum() > 8 else ""
                out.append(f"{int(mask.sum())} pair(s) are {text} only because of the constraint: {shown}{more}")
        return out

    def __repr__(self) -> str:
        v = self.constrained
        if not v.available:
            return f"PairValidity(n_schemes={v.n_schemes:,}, not computed: {v.unavailable})"
        f = v.pair_values() / v.n_schemes
        return (f"PairValidity(n_schemes={v.n_schemes:,}, same-arm fraction {f.min():.3f}..{f.max():.3f}, "
                f"largest departure from unconstrained {self.max_abs_difference:.3f}, "
                f"always={len(v.always_together)}, never={len(v.never_together)})")


def unconstrained_same_arm(draws: np.ndarray, codes: np.ndarray, n_arms: int) -> np.ndarray:
    """(n, n) same-arm rate of the unconstrained stratified design (see :class:`PairValidity`)."""
    sizes = np.bincount(codes)
    J = len(sizes)
    together = np.zeros((J, J))
    for start in range(0, len(draws), _CHUNK):
        block = draws[start: start + _CHUNK]
        for a in range(n_arms):
            onehot = (block == a).astype(np.float64)
            c = np.zeros((len(block), J))
            for j in range(J):
                c[:, j] = onehot[:, codes == j].sum(axis=1)
            together += c.T @ c
    rate = together / len(draws) / np.outer(sizes, sizes)
    m, r = np.divmod(sizes, n_arms)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = (r * m * (m + 1) + (n_arms - r) * m * (m - 1)) / (sizes * (sizes - 1))
    np.fill_diagonal(rate, np.nan_to_num(within))
    out = rate[np.ix_(codes, codes)]
    np.fill_diagonal(out, 1.0)
    return out


# -- the design ------------------------------------------------------------------------------------
# what MultiArmDesign.rescore may change: the scoring and the cutoff rule, never the candidates
RESCORE_CHANGES = {"weights", "metric", "balance", "factor_weights", "cutoff", "n_best"}


class MultiArmDesign(ScoredDesign):
    """Covariate-constrained randomization of clusters to K arms (or a 2^F factorial), optionally
    stratified with perfect balance.

    Parameters
    ----------
    data : one row per cluster.
    covariates : columns to balance.
    n_arms : number of arms or a list of arm labels (default 8 when no factors are given).
    factors : names of two-level factors (full factorial; arms none, a, b, ..., a+b, ...).
    categorical : covariates to dummy-code (first level dropped).
    cluster_id : column with the cluster labels (default 1..n).
    strata : column whose strata get every arm before any repeats (ED-LEAD's health systems);
        ``None`` for complete randomization to K arms.
    metric : ``"l2"`` or ``"l1"``; balance : ``"arms"`` (all arms) or ``"margins"`` (factorial).
    weights : user weight per covariate (list or mapping); factor_weights : one per factor (margins).
    cutoff : keep schemes scoring at or below this quantile of all scores (ties kept), or
    n_best : keep the ``n_best`` best schemes instead.
    size : number of candidate allocations to draw (duplicates are removed).
    method : sampler of the stratified generator (``"auto"``, ``"exact"`` or ``"sequential"``).
    seed : seed of everything random; ``None`` takes fresh entropy and records it.
    """

    method_name = "multi-arm covariate-constrained randomization"
    candidate_word = "allocations"


    def __init__(self, data: pd.DataFrame, covariates: Sequence[str], n_arms: int | Sequence[str] | None = None,
                 *, factors: Sequence[str] | None = None, categorical: Sequence[str] = (),
                 cluster_id: str | None = None, strata: str | None = None, metric: str = "l2",
                 balance: str = "arms", weights: Sequence[float] | Mapping[str, float] | None = None,
                 factor_weights: Sequence[float] | None = None, cutoff: float | None = 0.1,
                 n_best: int | None = None, size: int = DEFAULT_SIZE, method: str = "auto",
                 seed: int | None = None) -> None:
        if not isinstance(data, pd.DataFrame):
            raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
        self.seed = check_seed(seed)
        self._declare(locals(), self.seed)
        self.data = data
        self.covariates = [covariates] if isinstance(covariates, str) else list(covariates)
        self.categorical = [categorical] if isinstance(categorical, str) else list(categorical or ())
        self.cluster_id = cluster_id
        self.arms = Arms.build(8 if n_arms is None and factors is None else n_arms, factors)
        if metric not in METRICS:
            raise ValueError(f"metric: must be one of {', '.join(METRICS)}, got {metric!r}")
        if balance not in BALANCES:
            raise ValueError(f"balance: must be one of {', '.join(BALANCES)}, got {balance!r}")
        if balance == "margins" and not self.arms.is_factorial:
            raise ValueError("balance: 'margins' needs a factorial design; give factors=[...]")
        self.metric, self.balance = metric, balance
        self.factor_weights = None
        if factor_weights is not None:
            if not self.arms.is_factorial:
                raise ValueError("factor_weights: only for a factorial design (factors=[...])")
            fw = np.asarray(factor_weights, dtype=float).ravel()
            if len(fw) != len(self.arms.factors) or not np.isfinite(fw).all() or (fw < 0).any():
                raise ValueError(f"factor_weights: need {len(self.arms.factors)} finite weights >= 0")
            self.factor_weights = fw
        self.weights = weights
        self.strata = strata
        if strata is not None:
            if strata not in data.columns:
                raise ValueError(f"strata: column {strata!r} is not in the data")
            labels = data[strata]
        else:
            labels = pd.Series(["all"] * len(data))
        self.rule = CutoffRule.check(cutoff, n_best)
        self.cutoff, self.n_best = self.rule.cutoff, self.rule.n_best
        self.size = check_whole_number(size, "size", 2)
        check_draws_memory(self.size, len(data) if isinstance(data, pd.DataFrame) else 0, "size")
        self.covariate_matrix  # validates covariates, categorical, cluster_id, weights
        # independent streams: one seeds the candidate generator, the other the final choice
        candidates_seq, self._choice_seed = np.random.SeedSequence(self.seed).spawn(2)
        self.generator = StratifiedDesign(labels.to_numpy(), list(self.arms.labels) if not self.arms.is_factorial
                                          else None, factors=self.arms.factors or None,
                                          unit_ids=self.cluster_ids, method=method,
                                          seed=int(candidates_seq.generate_state(1, np.uint64)[0]))

    # -- inputs ------------------------------------------------------------------------------
    @cached_property
    def covariate_matrix(self) -> CovariateMatrix:
        return prepare_covariates(self.data, self.covariates, self.categorical, self.cluster_id, self.weights)

    @property
    def cluster_ids(self) -> np.ndarray:
        return self.covariate_matrix.cluster_ids

    @property
    def n_clusters(self) -> int:
        return len(self.data)

    @property
    def n_arms(self) -> int:
        return self.arms.n_arms

    # -- candidates and scores ---------------------------------------------------------------------
    @cached_property
    def _candidates(self) -> tuple[np.ndarray, int]:
        draws = self.generator.sample(self.size)
        keep, n_dup = unique_rows(draws)
        return (draws if n_dup == 0 else draws[keep]), n_dup

    @property
    def candidates(self) -> np.ndarray:
        """(n_candidates, n_clusters) arm indices of the distinct candidate allocations."""
        return self._candidates[0]

    @property
    def n_duplicates(self) -> int:
        return self._candidates[1]

    @cached_property
    def scores(self) -> np.ndarray:
        cov = self.covariate_matrix
        return multiarm_scores(self.candidates, cov.standardized, cov.weights, self.n_arms, self.metric,
                               self.balance, self.arms.levels, self.factor_weights)

    @cached_property
    def _acceptance(self) -> tuple[np.ndarray, float]:
        self.rule.check_candidates(len(self.scores), "candidates")
        return self.rule.apply(self.scores)

    @cached_property
    def space(self) -> RandomizationSpace:
        """The constrained space: the kept candidates, a random sample of the design's allocations."""
        return RandomizationSpace.from_arms(self.candidates[self.space_index], self.cluster_ids, self.arms.labels,
                                            scores=self.space_scores, exhaustive=False,
                                            n_possible=self.generator.n_possible)

    @property
    def space_scores(self) -> np.ndarray:
        return self.scores[self.space_index]

    @cached_property
    def _unconstrained_same_arm(self) -> np.ndarray:
        """The reference rates of validity: they depend on the candidates only."""
        return unconstrained_same_arm(self.candidates, self.generator.codes, self.n_arms)

    @cached_property
    def validity(self) -> PairValidity:
        """Pair coincidence in the constrained space against the unconstrained design."""
        reason = pair_table_limit(self.n_clusters, len(self.space_index))
        if reason:  # no (n, n) matrices: the validity says why
            return PairValidity(Validity(self.cluster_ids, None, len(self.space_index), unavailable=reason), None)
        reference = self._unconstrained_same_arm
        i, j = np.triu_indices(self.n_clusters, k=1)
        constrained = cluster_coincidence(self.space.arm_matrix(), self.cluster_ids, n_arms=self.n_arms,
                                          expected_fraction=float(reference[i, j].mean()))
        return PairValidity(constrained, reference)

    def rescore(self, **changes: Any) -> "MultiArmDesign":
        """A copy with new ``weights``, ``metric``, ``balance``, ``factor_weights``, ``cutoff`` or ``n_best``,
        scoring the candidate allocations already drawn (the cheap path for sliders).

        >>> from crt_widgets.datasets import simulate_edlead
        >>> eds = simulate_edlead(seed=1)
        >>> design = MultiArmDesign(eds, ["volume", "location"], 8, categorical=["location"],
        ...                         cluster_id="ed", strata="health_system", size=2_000, seed=1)
        >>> looser = design.rescore(cutoff=0.5, weights=[1, 0])
        >>> looser.candidates is design.candidates, len(looser.space_index) > len(design.space_index)
        (True, True)
        """
        unknown = set(changes) - RESCORE_CHANGES
        if unknown:
            raise ValueError(f"rescore: cannot change {', '.join(sorted(unknown))} without drawing new "
                             "candidates; make a new MultiArmDesign")
        new = self.with_params(**rule_changes(self.get_params(), changes))
        new.__dict__["_candidates"] = self._candidates  # they depend on nothing a rescore may change
        if "_unconstrained_same_arm" in self.__dict__:
            new.__dict__["_unconstrained_same_arm"] = self._unconstrained_same_arm
        return new

    # -- messages and records ---------------------------------------------------------------
    @property
    def assignment_message(self) -> str:
        lo, hi = self.generator.arm_size_range
        sizes = f"{lo} clusters each" if lo == hi else f"{lo} or {hi} clusters each"
        strata = f", balanced within every stratum of {self.strata}" if self.strata else ""
        return (f"You have indicated that you want to assign {self.n_clusters} clusters to {self.n_arms} arms "
                f"({', '.join(map(str, self.arms.labels))}) of {sizes}{strata}")

    @property
    def scheme_message(self) -> str:
        return (f"{len(self.scores):,} distinct allocations sampled from {self.size:,} draws "
                f"({self.n_duplicates:,} duplicate(s) removed)")

    @property
    def cutoff_message(self) -> str:
        rule = "keeps " + self.rule.describe("allocations")
        return (f"Balance metric {self.metric}; the constrained space {rule}: cutoff score "
                f"{self.cutoff_score:.3f}, {len(self.space_index):,} of {len(self.scores):,} allocations")

    @property
    def diagnostics(self) -> list[str]:
        """Warnings a statistician should see before randomizing (small space, lost validity)."""
        return self.small_space_notes() + self.covariate_matrix.weight_notes() + self.validity.messages()

    # -- drawing ---------------------------------------------------------------------------
    @property
    def allocation_type(self) -> type:
        return MultiArmAllocation

    @property
    def _choice_stream(self) -> np.random.SeedSequence:
        return self._choice_seed

    def parameters(self) -> dict[str, Any]:
        """Every input that determines the result (for the audit trail)."""
        return {**super().parameters(), "method": self.method_name, "covariates": self.covariates,
                "categorical": self.categorical, "cluster_id": self.cluster_id, "strata": self.strata,
                "arms": list(self.arms.labels), "factors": list(self.arms.factors), "metric": self.metric,
                "balance": self.balance, "weights": self.weights, "cutoff": self.cutoff, "n_best": self.n_best,
                "size": self.size, "sampler": self.generator.method, "seed": self.seed}

    def __repr__(self) -> str:
        rule = f"n_best={self.n_best}" if self.n_best is not None else f"cutoff={self.cutoff}"
        return (f"MultiArmDesign(n_clusters={self.n_clusters}, arms={list(self.arms.labels)}, strata={self.strata!r}, "
                f"covariates={self.covariates}, metric={self.metric!r}, balance={self.balance!r}, {rule}, "
                f"size={self.size:,}, seed={self.seed})")


class MultiArmAllocation(AllocationRecord):
    """The chosen allocation with the summary of scores, baseline table, validity and saved space."""

    unit_word = "Allocation"

    @property
    def allocation(self) -> pd.DataFrame:
        """Cluster id, arm index, arm label (and one 0/1 column per factor)."""
        d = self.design
        out = pd.DataFrame({d.cluster_id or "cluster": d.cluster_ids, "arm": self.arm, "arm_label": self.arm_label})
        if d.strata is not None:
            out.insert(1, d.strata, d.data[d.strata].to_numpy())
        if d.arms.is_factorial:
            for f, name in enumerate(d.arms.factors):
                out[name] = d.arms.levels[self.arm, f].astype(int)
        return out

    @property
    def summary(self) -> pd.DataFrame:
        """cvcrand's ``bscores`` rows: selected score, cutoff, mean, SD, min, quantiles, max."""
        return score_summary(self.design.scores, self.score, self.design.cutoff_score)

    @property
    def baseline_table(self) -> pd.DataFrame:
        """Covariates by arm (columns ``arm = label``) with the largest pairwise standardized difference."""
        d = self.design
        return baseline_table(d.data, d.covariates, d.categorical, self.arm_label, list(d.arms.labels))

    @property
    def validity(self) -> PairValidity:
        return self.design.validity

    def save_space(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the constrained space as CSV (see the module docstring for the format), atomically; an
        existing file is refused unless ``overwrite``."""
        d = self.design
        return write_arm_space(path, d.cluster_ids, d.space.arm_matrix(), d.arms.labels, self.space_position,
                               d.space_scores, overwrite=overwrite)

    def two_arm(self, *, factor: str | None = None, treated: Sequence[str] | None = None,
                control: Sequence[str] | None = None):
        """The space of one two-group comparison (see :meth:`AllocationRecord.two_arm`).

        >>> from crt_widgets.datasets import simulate_edlead
        >>> a = MultiArmDesign(simulate_edlead(seed=1), ["volume"], factors=["a", "b", "c"], strata="health_system",
        ...                    cluster_id="ed", size=2000, seed=7).draw()
        >>> space = a.two_arm(factor="a")
        >>> int(space.chosen_scheme.sum()), space.metadata["treated_arms"]
        (40, ['a', 'a+b', 'a+c', 'a+b+c'])
        """
        return super().two_arm(factor=factor, treated=treated, control=control)

    def save(self, directory: str | Path, stem: str = "multiarm", *, overwrite: bool = False,
             record: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write everything: allocation CSV, the constrained space CSV, and last the audit JSON (with the space
        file's SHA-256 and allocation count, and ``record``'s entries). All or nothing, never over an existing
        file unless ``overwrite`` (see :meth:`save_files`).

        >>> import json, tempfile
        >>> from crt_widgets.datasets import load_dickinson
        >>> a = MultiArmDesign(load_dickinson(), ["inciis"], 4, cluster_id="county", size=2000, seed=1).draw()
        >>> files = a.save(tempfile.mkdtemp())
        >>> json.loads(files["audit"].read_text())["parameters"]["seed"]
        1
        """
        d = self.design
        chunks = from_chunks(arm_space_chunks(d.cluster_ids, d.space.arm_matrix(), d.arms.labels,
                                              self.space_position, d.space_scores))
        return self.save_files(directory, {
            "allocation": (f"{stem}_allocation.csv", self.allocation.to_csv(index=False), None),
            "space": (f"{stem}_space.csv", chunks, len(d.space)),
        }, f"{stem}_audit.json", overwrite=overwrite, record=record)

    def __repr__(self) -> str:
        return (f"MultiArmAllocation(score={self.score:.4f}, arm sizes {self.arm_sizes().tolist()}, "
                f"seed={self.seed}, space={len(self.design.space_index):,} of {len(self.design.scores):,})")
