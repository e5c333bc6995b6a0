"""The permutation test of a stepped-wedge (or other multi-period) trial: sequences permuted among the clusters.

A multi-period trial randomizes the order in which clusters cross over, so its randomization space is a set of
assignments of clusters to sequences (a constrained space from
:class:`~crt_widgets.core.randomization.stepped_wedge.SteppedWedgeDesign`, or every assignment with the same
number of clusters per sequence). The test compares the observed treatment effect with its value under every
assignment of the space (Wang and DeGruttola 2017; Ji, Fink, Robyn and Small 2017; Hughes, Heagerty, Xia and Ren
2020 use the mixed model's estimate in the same way).

The statistic is the mixed-model treatment estimate with period fixed effects (Hussey and Hughes 2007) and,
with ``nested=True``, a cluster-period random effect (Hooper et al. 2016): the generalised least-squares estimate
on the cluster-period means ``ybar_ij``, each cluster's means with covariance
``V_i = tau2 J + gamma2 I + sigma2 diag(1 / m_ij)``. With the variance components held fixed, it is, for a
treatment matrix X,

    theta(X) = (b - a' M^-1 g) / (c - a' M^-1 a),     M = sum_i W_i,  g = sum_i W_i ybar_i,  W_i = V_i^-1,
    a = sum_i W_i x_i,  b = sum_i x_i' W_i ybar_i,  c = sum_i x_i' W_i x_i,

and a cluster's row x_i is the row of its sequence, so a, b and c are sums over clusters of per-(cluster,
sequence) quantities: for every assignment of the space at once they are one matrix product per sequence, in
blocks of assignments (no loop over assignments).

The variance components are the REML estimates of the model without treatment (periods and the random effects
only), fitted to the outcome with the hypothesised effect removed, ``y - delta x`` (x the observed allocation's
treatment): under the sharp null that the effect is delta these are the same whatever the assignment, so the test
is exact (its size is at most alpha over the space). The two-sided p-value is the share of assignments whose
|estimate| is at least the observed one. The interval inverts the test over a constant shift of the treated cells
(Ji et al. 2017): every delta whose p-value is at least alpha; the point estimate is the delta at which the
observed statistic is zero (Hodges-Lehmann type).

Designs whose sequences observe different periods (a staircase, transition periods) change which outcomes exist
under another assignment; the test needs every sequence observed in the same periods and says so otherwise.

>>> import crt_widgets as crt
>>> from crt_widgets.datasets import simulate_stepped_wedge_clusters, simulate_stepped_wedge_outcomes
>>> clusters = simulate_stepped_wedge_clusters(8, seed=3)
>>> allocation = crt.SteppedWedgeDesign(clusters, ["size"], 4, cluster_id="cluster", seed=4).draw()
>>> outcomes = simulate_stepped_wedge_outcomes(clusters, allocation.treatment_matrix(), effect=0.8, seed=5)
>>> result = stepped_wedge_permutation_test(outcomes, "y", "cluster", "period", allocation)
>>> result.n_schemes, round(result.p_value, 4)
(264, 0.0038)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from crt_widgets.core.io.spacefiles import read_multiarm_space
from crt_widgets.core.models import mixed_fast
from crt_widgets.core.models.residuals import constant_outcome_note
from crt_widgets.core.multiperiod.designs import MultiPeriodDesign
from crt_widgets.core.permutation.data import binned_distribution, p_values
from crt_widgets.core.permutation.interval import _bracket
from crt_widgets.core.randomization.multiarm import unique_rows
from crt_widgets.core.randomization.stepped_wedge import (SteppedWedgeAllocation, SteppedWedgeDesign, count_orders,
                                                          enumerate_orders, sample_orders)
from crt_widgets.core.seeds import check_seed
from crt_widgets.core.spaces.multiarm import SavedMultiArmSpace

ALTERNATIVES = ("two-sided", "greater", "less")
# assignments per block of the vectorised statistic (bounds the one-hot matrices)
_CHUNK = 20_000
# the most assignments the "simple" space lists; beyond, it samples this many
SIMPLE_SIZE = 100_000
# refits of the variance components when a limit of the interval is found by fixed-point iteration
MAX_REFITS = 30
# a fixed point has settled when a refit moves it by less than this (relative to the permutation SD): the REML
# optimum itself is located to about 1e-8
SETTLED = 1e-7


# -- the space ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SequenceSpace:
    """Assignments of labelled clusters to the sequences of a multi-period design, and the one used.

    ``assignments`` is (assignments, clusters) of 0-based sequence indices of ``design``.
    """

    assignments: np.ndarray
    observed: int
    cluster_ids: np.ndarray
    design: MultiPeriodDesign
    note: str = ""

    @property
    def observed_sequence(self) -> np.ndarray:
        return self.assignments[self.observed].astype(np.int64)

    def __len__(self) -> int:
        return len(self.assignments)

    def __repr__(self) -> str:
        return (f"SequenceSpace({len(self):,} assignments of {len(self.cluster_ids)} clusters to "
                f"{self.design.n_sequences} sequences)")


def _sequence_numbers(observed: Any, ids: np.ndarray, n_sequences: int) -> np.ndarray:
    """The observed sequence (0-based) of each cluster from a mapping cluster -> sequence number (1-based) or
    one sequence number per cluster."""
    if isinstance(observed, Mapping):
        lookup = {str(k): v for k, v in observed.items()}
        missing = [k for k in ids if str(k) not in lookup]
        if missing:
            raise ValueError(f"observed: no sequence given for cluster(s) {', '.join(map(str, missing[:10]))}")
        observed = [lookup[str(k)] for k in ids]
    numbers = np.asarray(observed)
    if numbers.shape != (len(ids),) or not np.issubdtype(numbers.dtype, np.integer) \
            or (numbers < 1).any() or (numbers > n_sequences).any():
        raise ValueError(f"observed: expected one sequence number in 1..{n_sequences} per cluster "
                         f"({len(ids)} clusters), got {observed!r}")
    return numbers.astype(np.int64) - 1


def resolve_sequence_space(space: Any, *, design: MultiPeriodDesign | None = None, observed: Any = None,
                           cluster_ids: Sequence | None = None, size: int = SIMPLE_SIZE,
                           seed: int | None = None) -> SequenceSpace:
    """The space of a multi-period trial's test from what the user has.

    ``space`` is a :class:`SteppedWedgeAllocation` (its design's constrained space, the drawn assignment
    observed), a saved space (the CSV :meth:`SteppedWedgeAllocation.save_space` writes, or its path) with ``design``,
    a :class:`SteppedWedgeDesign` with ``observed``, or ``"simple"`` with ``design`` (a
    :class:`MultiPeriodDesign`), ``observed`` and ``cluster_ids`` (or ``observed`` as a mapping): every assignment
    with the design's clusters per sequence, listed when there are at most ``size`` and else ``size`` of them
    drawn from ``seed`` (the observed one included). ``observed`` gives each cluster's sequence number (1-based),
    as a mapping cluster -> number or one number per cluster.

    >>> import crt_widgets as crt
    >>> space = resolve_sequence_space("simple", design=crt.stepped_wedge(2, 2), observed={"a": 1, "b": 2, "c": 2, "d": 1})
    >>> len(space), space.observed_sequence.tolist()
    (6, [0, 1, 1, 0])
    """
    if isinstance(space, SteppedWedgeAllocation):
        d = space.design
        return SequenceSpace(d.arm_sequences[d.space.arm_matrix()].astype(np.int16), space.space_position,
                             np.asarray(d.cluster_ids), d.multiperiod)
    if isinstance(space, (str, Path)) and not (isinstance(space, str) and space == "simple"):
        space = read_multiarm_space(space)
    if isinstance(space, SavedMultiArmSpace):  # a saved constrained space: its columns hold sequence numbers
        if not isinstance(design, MultiPeriodDesign):
            raise ValueError("design: a saved space holds sequence numbers; pass the MultiPeriodDesign they refer to")
        try:
            rows = space.labels.astype(np.int64) - 1
        except ValueError:
            raise ValueError("space: the saved space's cells are not sequence numbers (is it a multi-arm space?)") \
                from None
        if (rows < 0).any() or (rows >= design.n_sequences).any():
            raise ValueError(f"space: sequence numbers outside 1..{design.n_sequences} of the design")
        counts = np.bincount(rows[space.chosen], minlength=design.n_sequences)
        if not np.array_equal(counts, design.clusters_per_sequence):
            raise ValueError(f"design: puts {design.clusters_per_sequence.tolist()} clusters on the sequences, the saved "
                             f"space {counts.tolist()}")
        return SequenceSpace(rows.astype(np.int16), space.chosen, np.asarray(space.unit_ids), design)
    if isinstance(space, SteppedWedgeDesign):
        if observed is None:
            raise ValueError("observed: say which assignment was used (a design does not mark one; pass its "
                             "allocation instead, or observed=cluster -> sequence number)")
        rows = space.arm_sequences[space.space.arm_matrix()].astype(np.int16)
        used = _sequence_numbers(observed, np.asarray(space.cluster_ids), space.multiperiod.n_sequences)
        hits = np.flatnonzero((rows == used).all(axis=1))
        if not len(hits):
            raise ValueError("observed: the assignment that was used is not in the design's space")
        return SequenceSpace(rows, int(hits[0]), np.asarray(space.cluster_ids), space.multiperiod)
    if isinstance(space, str) and space == "simple":
        if not isinstance(design, MultiPeriodDesign):
            raise ValueError(f"design: space='simple' needs the MultiPeriodDesign, got {type(design).__name__}")
        if observed is None:
            raise ValueError("observed: space='simple' needs each cluster's sequence (a mapping cluster -> number)")
        ids = np.asarray(list(observed) if isinstance(observed, Mapping) and cluster_ids is None else cluster_ids)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError("cluster_ids: give the clusters' labels (or observed as a mapping cluster -> sequence)")
        used = _sequence_numbers(observed, ids, design.n_sequences)
        if not np.array_equal(np.bincount(used, minlength=design.n_sequences), design.clusters_per_sequence):
            raise ValueError(f"observed: puts {np.bincount(used, minlength=design.n_sequences).tolist()} clusters on "
                             f"the sequences, the design {design.clusters_per_sequence.tolist()}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
            raise ValueError(f"size: must be a whole number of at least 2, got {size!r}")
        counts = design.clusters_per_sequence
        total = count_orders(counts)
        if total <= size:
            rows = enumerate_orders(counts).astype(np.int16)
            position = int(np.flatnonzero((rows == used).all(axis=1))[0])
            return SequenceSpace(rows, position, ids, design)
        seed = check_seed(seed)
        drawn = sample_orders(counts, int(size) - 1, np.random.default_rng(seed)).astype(np.int16)
        rows = np.vstack([used[None, :].astype(np.int16), drawn])  # the observed one first, so it stays
        keep, _ = unique_rows(rows)
        note = (f"simple space sampled: {len(keep):,} of the {total:,} assignments (the observed one included; "
                f"seed {seed})")
        return SequenceSpace(rows[keep], 0, ids, design, note)
    raise ValueError(f"space: expected a SteppedWedgeAllocation, a SteppedWedgeDesign (with observed) or 'simple' "
                     f"(with design and observed), got {type(space).__name__}")


# -- the data ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CellData:
    """Individual outcomes matched to the space's clusters and the design's periods."""

    y: np.ndarray               # rows
    cluster_index: np.ndarray   # rows: column of the space
    period_index: np.ndarray    # rows: 0..T-1
    x_observed: np.ndarray      # rows: the observed allocation's treatment of the row's cell
    counts: np.ndarray          # (clusters, periods) individuals per cell
    period_labels: np.ndarray
    n_dropped: int
    notes: tuple[str, ...] = ()


def prepare_cells(data: pd.DataFrame, outcome: str, cluster: str, period: str, space: SequenceSpace,
                  treatment: str | None = None) -> CellData:
    """Validate the individual-level data once and match it to the space (clusters by id, periods in sorted order)."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    needed = [outcome, cluster, period] + ([treatment] if treatment is not None else [])
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"data: column(s) not found: {', '.join(map(str, missing))}")
    y_col = data[outcome]
    if not pd.api.types.is_numeric_dtype(y_col) or pd.api.types.is_bool_dtype(y_col):
        raise ValueError(f"outcome {outcome!r}: must be numeric, got {y_col.dtype}")
    complete = data[needed].notna().all(axis=1)
    frame = data.loc[complete]
    if frame.empty:
        raise ValueError("data: no rows left after dropping rows with missing values")
    y = frame[outcome].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise ValueError(f"outcome {outcome!r}: {int((~np.isfinite(y)).sum())} infinite value(s)")
    ids = space.cluster_ids
    where = pd.Index(ids).get_indexer(frame[cluster].to_numpy())
    if (where < 0).any():  # ids may be text in one place and numbers in the other
        as_text = pd.Index(ids.astype(str)).get_indexer(frame[cluster].to_numpy().astype(str))
        where = as_text if (as_text >= 0).sum() > (where >= 0).sum() else where
    if (where < 0).any():
        extra = pd.unique(frame[cluster].to_numpy()[where < 0])
        raise ValueError(f"cluster(s) in the data but not in the space: {', '.join(map(str, extra[:10]))}")
    empty = np.setdiff1d(np.arange(len(ids)), where)
    if len(empty):
        raise ValueError(f"clusters with no individuals (in the space but not in the data): "
                         f"{', '.join(map(str, ids[empty][:10]))}")
    labels = np.sort(pd.unique(frame[period]))
    design = space.design
    if len(labels) != design.n_periods:
        raise ValueError(f"period: the data have {len(labels)} periods ({', '.join(map(str, labels[:12]))}), the "
                         f"design {design.n_periods}")
    p_index = np.searchsorted(labels, frame[period].to_numpy())
    cells = design.sequences[space.observed_sequence]                   # (clusters, periods)
    x_rows = cells[where, p_index]
    notes = []
    unobserved = np.isnan(x_rows)
    if unobserved.any():
        notes.append(f"{int(unobserved.sum())} row(s) in cluster-periods the design does not observe were dropped")
    if treatment is not None:
        given = frame[treatment].to_numpy(dtype=float)
        wrong = ~unobserved & ~np.isclose(given, np.nan_to_num(x_rows))
        if wrong.any():
            raise ValueError(f"treatment: column {treatment!r} disagrees with the allocation's treatment matrix in "
                             f"{int(wrong.sum())} row(s); is the space the one the trial used?")
    keep = ~unobserved
    w, p, x, y = where[keep], p_index[keep], x_rows[keep], y[keep]
    counts = np.zeros((len(ids), design.n_periods), dtype=np.int64)
    np.add.at(counts, (w, p), 1)
    return CellData(y, w, p, x, counts, labels, int((~complete).sum()) + int(unobserved.sum()), tuple(notes))


