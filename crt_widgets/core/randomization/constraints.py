"""Covariate-by-covariate balance constraints (cvcrand's ``cvrcov``, after Greene 2017).

One constraint per covariate:

==========  ==================================================================
``any``     no constraint
``sN``      arm totals differ by at most N
``sfN``     arm totals differ by at most N times the mean arm total
``mN``      arm means differ by at most N
``mfN``     arm means differ by at most N times the overall mean
==========  ==================================================================

N may be written ``.5``, ``0.2``, ``5`` or ``100``.

>>> parse_constraint("mf.5")
Constraint(text='mf.5', on='m', fraction=True, bound=0.5)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_SYNTAX = re.compile(r"^(?P<on>[sm])(?P<f>f?)(?P<n>\d+(?:\.\d*)?|\.\d+)$")
# relative slack so that a difference equal to the bound is not lost to floating point
_SLACK = 1e-9


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: on arm totals (``on='s'``) or means (``'m'``), absolute or fractional."""

    text: str
    on: str | None          # None for "any"
    fraction: bool = False
    bound: float = float("inf")

    @property
    def is_any(self) -> bool:
        return self.on is None


def parse_constraint(text: str) -> Constraint:
    """Parse one constraint in Greene's syntax; a malformed one is a ValueError naming it."""
    if not isinstance(text, str):
        raise ValueError(f"constraint {text!r}: expected a string such as 'any', 's5', 'mf.5'")
    t = text.strip().lower()
    if t == "any":
        return Constraint(text, None)
    m = _SYNTAX.match(t)
    if not m:
        raise ValueError(f"constraint {text!r} is malformed: use 'any', 'sN', 'sfN', 'mN' or 'mfN' "
                         "with a number N such as 5, 0.2 or .5")
    return Constraint(text, m["on"], bool(m["f"]), float(m["n"]))


def constraint_mask(treated_sums: np.ndarray, totals: np.ndarray, constraints: list[Constraint],
                    n_treat: int, n: int) -> np.ndarray:
    """Which schemes satisfy every constraint, from their raw treated sums (S, K).

    ``constraints`` has one entry per column of ``treated_sums`` (a categorical covariate's
    constraint repeated for each of its dummies).
    """
    ok = np.ones(treated_sums.shape[0], dtype=bool)
    n_control = n - n_treat
    for j, c in enumerate(constraints):
        if c.is_any:
            continue
        st = treated_sums[:, j]
        sc = totals[j] - st
        if c.on == "s":
            diff = np.abs(st - sc)
            bound = c.bound * abs(totals[j]) / 2 if c.fraction else c.bound
        else:
            diff = np.abs(st / n_treat - sc / n_control)
            bound = c.bound * abs(totals[j]) / n if c.fraction else c.bound
        ok &= diff <= bound + _SLACK * max(1.0, abs(bound))
    return ok
