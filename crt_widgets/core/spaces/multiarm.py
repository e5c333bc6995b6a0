"""A multi-arm space: arm labels per unit for every allocation, the one used, and the scores; it turns
into the two-group space of one comparison for the permutation test.

>>> space = SavedMultiArmSpace(["w", "x", "y", "z"], np.array([["a", "b", "c", "a"], ["b", "a", "a", "c"]]),
...                            chosen=0, scores=np.array([0.1, 0.2]))
>>> space.arm_labels, space.two_arm(treated=["a"]).chosen_scheme.tolist()
(['a', 'b', 'c'], [1, 0, 0, 1])
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from crt_widgets.core.spaces.comparisons import arm_groups, two_arm_space
from crt_widgets.core.spaces.saved import SavedSpace


@dataclass(frozen=True, eq=False)
class SavedMultiArmSpace:
    """A multi-arm space read back from CSV: unit ids, (S, n) arm labels, chosen row, scores, and what the
    reader should know about the file (``notes``: one that could not be verified)."""

    unit_ids: list[str]
    labels: np.ndarray
    chosen: int
    scores: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def arm_labels(self) -> list[str]:
        """The arm labels, as every multi-arm space and allocation names them (see :func:`comparisons`)."""
        return self.arms

    @classmethod
    def from_codes(cls, unit_ids: list[str], names: Sequence[str], codes: np.ndarray, chosen: int,
                   scores: np.ndarray, notes: tuple[str, ...] = ()) -> "SavedMultiArmSpace":
        """From the arm names and each cell's position among them (a reader that factorized the file)."""
        order = np.argsort(np.asarray([str(a) for a in names]), kind="stable")
        rank = np.empty(len(order), dtype=np.int16)
        rank[order] = np.arange(len(order))
        space = cls(unit_ids, np.asarray(list(names), dtype=object)[codes], chosen, scores, notes)
        space.__dict__["_coded"] = ([str(names[i]) for i in order], rank[codes])
        return space

    @cached_property
    def _coded(self) -> tuple[list[str], np.ndarray]:
        """The sorted arm labels and each cell's position among them (computed once)."""
        found, index = np.unique(self.labels.astype(str), return_inverse=True)  # a few labels, many cells
        return [str(a) for a in found], index.reshape(self.labels.shape).astype(np.int16)

    @property
    def arms(self) -> list[str]:
        """The arm labels found in the file, sorted (the file does not keep the design's arm order)."""
        return list(self._coded[0])

    def two_arm(self, *, factor: str | None = None, treated: Sequence[str] | None = None,
                control: Sequence[str] | None = None) -> SavedSpace:
        """The space of one two-group comparison (see :meth:`MultiArmAllocation.two_arm`)."""
        group = arm_groups(self.arms, treated, factor, control)
        space = two_arm_space(self.arm_indices(self.arms), group, self.chosen, self.unit_ids, self.scores, self.arms)
        return replace(space, notes=self.notes)

    def arm_indices(self, arm_labels: Sequence[str]) -> np.ndarray:
        """The space as arm indices, given the arm order."""
        lookup = {str(a): i for i, a in enumerate(arm_labels)}
        found, index = self._coded
        unknown = set(found) - set(lookup)
        if unknown:
            raise ValueError(f"arm_labels: the space has labels not listed: {sorted(unknown)}")
        return np.array([lookup[a] for a in found], dtype=np.int16)[index]
