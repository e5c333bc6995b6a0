"""The space's SHA-256 of anything that holds a space: a design, an allocation, a saved file read back.

There is one definition, :meth:`RandomizationSpace.sha256 <crt_widgets.core.spaces.space.RandomizationSpace.sha256>`
(unit ids, arm labels, every allocation in order, and the settings that made the space); this module
only finds those parts in each kind of object, so that the commitment shown before a draw, the draw log,
the report and audit of a draw, and the analysis record give the same value, and a third party can
recompute it from the saved JSON space (which carries the cluster ids and the design's parameters).

>>> from crt_widgets import ConstrainedDesign
>>> from crt_widgets.datasets import load_dickinson
>>> design = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3)
>>> sha256_of_space(design) == design.space.sha256(design.parameters()) == sha256_of_space(design.draw(5))
True
"""
from __future__ import annotations

from typing import Any

import numpy as np

from crt_widgets.core.spaces.space import RandomizationSpace


def sha256_of_space(space: Any) -> str:
    """The space's SHA-256 of a design (its space and parameters), an allocation (its design's), a saved
    two-arm space (``SavedSpace``: its cluster ids and the parameters it carries; a cvcrand CSV, which names
    no clusters, hashes with its columns numbered 1..n and no settings; a comparison's left-out clusters as
    a third arm) or a saved multi-arm space (ids and arm labels, no settings).

    >>> from crt_widgets.core.spaces.saved import SavedSpace
    >>> from crt_widgets.core.spaces.schemes import SchemeSet
    >>> saved = SavedSpace(SchemeSet.from_matrix(np.array([[1, 0], [0, 1]])), chosen=0)
    >>> sha256_of_space(saved) == RandomizationSpace.from_arms([[1, 0], [0, 1]]).sha256()
    True
    """
    if hasattr(space, "design") and hasattr(space, "space_position"):  # an allocation
        space = space.design
    if isinstance(getattr(space, "space", None), RandomizationSpace) and hasattr(space, "parameters"):  # a design
        return space.space.sha256(space.parameters())
    if isinstance(space, RandomizationSpace):
        return space.sha256()
    if hasattr(space, "schemes") and hasattr(space, "chosen"):  # a SavedSpace
        n = space.schemes.n_clusters
        ids = np.arange(1, n + 1) if space.cluster_ids is None else np.asarray(space.cluster_ids)
        settings = (getattr(space, "metadata", None) or {}).get("parameters")
        control = getattr(space, "control", None)
        if control is None:
            return RandomizationSpace.from_schemes(space.schemes, ids).sha256(settings)
        arms = np.where(space.schemes.matrix() == 1, 1, np.where(control.matrix() == 1, 0, 2))
        return RandomizationSpace.from_arms(arms, ids, arm_labels=("0", "1", "left out")).sha256(settings)
    if hasattr(space, "arm_indices") and hasattr(space, "unit_ids"):  # a saved multi-arm space
        return RandomizationSpace.from_arms(space.arm_indices(space.arms), space.unit_ids,
                                            arm_labels=space.arms).sha256()
    raise ValueError(f"space: cannot fingerprint a {type(space).__name__}; expected a design, an allocation "
                     "or a saved space")