# -- the statistic -------------------------------------------------------------------------------------------
class SequenceStatistic:
    """The period-adjusted GLS treatment estimate for every assignment of a space, as a function of the
    hypothesised effect delta (see the module docstring)."""

    def __init__(self, cells: CellData, space: SequenceSpace, nested: bool = True) -> None:
        design = space.design
        if design.n_effects != 1:
            raise ValueError("design: the permutation test estimates one treatment effect; a design with several "
                             "treatment levels has one per level")
        used = np.unique(space.assignments)
        patterns = design.observed[used]
        if not (patterns == patterns[0]).all():
            raise ValueError("design: its sequences are observed in different periods (an incomplete design such as "
                             "a staircase, or transition periods), so another order would observe other outcomes; the "
                             "permutation test needs every sequence observed in the same periods")
        self.cells, self.space, self.nested = cells, space, nested
        self.sequences_x = np.nan_to_num(design.sequences, nan=0.0)           # (Q, T)
        self.observed_cells = (cells.counts > 0) & patterns[0][None, :]       # (n, T)
        if (self.observed_cells.sum(axis=0) == 0).any():
            empty = np.flatnonzero(self.observed_cells.sum(axis=0) == 0)
            raise ValueError(f"period: no outcome in period(s) {', '.join(map(str, cells.period_labels[empty]))}; "
                             "every period's effect needs data")
        n, T = cells.counts.shape
        # the null model's design: intercept and period dummies (rows), cell and cluster codes
        self._x_null = np.zeros((len(cells.y), T))
        self._x_null[:, 0] = 1.0
        later = cells.period_index > 0
        self._x_null[np.flatnonzero(later), cells.period_index[later]] = 1.0
        inner = cells.cluster_index * T + cells.period_index if nested else cells.cluster_index
        self._inner = pd.factorize(inner)[0].astype(np.int64)
        self._outer = cells.cluster_index if nested else None
        self._components: dict[float, np.ndarray] = {}
        self._theta_at_zero: np.ndarray | None = None

    # the variance components of the model without treatment, fitted to y - delta x
    def components(self, delta: float) -> np.ndarray:
        """(tau2, gamma2, sigma2): cluster, cluster-period (0 when not nested) and residual variances (REML)."""
        key = float(delta)
        if key not in self._components:
            c = self.cells
            stats = mixed_fast.nested_stats(self._x_null, c.y - key * c.x_observed, self._inner, self._outer)
            if key == 0.0 or self._theta_at_zero is None:
                fit = mixed_fast.fit_nested(stats, reml=True)
            else:  # the interval's refits start from delta = 0's optimum (always the same start: reproducible)
                fit = mixed_fast.fit_nested(stats, reml=True, start=self._theta_at_zero, polish=False)
            if key == 0.0:
                self._theta_at_zero = fit.theta
            v = fit.variances
            self._components[key] = np.array([v[0], v[1] if self.nested else 0.0, fit.sigma2])
            if len(self._components) > 256:  # root finding visits a few dozen deltas; keep the memory bounded
                self._components.pop(next(iter(self._components)))
        return self._components[key]

    def _weights(self, components: np.ndarray) -> np.ndarray:
        """(n, T, T): each cluster's inverse covariance of its cell means, zero outside its observed cells."""
        tau2, gamma2, sigma2 = components
        counts = self.cells.counts
        obs = self.observed_cells
        n, T = counts.shape
        with np.errstate(divide="ignore"):
            diagonal = gamma2 + sigma2 / np.where(obs, counts, 1)
        both = obs[:, :, None] & obs[:, None, :]
        V = np.where(both, tau2, 0.0)
        idx = np.arange(T)
        V[:, idx, idx] = np.where(obs, V[:, idx, idx] + diagonal, 1.0)
        return np.linalg.inv(V) * both

    def _cell_means(self) -> np.ndarray:
        """(n, T, 2): the cell means of the outcome and of the observed treatment (0 outside observed cells)."""
        c = self.cells
        n, T = c.counts.shape
        sums = np.zeros((n, T, 2))
        np.add.at(sums, (c.cluster_index, c.period_index), np.column_stack([c.y, c.x_observed]))
        return np.where(self.observed_cells[:, :, None], sums / np.maximum(c.counts, 1)[:, :, None], 0.0)

    def gls(self, components: np.ndarray, values: np.ndarray, assignments: np.ndarray | None = None) -> np.ndarray:
        """(assignments, k): the treatment estimate of every assignment for each of the k outcomes ``values``
        (n, T, k) of cell means, at fixed variance components."""
        rows = self.space.assignments if assignments is None else assignments
        W = self._weights(components)
        n, T = self.cells.counts.shape
        Wy = np.einsum("itu,iuk->itk", W, values)                             # (n, T, k)
        K = np.linalg.inv(W.sum(axis=0))
        h = K @ Wy.sum(axis=0)                                                 # (T, k)
        X = self.sequences_x
        WX = np.einsum("itu,qu->iqt", W, X)                                    # (n, Q, T)
        B = np.einsum("itk,qt->iqk", Wy, X)                                    # (n, Q, k)
        C = np.einsum("iqt,qt->iq", WX, X)                                     # (n, Q)
        out = np.empty((len(rows), values.shape[2]))
        for start in range(0, len(rows), _CHUNK):
            block = rows[start: start + _CHUNK]
            b = np.zeros((len(block), values.shape[2]))
            c = np.zeros(len(block))
            a = np.zeros((len(block), T))
            for q in np.unique(block):  # one matrix product per sequence, for the whole block
                onehot = (block == q).astype(float)
                b += onehot @ B[:, q, :]
                c += onehot @ C[:, q]
                a += onehot @ WX[:, q, :]
            out[start: start + len(block)] = (b - a @ h) / (c - np.einsum("st,tu,su->s", a, K, a))[:, None]
        return out

    def linear_parts(self, delta: float) -> tuple[np.ndarray, np.ndarray]:
        """At the variance components of ``y - delta x``: the estimates of every assignment for the outcome and for
        the observed treatment, so that the estimate for ``y - d x`` is ``u0 - d uw`` at these components."""
        both = self.gls(self.components(delta), self._cell_means())
        return both[:, 0], both[:, 1]

    def estimates(self, delta: float = 0.0) -> np.ndarray:
        """The treatment estimate of every assignment of the space for the outcome with ``delta`` times the
        observed treatment removed, at that outcome's variance components."""
        u0, uw = self.linear_parts(delta)
        return u0 - delta * uw


