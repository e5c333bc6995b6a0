"""User seeds, checked once at the boundary: every random result comes from a ``numpy.random.Generator``
seeded by a whole number the result records, so the same inputs and seed reproduce it anywhere.

>>> check_seed(12345)
12345
>>> check_seed(-1)
Traceback (most recent call last):
...
ValueError: seed: expected a whole number of at least 0 (or None for a fresh one), got -1
>>> int(generator(7).integers(100)) == int(generator(7).integers(100))
True
"""
from __future__ import annotations

from typing import Any

import numpy as np


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as a whole number >= 0; None draws fresh entropy and returns it, so it can be recorded."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name}: expected a whole number of at least 0 (or None for a fresh one), got {seed!r}")
    return int(seed)


def generator(seed: Any, name: str = "seed") -> np.random.Generator:
    """A Generator from a user seed (checked), a ``SeedSequence``, or a Generator (passed through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    return np.random.default_rng(None if seed is None else check_seed(seed, name))
