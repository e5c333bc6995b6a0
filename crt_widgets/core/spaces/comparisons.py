"""Two-group comparisons of a multi-arm design, for the clustered permutation test.

The permutation test compares two groups of clusters. A multi-arm or factorial trial is analysed
one comparison at a time: the main effect of a factor (arms that receive it against arms that do
not), a set of arms against the rest, or a set of arms against a control set with the other arms
left out (each treatment against the control arm). :func:`two_arm_space` turns the multi-arm
constrained space into the space of that comparison. It keeps one row per multi-arm allocation,
duplicates included, because the allocation used was drawn uniformly from those rows; the
permutation distribution is then the design's own. Left-out clusters count in no group, scheme by
scheme, and the model-based companions are fitted on the compared clusters only.

The test is exact for the sharp null that the outcome does not depend on the arm. The inverted
interval assumes that only the compared groups differ (for a factor: additivity, no effect of the
other factors; with arms left out: the left-out arms are like the control). When other factors may
matter, adjust the model-based companions for them as covariates.

:func:`comparisons` lists what a multi-arm space offers and :func:`two_group_space` makes the chosen
one (the analysis dashboard's choice).

>>> labels = ("none", "a", "b", "a+b")
>>> arm_groups(labels, factor="a").tolist(), arm_groups(labels, treated=["b"]).tolist()
([False, True, False, True], [False, False, True, False])
>>> arm_groups(labels, treated=["b"], control=["none"]).tolist()
[[False, False, True, False], [True, False, False, False]]
>>> space = two_arm_space(np.array([[0, 1, 2, 3], [1, 0, 3, 2]]), arm_groups(labels, factor="a"), chosen=1,
...                       cluster_ids=["w", "x", "y", "z"], labels=labels)
>>> space.chosen_scheme.tolist(), space.metadata["treated_arms"]
([1, 0, 1, 0], ['a', 'a+b'])
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crt_widgets.core.spaces.schemes import SchemeSet
from crt_widgets.core.spaces.saved import SavedSpace


def _named_arms(names: Sequence[str] | str, labels: list[str], argument: str) -> np.ndarray:
    names = [names] if isinstance(names, str) else [str(a) for a in names]
    unknown = [a for a in names if a not in labels]
    if unknown or not names:
        raise ValueError(f"{argument}: arm(s) {', '.join(unknown) or '(none given)'} not among the arms {labels}")
    return np.isin(labels, names)


def arm_groups(labels: Sequence[str], treated: Sequence[str] | None = None, factor: str | None = None,
               control: Sequence[str] | None = None) -> np.ndarray:
    """Which arms form the treated group: the arms named in ``treated``, or the arms that receive
    ``factor`` (arm labels of a factorial design join factor names with ``+``, the control is ``none``).
    With ``control``, a (2, K) array: the treated arms, then the control arms (the others left out)."""
    labels = [str(a) for a in labels]
    if (treated is None) == (factor is None):
        raise ValueError("comparison: give either factor= (a factorial main effect) or treated= (a list of arms)")
    if factor is not None:
        if control is not None:
            raise ValueError("control: a factor's main effect compares all arms; control= goes with treated=")
        group = np.array([str(factor) in label.split("+") for label in labels])
        if not group.any():
            raise ValueError(f"factor: {factor!r} is not a factor of the arms {labels}")
    else:
        group = _named_arms(treated, labels, "treated")
    if control is not None:
        control_group = _named_arms(control, labels, "control")
        if (group & control_group).any():
            both = [a for a, g, c in zip(labels, group, control_group) if g and c]
            raise ValueError(f"control: arm(s) {', '.join(both)} are in both groups")
        return np.stack([group, control_group])
    if group.all():
        raise ValueError("comparison: every arm is in the treated group; leave at least one arm as the comparator")
    return group


def two_arm_space(arm_index: np.ndarray, group: np.ndarray, chosen: int, cluster_ids: Sequence,
                  scores: np.ndarray | None = None, labels: Sequence[str] | None = None) -> SavedSpace:
    """The two-group space of a multi-arm space: (S, n) arm indices -> 0/1 schemes (1 = an arm of ``group``),
    one row per allocation, with the allocation used at row ``chosen``. ``group`` from :func:`arm_groups`:
    (K,) treated arms against the rest, or (2, K) treated and control arms (the others left out)."""
    arm_index = np.asarray(arm_index)
    group = np.asarray(group, dtype=bool)
    treated, control = (group, ~group) if group.ndim == 1 else (group[0], group[1])
    labels = [str(a) for a in (labels if labels is not None else range(1, len(treated) + 1))]
    if len(labels) != len(treated):
        raise ValueError(f"labels: {len(labels)} for {len(treated)} arms")
    treated_arms = [a for a, g in zip(labels, treated) if g]
    control_arms = [a for a, g in zip(labels, control) if g]
    against = "the others" if group.ndim == 1 else f"arms {', '.join(control_arms)} (the others left out)"
    return SavedSpace(SchemeSet.from_matrix(treated[arm_index].astype(np.uint8)), int(chosen), np.asarray(cluster_ids),
                      scores, metadata={"comparison": f"arms {', '.join(treated_arms)} against {against}",
                                        "treated_arms": treated_arms, "control_arms": control_arms},
                      control=None if group.ndim == 1 else SchemeSet.from_matrix(control[arm_index].astype(np.uint8)))


def comparisons(space) -> list[tuple[str, str]]:
    """The two-group comparisons a multi-arm space offers, as (label, value) pairs: each factor's main
    effect, each arm against the control arm (``none`` in a factorial, else the first arm) with the
    other arms left out, then each arm against the rest; empty for a two-arm space.

    >>> comparisons(None)
    []
    """
    arms = list(getattr(space, "arm_labels", None) or [])
    # a saved multi-arm space always needs a comparison; an allocation of two arms is a two-arm space already
    if not arms or (hasattr(space, "design") and len(arms) <= 2):
        return []
    # a factorial design's arms are "none" and "+"-joined factor names (Arms.factorial)
    factors = sorted({f for a in arms if a != "none" for f in a.split("+")}) if "none" in arms else []
    control = "none" if factors else arms[0]
    return ([(f"main effect of factor {f}", f"factor:{f}") for f in factors]
            + [(f"arm {a} against arm {control} (others left out)", f"pair:{a}|{control}") for a in arms if a != control]
            + [(f"arm {a} against the rest", f"arm:{a}") for a in arms])


def two_group_space(space, comparison: str):
    """``space`` itself, or the two-group space of ``comparison`` (a value of :func:`comparisons`:
    ``"factor:a"``, ``"pair:X|C"``, ``"arm:X"``) of a multi-arm one."""
    options = comparisons(space)
    if not options:
        return space
    if comparison not in {value for _, value in options}:
        raise ValueError("comparison: the space has more than two arms; choose what to compare")
    kind, name = comparison.split(":", 1)
    if kind == "factor":
        return space.two_arm(factor=name)
    if kind == "pair":
        treated, control = name.split("|", 1)
        return space.two_arm(treated=[treated], control=[control])
    return space.two_arm(treated=[name])
