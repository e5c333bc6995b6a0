"""Pair (and group) matching of clusters, and randomization within the matched sets as a design.

Distances: cluster-level covariates min-max scaled to [0, 1] (a constant column becomes 0), then
Euclidean distance, as in Buisson (2021, ch. 10, "Cluster Randomization and Hierarchical Modeling").

- :func:`greedy_match` is Buisson's (2021) algorithm: clusters in data order; each one still
  available takes its ``group_size - 1`` nearest available neighbours. (Buisson's (2021) loop widens
  the neighbour list one short, so a cluster whose only available partner is its farthest
  neighbour stays unmatched there; here it is matched — otherwise results are identical.)
- :func:`optimal_match` minimises the total within-pair distance over all pairings
  (non-bipartite minimum-weight perfect matching: networkx's blossom algorithm,
  ``max_weight_matching(maxcardinality=True)`` on ``C - distance``, integer weights). With an odd
  number of clusters exactly one is left unmatched, chosen so that the total is minimal.
- :class:`MatchedDesign` randomizes within every pair or group (each arm at most once more than
  another within a set); its space is every combination of within-set assignments (``2^pairs``),
  enumerated when small and sampled otherwise, exposed as a matrix (one row per scheme, one column
  per cluster) for validity diagnostics and permutation tests. An unmatched cluster is randomized
  on its own (either arm).

>>> import pandas as pd
>>> data = pd.DataFrame({"id": [1, 2, 3, 4, 5], "x": [0.0, 0.1, 0.5, 0.55, 1.0]})
>>> m = optimal_match(data, ["x"], cluster_id="id")
>>> m.groups, m.unmatched
([(1, 2), (3, 4)], [5])
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import networkx as nx
import numpy as np
import pandas as pd

from crt_widgets.core.covariates import cluster_labels, finite_values
from crt_widgets.core.randomization.multiarm import unique_rows
from crt_widgets.core.randomization.allocation import AllocationRecord
from crt_widgets.core.randomization.protocol import Design
from crt_widgets.core.seeds import check_seed
from crt_widgets.core.spaces.space import RandomizationSpace
from crt_widgets.core.randomization.balanced_sampler import check_whole_number
from crt_widgets.core.diagnostics.validity import Validity, cluster_coincidence
from crt_widgets.core.sizes import format_count

# distances are turned into integers on this scale for the blossom algorithm (exact arithmetic)
_WEIGHT_SCALE = 2 ** 40
DEFAULT_MAX_ENUMERATE = 2 ** 16


def matching_covariates(data: pd.DataFrame, covariates: Sequence[str] | None = None,
                        cluster_id: str | None = None) -> list[str]:
    """The columns matched on: ``covariates``, or without them every float column but the cluster id, as in
    Buisson (2021) (an integer column is left out: name it to use it).

    >>> matching_covariates(pd.DataFrame({"id": [1.0, 2.0], "n": [3, 4], "x": [0.5, 0.7]}), cluster_id="id")
    ['x']
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if covariates is None:
        covariates = [c for c in data.columns if data[c].dtype == np.float64 and c != cluster_id]
        if not covariates:
            raise ValueError("covariates: the data has no float columns; name the covariates to match on")
    if isinstance(covariates, str):
        raise ValueError("covariates: give a list of column names, not a single string")
    return list(covariates)


def scaled_covariates(data: pd.DataFrame, covariates: Sequence[str] | None = None,
                      cluster_id: str | None = None) -> np.ndarray:
    """Min-max scale the covariates to [0, 1] (Buisson's (2021) MinMaxScaler; constant columns give 0).

    Without ``covariates``, every float column but the cluster id is used (:func:`matching_covariates`).
    """
    covariates = matching_covariates(data, covariates, cluster_id)
    if not covariates:
        raise ValueError("covariates: choose at least one covariate to match on")
    missing = [c for c in covariates if c not in data.columns]
    if missing:
        raise ValueError(f"covariates: column(s) not in the data: {', '.join(map(str, missing))}")
    for c in covariates:
        col = data[c]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise ValueError(f"covariate {c!r} is not numeric ({col.dtype}); code it as numbers first")
        if col.isna().any():
            raise ValueError(f"covariate {c!r} has {int(col.isna().sum())} missing value(s)")
        finite_values(col, c)
    x = data[covariates].to_numpy(dtype=float)
    lo, span = x.min(axis=0), np.ptp(x, axis=0)
    return (x - lo) / np.where(span > 0, span, 1.0)


