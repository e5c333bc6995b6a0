"""Randomization validity (Bailey and Rowley 1987; Greene 2017): how often cluster pairs share an arm.

Constraining the space can link clusters: a pair that is always together (or never together)
in the constrained space has lost the randomization's protection. Counts for all pairs come
from one matrix product per arm, never a loop over pairs.

The pair counts take an (n, n) matrix and about S n^2 / 2 multiply-adds for S schemes of n clusters:
past ``MAX_PAIR_CLUSTERS`` clusters or ``MAX_PAIR_WORK`` multiply-adds they are not computed, and the
validity says why (:attr:`Validity.unavailable`) while the design keeps every other result.

>>> import numpy as np
>>> v = cluster_coincidence(np.array([[1, 1, 0, 0], [0, 0, 1, 1]]))
>>> v.always_together
[(1, 2), (3, 4)]
>>> pair_table_limit(20_000, 50_000)[:60]
'20,000 clusters make 199,990,000 pairs; the pair table is co'
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crt_widgets.core.spaces.schemes import CHUNK_ROWS, SchemeSet

SAMEARMHI = 0.75
SAMEARMLO = 0.25
# an (n, n) int64 matrix of 3,000 clusters is 72 MB; the product work bounds the time (seconds, not hours)
MAX_PAIR_CLUSTERS = 3_000
MAX_PAIR_WORK = 2e11
# float32 block of at most this many entries (256 MB) per matrix product
_BLOCK_ENTRIES = 1 << 26
_STATS = ["Mean", "Std Dev", "Minimum", "25th Pctl", "Median", "75th Pctl", "Maximum"]


def same_arm_counts(assignments: SchemeSet | np.ndarray, n_arms: int = 2) -> np.ndarray:
    """(n, n) matrix: in how many schemes clusters i and j share an arm.

    ``assignments`` is a :class:`SchemeSet` (two arms) or an (S, n) integer array of arm indices
    0..n_arms-1 (any number of arms).
    """
    if isinstance(assignments, SchemeSet):
        n, total = assignments.n_clusters, len(assignments)
        together = np.zeros((n, n))
        treated = np.zeros(n)
        for _, m in assignments.chunks(_block_rows(n), np.float32):
            # float32 products are exact for integer counts below 2**24 (the chunk size is far below)
            together += (m.T @ m).astype(np.float64)
            treated += m.sum(axis=0, dtype=np.float64)
        both_control = total - treated[:, None] - treated[None, :] + together
        return np.rint(together + both_control).astype(np.int64)
    arms = np.asarray(assignments)
    n = arms.shape[1]
    together = np.zeros((n, n))
    rows = _block_rows(n)
    for start in range(0, len(arms), rows):
        block = arms[start: start + rows]
        for a in range(n_arms):
            m = (block == a).astype(np.float32)
            together += (m.T @ m).astype(np.float64)
    return np.rint(together).astype(np.int64)


def _block_rows(n_clusters: int) -> int:
    return int(min(CHUNK_ROWS, max(1, _BLOCK_ENTRIES // max(n_clusters, 1))))


def pair_table_limit(n_clusters: int, n_schemes: int) -> str:
    """Why the pair counts of ``n_schemes`` schemes of ``n_clusters`` clusters are not computed ("" when they are)."""
    pairs = n_clusters * (n_clusters - 1) // 2
    if n_clusters > MAX_PAIR_CLUSTERS:
        return (f"{n_clusters:,} clusters make {pairs:,} pairs; the pair table is computed up to "
                f"{MAX_PAIR_CLUSTERS:,} clusters (it holds an n x n matrix of counts), so the validity "
                "diagnostics are not available for this design")
    if float(n_schemes) * pairs > MAX_PAIR_WORK:
        return (f"{n_schemes:,} schemes x {pairs:,} pairs is more than the {MAX_PAIR_WORK:.0e} operations the "
                "pair table is computed up to, so the validity diagnostics are not available for this space")
    return ""


@dataclass(frozen=True)
class Validity:
    """Pair coincidence in a randomization space.

    Attributes
    ----------
    cluster_ids : labels of the clusters.
    same_counts : (n, n) number of schemes in which each pair shares an arm.
    n_schemes : size of the space.
    expected_fraction : how often a pair shares an arm without constraints (for reference).
    samearmhi, samearmlo : thresholds for "too often" and "too rarely" together.
    unavailable : why the pair counts were not computed (a space too large, see :func:`pair_table_limit`);
        then ``same_counts`` is None, :meth:`messages` says why and the tables raise a ValueError.
    """

    cluster_ids: np.ndarray
    same_counts: np.ndarray | None
    n_schemes: int
    expected_fraction: float | None = None
    samearmhi: float = SAMEARMHI
    samearmlo: float = SAMEARMLO
    unavailable: str = ""

    @property
    def available(self) -> bool:
        """Whether the pair counts were computed."""
        return self.same_counts is not None

    def _counts(self) -> np.ndarray:
        if self.same_counts is None:
            raise ValueError(f"validity: {self.unavailable}")
        return self.same_counts

    def _pairs(self, mask: np.ndarray) -> list[tuple]:
        i, j = np.nonzero(np.triu(mask, k=1)) if self.available else (np.array([], int), np.array([], int))
        ids = self.cluster_ids
        return [(ids[a].item() if hasattr(ids[a], "item") else ids[a],
                 ids[b].item() if hasattr(ids[b], "item") else ids[b]) for a, b in zip(i, j)]

    @property
    def same_fraction(self) -> np.ndarray:
        return self._counts() / self.n_schemes

    def pair_values(self) -> np.ndarray:
        """Same-arm counts of the n(n-1)/2 distinct pairs (upper triangle, row by row)."""
        counts = self._counts()
        i, j = np.triu_indices(len(self.cluster_ids), k=1)
        return counts[i, j]

    @property
    def always_together(self) -> list[tuple]:
        return self._pairs(self.same_counts == self.n_schemes) if self.available else []

    @property
    def never_together(self) -> list[tuple]:
        return self._pairs(self.same_counts == 0) if self.available else []

    @property
    def often_together(self) -> list[tuple]:
        """Pairs together in at least ``samearmhi`` of the schemes."""
        return self._pairs(self.same_fraction >= self.samearmhi) if self.available else []

    @property
    def rarely_together(self) -> list[tuple]:
        """Pairs together in at most ``samearmlo`` of the schemes."""
        return self._pairs(self.same_fraction <= self.samearmlo) if self.available else []

    @property
    def at_risk(self) -> bool:
        """True when some pair is together too often or too rarely."""
        return bool(self.often_together or self.rarely_together)

    def table(self) -> pd.DataFrame:
        """cvcrand's ``cluster_coin_des``: rows samecount, samefrac, diffcount, difffrac."""
        same = self.pair_values().astype(float)
        diff = self.n_schemes - same
        rows = {"samecount": same, "samefrac": same / self.n_schemes,
                "diffcount": diff, "difffrac": diff / self.n_schemes}
        return pd.DataFrame({name: describe(v) for name, v in rows.items()}, index=_STATS).T

    def matrix(self) -> pd.DataFrame:
        """cvcrand's ``cluster_coincidence``: the (n, n) same-arm counts labelled by cluster."""
        return pd.DataFrame(self._counts(), index=self.cluster_ids, columns=self.cluster_ids)

    def messages(self) -> list[str]:
        """Plain-language warnings about lost validity (empty when none)."""
        if not self.available:
            return [f"validity not checked: {self.unavailable}"]
        out = []
        for label, pairs in [("always in the same arm", self.always_together),
                             ("never in the same arm", self.never_together)]:
            if pairs:
                out.append(f"{len(pairs)} cluster pair(s) are {label}: {_show(pairs)}")
        hi = [p for p in self.often_together if p not in self.always_together]
        lo = [p for p in self.rarely_together if p not in self.never_together]
        if hi:
            out.append(f"{len(hi)} pair(s) share an arm in at least {self.samearmhi:.0%} of schemes: {_show(hi)}")
        if lo:
            out.append(f"{len(lo)} pair(s) share an arm in at most {self.samearmlo:.0%} of schemes: {_show(lo)}")
        return out

    def __repr__(self) -> str:
        if not self.available:
            return f"Validity(n_schemes={self.n_schemes}, not computed: {self.unavailable})"
        f = self.pair_values() / self.n_schemes
        return (f"Validity(n_schemes={self.n_schemes}, same-arm fraction {f.min():.3f}..{f.max():.3f}, "
                f"always={len(self.always_together)}, never={len(self.never_together)})")


