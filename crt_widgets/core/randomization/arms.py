"""The arms of a design: labels and, for a factorial design, which factors each arm switches on.

>>> Arms.factorial(["a", "b"]).labels
('none', 'a', 'b', 'a+b')
>>> Arms.build(3).labels
('1', '2', '3')
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crt_widgets.core.randomization.balanced_sampler import check_whole_number


@dataclass(frozen=True)
class Arms:
    """The arms of a design: labels and, for a factorial design, which factors each arm switches on.

    ``Arms.factorial(["a", "b", "c"])`` gives the 2x2x2 design's 8 arms in Goldfeld's (2024) order:
    none, a, b, c, a+b, a+c, b+c, a+b+c (``levels[i, f] = 1`` when arm i receives factor f).

    >>> Arms.factorial(["a", "b"]).labels
    ('none', 'a', 'b', 'a+b')
    """

    labels: tuple[str, ...]
    factors: tuple[str, ...] = ()
    levels: np.ndarray | None = None

    @classmethod
    def factorial(cls, factors: Sequence[str]) -> "Arms":
        factors = tuple(str(f) for f in factors)
        if len(factors) < 1 or len(set(factors)) != len(factors):
            raise ValueError(f"factors: give at least one factor, each named once, got {list(factors)}")
        if any(f in ("", "none") or "+" in f for f in factors):
            raise ValueError("factors: names must be non-empty, not 'none', and without '+'")
        combos = [c for k in range(len(factors) + 1) for c in itertools.combinations(range(len(factors)), k)]
        levels = np.zeros((len(combos), len(factors)), dtype=np.int8)
        for i, c in enumerate(combos):
            levels[i, list(c)] = 1
        labels = tuple("+".join(factors[f] for f in c) or "none" for c in combos)
        return cls(labels, factors, levels)

    @classmethod
    def build(cls, arms: int | Sequence[str] | None = None, factors: Sequence[str] | None = None) -> "Arms":
        """From a number of arms (labels "1".."K"), a list of labels, or factor names."""
        if factors is not None:
            if arms is not None:
                made = cls.factorial(factors)
                if (isinstance(arms, (int, np.integer)) and arms != len(made.labels)) or \
                        (not isinstance(arms, (int, np.integer)) and len(arms) != len(made.labels)):
                    raise ValueError(f"n_arms: {len(factors)} two-level factors make {len(made.labels)} arms, "
                                     f"not {arms if isinstance(arms, (int, np.integer)) else len(arms)}")
                return made
            return cls.factorial(factors)
        if arms is None:
            raise ValueError("n_arms: give the number of arms, their labels, or factors")
        if isinstance(arms, (int, np.integer)) and not isinstance(arms, bool):
            k = check_whole_number(arms, "n_arms", 2)
            return cls(tuple(str(i) for i in range(1, k + 1)))
        if isinstance(arms, str):
            raise ValueError("arms: give a list of arm labels, not a single string")
        labels = tuple(str(a) for a in arms)
        if len(labels) < 2:
            raise ValueError(f"n_arms: must be at least 2, got {len(labels)} arm label(s)")
        if len(set(labels)) != len(labels):
            raise ValueError(f"arms: labels must be distinct, got {list(labels)}")
        return cls(labels)

    @property
    def n_arms(self) -> int:
        return len(self.labels)

    @property
    def is_factorial(self) -> bool:
        return self.levels is not None

    def __repr__(self) -> str:
        kind = f", factors={list(self.factors)}" if self.is_factorial else ""
        return f"Arms({list(self.labels)}{kind})"