def distance_matrix(x: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``x``."""
    diff = x[:, None, :] - x[None, :, :]
    return np.sqrt((diff ** 2).sum(axis=-1))


@dataclass(frozen=True, eq=False)
class Matching:
    """Clusters matched into pairs or groups.

    Attributes
    ----------
    cluster_ids : the cluster labels in data order.
    group_index : tuple of position tuples, one per pair or group.
    unmatched_index : positions of clusters left unmatched.
    distances : the (n, n) distance matrix used.
    method : ``"greedy"`` or ``"optimal"``.
    covariates : the columns matched on.
    """

    cluster_ids: np.ndarray
    group_index: tuple[tuple[int, ...], ...]
    unmatched_index: tuple[int, ...]
    distances: np.ndarray
    method: str
    covariates: tuple[str, ...] = ()

    @staticmethod
    def _id(value):
        return value.item() if hasattr(value, "item") else value

    @property
    def groups(self) -> list[tuple]:
        """The matched sets as tuples of cluster ids."""
        return [tuple(self._id(self.cluster_ids[i]) for i in g) for g in self.group_index]

    @property
    def unmatched(self) -> list:
        return [self._id(self.cluster_ids[i]) for i in self.unmatched_index]

    @property
    def group_size(self) -> int:
        return len(self.group_index[0]) if self.group_index else 0

    @property
    def group_distances(self) -> np.ndarray:
        """Within-set distance of each pair (for a group: the sum over its pairs)."""
        d = self.distances
        return np.array([sum(d[a, b] for a, b in itertools.combinations(g, 2)) for g in self.group_index])

    @property
    def total_distance(self) -> float:
        return float(self.group_distances.sum())

    def table(self) -> pd.DataFrame:
        """One row per cluster: its set number (1.., NA when unmatched) and that set's distance."""
        n = len(self.cluster_ids)
        group = pd.array([pd.NA] * n, dtype="Int64")
        dist = np.full(n, np.nan)
        for k, (g, dg) in enumerate(zip(self.group_index, self.group_distances), 1):
            for i in g:
                group[i] = k
                dist[i] = dg
        return pd.DataFrame({"cluster": self.cluster_ids, "group": group, "group_distance": dist})

    def record(self) -> dict:
        """The matching as plain values for an audit record: method, the sets, the unmatched, the distance."""
        return {"method": self.method, "covariates": list(self.covariates), "group_size": self.group_size,
                "groups": [list(g) for g in self.groups],
                "unmatched": self.unmatched, "total_distance": self.total_distance}

    def __repr__(self) -> str:
        un = f", unmatched={self.unmatched}" if self.unmatched_index else ""
        on = f" on {', '.join(map(str, self.covariates))}" if self.covariates else ""
        return (f"Matching(method={self.method!r}, {len(self.group_index)} sets of {self.group_size}{on}, "
                f"total distance {self.total_distance:.4f}{un})")


def _prepare(data, covariates, cluster_id, group_size) -> tuple[np.ndarray, np.ndarray, int, tuple[str, ...]]:
    covariates = matching_covariates(data, covariates, cluster_id)
    x = scaled_covariates(data, covariates)
    ids = cluster_labels(data, cluster_id)
    group_size = check_whole_number(group_size, "group_size", 2)
    if group_size > len(ids):
        raise ValueError(f"group_size: {group_size} is larger than the {len(ids)} clusters")
    return distance_matrix(x), ids, group_size, tuple(covariates)


def greedy_match(data: pd.DataFrame, covariates: Sequence[str] | None = None, *, cluster_id: str | None = None,
                 group_size: int = 2) -> Matching:
    """Buisson's (2021) greedy matching: each available cluster, in data order, takes its
    ``group_size - 1`` nearest available neighbours (ties: earlier row first).

    >>> import pandas as pd
    >>> greedy_match(pd.DataFrame({"x": [0.0, 0.3, 0.35, 1.0]}), ["x"]).groups
    [(1, 2), (3, 4)]
    """
    d, ids, k, covariates = _prepare(data, covariates, cluster_id, group_size)
    n = len(ids)
    available = np.ones(n, dtype=bool)
    groups = []
    for i in range(n):
        if not available[i]:
            continue
        others = np.flatnonzero(available)
        others = others[others != i]
        if len(others) < k - 1:
            break
        nearest = others[np.argsort(d[i, others], kind="stable")[: k - 1]]
        group = (i, *sorted(int(j) for j in nearest))
        available[list(group)] = False
        groups.append(tuple(sorted(group)))
    return Matching(ids, tuple(groups), tuple(np.flatnonzero(available).tolist()), d, "greedy", covariates)


def optimal_match(data: pd.DataFrame, covariates: Sequence[str] | None = None, *,
                  cluster_id: str | None = None) -> Matching:
    """Pairs minimising the total within-pair distance (one cluster unmatched when n is odd,
    chosen so the total is minimal)."""
    d, ids, _, covariates = _prepare(data, covariates, cluster_id, 2)
    n = len(ids)
    top = float(d.max()) or 1.0
    # integer weights C - d (C larger than any distance): maximum cardinality first, then the
    # largest sum of C - d, i.e. the smallest total distance among perfect (or near-perfect) matchings
    w = np.rint(d / top * _WEIGHT_SCALE).astype(np.int64)
    C = _WEIGHT_SCALE + 1
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from((i, j, int(C - w[i, j])) for i in range(n) for j in range(i + 1, n))
    pairs = nx.max_weight_matching(graph, maxcardinality=True)
    groups = sorted(tuple(sorted((int(a), int(b)))) for a, b in pairs)
    matched = {i for g in groups for i in g}
    return Matching(ids, tuple(groups), tuple(i for i in range(n) if i not in matched), d, "optimal", covariates)


def match_clusters(data: pd.DataFrame, covariates: Sequence[str] | None = None, *, method: str = "optimal",
                   cluster_id: str | None = None, group_size: int = 2) -> Matching:
    """Match clusters by ``method`` (``"optimal"`` for pairs, or ``"greedy"``, also for groups)."""
    if method == "optimal":
        if group_size != 2:
            raise ValueError("group_size: optimal matching is for pairs; use method='greedy' for groups")
        return optimal_match(data, covariates, cluster_id=cluster_id)
    if method == "greedy":
        return greedy_match(data, covariates, cluster_id=cluster_id, group_size=group_size)
    raise ValueError(f"method: must be 'optimal' or 'greedy', got {method!r}")


def compare_matchings(data: pd.DataFrame, covariates: Sequence[str] | None = None, *,
                      cluster_id: str | None = None) -> pd.DataFrame:
    """Total within-pair distance of the greedy and the optimal pairing (the gain of optimising)."""
    rows = {}
    for m in (greedy_match(data, covariates, cluster_id=cluster_id), optimal_match(data, covariates, cluster_id=cluster_id)):
        rows[m.method] = {"pairs": len(m.group_index), "total_distance": m.total_distance,
                          "unmatched": ", ".join(map(str, m.unmatched))}
    return pd.DataFrame(rows).T.rename_axis("method")


# -- randomization within matched sets -------------------------------------------------------------
def _set_arrangements(size: int, n_arms: int) -> np.ndarray:
    """Distinct within-set assignments in which arm counts differ by at most one (rows)."""
    base, extra = divmod(size, n_arms)
    rows = set()
    for bigger in itertools.combinations(range(n_arms), extra):
        multiset = [a for a in range(n_arms) for _ in range(base + (a in bigger))]
        rows.update(itertools.permutations(multiset))
    return np.array(sorted(rows), dtype=np.int8)


class MatchedAllocation(AllocationRecord):
    """One allocation drawn within the matched sets: ``allocation`` has the cluster, its set and its arm."""

    file_stem = "match"  # the files the command line's `match` writes

    @property
    def allocation(self) -> pd.DataFrame:
        """Cluster, set (NA if unmatched), arm index and arm label."""
        table = self.design.matching.table()[["cluster", "group"]]
        return table.assign(arm=self.arm.astype(int), arm_label=self.arm_label)


class MatchedDesign(Design):
    """Randomization within matched pairs or groups.

    Parameters
    ----------
    matching : a :class:`Matching`.
    n_arms : arms (default 2: in each pair one cluster per arm).
    max_enumerate : enumerate the whole space when it has at most this many schemes, else sample.
    size : schemes to sample when the space is larger (duplicates removed).
    seed : seed of sampling and of the draw.

    >>> import pandas as pd
    >>> m = optimal_match(pd.DataFrame({"x": [0.0, 0.1, 0.5, 0.6, 0.9, 1.0]}), ["x"])
    >>> d = MatchedDesign(m, seed=1)
    >>> d.permutation_matrix().shape, d.n_possible
    ((8, 6), 8)
    """

    method_name = "randomization within matched sets"
    allocation_type = MatchedAllocation

    def __init__(self, matching: Matching, n_arms: int = 2, *, max_enumerate: int = DEFAULT_MAX_ENUMERATE,
                 size: int = 50_000, seed: int | None = None) -> None:
        self.seed = check_seed(seed)
        self._declare(locals(), self.seed)
        if not isinstance(matching, Matching):
            raise ValueError(f"matching: expected a Matching, got {type(matching).__name__}")
        self.matching = matching
        self.n_arms = check_whole_number(n_arms, "n_arms", 2)
        if matching.group_index and self.n_arms > matching.group_size:
            raise ValueError(f"n_arms: {self.n_arms} arms do not fit in sets of {matching.group_size}")
        self.max_enumerate = check_whole_number(max_enumerate, "max_enumerate", 1)
        self.size = check_whole_number(size, "size", 2)
        self._streams = np.random.SeedSequence(self.seed).spawn(2)
        sets = list(matching.group_index) + [(i,) for i in matching.unmatched_index]
        self._sets = sets
        self._options = [_set_arrangements(len(s), self.n_arms) for s in sets]

    @property
    def cluster_ids(self) -> np.ndarray:
        return self.matching.cluster_ids

    @property
    def unit_ids(self) -> np.ndarray:
        return self.cluster_ids

    @property
    def _choice_stream(self) -> np.random.SeedSequence:
        return self._streams[1]

    def parameters(self) -> dict:
        """Every input that determines the result (the matching as its sets), for the audit record."""
        return {**super().parameters(), "matching": self.matching.record()}

    @property
    def n_possible(self) -> int:
        """Number of schemes in the full space (product over sets of their arrangements)."""
        return math.prod(len(o) for o in self._options)

    @property
    def enumerated(self) -> bool:
        return self.n_possible <= self.max_enumerate

    def _assemble(self, choice: np.ndarray) -> np.ndarray:
        out = np.empty((len(choice), len(self.cluster_ids)), dtype=np.int8)
        for k, (members, options) in enumerate(zip(self._sets, self._options)):
            out[:, list(members)] = options[choice[:, k]]
        return out

    @cached_property
    def space(self) -> RandomizationSpace:
        """Every within-set assignment (enumerated) or a sample of them without duplicates; arms "0".."K-1"."""
        radices = [len(o) for o in self._options]
        if self.enumerated:
            # mixed-radix digits of 0..S-1: scheme s picks option digit_k(s) in set k
            codes = np.arange(self.n_possible)
            choice = np.empty((len(codes), len(radices)), dtype=np.int64)
            for k in range(len(radices) - 1, -1, -1):
                codes, choice[:, k] = np.divmod(codes, radices[k])
            schemes = self._assemble(choice)
        else:
            rng = np.random.default_rng(self._streams[0])
            choice = np.stack([rng.integers(r, size=self.size) for r in radices], axis=1)
            schemes = self._assemble(choice)
            keep, _ = unique_rows(schemes)
            schemes = schemes[keep]
        return RandomizationSpace.from_arms(schemes, self.cluster_ids, [str(a) for a in range(self.n_arms)],
                                            exhaustive=self.enumerated, n_possible=self.n_possible)

    def probabilities(self) -> pd.DataFrame:
        """Each cluster's probability of each arm (columns "0".."K-1"; rows sum to 1)."""
        return super().probabilities().rename_axis("cluster")

    @cached_property
    def validity(self) -> Validity:
        """Pair coincidence in the space (matched partners never share an arm, by design)."""
        return cluster_coincidence(self.space.arm_matrix(), self.cluster_ids, n_arms=self.n_arms)

    def __repr__(self) -> str:
        how = "enumerated" if self.enumerated else f"sampled ({len(self.space):,} distinct)"
        return (f"MatchedDesign({len(self.matching.group_index)} sets of {self.matching.group_size}, "
                f"{len(self.matching.unmatched_index)} unmatched, n_arms={self.n_arms}, "
                f"{format_count(self.n_possible)} schemes {how}, seed={self.seed})")
