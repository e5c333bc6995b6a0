"""Covariate-constrained randomization of the order in which clusters cross over (stepped wedge and any
other multi-period design), as a declaration on the engine and protocol of the other designs.

Randomizing a multi-period trial means assigning clusters to sequences, ``clusters_per_sequence[s]`` of them
to sequence ``s`` of a :class:`~crt_widgets.core.multiperiod.designs.MultiPeriodDesign`; there are
``n! / prod_s c_s!`` such assignments. The arms of the space are the sequences: every assignment is listed
when there are at most ``size`` of them, else ``size`` are drawn uniformly and duplicates removed (as the
multi-arm engine does). Each candidate is scored for covariate balance, the constrained space keeps the best
(``cutoff`` quantile or ``n_best``, ties at the cutoff kept: :mod:`crt_widgets.core.randomization.acceptance`),
and one assignment is drawn uniformly from it (Moulton 2004; Li et al. 2016).

Balance scores (covariates standardised to mean 0 and SD 1 with the n - 1 denominator, a categorical covariate
as dummies with its first level dropped; ``w_k`` the user weights):

- ``balance="sequences"`` (default): the multi-arm score over the sequences, ``sum_k w_k * mean over sequence
  pairs (m_ak - m_bk)^2`` (``metric="l2"``) or ``|m_ak - m_bk|`` (``"l1"``), ``m_ak`` the mean of covariate k
  on sequence a. Balanced sequences make every period's treated-control comparison balanced, whatever the
  analysis weights; with one or two clusters per sequence it is a demanding target.
- ``balance="time"``: the balance of each covariate with time on treatment, ``sum_k w_k r_k^2`` (l2) or
  ``|r_k|`` (l1), ``r_k`` the correlation over clusters between covariate k and the cluster's number of treated
  periods. It asks one thing per covariate: that clusters crossing over early do not differ from those crossing
  over late, the imbalance that confounds the treatment with calendar time. Lew et al. (2019) balance sites
  over the waves of a stepped wedge for this reason ("sequential balance"); Chaussée, Dickinson and Fairclough
  (2021) adapt the cvcrand-type l2 score to the stepped wedge and find that excluding only the most unbalanced
  orders works best. We have not seen their score's exact form and do not claim to reproduce it.

Cluster sizes are balanced by listing the size column among the covariates. ``stratify`` keeps only assignments
that spread every stratum over the sequences as evenly as the sequence sizes allow (each stratum j puts
``floor`` or ``ceil`` of ``n_j c_s / n`` clusters on sequence s; such a table always exists, Cox 1987); the
stratified space is counted, enumerated and sampled exactly (uniform over the assignments that satisfy it).

Validity (:attr:`SteppedWedgeDesign.validity`): how often each pair of clusters shares a sequence in the
constrained space, against the exact rate of the unconstrained (stratified) design; the
:meth:`SteppedWedgeDesign.balance_comparison` table shows, for the chosen space, how the constraint changes the
balance of each covariate with time on treatment and between sequences, against simple randomization.

>>> import crt_widgets as crt
>>> clusters = crt.datasets.simulate_stepped_wedge_clusters(12, seed=1)
>>> design = SteppedWedgeDesign(clusters, ["size", "baseline"], crt.stepped_wedge(4, 3), cluster_id="cluster",
...                             size=400_000, seed=5)
>>> design.n_possible, design.enumerated, len(design.space), design.space.n_arms
(369600, True, 36960, 4)
>>> allocation = design.draw()
>>> allocation.treatment_matrix().shape, allocation.arm_sizes().tolist()
((12, 5), [3, 3, 3, 3])
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.diagnostics.tables import baseline_table, score_summary
from crt_widgets.core.diagnostics.validity import cluster_coincidence
from crt_widgets.core.io.files import from_chunks
from crt_widgets.core.io.spacefiles import arm_space_chunks, write_arm_space
from crt_widgets.core.multiperiod.designs import MultiPeriodDesign, design_grid, stepped_wedge
from crt_widgets.core.randomization.acceptance import CutoffRule, rule_changes
from crt_widgets.core.randomization.allocation import AllocationRecord
from crt_widgets.core.randomization.multiarm import PairValidity, arm_sums, multiarm_scores, unique_rows
from crt_widgets.core.randomization.scored import ScoredDesign
from crt_widgets.core.seeds import check_seed
from crt_widgets.core.spaces.space import RandomizationSpace

METRICS = ("l2", "l1")
BALANCES = ("sequences", "time")
DEFAULT_SIZE = 100_000
# the most assignments one design lists or samples (an int8 row per assignment: 30 clusters -> 600 MB)
MAX_CANDIDATES = 20_000_000
# stratum tables (strata x sequences counts) listed at most: beyond, the strata are too many or too fine
MAX_TABLES = 20_000
_CHUNK = 50_000
# what SteppedWedgeDesign.rescore may change: the scoring and the rule, never the candidates
RESCORE_CHANGES = {"weights", "metric", "balance", "cutoff", "n_best"}
TWO_GROUP_MESSAGE = ("space: a multi-period design's arms are sequences, and its clusters change condition from "
                     "period to period; the permutation test here compares two groups of clusters. Use "
                     "crt_widgets.stepped_wedge_permutation_test(data, outcome, cluster, period, allocation), which "
                     "permutes the sequences among the clusters")


# -- the assignments of clusters to sequences -------------------------------------------------------------
def count_orders(counts: Sequence[int]) -> int:
    """The number of assignments of ``sum(counts)`` clusters to sequences with ``counts[s]`` on sequence s.

    >>> count_orders([3, 3, 3, 3]), count_orders([2, 0, 1])
    (369600, 3)
    """
    total, out = 0, 1
    for c in counts:
        total += int(c)
        out *= math.comb(total, int(c))
    return out


def enumerate_orders(counts: Sequence[int]) -> np.ndarray:
    """Every assignment of ``sum(counts)`` units to sequences with ``counts[s]`` units on sequence s, as an
    (assignments, units) int8 matrix of sequence indices. Built a sequence at a time: the units of sequence s
    are every combination of the positions still free, for all partial rows at once.

    >>> enumerate_orders([1, 2]).tolist()
    [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    """
    counts = [int(c) for c in counts]
    n = sum(counts)
    rows = np.full((1, n), len(counts) - 1, dtype=np.int8)  # the last sequence takes what is left
    free = np.arange(n, dtype=np.int32)[None, :]
    for s, c in enumerate(counts[:-1]):
        f = free.shape[1]
        if c == 0:
            continue
        chosen = np.array(list(itertools.combinations(range(f), c)), dtype=np.int32)      # (m, c)
        m, r = len(chosen), len(rows)
        still_free = np.ones((m, f), dtype=bool)
        still_free[np.arange(m)[:, None], chosen] = False
        rest = np.nonzero(still_free)[1].reshape(m, f - c).astype(np.int32)               # (m, f - c)
        rows = np.repeat(rows, m, axis=0)
        free = np.repeat(free, m, axis=0)
        taken = np.take_along_axis(free, np.tile(chosen, (r, 1)), axis=1)
        np.put_along_axis(rows, taken, s, axis=1)
        free = np.take_along_axis(free, np.tile(rest, (r, 1)), axis=1)
    return rows


def sample_orders(counts: Sequence[int], size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` assignments drawn uniformly (with replacement): random permutations of the sequence labels.

    >>> rows = sample_orders([2, 1], 4, np.random.default_rng(0))
    >>> rows.shape, np.bincount(rows.ravel()).tolist()
    ((4, 3), [8, 4])
    """
    base = np.repeat(np.arange(len(counts), dtype=np.int8), np.asarray(counts, dtype=np.int64))
    out = np.empty((size, len(base)), dtype=np.int8)
    for start in range(0, size, _CHUNK):  # blocks bound the memory of the random keys
        k = min(_CHUNK, size - start)
        out[start: start + k] = base[np.argsort(rng.random((k, len(base))), axis=1)]
    return out


class StratumTables:
    """The ways strata can spread over the sequences: tables (strata x sequences) of cluster counts whose row
    sums are the strata's sizes, column sums the sequences' sizes, and cells ``floor`` or ``ceil`` of
    ``n_j c_s / n``; each table carries its number of assignments, ``prod_j n_j! / prod_s T_js!``.

    >>> tables = StratumTables.build(np.array([0, 0, 1, 1, 1, 1]), [2, 2, 2])
    >>> tables.tables.shape, tables.n_possible
    ((3, 2, 3), 72)
    """

    def __init__(self, codes: np.ndarray, labels: tuple, counts: np.ndarray, tables: np.ndarray,
                 weights: list[int]) -> None:
        self.codes, self.labels, self.counts, self.tables, self.weights = codes, labels, counts, tables, weights

    @classmethod
    def build(cls, codes: np.ndarray, counts: Sequence[int], labels: tuple = ()) -> "StratumTables":
        counts = np.asarray(counts, dtype=np.int64)
        sizes = np.bincount(codes)
        n = int(sizes.sum())
        lo = sizes[:, None] * counts[None, :] // n
        hi = -((-sizes[:, None] * counts[None, :]) // n)
        # each stratum's possible rows: floor everywhere plus one more on ``extra`` of the fractional sequences
        options = []
        for j in range(len(sizes)):
            free = np.flatnonzero(hi[j] > lo[j])
            extra = int(sizes[j] - lo[j].sum())
            combos = list(itertools.combinations(free.tolist(), extra))
            ups = np.array(combos, dtype=np.int64).reshape(len(combos), extra)
            rows = np.repeat(lo[j][None, :], len(ups), axis=0)
            rows[np.arange(len(ups))[:, None], ups] += 1
            options.append(rows)
        found: list[np.ndarray] = []
        visited = [0]

        def walk(j: int, room: np.ndarray, rows: list) -> None:
            if j == len(sizes):
                if not room.any():
                    found.append(np.array(rows))
                return
            visited[0] += 1
            if len(found) > MAX_TABLES or visited[0] > 10 * MAX_TABLES:
                raise ValueError(f"stratify: the strata can spread over the sequences in too many ways (more than "
                                 f"{MAX_TABLES:,} tables of counts); use fewer or coarser strata")
            fits = options[j][(options[j] <= room).all(axis=1)]  # every feasible row at once
            for row in fits:
                walk(j + 1, room - row, rows + [row])

        walk(0, counts.copy(), [])
        if not found:  # pragma: no cover - controlled rounding always exists (Cox 1987)
            raise ValueError("stratify: no assignment spreads every stratum evenly over the sequences")
        tables = np.stack(found)
        weights = [math.prod(count_orders(t) for t in table) for table in tables]
        return cls(codes, tuple(labels), counts, tables, weights)

    @property
    def n_possible(self) -> int:
        return sum(self.weights)

    def positions(self) -> list[np.ndarray]:
        """Each stratum's cluster positions."""
        return [np.flatnonzero(self.codes == j) for j in range(self.tables.shape[1])]

    def enumerate(self) -> np.ndarray:
        """Every stratified assignment: per table, the product of every stratum's orders."""
        n = len(self.codes)
        blocks = []
        for table in self.tables:  # a loop over tables (few), each one vectorised
            rows = np.zeros((1, n), dtype=np.int8)
            for where, counts in zip(self.positions(), table):
                orders = enumerate_orders(counts)
                r = len(rows)
                rows = np.repeat(rows, len(orders), axis=0)
                rows[:, where] = np.tile(orders, (r, 1))
            blocks.append(rows)
        return np.concatenate(blocks)

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` stratified assignments drawn uniformly: a table in proportion to its assignments, then
        every stratum's order uniformly; rows shuffled so that the table does not show in the row order."""
        total = self.n_possible
        per_table = rng.multinomial(size, [w / total for w in self.weights])
        out = np.empty((size, len(self.codes)), dtype=np.int8)
        start = 0
        for table, k in zip(self.tables, per_table):
            if k == 0:
                continue
            for where, counts in zip(self.positions(), table):
                out[start: start + k][:, where] = sample_orders(counts, int(k), rng)
            start += k
        return out[rng.permutation(size)]

    def same_sequence_rate(self) -> np.ndarray:
        """(n, n) exact rate at which two clusters share a sequence under the unconstrained stratified design:
        ``E[sum_s T_js (T_js - 1)] / (n_j (n_j - 1))`` within stratum j and ``E[sum_s T_js T_ls] / (n_j n_l)``
        across, the expectation over tables weighted by their number of assignments."""
        p = np.array([w / self.n_possible for w in self.weights])
        t = self.tables.astype(float)
        sizes = t[0].sum(axis=1)
        across = np.einsum("k,kjs,kls->jl", p, t, t) / np.outer(sizes, sizes)
        with np.errstate(invalid="ignore", divide="ignore"):
            within = np.einsum("k,kjs->j", p, t * (t - 1)) / (sizes * (sizes - 1))
        np.fill_diagonal(across, np.nan_to_num(within))
        out = across[np.ix_(self.codes, self.codes)]
        np.fill_diagonal(out, 1.0)
        return out


# -- balance -------------------------------------------------------------------------------------------
def time_correlations(draws: np.ndarray, z: np.ndarray, arm_time: np.ndarray) -> np.ndarray:
    """(assignments, columns): the correlation over clusters between each covariate column of ``z`` and the
    cluster's time on treatment (``arm_time[arm]``). The time's mean and SD are the same in every assignment
    (the same multiset of sequences), so it is one matrix product per block.

    >>> z = np.array([[-1.0], [0.0], [1.0]])
    >>> time_correlations(np.array([[0, 1, 2], [2, 1, 0]]), z, np.array([1.0, 2.0, 3.0])).ravel().round(12).tolist()
    [1.0, -1.0]
    """
    draws = np.asarray(draws)
    t = np.asarray(arm_time, dtype=float)[draws[:1]][0]
    n = len(t)
    z = np.asarray(z, dtype=float)
    zc = z - z.mean(axis=0)
    denominator = np.sqrt((zc ** 2).sum(axis=0)) * np.sqrt(((t - t.mean()) ** 2).sum())
    centred = np.asarray(arm_time, dtype=float) - t.mean()
    out = np.empty((len(draws), z.shape[1]))
    for start in range(0, len(draws), _CHUNK):
        block = draws[start: start + _CHUNK]
        out[start: start + len(block)] = (centred[block] @ zc) / denominator
    return out if n > 1 else np.full((len(draws), z.shape[1]), np.nan)


def sequence_differences(draws: np.ndarray, z: np.ndarray, n_arms: int) -> np.ndarray:
    """(assignments, columns): the largest absolute difference between two sequences' means of each
    standardised covariate column (in SD units of the covariate over all clusters).

    >>> z = np.array([[-1.0], [1.0], [-1.0], [1.0]])
    >>> sequence_differences(np.array([[0, 0, 1, 1], [0, 1, 0, 1]]), z, 2).ravel().tolist()
    [0.0, 2.0]
    """
    out = np.empty((len(draws), z.shape[1]))
    for start in range(0, len(draws), _CHUNK):
        block = draws[start: start + _CHUNK]
        sums, counts = arm_sums(block, z, n_arms)
        means = sums / counts[:, :, None]
        out[start: start + len(block)] = means.max(axis=1) - means.min(axis=1)
    return out


def sequence_scores(draws: np.ndarray, z: np.ndarray, weights: np.ndarray, n_arms: int, arm_time: np.ndarray,
                    metric: str = "l2", balance: str = "sequences") -> np.ndarray:
    """Balance score of each assignment (see the module docstring).

    >>> z = np.array([[-1.0], [0.0], [1.0]])
    >>> sequence_scores(np.array([[0, 1, 2], [1, 0, 2]]), z, np.ones(1), 3, np.array([2.0, 1.0, 0.0]),
    ...                 balance="time").round(3).tolist()
    [1.0, 0.25]
    """
    if balance == "sequences":
        return multiarm_scores(draws, z, weights, n_arms, metric, "arms")
    r = time_correlations(draws, z, arm_time)
    return (r ** 2 if metric == "l2" else np.abs(r)) @ np.asarray(weights, dtype=float)


# -- the design ------------------------------------------------------------------------------------------
class SteppedWedgeDesign(ScoredDesign):
    """Covariate-constrained randomization of clusters to the sequences of a multi-period design.

    Parameters
    ----------
    data : one row per cluster.
    covariates : columns to balance (a cluster-size column among them balances the sizes).
    design : a :class:`~crt_widgets.core.multiperiod.designs.MultiPeriodDesign` whose ``clusters_per_sequence``
        add up to the number of clusters, or a number of sequences ``S`` (a standard stepped wedge with
        ``n / S`` clusters per sequence; ``S`` must divide the number of clusters).
    cluster_id : column with the cluster labels (default 1..n).
    categorical : covariates to dummy-code (first level dropped).
    stratify : columns whose strata are spread over the sequences as evenly as possible (exactly).
    weights : user weight per covariate (list or mapping); 0 switches a covariate off.
    metric : ``"l2"`` or ``"l1"``; balance : ``"sequences"`` (across sequences) or ``"time"`` (with time on
        treatment); see the module docstring.
    cutoff : keep assignments scoring at or below this quantile of all scores (ties kept), or
    n_best : keep the ``n_best`` best assignments instead.
    size : list every assignment when there are at most ``size``, else draw ``size`` (duplicates removed).
    enumerate : ``True``/``False`` force listing/sampling; ``None`` decides by ``size``.
    seed : seed of everything random; ``None`` takes fresh entropy and records it.
    """

    method_name = "covariate-constrained randomization of clusters to sequences (multi-period design)"
    candidate_word = "assignments"

    def __init__(self, data: pd.DataFrame, covariates: Sequence[str], design: MultiPeriodDesign | int, *,
                 cluster_id: str | None = None, categorical: Sequence[str] = (),
                 stratify: Sequence[str] | str | None = None,
                 weights: Sequence[float] | Mapping[str, float] | None = None, metric: str = "l2",
                 balance: str = "sequences", cutoff: float | None = 0.1, n_best: int | None = None,
                 size: int = DEFAULT_SIZE, enumerate: bool | None = None, seed: int | None = None) -> None:
        if not isinstance(data, pd.DataFrame):
            raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
        self.seed = check_seed(seed)
        self._declare(locals(), self.seed)
        self.data = data
        self.covariates = [covariates] if isinstance(covariates, str) else list(covariates)
        self.categorical = [categorical] if isinstance(categorical, str) else list(categorical or ())
        self.cluster_id = cluster_id
        self.stratify = [stratify] if isinstance(stratify, str) else list(stratify or ())
        self.multiperiod = _multiperiod(design, len(data))
        if metric not in METRICS:
            raise ValueError(f"metric: must be one of {', '.join(METRICS)}, got {metric!r}")
        if balance not in BALANCES:
            raise ValueError(f"balance: must be one of {', '.join(BALANCES)}, got {balance!r}")
        self.metric, self.balance, self.weights = metric, balance, weights
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
            raise ValueError(f"size: must be a whole number of at least 2, got {size!r}")
        if enumerate is not None and not isinstance(enumerate, (bool, np.bool_)):
            raise ValueError(f"enumerate: True, False or None, got {enumerate!r}")
        self.size, self.enumerate = int(size), enumerate
        self.rule = CutoffRule.check(cutoff, n_best)
        self.cutoff, self.n_best = self.rule.cutoff, self.rule.n_best
        missing = [c for c in self.stratify if c not in data.columns]
        if missing:
            raise ValueError(f"stratify: column(s) not in the data: {', '.join(map(str, missing))}")
        bad = [c for c in self.stratify if data[c].isna().any()]
        if bad:
            raise ValueError(f"stratify: missing values in {', '.join(bad)}")
        self.covariate_matrix  # validates covariates, categorical, cluster_id, weights
        if balance == "time" and np.ptp(self.arm_time) == 0:
            raise ValueError("balance: 'time' needs sequences that differ in time on treatment; every sequence of "
                             "this design has the same number of treated periods (use balance='sequences')")
        self.tables  # counts the stratified space (before any assignment is built)
        if self.enumerated and self.n_possible > MAX_CANDIDATES:
            raise ValueError(f"enumerate: there are {self.n_possible:,} possible assignments, too many to list (at most "
                             f"{MAX_CANDIDATES:,}); sample them instead (enumerate=False)")
        if not self.enumerated and self.size > MAX_CANDIDATES:
            raise ValueError(f"size: at most {MAX_CANDIDATES:,} sampled assignments fit in memory, got {self.size:,}")
        self.rule.check_candidates(self.n_possible if self.enumerated else min(self.size, self.n_possible),
                                   "candidate assignments")
        self._candidate_seed, self._choice_seed = np.random.SeedSequence(self.seed).spawn(2)


    @cached_property
    def arm_sequences(self) -> np.ndarray:
        """The design's sequence of each arm: the sequences that have clusters, in order."""
        return np.flatnonzero(self.multiperiod.clusters_per_sequence > 0)

    @property
    def n_arms(self) -> int:
        return len(self.arm_sequences)

    @property
    def arm_counts(self) -> np.ndarray:
        return self.multiperiod.clusters_per_sequence[self.arm_sequences]

    @cached_property
    def arm_time(self) -> np.ndarray:
        """Each arm's time on treatment: its number of observed treated periods."""
        matrix = self.multiperiod.sequences[self.arm_sequences]
        return (np.nan_to_num(matrix, nan=0.0) > 0).sum(axis=1).astype(float)

    # -- the candidates -------------------------------------------------------------------------------
    @cached_property
    def tables(self) -> StratumTables:
        """How the strata spread over the sequences (one stratum holding every cluster when not stratified)."""
        if self.stratify:
            keys = self.data[self.stratify].astype(str).agg(" | ".join, axis=1).to_numpy()
            labels, codes = np.unique(keys, return_inverse=True)
        else:
            labels, codes = np.array(["all"]), np.zeros(self.n_clusters, dtype=np.int64)
        return StratumTables.build(codes.astype(np.int64), self.arm_counts, tuple(labels))

    @property
    def n_possible(self) -> int:
        """The number of assignments of the (stratified) design: ``n! / prod c_s!`` without strata."""
        return self.tables.n_possible

    @property
    def enumerated(self) -> bool:
        """Whether every assignment is a candidate (else a random sample)."""
        return bool(self.enumerate) if self.enumerate is not None else self.n_possible <= self.size

    @cached_property
    def _candidates(self) -> tuple[np.ndarray, int]:
        if self.enumerated:
            return self.tables.enumerate(), 0
        draws = self.tables.sample(self.size, np.random.default_rng(self._candidate_seed))
        keep, n_dup = unique_rows(draws)
        return (draws if n_dup == 0 else draws[keep]), n_dup

    @property
    def candidates(self) -> np.ndarray:
        """(candidates, clusters) arm indices: every assignment, or a sample without duplicates."""
        return self._candidates[0]

    @property
    def n_duplicates(self) -> int:
        return self._candidates[1]

    @cached_property
    def scores(self) -> np.ndarray:
        """Balance score of every candidate assignment."""
        cov = self.covariate_matrix
        return sequence_scores(self.candidates, cov.standardized, cov.weights, self.n_arms, self.arm_time,
                               self.metric, self.balance)

    @cached_property
    def _acceptance(self) -> tuple[np.ndarray, float]:
        self.rule.check_candidates(len(self.scores), "candidate assignments")
        return self.rule.apply(self.scores)

    @cached_property
    def space(self) -> RandomizationSpace:
        """The constrained space; arm ``a`` is sequence ``arm_labels[a]`` of the design."""
        return RandomizationSpace.from_arms(self.candidates[self.space_index], self.cluster_ids,
                                            [str(s + 1) for s in self.arm_sequences], scores=self.space_scores,
                                            exhaustive=self.enumerated, n_possible=self.n_possible)

    @property
    def space_scores(self) -> np.ndarray:
        return self.scores[self.space_index]

    def histogram(self, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Counts and bin edges of all candidate scores."""
        return np.histogram(self.scores, bins=bins)

    # -- validity and balance ----------------------------------------------------------------------------
    @cached_property
    def validity(self) -> PairValidity:
        """How often each pair of clusters shares a sequence in the constrained space, against the exact rate
        of the unconstrained (stratified) design."""
        reference = self.tables.same_sequence_rate()
        i, j = np.triu_indices(self.n_clusters, k=1)
        constrained = cluster_coincidence(self.space.arm_matrix(), self.cluster_ids, n_arms=self.n_arms,
                                          expected_fraction=float(reference[i, j].mean()))
        return PairValidity(constrained, reference)

    def balance_comparison(self) -> pd.DataFrame:
        """For each covariate column (rows): how balanced the constrained space is against the unconstrained one
        (every candidate: simple randomization to the sequences, or its sample), as the median and 95th percentile
        over the assignments of two measures: ``"|r| with time on treatment"``, the absolute correlation over
        clusters between the covariate and the number of treated periods, and ``"largest sequence difference
        (SD)"``, the largest difference between two sequences' means in SDs of the covariate. Columns are
        (measure, ``"constrained median"`` / ``"constrained 95%"`` / ``"unconstrained median"`` /
        ``"unconstrained 95%"``).

        >>> import crt_widgets as crt
        >>> clusters = crt.datasets.simulate_stepped_wedge_clusters(8, seed=2)
        >>> d = SteppedWedgeDesign(clusters, ["size"], crt.stepped_wedge(4, 2), cluster_id="cluster", seed=1)
        >>> table = d.balance_comparison()
        >>> bool(table.iloc[0, 0] <= table.iloc[0, 2])   # the constraint shrinks the imbalance
        True
        """
        cov = self.covariate_matrix
        measures = {
            "|r| with time on treatment": lambda rows: np.abs(time_correlations(rows, cov.standardized,
                                                                                           self.arm_time)),
            "largest sequence difference (SD)": lambda rows: sequence_differences(
                rows, cov.standardized, self.n_arms),
        }
        columns, values = [], []
        for name, measure in measures.items():
            for label, rows in (("constrained", self.candidates[self.space_index]), ("unconstrained", self.candidates)):
                m = measure(rows)
                for stat, q in (("median", 0.5), ("95%", 0.95)):
                    columns.append((name, f"{label} {stat}"))
                    values.append(np.quantile(m, q, axis=0))
        table = pd.DataFrame(np.column_stack(values), index=pd.Index(cov.columns, name="covariate"),
                             columns=pd.MultiIndex.from_tuples(columns))
        return table

    # -- re-scoring -------------------------------------------------------------------------------------
    def rescore(self, **changes: Any) -> "SteppedWedgeDesign":
        """A copy with new ``weights``, ``metric``, ``balance``, ``cutoff`` or ``n_best``, scoring the candidate
        assignments already built (the cheap path for sliders).

        >>> import crt_widgets as crt
        >>> clusters = crt.datasets.simulate_stepped_wedge_clusters(8, seed=2)
        >>> d = SteppedWedgeDesign(clusters, ["size", "baseline"], 4, cluster_id="cluster", seed=1)
        >>> looser = d.rescore(cutoff=0.5, balance="time")
        >>> looser.candidates is d.candidates, len(looser.space) > len(d.space)
        (True, True)
        """
        unknown = set(changes) - RESCORE_CHANGES
        if unknown:
            raise ValueError(f"rescore: cannot change {', '.join(sorted(unknown))} without building new "
                             "candidates; make a new SteppedWedgeDesign")
        new = self.with_params(**rule_changes(self.get_params(), changes))
        new.__dict__["_candidates"] = self._candidates  # they depend on nothing a rescore may change
        new.__dict__["tables"] = self.tables
        return new

    # -- messages and records -------------------------------------------------------------------------
    @property
    def assignment_message(self) -> str:
        counts = ", ".join(map(str, self.arm_counts.tolist()))
        strata = f", spreading every stratum of {', '.join(self.stratify)} evenly" if self.stratify else ""
        return (f"You have indicated that you want to assign {self.n_clusters} clusters to the {self.n_arms} "
                f"sequences of a {self.multiperiod.kind} design ({counts} clusters){strata}")

    @property
    def scheme_message(self) -> str:
        if self.enumerated:
            return f"There are {self.n_possible:,} possible assignments; all were enumerated"
        return (f"There are {self.n_possible:,} possible assignments, more than size = {self.size:,}: "
                f"{self.size:,} were drawn at random and {self.n_duplicates:,} duplicate(s) removed, "
                f"leaving {len(self.candidates):,}")

    @property
    def cutoff_message(self) -> str:
        rule = "keeps " + self.rule.describe("assignments")
        return (f"Balance {self.balance!r}, metric {self.metric}; the constrained space {rule}: cutoff score "
                f"{self.cutoff_score:.4g}, {len(self.space_index):,} of {len(self.scores):,} assignments")

    @property
    def diagnostics(self) -> list[str]:
        """Warnings a statistician should see before randomizing (small space, lost validity)."""
        return self.small_space_notes() + self.covariate_matrix.weight_notes() + self.validity.messages()

    def parameters(self) -> dict[str, Any]:
        """Every input that determines the result (for the audit trail), the design as plain lists."""
        matrix = self.multiperiod.sequences
        return {**super().parameters(), "method": self.method_name,
                "design": {"sequences": [[None if np.isnan(v) else float(v) for v in row] for row in matrix],
                           "clusters_per_sequence": self.multiperiod.clusters_per_sequence.tolist(),
                           "kind": self.multiperiod.kind},
                "covariates": self.covariates, "categorical": self.categorical, "stratify": self.stratify,
                "weights": (dict(self.weights) if isinstance(self.weights, Mapping) else None if self.weights is None
                            else list(np.asarray(self.weights, float).tolist())),
                "enumerated": self.enumerated, "n_possible": self.n_possible}

    # -- drawing -------------------------------------------------------------------------------------------
    @property
    def allocation_type(self) -> type:
        return SteppedWedgeAllocation

    @property
    def _choice_stream(self) -> np.random.SeedSequence:
        return self._choice_seed

    def to_permutation_space(self):
        """Not a two-group space: see :func:`crt_widgets.stepped_wedge_permutation_test`."""
        raise ValueError(TWO_GROUP_MESSAGE)

    def __repr__(self) -> str:
        rule = f"n_best={self.n_best}" if self.n_best is not None else f"cutoff={self.cutoff}"
        counts = self.multiperiod.clusters_per_sequence.tolist()
        return (f"SteppedWedgeDesign(n_clusters={self.n_clusters}, sequences={self.multiperiod.n_sequences} "
                f"({counts} clusters), periods={self.multiperiod.n_periods}, covariates={self.covariates}, "
                f"balance={self.balance!r}, metric={self.metric!r}, {rule}, seed={self.seed})")


def _multiperiod(design: Any, n_clusters: int) -> MultiPeriodDesign:
    if isinstance(design, MultiPeriodDesign):
        if design.n_clusters != n_clusters:
            raise ValueError(f"design: its clusters_per_sequence add up to {design.n_clusters}, but the data have "
                             f"{n_clusters} clusters")
        if (design.clusters_per_sequence > 0).sum() < 2:
            raise ValueError("design: the clusters are all on one sequence; there is no order to randomize")
        return design
    if isinstance(design, (bool, np.bool_)) or not isinstance(design, (int, np.integer)) or design < 2:
        raise ValueError(f"design: expected a MultiPeriodDesign or a number of sequences of at least 2, got {design!r}")
    if n_clusters % design:
        per, extra = divmod(n_clusters, int(design))
        example = [per + 1] * extra + [per] * (int(design) - extra)
        raise ValueError(f"design: {n_clusters} clusters do not split evenly over {design} sequences; pass a "
                         f"design, e.g. crt.stepped_wedge({design}, clusters_per_sequence={example})")
    return stepped_wedge(int(design), n_clusters // int(design))


class SteppedWedgeAllocation(AllocationRecord):
    """The drawn order: each cluster's sequence, its clusters x periods treatment matrix, the balance tables,
    the saved space and the audit record."""

    unit_word = "Assignment"

    @property
    def sequence(self) -> np.ndarray:
        """Each cluster's sequence of the multi-period design (0-based), in the data's row order."""
        return self.design.arm_sequences[self.arm]

    @property
    def time_on_treatment(self) -> np.ndarray:
        """Each cluster's number of observed treated periods."""
        return self.design.arm_time[self.arm]

    def switch_period(self) -> np.ndarray:
        """Each cluster's first treated period (1-based; 0 when never treated)."""
        matrix = np.nan_to_num(self.design.multiperiod.sequences, nan=0.0) > 0
        first = np.where(matrix.any(axis=1), matrix.argmax(axis=1) + 1, 0)
        return first[self.sequence]

    @property
    def allocation(self) -> pd.DataFrame:
        """Cluster id, (strata,) sequence (1-based, as the design's table), first treated period and time on
        treatment."""
        d = self.design
        out = pd.DataFrame({d.cluster_id or "cluster": d.cluster_ids, "sequence": self.sequence + 1,
                            "first_treated_period": self.switch_period(),
                            "time_on_treatment": self.time_on_treatment.astype(int)})
        for k, column in enumerate(d.stratify):
            out.insert(1 + k, column, d.data[column].to_numpy())
        return out

    def treatment_matrix(self) -> pd.DataFrame:
        """Clusters x periods: each cluster's condition in each period (0 control, a fraction or level treated,
        NaN not observed), rows in the data's cluster order (:meth:`MultiPeriodDesign.matrix_for`)."""
        d = self.design
        matrix = d.multiperiod.matrix_for(self.sequence.astype(np.int64))
        return pd.DataFrame(matrix, index=pd.Index(d.cluster_ids, name=d.cluster_id or "cluster"),
                            columns=pd.RangeIndex(1, d.multiperiod.n_periods + 1, name="period"))

    def cluster_periods(self) -> pd.DataFrame:
        """The treatment matrix as a tidy table (one row per cluster and period) for a heatmap: see
        :func:`crt_widgets.core.multiperiod.designs.design_grid`."""
        d = self.design
        return design_grid(d.multiperiod, self.sequence.astype(np.int64), d.cluster_ids)

    @property
    def summary(self) -> pd.DataFrame:
        """cvcrand's ``bscores`` rows for the candidates: selected score, cutoff, mean, SD, quantiles."""
        return score_summary(self.design.scores, self.score, self.design.cutoff_score)

    @property
    def baseline_table(self) -> pd.DataFrame:
        """Covariates by sequence (columns ``arm = <sequence>``) with the largest pairwise standardized difference."""
        d = self.design
        return baseline_table(d.data, d.covariates, d.categorical, self.arm_label, list(d.space.arm_labels))

    def time_balance(self) -> pd.Series:
        """Each covariate column's correlation with time on treatment in this assignment."""
        d = self.design
        r = time_correlations(self.arm[None, :], d.covariate_matrix.standardized, d.arm_time)[0]
        return pd.Series(r, index=pd.Index(d.covariate_matrix.columns, name="covariate"),
                         name="correlation with time on treatment")

    @property
    def validity(self) -> PairValidity:
        return self.design.validity

    def to_permutation_space(self):
        """Not a two-group space: see :func:`crt_widgets.stepped_wedge_permutation_test`."""
        raise ValueError(TWO_GROUP_MESSAGE)

    def save_space(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the constrained space as CSV: ``scheme,chosen,score,<cluster ids...>``, sequence numbers in the
        cluster columns (read back by :func:`crt_widgets.read_multiarm_space`); atomically, and an existing file
        is refused unless ``overwrite``."""
        d = self.design
        return write_arm_space(path, d.cluster_ids, d.space.arm_matrix(), d.space.arm_labels, self.space_position,
                               d.space_scores, overwrite=overwrite)

    def save(self, directory: str | Path, stem: str = "stepped_wedge", *, overwrite: bool = False,
             record: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write the allocation, the treatment matrix, the constrained space (CSV) and last the audit JSON (with the
        space file's SHA-256 and count). All or nothing, never over an existing file unless ``overwrite`` (see
        :meth:`save_files`).

        >>> import json, tempfile
        >>> import crt_widgets as crt
        >>> clusters = crt.datasets.simulate_stepped_wedge_clusters(8, seed=2)
        >>> a = SteppedWedgeDesign(clusters, ["size"], 4, cluster_id="cluster", seed=1).draw()
        >>> files = a.save(tempfile.mkdtemp())
        >>> sorted(files), json.loads(files["audit"].read_text())["parameters"]["seed"]
        (['allocation', 'audit', 'space', 'treatment_matrix'], 1)
        """
        d = self.design
        space = from_chunks(arm_space_chunks(d.cluster_ids, d.space.arm_matrix(), d.space.arm_labels,
                                             self.space_position, d.space_scores))
        return self.save_files(directory, {
            "allocation": (f"{stem}_allocation.csv", self.allocation.to_csv(index=False), None),
            "treatment_matrix": (f"{stem}_treatment_matrix.csv", self.treatment_matrix().to_csv(), None),
            "space": (f"{stem}_space.csv", space, len(d.space)),
        }, f"{stem}_audit.json", overwrite=overwrite, record=record)

    def __repr__(self) -> str:
        return (f"SteppedWedgeAllocation(score={self.score:.4g}, clusters per sequence {self.arm_sizes().tolist()}, "
                f"seed={self.seed}, position {self.space_position + 1:,} of {len(self.design.space):,})")
