"""Two-group comparisons of a multi-arm design, for the clustered permutation test.

The permutation test compares two groups of clusters. A multi-arm or factorial trial is analysed
one comparison at a time: the main effect of a factor (arms that receive it against arms that do
not), or any set of arms against the rest. :func:`two_arm_space` turns the multi-arm constrained
space into the two-group space of that comparison. It keeps one row per multi-arm allocation,
duplicates included, because the allocation used was drawn uniformly from those rows; the
permutation distribution is then the design's own.

The test is exact for the sharp null that the outcome does not depend on the arm. The inverted
interval assumes that only the compared split shifts the outcome (for a factor: additivity, no
effect of the other factors). When other factors may matter, adjust the model-based companions for
them as covariates.

>>> labels = ("none", "a", "b", "a+b")
>>> arm_groups(labels, factor="a").tolist(), arm_groups(labels, treated=["b"]).tolist()
([False, True, False, True], [False, False, True, False])
>>> space = two_arm_space(np.array([[0, 1, 2, 3], [1, 0, 3, 2]]), arm_groups(labels, factor="a"), chosen=1,
...                       cluster_ids=["w", "x", "y", "z"], labels=labels)
>>> space.chosen_scheme.tolist(), space.metadata["treated_arms"]
([1, 0, 1, 0], ['a', 'a+b'])
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crt_widgets.core.schemes import SchemeSet
from crt_widgets.core.spaceio import SavedSpace


def arm_groups(labels: Sequence[str], treated: Sequence[str] | None = None, factor: str | None = None) -> np.ndarray:
    """Which arms form the treated group: the arms named in ``treated``, or the arms that receive
    ``factor`` (arm labels of a factorial design join factor names with ``+``, the control is ``none``)."""
    labels = [str(a) for a in labels]
    if (treated is None) == (factor is None):
        raise ValueError("comparison: give either factor= (a factorial main effect) or treated= (a list of arms)")
    if factor is not None:
        group = np.array([str(factor) in label.split("+") for label in labels])
        if not group.any():
            raise ValueError(f"factor: {factor!r} is not a factor of the arms {labels}")
    else:
        names = [treated] if isinstance(treated, str) else [str(a) for a in treated]
        unknown = [a for a in names if a not in labels]
        if unknown:
            raise ValueError(f"treated: arm(s) {', '.join(unknown)} not among the arms {labels}")
        group = np.isin(labels, names)
    if group.all():
        raise ValueError("comparison: every arm is in the treated group; leave at least one arm as the comparator")
    return group


def two_arm_space(arm_index: np.ndarray, group: np.ndarray, chosen: int, cluster_ids: Sequence,
                  scores: np.ndarray | None = None, labels: Sequence[str] | None = None) -> SavedSpace:
    """The two-group space of a multi-arm space: (S, n) arm indices -> 0/1 schemes (1 = an arm of ``group``),
    one row per allocation, with the allocation used at row ``chosen``."""
    arm_index = np.asarray(arm_index)
    group = np.asarray(group, dtype=bool)
    matrix = group[arm_index].astype(np.uint8)
    labels = [str(a) for a in (labels if labels is not None else range(1, len(group) + 1))]
    if labels and len(labels) != len(group):
        raise ValueError(f"labels: {len(labels)} for {len(group)} arms")
    treated_arms = [a for a, g in zip(labels, group) if g]
    return SavedSpace(SchemeSet.from_matrix(matrix), int(chosen), np.asarray(cluster_ids), scores,
                      metadata={"comparison": f"arms {', '.join(treated_arms)} against the others",
                                "treated_arms": treated_arms,
                                "control_arms": [a for a, g in zip(labels, group) if not g]})
