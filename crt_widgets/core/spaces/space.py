"""The randomization space of any design, as one type: one row per allocation, each unit's arm.

Every design (two-arm constrained, multi-arm, stratified, matched) exposes its space as a
:class:`RandomizationSpace`, so what reads a space (probabilities, validity, files, the permutation
test) never asks what kind of design made it (randomizr's ``obtain_permutation_matrix`` for every
declaration). Two-arm spaces are kept as packed bits (:class:`SchemeSet`: a million schemes of 30
clusters in 4 MB); spaces of more arms as an int8 matrix of arm indices.

A space either lists every allocation of its design (``exhaustive``) or is a random sample of them,
as when a design has too many allocations to list; ``n_possible`` is then the number it represents.

>>> space = RandomizationSpace.from_arms([[0, 1, 1, 0], [1, 0, 0, 1], [1, 1, 0, 0]], unit_ids=["a", "b", "c", "d"])
>>> len(space), space.n_arms, space.probabilities().loc["a"].tolist()
(3, 2, [0.3333333333333333, 0.6666666666666666])
>>> space.schemes.matrix().tolist()[0]
[0, 1, 1, 0]
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crt_widgets.core.spaces.schemes import CHUNK_ROWS, SchemeSet

TWO_ARMS = ("0", "1")


@dataclass(frozen=True, eq=False)
class RandomizationSpace:
    """The allocations a design randomizes over.

    Attributes
    ----------
    unit_ids : the units' labels, in the design's order (the columns).
    arm_labels : the arms' labels; arm index ``a`` of a row is ``arm_labels[a]``. For two arms,
        index 1 is the treatment (what a :class:`SchemeSet` bit 1 means).
    scores : each allocation's balance score, when the design scores them.
    exhaustive : True when every allocation of the design is listed; False for a random sample.
    n_possible : how many allocations the design has in all (None when too many to count).
    """

    unit_ids: np.ndarray
    arm_labels: tuple[str, ...]
    packed: SchemeSet | None = None
    arm_indices: np.ndarray | None = None
    scores: np.ndarray | None = None
    exhaustive: bool = True
    n_possible: int | None = None

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_schemes(cls, schemes: SchemeSet, unit_ids: Sequence, arm_labels: Sequence[str] = TWO_ARMS,
                     **kwargs) -> "RandomizationSpace":
        """A two-arm space from packed schemes (bit 1 = ``arm_labels[1]``)."""
        return cls(np.asarray(unit_ids), tuple(map(str, arm_labels)), packed=schemes, **kwargs)

    @classmethod
    def from_arms(cls, arms: np.ndarray | Sequence, unit_ids: Sequence | None = None,
                  arm_labels: Sequence[str] | None = None, **kwargs) -> "RandomizationSpace":
        """From an (S, n) matrix of arm indices 0..K-1; two arms are packed into bits."""
        arms = np.asarray(arms)
        if arms.ndim != 2:
            raise ValueError(f"arms: expected an (allocations, units) matrix, got shape {arms.shape}")
        n_arms = len(arm_labels) if arm_labels is not None else int(arms.max(initial=0)) + 1
        labels = tuple(map(str, arm_labels)) if arm_labels is not None else tuple(str(a) for a in range(max(n_arms, 2)))
        ids = np.arange(1, arms.shape[1] + 1) if unit_ids is None else np.asarray(unit_ids)
        if len(ids) != arms.shape[1]:
            raise ValueError(f"unit_ids: {len(ids)} labels for {arms.shape[1]} units")
        if len(labels) == 2:
            return cls(ids, labels, packed=SchemeSet.from_matrix(arms), **kwargs)
        return cls(ids, labels, arm_indices=arms.astype(np.int8 if len(labels) <= 127 else np.int32), **kwargs)

    # -- size ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.packed) if self.packed is not None else len(self.arm_indices)

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    @property
    def n_arms(self) -> int:
        return len(self.arm_labels)

    def __repr__(self) -> str:
        how = "all allocations" if self.exhaustive else "a random sample"
        of = f" of {self.n_possible:,}" if self.n_possible is not None and self.n_possible != len(self) else ""
        return (f"RandomizationSpace({len(self):,} allocations{of} ({how}), {self.n_units} units, "
                f"arms {list(self.arm_labels)})")

    # -- access --------------------------------------------------------------------------------------
    @property
    def schemes(self) -> SchemeSet:
        """The space as packed two-arm schemes (1 = ``arm_labels[1]``); two arms only."""
        if self.packed is None:
            raise ValueError(f"space: {self.n_arms} arms; two-arm schemes exist only for two arms "
                             "(compare two groups with .two_arm(...))")
        return self.packed

    def arm_matrix(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """(rows, units) arm indices (int8), all rows by default."""
        if self.packed is not None:
            return self.packed.matrix(rows, dtype=np.int8)
        block = self.arm_indices if rows is None else self.arm_indices[rows]
        return block[None, :] if block.ndim == 1 else block

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, arm-index block) of at most ``rows`` allocations, to bound memory."""
        for start in range(0, len(self), rows):
            yield start, self.arm_matrix(slice(start, start + rows))

    def arm_counts(self) -> np.ndarray:
        """(units, arms): how many allocations give each unit each arm."""
        counts = np.zeros((self.n_units, self.n_arms), dtype=np.int64)
        for _, block in self.chunks():
            for a in range(self.n_arms):
                counts[:, a] += (block == a).sum(axis=0, dtype=np.int64)
        return counts

    def probabilities(self) -> pd.DataFrame:
        """Each unit's probability of each arm over the space (rows sum to 1)."""
        return pd.DataFrame(self.arm_counts() / len(self), index=pd.Index(self.unit_ids, name="unit"),
                            columns=list(self.arm_labels))

    def sha256(self) -> str:
        """SHA-256 of the space's content (unit ids, arm labels and every allocation, in order): the
        fingerprint that ties a draw, a saved file and an analysis to the same space.

        >>> a = RandomizationSpace.from_arms([[0, 1], [1, 0]], unit_ids=["x", "y"])
        >>> a.sha256() == RandomizationSpace.from_arms([[0, 1], [1, 0]], unit_ids=["x", "y"]).sha256()
        True
        >>> a.sha256() == RandomizationSpace.from_arms([[1, 0], [0, 1]], unit_ids=["x", "y"]).sha256()
        False
        """
        h = hashlib.sha256(b"crt-widgets/randomization-space/1\0")
        h.update("\0".join(map(str, self.unit_ids.tolist())).encode() + b"\1")
        h.update("\0".join(self.arm_labels).encode() + b"\1")
        if self.packed is not None:
            h.update(np.ascontiguousarray(self.packed.packed).tobytes())
        else:
            h.update(np.ascontiguousarray(self.arm_indices, dtype=np.int32).tobytes())
        return h.hexdigest()
