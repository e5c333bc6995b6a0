"""Multi-period designs: which condition each sequence of clusters is in, period by period.

A design is a sequences x periods matrix (0 = control, a fraction in (0, 1] = that share of the treatment
effect, a whole number 1, 2, ... = a treatment level, NaN = the cell is not observed) and the number of
clusters on each sequence. Every multi-period design has this form: the stepped wedge (Hussey and Hughes
2007), parallel arms with or without baseline periods, the two-period and multi-period cluster crossover,
and incomplete designs such as the staircase (Grantham et al. 2024) or a stepped wedge with transition
periods (Hemming et al. 2015). Randomizing a trial means assigning clusters to sequences, so
:meth:`MultiPeriodDesign.matrix_for` turns an assignment into the clusters x periods matrix.

>>> design = stepped_wedge(3, clusters_per_sequence=2)
>>> design.sequences
array([[0., 1., 1., 1.],
       [0., 0., 1., 1.],
       [0., 0., 0., 1.]])
>>> design.n_clusters, design.n_periods
(6, 4)
>>> staircase(3).sequences
array([[ 0.,  1., nan, nan],
       [nan,  0.,  1., nan],
       [nan, nan,  0.,  1.]])
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("stepped wedge", "staircase", "cluster crossover", "parallel", "parallel with baseline", "custom")


class MultiPeriodDesign:
    """A multi-period cluster trial: ``sequences`` (sequences x periods) and ``clusters_per_sequence``.

    Cells hold 0 (control), a fraction in (0, 1] of one treatment's effect, a whole-number treatment
    level (1, 2, ...; each level has its own effect), or NaN (not observed). Fractions and levels above
    1 cannot be mixed. A sequence may have 0 clusters (it then contributes nothing).

    >>> d = MultiPeriodDesign([[0, 1, 1], [0, 0, 1]], clusters_per_sequence=[3, 2])
    >>> d
    MultiPeriodDesign(custom: 2 sequences x 3 periods, 5 clusters (3, 2 per sequence), treatment 1)
    >>> d.cluster_matrix().shape
    (5, 3)
    >>> d.matrix_for([1, 0, 0, 1, 0])[:, 1]
    array([0., 1., 1., 0., 1.])
    """

    def __init__(self, sequences: Any, clusters_per_sequence: Any = 1, *, kind: str = "custom") -> None:
        try:
            matrix = np.array(sequences, dtype=float)
        except (TypeError, ValueError):
            raise ValueError("sequences must be a sequences x periods matrix of numbers (NaN = not observed)") \
                from None
        if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
            raise ValueError(f"sequences must be a sequences x periods matrix with at least one row and one "
                             f"column, got shape {matrix.shape}")
        if np.isinf(matrix).any():
            raise ValueError("sequences must hold finite numbers or NaN (not observed), got an infinite value")
        values = matrix[~np.isnan(matrix)]
        if values.size == 0:
            raise ValueError("sequences has no observed cell (all NaN)")
        if (values < 0).any():
            raise ValueError(f"sequences must hold 0 (control), fractions in (0, 1] or treatment levels 1, 2, "
                             f"...; got {values[values < 0][0]:g}")
        treated = values[values > 0]
        if (treated > 1).any() and (treated != np.round(treated)).any():
            raise ValueError("sequences mixes fractional effects with treatment levels above 1: use either "
                             "fractions in (0, 1] of one treatment, or whole-number levels 1, 2, ...")
        counts = np.asarray(clusters_per_sequence)
        if counts.ndim == 0:
            counts = np.full(matrix.shape[0], counts)
        if counts.shape != (matrix.shape[0],) or not np.issubdtype(counts.dtype, np.number) \
                or counts.dtype == bool or not np.all(np.isfinite(counts)) or (counts != np.round(counts)).any() \
                or (counts < 0).any():
            raise ValueError(f"clusters_per_sequence must be one whole number >= 0 per sequence "
                             f"({matrix.shape[0]}), got {clusters_per_sequence!r}")
        if counts.sum() < 1:
            raise ValueError("clusters_per_sequence: the design needs at least one cluster")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        matrix.setflags(write=False)
        counts = counts.astype(np.int64)
        counts.setflags(write=False)
        self._sequences, self._counts, self.kind = matrix, counts, kind
        self._levels = tuple(float(v) for v in np.unique(treated))

    # --- the design as data -------------------------------------------------------------------------
    @property
    def sequences(self) -> np.ndarray:
        """Sequences x periods matrix (read-only): 0 control, fraction or level treated, NaN not observed."""
        return self._sequences

    @property
    def clusters_per_sequence(self) -> np.ndarray:
        """Number of clusters on each sequence (read-only)."""
        return self._counts

    @property
    def n_sequences(self) -> int:
        return int(self._sequences.shape[0])

    @property
    def n_periods(self) -> int:
        return int(self._sequences.shape[1])

    @property
    def n_clusters(self) -> int:
        return int(self._counts.sum())

    @property
    def observed(self) -> np.ndarray:
        """Sequences x periods booleans: the cells where outcomes are measured."""
        return ~np.isnan(self._sequences)

    @property
    def treatment_levels(self) -> tuple[float, ...]:
        """The distinct treated values, in increasing order (``(1.0,)`` for a 0/1 design)."""
        return self._levels

    @property
    def is_fractional(self) -> bool:
        """True when the treated cells carry fractions of one effect (all treated values within (0, 1])."""
        levels = self.treatment_levels
        return bool(levels) and max(levels) <= 1.0 and levels != (1.0,)

    @property
    def n_effects(self) -> int:
        """Number of treatment effects the design estimates: 1 for a 0/1 or fractional design, else one per level."""
        return 1 if self.is_fractional else len(self.treatment_levels)

    def sequence_of_cluster(self) -> np.ndarray:
        """Each cluster's sequence index, clusters in sequence order (sequence 0's clusters first)."""
        return np.repeat(np.arange(self.n_sequences), self._counts)

    def cluster_matrix(self) -> np.ndarray:
        """Clusters x periods matrix, clusters in sequence order."""
        return self._sequences[self.sequence_of_cluster()]

    def matrix_for(self, sequence_of_cluster: Any) -> np.ndarray:
        """Clusters x periods matrix of an assignment of clusters to sequences (one sequence index per cluster).

        The assignment must put ``clusters_per_sequence[s]`` clusters on sequence ``s``: this is the form a
        randomization of the order takes.
        """
        index = np.asarray(sequence_of_cluster)
        if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer) or (index < 0).any() \
                or (index >= self.n_sequences).any():
            raise ValueError(f"sequence_of_cluster must be one sequence index in 0..{self.n_sequences - 1} "
                             f"per cluster, got {sequence_of_cluster!r}")
        if not np.array_equal(np.bincount(index, minlength=self.n_sequences), self._counts):
            raise ValueError(f"sequence_of_cluster must put {self._counts.tolist()} clusters on the sequences, got "
                             f"{np.bincount(index, minlength=self.n_sequences).tolist()}")
        return self._sequences[index]

    def with_clusters(self, clusters_per_sequence: Any) -> MultiPeriodDesign:
        """The same sequences with other numbers of clusters on them."""
        return MultiPeriodDesign(self._sequences, clusters_per_sequence, kind=self.kind)

    def with_unobserved(self, cells: Any) -> MultiPeriodDesign:
        """An incomplete version: the cells where ``cells`` (sequences x periods booleans) is True are not observed."""
        mask = np.asarray(cells)
        if mask.shape != self._sequences.shape or mask.dtype != bool:
            raise ValueError(f"cells must be a {self.n_sequences} x {self.n_periods} boolean matrix, got "
                             f"shape {mask.shape} of {mask.dtype}")
        return MultiPeriodDesign(np.where(mask, np.nan, self._sequences), self._counts, kind="custom")

    def treatment_columns(self) -> np.ndarray:
        """Sequences x periods x effects: the treatment covariates of the model, 0 where not observed.

        One column holding the cell values for a fractional design (the effect is scaled by the fraction),
        else one indicator column per level (a single column for a 0/1 design).
        """
        values = np.nan_to_num(self._sequences, nan=0.0)
        if self.is_fractional:
            return values[:, :, None]
        return (values[:, :, None] == np.asarray(self.treatment_levels)).astype(float)

    def exposure_times(self) -> np.ndarray:
        """Sequences x periods: periods since the sequence's switch to treatment (1 in the first), 0 before.

        The switch is the period after the last observed control period, so an unobserved transition
        period still counts (Kenny et al. 2022 define exposure time as time since the intervention was
        introduced). Defined for 0/1 designs in which no sequence returns to control.
        """
        if self.is_fractional or len(self.treatment_levels) > 1:
            raise ValueError("exposure times need a 0/1 design (one treatment, no fractions or levels)")
        periods = np.arange(self.n_periods)
        treated = np.nan_to_num(self._sequences, nan=0.0) > 0
        control = self._sequences == 0
        last_control = np.where(control, periods, -1).max(axis=1)
        first_treated = np.where(treated, periods, self.n_periods).min(axis=1)
        if (first_treated < last_control).any():
            raise ValueError("exposure times need designs in which no sequence returns to control after treatment")
        switch = np.where(last_control >= 0, last_control + 1, first_treated)
        return np.where(periods >= switch[:, None], periods - switch[:, None] + 1, 0)

    def table(self) -> pd.DataFrame:
        """One row per sequence: the number of clusters and the condition in each period (NaN = not observed)."""
        frame = pd.DataFrame(self._sequences, columns=[f"period {j + 1}" for j in range(self.n_periods)])
        frame.insert(0, "clusters", self._counts)
        frame.index = pd.RangeIndex(1, self.n_sequences + 1, name="sequence")
        return frame

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, MultiPeriodDesign) and np.array_equal(self._sequences, other._sequences,
                                                                           equal_nan=True)
                and np.array_equal(self._counts, other._counts))

    __hash__ = None  # equality compares the arrays; a design is not a dict key

    def __repr__(self) -> str:
        counts = self._counts
        per = f"{counts[0]} per sequence" if (counts == counts[0]).all() else \
            (", ".join(map(str, counts.tolist())) + " per sequence" if counts.size <= 8 else "unequal per sequence")
        levels = self.treatment_levels
        treatment = ("fractions " + ", ".join(f"{v:g}" for v in levels)) if self.is_fractional else \
            ("treatment 1" if len(levels) <= 1 else "levels " + ", ".join(f"{v:g}" for v in levels))
        missing = int(np.isnan(self._sequences).sum())
        extra = f", {missing} cells not observed" if missing else ""
        return (f"MultiPeriodDesign({self.kind}: {self.n_sequences} sequences x {self.n_periods} periods, "
                f"{self.n_clusters} clusters ({per}), {treatment}{extra})")

    @classmethod
    def from_cluster_matrix(cls, matrix: Any) -> MultiPeriodDesign:
        """Group the identical rows of a clusters x periods matrix into sequences (in order of first appearance).

        >>> MultiPeriodDesign.from_cluster_matrix([[0, 1], [0, 0], [0, 1]]).clusters_per_sequence
        array([2, 1])
        """
        rows = np.array(matrix, dtype=float)
        if rows.ndim != 2:
            raise ValueError(f"matrix must be a clusters x periods matrix, got shape {rows.shape}")
        first, inverse = unique_rows(rows)
        return cls(rows[first], np.bincount(inverse, minlength=first.size))


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each distinct row's first appearance (in order of appearance) and each row's group.

    NaN equals NaN here (a not-observed cell matches a not-observed cell).

    >>> unique_rows(np.array([[1.0, np.nan], [0.0, 1.0], [1.0, np.nan]]))
    (array([0, 1]), array([0, 1, 0]))
    """
    keyed = np.where(np.isnan(rows), np.inf, rows)
    _, first, inverse = np.unique(keyed, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)                  # np.unique sorts; restore the order of appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inverse.reshape(-1)]