# -- the result ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SteppedWedgePermutationResult:
    """A permutation test of a multi-period trial.

    Attributes
    ----------
    statistic : the observed treatment estimate (period-adjusted GLS at the null model's variance components).
    distribution : the estimate under every assignment of the space.
    p_value : for ``alternative``; ``p_values`` has all three.
    estimate, conf_int, conf_level : the effect by test inversion (when requested).
    variance_components : the variances the statistic used at delta = 0 (cluster, cluster-period, residual).
    observed_sequence : each cluster's sequence number (1-based) in the assignment used.
    """

    statistic: float
    distribution: np.ndarray
    p_value: float
    p_values: dict[str, float]
    alternative: str
    n_schemes: int
    n_clusters: int
    n_individuals: int
    n_dropped: int
    observed_sequence: np.ndarray
    cluster_ids: np.ndarray
    variance_components: dict[str, float]
    nested: bool = True
    estimate: float | None = None
    conf_int: tuple[float, float] | None = None
    conf_level: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def statement(self) -> str:
        """One sentence."""
        model = "cluster and cluster-period random effects" if self.nested else "a cluster random effect"
        text = (f"Permutation test of the period-adjusted treatment effect ({model}; {self.alternative}) over "
                f"{self.n_schemes:,} assignments of clusters to sequences: p-value = {self.p_value:.4g}")
        if self.conf_int is not None:
            text += (f"; effect {self.estimate:.4g} ({self.conf_level:.0%} CI {self.conf_int[0]:.4g} to "
                     f"{self.conf_int[1]:.4g})")
        return text + "."

    def histogram(self, bins: int = 40) -> pd.DataFrame:
        """The permutation distribution binned in numpy (``left``, ``right``, ``total``, ``extreme``)."""
        return binned_distribution(self.distribution, self.statistic, self.alternative, bins)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON-ready); the distribution is left out."""
        doc = {"statistic": self.statistic, "p_value": self.p_value, "p_values": dict(self.p_values),
               "alternative": self.alternative, "n_schemes": self.n_schemes, "n_clusters": self.n_clusters,
               "n_individuals": self.n_individuals, "n_dropped": self.n_dropped, "nested": self.nested,
               "variance_components": dict(self.variance_components),
               "sequences": {str(k): int(v) for k, v in zip(self.cluster_ids.tolist(), self.observed_sequence)},
               "statement": self.statement, "notes": list(self.notes)}
        if self.conf_int is not None:
            doc.update(estimate=self.estimate, conf_int=list(self.conf_int), conf_level=self.conf_level)
        return doc

    def __repr__(self) -> str:
        ci = "" if self.conf_int is None else \
            f", estimate={self.estimate:.4g}, conf_int=({self.conf_int[0]:.4g}, {self.conf_int[1]:.4g})"
        return (f"SteppedWedgePermutationResult(statistic={self.statistic:.4g}, p_value={self.p_value:.4g}, "
                f"n_schemes={self.n_schemes:,}{ci})")


def stepped_wedge_permutation_test(
    data: pd.DataFrame,
    outcome: str,
    cluster: str,
    period: str,
    space: Any,
    *,
    design: MultiPeriodDesign | None = None,
    observed: Any = None,
    treatment: str | None = None,
    nested: bool = True,
    alternative: str = "two-sided",
    ci: bool = False,
    alpha: float = 0.05,
    simple_size: int = SIMPLE_SIZE,
    seed: int | None = None,
) -> SteppedWedgePermutationResult:
    """Permutation test of the treatment effect of a multi-period trial, over its space of orders.

    Parameters
    ----------
    data : one row per individual (a cross-sectional sample in every cluster-period).
    outcome, cluster, period : column names; periods are matched to the design's in sorted order.
    space : the allocation drawn from a :class:`SteppedWedgeDesign` (its constrained space), its saved space file
        with ``design``, the design with ``observed``, or ``"simple"`` with ``design`` and ``observed`` (every
        assignment with the design's clusters per sequence; see :func:`resolve_sequence_space`).
    observed : each cluster's sequence number (1-based), a mapping cluster -> number (or one per cluster).
    treatment : optional column of the treatment; checked against the allocation's treatment matrix.
    nested : a cluster-period random effect besides the cluster's (Hooper et al. 2016); False: the cluster's only
        (Hussey and Hughes 2007).
    alternative : ``"two-sided"``, ``"greater"`` or ``"less"``.
    ci, alpha : also invert the test for the effect and its (1 - alpha) interval.
    simple_size, seed : the size of a sampled ``"simple"`` space and its seed.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative: must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha!r}")
    if not isinstance(nested, (bool, np.bool_)):
        raise ValueError(f"nested: True or False, got {nested!r}")
    if isinstance(space, str) and space == "simple" and not isinstance(observed, Mapping):
        raise ValueError("observed: space='simple' needs each cluster's sequence number as a mapping cluster -> number")
    seq_space = resolve_sequence_space(space, design=design, observed=observed, size=simple_size, seed=seed)
    if len(seq_space) < 2:
        raise ValueError("space: a permutation test needs at least 2 assignments")
    cells = prepare_cells(data, outcome, cluster, period, seq_space, treatment)
    constant = constant_outcome_note(cells.y, "gaussian")
    if constant:  # no variance to estimate: every order's estimate is 0 (the null components would divide by 0)
        return _constant_outcome_result(cells, seq_space, alternative, ci, alpha, bool(nested), constant)
    stat = SequenceStatistic(cells, seq_space, bool(nested))
    u = stat.estimates(0.0)
    observed_u = float(u[seq_space.observed])
    pv = p_values(u, observed_u)
    notes = ([seq_space.note] if seq_space.note else []) + list(cells.notes)
    estimate = interval = None
    if ci:
        scale = float(np.std(u)) or 1.0
        stat.components(0.0)
        estimate = _point_estimate(stat, observed_u, scale)
        interval, settled = _interval(stat, estimate, alpha, scale, len(seq_space))
        if not settled:
            notes.append(f"a limit of the interval moved by more than {SETTLED:g} (relative) after {MAX_REFITS} refits of the "
                         "variance components: it is the last value found")
        if 1 / len(seq_space) >= alpha:
            notes.append(f"the space ({len(seq_space):,} assignments) is too small for a {1 - alpha:.0%} interval: "
                         f"its smallest p-value is {1 / len(seq_space):.3g}")
    tau2, gamma2, sigma2 = stat.components(0.0)
    components = {"cluster": float(tau2), **({"cluster_period": float(gamma2)} if nested else {}),
                  "residual": float(sigma2)}
    return SteppedWedgePermutationResult(
        statistic=observed_u, distribution=u, p_value=pv[alternative], p_values=pv, alternative=alternative,
        n_schemes=len(seq_space), n_clusters=len(seq_space.cluster_ids), n_individuals=len(cells.y),
        n_dropped=cells.n_dropped, observed_sequence=seq_space.observed_sequence + 1,
        cluster_ids=seq_space.cluster_ids, variance_components=components, nested=bool(nested), estimate=estimate,
        conf_int=interval, conf_level=1 - alpha if ci else None, notes=notes)


