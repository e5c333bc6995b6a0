"""The randomization space of a permutation test: schemes over labelled clusters, and the one used.

:func:`resolve_space` accepts whatever the user has (a saved space file, a design or its
allocation, a SchemeSet or 0/1 matrix); :func:`simple_space` builds the unconstrained space, by
enumeration when it is small and else by seeded sampling.

>>> space = simple_space(["a", "b", "c", "d"], 2, {"a": 1, "b": 0, "c": 1, "d": 0})
>>> len(space.schemes), space.observed_arm.tolist(), smallest_p_value(space)
(6, [1, 0, 1, 0], 0.3333333333333333)
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.randomization.allocation import AllocationRecord
from crt_widgets.core.randomization.protocol import TWO_GROUP_HINT, Design
from crt_widgets.core.spaces.multiarm import SavedMultiArmSpace
from crt_widgets.core.spaces.space import RandomizationSpace
from crt_widgets.core.spaces.schemes import SchemeSet, enumerate_schemes, sample_schemes, unique_schemes
from crt_widgets.core.seeds import check_seed
from crt_widgets.core.io.spacefiles import cvcrand_column_order, read_space
from crt_widgets.core.spaces.saved import SavedSpace


@dataclass(frozen=True, eq=False)
class PermutationSpace:
    """Schemes over labelled clusters, and which of them was used."""

    schemes: SchemeSet
    observed: int
    cluster_ids: np.ndarray
    note: str = ""  # how the space was made, when the result should say (a sampled simple space)
    control: SchemeSet | None = None  # each scheme's control clusters when not the complement (others left out)
    notes: tuple[str, ...] = ()  # what the space's file says of itself (a CSV that could not be verified)
    origin: Any = None  # what the space was made from (a design, an allocation, a saved space), for its SHA-256

    def sha256(self) -> str:
        """The space's SHA-256 as :func:`~crt_widgets.core.io.spacehash.sha256_of_space` gives it for what the
        space was made from (so a design's, its draws' and their analyses' agree); a bare scheme matrix
        hashes its schemes over these cluster ids.

        >>> space = simple_space(["a", "b", "c", "d"], 2, {"a": 1, "b": 0, "c": 1, "d": 0})
        >>> space.sha256() == RandomizationSpace.from_schemes(space.schemes, ["a", "b", "c", "d"]).sha256()
        True
        """
        from crt_widgets.core.io.spacehash import sha256_of_space

        if self.origin is not None:
            try:
                return sha256_of_space(self.origin)
            except ValueError:  # an object sha256_of_space does not know: its schemes, as below
                pass
        if self.control is not None:
            return sha256_of_space(SavedSpace(self.schemes, self.observed, self.cluster_ids, control=self.control))
        return RandomizationSpace.from_schemes(self.schemes, self.cluster_ids).sha256()

    @property
    def observed_arm(self) -> np.ndarray:
        """1 for the clusters treated in the scheme used, else 0."""
        return self.schemes.matrix(np.array([self.observed]))[0]

    @property
    def observed_control(self) -> np.ndarray:
        """1 for the clusters in the control group of the scheme used, else 0."""
        if self.control is None:
            return 1 - self.observed_arm
        return self.control.matrix(np.array([self.observed]))[0]

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
                  data_clusters: np.ndarray | None = None, audit: Any = None) -> PermutationSpace:
    """Turn what the user passed as the space into schemes, labelled clusters and the observed scheme.

    ``space`` may be a path to a saved space (cvcrand's CSV or our JSON), a :class:`SavedSpace`, any
    allocation (its design's space, with the drawn allocation observed), any design (with ``observed``
    given), a :class:`SchemeSet` or a 0/1 matrix. Designs and allocations give their space through the
    protocol's ``to_permutation_space()``: a design of two arms counts its second arm as the treatment;
    with more arms, pass one comparison (``allocation.two_arm(...)``). cvcrand's CSV has no cluster
    labels: its columns are taken to be the data's clusters in sorted order (as cptest does), unless
    ``cluster_ids`` says otherwise.
    ``observed`` is a scheme index, a 0/1 arm per cluster, or a mapping cluster -> arm.
    A space file is verified against the audit record saved beside it, or ``audit`` (a path or the record);
    see :mod:`crt_widgets.core.io.audits`.
    """
    position = None
    ids = None
    control = None
    note = ""
    if isinstance(space, (str, Path)):
        space = read_space(space, audit=audit)
    elif audit is not None:
        raise ValueError("audit: verifies a space file; give the space as the path of the file the design saved")
    origin = space if isinstance(space, (Design, AllocationRecord, SavedSpace, RandomizationSpace)) else None
    if isinstance(space, (Design, AllocationRecord)):  # every design and allocation says its two-group space
        space = space.to_permutation_space()
    file_notes = space.notes if isinstance(space, SavedSpace) else ()
    if isinstance(space, SavedSpace):
        schemes, position, ids, control = space.schemes, space.chosen, space.cluster_ids, space.control
    elif isinstance(space, RandomizationSpace):  # a design's space, with ``observed`` given
        if space.n_arms != 2:
            raise ValueError(f"space: {space.n_arms} arms; the permutation test compares two groups: {TWO_GROUP_HINT}")
        schemes, ids = space.schemes, space.unit_ids
    elif isinstance(space, SchemeSet):
        schemes = space
    elif isinstance(space, SavedMultiArmSpace):  # which two groups is the user's choice
        raise ValueError(f"space: a multi-arm space; the permutation test compares two groups: {TWO_GROUP_HINT}")
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
        unique = pd.unique(data_clusters)
        ids = unique[cvcrand_column_order(unique)]  # the order the file's columns were written in
        note = _unlabelled_order_note(ids)
        if len(ids) != schemes.n_clusters:
            raise ValueError(f"space: it has {schemes.n_clusters} cluster columns but the data have "
                             f"{len(ids)} clusters (the file has no cluster labels, so its columns are the "
                             "data's clusters in sorted order: every cluster needs individuals)")
    if len(pd.unique(ids)) != len(ids):
        raise ValueError("cluster_ids: the space's cluster labels are not unique")
    if len(ids) != schemes.n_clusters:
        raise ValueError(f"cluster_ids: {len(ids)} labels for a space of {schemes.n_clusters} clusters")
    if observed is not None:
        marked = position  # the allocation a space file or a drawn allocation says was used
        if isinstance(observed, dict):
            observed = _arm_from_mapping(observed, ids)
        if np.ndim(observed) == 0:
            position = int(observed)
            if not 0 <= position < len(schemes):
                raise ValueError(f"observed: scheme {position} is out of range (0..{len(schemes) - 1})")
        else:
            position = _find_scheme(schemes, observed)
        if marked is not None and position != marked:
            raise ValueError(f"observed: the allocation given is not the one the space marks as used (scheme "
                             f"{marked + 1:,}; the one given is scheme {position + 1:,}): is this the space of this "
                             "trial, and the treatment column the arms the clusters received?")
    if position is None:
        raise ValueError("observed: say which scheme was used (the space does not mark one)")
    if len(schemes) < 2:
        raise ValueError("space: a permutation test needs at least 2 schemes")
    counts = schemes.treated_counts()
    n_control = schemes.n_clusters - counts if control is None else control.treated_counts()
    if counts.min() == 0 or n_control.min() == 0:  # formula (5) needs both arms
        raise ValueError("space: some schemes have no treated or no control cluster")
    return PermutationSpace(schemes, int(position), ids, note=note, control=control, notes=tuple(file_notes),
                            origin=origin)


def _unlabelled_order_note(ids: np.ndarray) -> str:
    """A warning when text cluster ids sort differently from their natural order ("C10" before "C2"):
    an unlabelled (cvcrand) space is read in sorted order, which a design that listed them naturally
    would not match.

    >>> _unlabelled_order_note(np.array(["C1", "C10", "C2"]))[:44]
    'the space file has no cluster labels: its co'
    >>> _unlabelled_order_note(np.array([1, 2, 10]))
    ''
    """
    if ids.dtype.kind not in "OUS":
        return ""
    natural = sorted(ids.tolist(), key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(s))])
    if natural == ids.tolist():
        return ""
    shown = ", ".join(map(str, ids[:4]))
    return (f"the space file has no cluster labels: its columns were taken as the clusters in sorted text order "
            f"({shown}, ...), not natural order; if the design listed them otherwise, use the labelled JSON space")


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
    seed = check_seed(seed)  # fresh entropy when None, reported so that the p-value can be reproduced
    sampled, _ = sample_schemes(n, n_treat, size, np.random.default_rng(seed))
    sampled = sampled.take(np.arange(min(len(sampled), size - 1)))  # room for the observed one
    arm = np.asarray(observed if not isinstance(observed, dict) else _arm_from_mapping(observed, ids))
    # the observed scheme joins the sample: the Monte Carlo p-value is then (1 + hits) / (1 + draws), valid
    schemes, _ = unique_schemes(SchemeSet(np.vstack([SchemeSet.from_matrix(arm[None, :]).packed, sampled.packed]), n))
    space = resolve_space(schemes, cluster_ids=ids, observed=observed)
    note = (f"simple space sampled: {len(schemes):,} of the {math.comb(n, n_treat):,} schemes "
            f"(the observed one included; seed {seed})")
    return PermutationSpace(space.schemes, space.observed, space.cluster_ids, note)


def simple_from_observed(data: pd.DataFrame, cluster: str, observed: Any, cluster_ids: Sequence | None,
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


def smallest_p_value(space: PermutationSpace) -> float:
    """The smallest two-sided p-value the space allows: the observed scheme and its mirror image
    (when the space holds it, it has the same |U|) always count."""
    mirror = space.schemes.keys() == SchemeSet.from_matrix(space.observed_control[None, :]).keys()[0]
    if space.control is not None:  # the mirror also has the observed treated clusters as its control
        mirror &= space.control.keys() == SchemeSet.from_matrix(space.observed_arm[None, :]).keys()[0]
    return (1 + int(np.any(mirror))) / len(space.schemes)
