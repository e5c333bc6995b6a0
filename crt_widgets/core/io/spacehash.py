"""One fingerprint of a randomization space: the SHA-256 of its schemes, its cluster ids and its settings.

The draw log, the report of a draw, the commitment shown before a draw and the analysis record all use
this one hash, so a third party can check that a draw came from the space as committed: the saved JSON
space carries the cluster ids and the design's parameters, and hashes to the same value as the design.

What is hashed, in this order: one line of canonical JSON (sorted keys, no spaces) naming the format,
the number of schemes and clusters, the cluster ids as text, the arm labels of a multi-arm space and the
settings; a newline; then the schemes in the space's order: for two arms, each scheme's packed bits
(cluster ``j`` is bit ``j % 8`` of byte ``j // 8``, unused bits zero), for more arms one byte per
cluster (the arm's index). The order matters: a draw picks a position in the space.

>>> import numpy as np
>>> from crt_widgets.core.spaces.schemes import SchemeSet
>>> schemes = SchemeSet.from_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 1]]))
>>> digest = space_sha256(schemes, ["a", "b", "c", "d"], {"cutoff": 0.1})
>>> len(digest), digest == space_sha256(schemes, ["a", "b", "c", "d"], {"cutoff": 0.2})
(64, False)
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crt_widgets.core.io.files import json_ready
from crt_widgets.core.spaces.schemes import SchemeSet

HASH_FORMAT = "crt-widgets/space-sha256"
HASH_VERSION = 1
_ROWS = 1 << 18  # schemes hashed per block: memory stays bounded for any space


def space_sha256(space: SchemeSet | np.ndarray, cluster_ids: Sequence | None = None,
                 settings: Mapping[str, Any] | None = None, *, arm_labels: Sequence | None = None,
                 control: SchemeSet | None = None) -> str:
    """The SHA-256 of a space (two-arm :class:`SchemeSet`, or an (S, n) array of arm indices with
    ``arm_labels``), its cluster ids (None for a cvcrand CSV, which has none) and its settings
    (the design's parameters; None when unknown). ``control``: the control schemes of a comparison
    that leaves some clusters out.

    >>> import numpy as np
    >>> arms = np.array([[0, 1, 2], [2, 1, 0]])
    >>> space_sha256(arms, [1, 2, 3], arm_labels=["a", "b", "c"]) == space_sha256(arms, ["1", "2", "3"],
    ...                                                                            arm_labels=["a", "b", "c"])
    True
    """
    two_arm = isinstance(space, SchemeSet)
    if not two_arm:
        space = np.asarray(space)
        if space.ndim != 2:
            raise ValueError(f"space: expected a SchemeSet or a 2-d array of arm indices, got shape {space.shape}")
        if arm_labels is None:
            raise ValueError("arm_labels: a multi-arm space is hashed with its arm labels")
        if space.size and (space.min() < 0 or space.max() >= min(len(arm_labels), 256)):
            raise ValueError(f"space: arm indices must lie in 0..{len(arm_labels) - 1} (at most 256 arms)")
    n_schemes, n_clusters = (len(space), space.n_clusters) if two_arm else space.shape
    ids = None if cluster_ids is None else [str(c) for c in np.asarray(cluster_ids).tolist()]
    if ids is not None and len(ids) != n_clusters:
        raise ValueError(f"cluster_ids: {len(ids)} ids for a space of {n_clusters} clusters")
    header = {"format": HASH_FORMAT, "version": HASH_VERSION, "n_schemes": int(n_schemes),
              "n_clusters": int(n_clusters), "cluster_ids": ids,
              "arm_labels": None if two_arm else [str(a) for a in arm_labels],
              "control": control is not None, "settings": None if settings is None else json_ready(dict(settings))}
    digest = hashlib.sha256(canonical_json(header).encode("utf-8") + b"\n")
    for block in _blocks(space, two_arm):
        digest.update(block)
    if control is not None:
        for block in _blocks(control, True):
            digest.update(block)
    return digest.hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces (numpy values made plain): the same text for the same content.

    >>> canonical_json({"b": 1, "a": [1.5, None]})
    '{"a":[1.5,null],"b":1}'
    """
    return json.dumps(json_ready(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _blocks(space, two_arm: bool):
    if two_arm:
        spare = (-space.n_clusters) % 8
        mask = np.uint8(0xFF >> spare)
        for start in range(0, len(space), _ROWS):
            block = np.array(space.packed[start:start + _ROWS], dtype=np.uint8, order="C")
            if spare and block.size:
                block[:, -1] &= mask  # bits past the last cluster carry nothing
            yield block.tobytes()
    else:
        for start in range(0, len(space), _ROWS):
            yield np.ascontiguousarray(space[start:start + _ROWS], dtype=np.uint8).tobytes()


def sha256_of_space(space: Any) -> str:
    """The :func:`space_sha256` of a design, an allocation (its design's space), a saved space
    (``SavedSpace``: its ids and the parameters it carries) or a saved multi-arm space.

    >>> from crt_widgets.core.spaces.saved import SavedSpace
    >>> saved = SavedSpace(SchemeSet.from_matrix(np.array([[1, 0], [0, 1]])), chosen=0)
    >>> sha256_of_space(saved) == space_sha256(saved.schemes)
    True
    """
    if hasattr(space, "design") and hasattr(space, "space_position"):  # an allocation
        space = space.design
    if hasattr(space, "parameters") and hasattr(space, "space") and hasattr(space, "cluster_ids"):  # a design
        labels = getattr(getattr(space, "arms", None), "labels", None)
        if isinstance(space.space, SchemeSet):
            return space_sha256(space.space, space.cluster_ids, space.parameters())
        return space_sha256(space.space, space.cluster_ids, space.parameters(), arm_labels=list(labels))
    if hasattr(space, "schemes") and hasattr(space, "chosen"):  # a SavedSpace
        metadata = getattr(space, "metadata", None) or {}
        return space_sha256(space.schemes, space.cluster_ids, metadata.get("parameters"),
                            control=getattr(space, "control", None))
    if hasattr(space, "arm_indices") and hasattr(space, "unit_ids"):  # a saved multi-arm space
        return space_sha256(space.arm_indices(space.arms), space.unit_ids, arm_labels=space.arms)
    raise ValueError(f"space: cannot fingerprint a {type(space).__name__}; expected a design, an allocation "
                     "or a saved space")