def _show(pairs: list[tuple], limit: int = 8) -> str:
    text = ", ".join(f"{a}-{b}" for a, b in pairs[:limit])
    return text + (f" (+{len(pairs) - limit} more)" if len(pairs) > limit else "")


def describe(values: np.ndarray) -> list[float]:
    """Mean, SD (n-1), min, quartiles (R's type 7), max."""
    q = np.quantile(values, [0.25, 0.5, 0.75])
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return [float(np.mean(values)), sd, float(values.min()), *map(float, q), float(values.max())]


def cluster_coincidence(assignments: SchemeSet | np.ndarray, cluster_ids: Sequence | None = None,
                        n_arms: int = 2, expected_fraction: float | None = None,
                        samearmhi: float = SAMEARMHI, samearmlo: float = SAMEARMLO) -> Validity:
    """Validity diagnostics of a randomization space (two arms as a SchemeSet or 0/1 matrix, or K arms).

    ``assignments``: a :class:`SchemeSet`, or an (S, n) array of arm indices (0/1 for two arms).
    """
    if not isinstance(assignments, SchemeSet):
        assignments = np.asarray(assignments)
        if assignments.ndim != 2 or len(assignments) == 0:
            raise ValueError("assignments: expected a non-empty (n_schemes, n_clusters) array")
        if n_arms == 2 and np.isin(assignments, (0, 1)).all():
            assignments = SchemeSet.from_matrix(assignments)
    n = assignments.n_clusters if isinstance(assignments, SchemeSet) else assignments.shape[1]
    ids = np.arange(1, n + 1) if cluster_ids is None else np.asarray(cluster_ids)
    if len(ids) != n:
        raise ValueError(f"cluster_ids: got {len(ids)} labels for {n} clusters")
    reason = pair_table_limit(n, len(assignments))
    counts = None if reason else same_arm_counts(assignments, n_arms)
    return Validity(ids, counts, len(assignments), expected_fraction, samearmhi, samearmlo, reason)
