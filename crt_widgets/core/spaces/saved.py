"""A randomization space with its labels, as read back from a file or made for one comparison.

:class:`SavedSpace` holds two-arm schemes (packed bits) over labelled clusters with the one used
(a multi-arm space is :class:`crt_widgets.core.spaces.multiarm.SavedMultiArmSpace`).

>>> space = SavedSpace(SchemeSet.from_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 1]])), chosen=1,
...                    cluster_ids=np.array(["a", "b", "c", "d"]))
>>> space.chosen_scheme.tolist()
[0, 1, 0, 1]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crt_widgets.core.spaces.schemes import SchemeSet


@dataclass(frozen=True, eq=False)
class SavedSpace:
    """A randomization space read back from a file.

    Attributes
    ----------
    schemes : the schemes (rows) over the clusters (columns).
    chosen : row index of the scheme that was used (None for a design's space before any draw).
    cluster_ids : the cluster labels of the columns (None for cvcrand's CSV, which has none).
    scores : balance score of each scheme, if saved.
    metadata : parameters, seed, package version, ... (our format only).
    control : the control group of each scheme when it is not the complement of ``schemes`` (a
        comparison of two arms of a multi-arm design, the other arms left out); None otherwise.
    notes : what the reader of the file should know (a file that could not be verified), one line each.
    """

    schemes: SchemeSet
    chosen: int | None
    cluster_ids: np.ndarray | None = None
    scores: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    control: SchemeSet | None = None
    notes: tuple[str, ...] = ()

    @property
    def chosen_scheme(self) -> np.ndarray:
        """The 0/1 assignment that was used."""
        if self.chosen is None:
            raise ValueError("observed: the space does not say which scheme was used")
        return self.schemes.matrix(np.array([self.chosen]))[0]

    def __repr__(self) -> str:
        return (f"SavedSpace(n_schemes={len(self.schemes)}, n_clusters={self.schemes.n_clusters}, "
                f"chosen={self.chosen}, cluster_ids={'yes' if self.cluster_ids is not None else 'no'})")