def _constant_outcome_result(cells, seq_space, alternative: str, ci: bool, alpha: float, nested: bool,
                             constant: str) -> SteppedWedgePermutationResult:
    """The test of an outcome that does not vary: every order's estimate is 0, so p = 1 whatever the side, and
    every effect is as compatible with the data as any other (the interval is the whole line)."""
    u = np.zeros(len(seq_space))
    notes = ([seq_space.note] if seq_space.note else []) + list(cells.notes)
    notes.append(f"{constant.split(':')[0]}: every order gives the estimate 0, so p = 1")
    if ci:
        notes.append("no interval: an outcome that does not vary rejects no effect, so the interval is the whole line")
    components = {"cluster": 0.0, **({"cluster_period": 0.0} if nested else {}), "residual": 0.0}
    return SteppedWedgePermutationResult(
        statistic=0.0, distribution=u, p_value=1.0, p_values=p_values(u, 0.0), alternative=alternative,
        n_schemes=len(seq_space), n_clusters=len(seq_space.cluster_ids), n_individuals=len(cells.y),
        n_dropped=cells.n_dropped, observed_sequence=seq_space.observed_sequence + 1,
        cluster_ids=seq_space.cluster_ids, variance_components=components, nested=nested,
        estimate=0.0 if ci else None, conf_int=(-np.inf, np.inf) if ci else None, conf_level=1 - alpha if ci else None,
        notes=notes)