def _counts(value: Any, n: int, name: str) -> np.ndarray:
    counts = np.asarray(value)
    if counts.ndim == 0:
        counts = np.full(n, counts)
    if counts.shape != (n,) or not np.issubdtype(counts.dtype, np.number) or counts.dtype == bool \
            or not np.all(np.isfinite(counts)) or (counts != np.round(counts)).any() or (counts < 0).any():
        raise ValueError(f"{name} must be a whole number >= 0 or one per sequence ({n}), got {value!r}")
    return counts.astype(np.int64)


def _whole(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def stepped_wedge(n_sequences: int, clusters_per_sequence: int | Sequence[int] = 1, *, baseline_periods: int = 1,
                  periods_per_step: int = 1, extra_periods: int = 0, transition_periods: int = 0
                  ) -> MultiPeriodDesign:
    """A stepped wedge: clusters start on control, sequence ``s`` switches at step ``s`` (Hussey and Hughes 2007).

    ``baseline_periods`` all-control periods come first (0: the first sequence starts on treatment), each
    step lasts ``periods_per_step`` periods, ``extra_periods`` all-treated periods follow the last step, and
    the first ``transition_periods`` periods after each switch are not observed (an implementation period,
    Hemming et al. 2015). The standard design has ``n_sequences + 1`` periods.

    >>> stepped_wedge(2, baseline_periods=2, extra_periods=1).sequences
    array([[0., 0., 1., 1., 1.],
           [0., 0., 0., 1., 1.]])
    >>> stepped_wedge(3, 4, transition_periods=1).sequences[0]
    array([ 0., nan,  1.,  1.])
    """
    n = _whole(n_sequences, "n_sequences", 1)
    baseline = _whole(baseline_periods, "baseline_periods", 0)
    step = _whole(periods_per_step, "periods_per_step", 1)
    extra = _whole(extra_periods, "extra_periods", 0)
    transition = _whole(transition_periods, "transition_periods", 0)
    counts = _counts(clusters_per_sequence, n, "clusters_per_sequence")
    periods = np.arange(baseline + n * step + extra)
    switch = baseline + step * np.arange(n)
    matrix = (periods >= switch[:, None]).astype(float)
    matrix[(periods >= switch[:, None]) & (periods < switch[:, None] + transition)] = np.nan
    return MultiPeriodDesign(matrix, counts, kind="stepped wedge")


def staircase(n_sequences: int, clusters_per_sequence: int | Sequence[int] = 1, *, control_periods: int = 1,
              treatment_periods: int = 1) -> MultiPeriodDesign:
    """A staircase: each sequence is observed only around its switch (Grantham, Forbes, Hooper and Kasza 2024).

    Sequence ``s`` is observed for ``control_periods`` control periods from period ``s`` on, then
    ``treatment_periods`` treated periods; every other cell is not observed.

    >>> staircase(2, control_periods=2).sequences
    array([[ 0.,  0.,  1., nan],
           [nan,  0.,  0.,  1.]])
    """
    n = _whole(n_sequences, "n_sequences", 1)
    before = _whole(control_periods, "control_periods", 1)
    after = _whole(treatment_periods, "treatment_periods", 1)
    counts = _counts(clusters_per_sequence, n, "clusters_per_sequence")
    periods = np.arange(n + before + after - 1)
    start = np.arange(n)[:, None]
    matrix = np.where(periods < start + before, 0.0, 1.0)
    matrix[(periods < start) | (periods >= start + before + after)] = np.nan
    return MultiPeriodDesign(matrix, counts, kind="staircase")


def cluster_crossover(clusters_per_sequence: int | Sequence[int], n_periods: int = 2) -> MultiPeriodDesign:
    """A cluster crossover: two sequences that alternate treatment and control, AB... and BA... .

    >>> cluster_crossover(5, n_periods=4).sequences
    array([[1., 0., 1., 0.],
           [0., 1., 0., 1.]])
    """
    periods = _whole(n_periods, "n_periods", 2)
    counts = _counts(clusters_per_sequence, 2, "clusters_per_sequence")
    first = (np.arange(periods) % 2 == 0).astype(float)
    return MultiPeriodDesign(np.vstack([first, 1.0 - first]), counts, kind="cluster crossover")


def parallel_arms(clusters_per_arm: int | Sequence[int], n_periods: int = 1, *, baseline_periods: int = 0
                  ) -> MultiPeriodDesign:
    """Parallel arms measured in ``n_periods`` periods, after ``baseline_periods`` periods on control for all.

    ``clusters_per_arm`` is one number, or (treatment, control). Sequence 0 is the treatment arm.

    >>> parallel_arms((6, 4), n_periods=2, baseline_periods=1).sequences
    array([[0., 1., 1.],
           [0., 0., 0.]])
    """
    periods = _whole(n_periods, "n_periods", 1)
    baseline = _whole(baseline_periods, "baseline_periods", 0)
    counts = _counts(clusters_per_arm, 2, "clusters_per_arm")
    matrix = np.zeros((2, baseline + periods))
    matrix[0, baseline:] = 1.0
    return MultiPeriodDesign(matrix, counts, kind="parallel with baseline" if baseline else "parallel")


def condition_label(value: float, fractional: bool) -> str:
    """The words for one cell of a design: control, treatment (a fraction of the effect, or a level), not observed.

    >>> [condition_label(v, False) for v in (0.0, 1.0, 2.0, float("nan"))]
    ['control', 'treatment', 'treatment level 2', 'not observed']
    >>> condition_label(0.5, True)
    'treatment (50% of the effect)'
    """
    if np.isnan(value):
        return "not observed"
    if value == 0:
        return "control"
    if fractional:
        return f"treatment ({value:.0%} of the effect)" if value < 1 else "treatment"
    return "treatment" if value == 1 else f"treatment level {value:g}"


def design_grid(design: MultiPeriodDesign, sequence_of_cluster: Any = None, cluster_ids: Any = None) -> pd.DataFrame:
    """The clusters x periods grid of a design as a tidy table, one row per cluster and period (what a heatmap
    draws): ``cluster``, ``sequence`` and ``period`` (1-based), ``value`` (the cell: 0, a fraction or level, NaN)
    and ``condition`` (its words). Without an assignment the clusters are in sequence order.

    >>> grid = design_grid(stepped_wedge(2, 1), cluster_ids=["a", "b"])
    >>> grid.condition.tolist()
    ['control', 'treatment', 'treatment', 'control', 'control', 'treatment']
    >>> design_grid(stepped_wedge(2, 1), [1, 0]).sequence.tolist()[:3]
    [2, 2, 2]
    """
    sequence = design.sequence_of_cluster() if sequence_of_cluster is None else np.asarray(sequence_of_cluster)
    matrix = design.matrix_for(sequence)
    ids = np.arange(1, len(sequence) + 1) if cluster_ids is None else np.asarray(cluster_ids)
    if len(ids) != len(sequence):
        raise ValueError(f"cluster_ids: {len(ids)} labels for {len(sequence)} clusters")
    n_clusters, n_periods = matrix.shape
    values = matrix.ravel()
    labels = {v: condition_label(v, design.is_fractional) for v in np.unique(values[~np.isnan(values)])}
    words = pd.Series(values).map(labels).fillna("not observed").to_numpy(dtype=object)
    return pd.DataFrame({"cluster": np.repeat(ids, n_periods), "sequence": np.repeat(sequence + 1, n_periods),
                         "period": np.tile(np.arange(1, n_periods + 1), n_clusters), "value": values,
                         "condition": words})