def _point_estimate(stat: SequenceStatistic, at_zero: float, scale: float) -> float:
    """The delta at which the observed estimate is zero. At fixed variance components the observed estimate for
    ``y - d x`` is ``u0 - d`` (the estimate for x itself is 1), so delta is the fixed point of
    ``delta = u0(components of y - delta x)``: iterated from the estimate at delta = 0."""
    delta = at_zero
    for _ in range(MAX_REFITS):
        u0, _ = stat.linear_parts(delta)
        new = float(u0[stat.space.observed])
        if abs(new - delta) <= SETTLED * max(scale, abs(delta)):
            return new
        delta = new
    return delta


def _limit_at_fixed_components(u0: np.ndarray, uw: np.ndarray, observed: int, start: float, alpha: float,
                               scale: float, direction: int) -> float:
    """The nearest delta beyond ``start`` in ``direction`` where the two-sided p-value of ``u0 - delta uw``
    falls below alpha (infinite when it never does)."""
    f = lambda d: p_values(u0 - d * uw, u0[observed] - d)["two-sided"] - alpha + 1e-12  # noqa: E731
    try:
        a, b = _bracket(f, start, scale, direction)
    except ValueError:
        return direction * np.inf
    return float(optimize.brentq(f, min(a, b), max(a, b), xtol=1e-10 * max(1.0, abs(start))))


def _interval(stat: SequenceStatistic, estimate: float, alpha: float, scale: float,
              n_assignments: int) -> tuple[tuple[float, float], bool]:
    """Each limit: the delta where the p-value crosses alpha with the variance components refitted at that delta
    (a fixed point: solve at fixed components, refit at the limit found, solve again). Also whether every
    limit's iteration settled."""
    if 1 / n_assignments >= alpha:
        return (-np.inf, np.inf), True
    limits, settled = [], True
    for direction in (-1, +1):
        delta = estimate
        for _ in range(MAX_REFITS):
            u0, uw = stat.linear_parts(delta)
            new = _limit_at_fixed_components(u0, uw, stat.space.observed, estimate, alpha, scale, direction)
            if not np.isfinite(new) or abs(new - delta) <= SETTLED * max(scale, abs(delta)):
                break
            delta = new
        else:
            settled = False
        limits.append(new)
    return (limits[0], limits[1]), settled
