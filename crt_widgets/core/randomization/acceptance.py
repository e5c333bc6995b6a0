"""Which candidate allocations enter the constrained space: one rule for every design.

A design scores its candidates for covariate balance; the constrained space keeps those scoring at
or below the ``cutoff`` quantile of all scores (Moulton 2004; Li et al. 2016), or the ``n_best``
best. The quantile is R's type 7, as in cvcrand. Schemes whose scores equal the cutoff up to a
relative ``TIE_TOLERANCE`` are all kept, so that mirror-image schemes with mathematically equal
scores are kept or dropped together. The score reported as "the cutoff" is the largest score kept,
a score of a real scheme (as cvcrand reports it), not the interpolated quantile.

>>> mask, largest = accept(np.array([3.0, 1.0, 2.0, 2.0, 5.0]), cutoff=0.5)
>>> mask.tolist(), largest
([False, True, True, True, False], 2.0)
>>> accept(np.array([3.0, 1.0, 2.0, 2.0, 5.0]), n_best=2)[0].tolist()
[False, True, True, False, False]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crt_widgets.core.randomization import bounded_scores
from crt_widgets.core.randomization.bounded_scores import BoundedScores

# scores this close (relative) to the cutoff count as equal to it
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class CutoffRule:
    """Keep the schemes at or below the ``cutoff`` quantile of the scores, or the ``n_best`` best.

    >>> CutoffRule.check(cutoff=0.1)
    CutoffRule(cutoff=0.1, n_best=None)
    >>> CutoffRule.check(cutoff=None, n_best=1)
    Traceback (most recent call last):
    ...
    ValueError: n_best: must be a whole number of at least 2, got 1
    """

    cutoff: float | None = 0.1
    n_best: int | None = None

    @classmethod
    def check(cls, cutoff: float | None = 0.1, n_best: int | None = None) -> "CutoffRule":
        """Validate the rule (``n_best`` wins when both are given)."""
        if n_best is not None:
            if isinstance(n_best, bool) or not isinstance(n_best, (int, np.integer)) or n_best < 2:
                raise ValueError(f"n_best: must be a whole number of at least 2, got {n_best!r}")
            return cls(None, int(n_best))
        if cutoff is None or isinstance(cutoff, bool) or not isinstance(cutoff, (int, float, np.floating)) \
                or not 0 < cutoff <= 1:
            raise ValueError(f"cutoff: must be a quantile in (0, 1], got {cutoff!r}")
        return cls(float(cutoff), None)

    def check_candidates(self, n_candidates: int, word: str = "candidate schemes") -> None:
        """``n_best`` must leave something out of the space."""
        if self.n_best is not None and self.n_best >= n_candidates:
            raise ValueError(f"n_best: {self.n_best:,} is not smaller than the {n_candidates:,} {word}; "
                             "nothing would be constrained")

    def describe(self, word: str = "schemes") -> str:
        """The rule in words, for the design's messages."""
        if self.n_best is not None:
            return f"the {self.n_best:,} best {word}"
        return f"{word} scoring at or below the q = {self.cutoff:g} quantile (ties at the cutoff kept)"

    def apply(self, scores: np.ndarray) -> tuple[np.ndarray, float]:
        """The kept mask and the largest kept score (see :func:`accept`)."""
        return accept(scores, cutoff=self.cutoff, n_best=self.n_best)

    def apply_bounded(self, scores: BoundedScores) -> tuple[np.ndarray, float]:
        """The kept positions and the largest kept score (see :func:`accept_bounded`)."""
        return accept_bounded(scores, cutoff=self.cutoff, n_best=self.n_best)


def accept(scores: np.ndarray, *, cutoff: float | None = None, n_best: int | None = None) -> tuple[np.ndarray, float]:
    """Boolean mask of the kept candidates and the largest score kept.

    ``n_best``: the ``n_best`` lowest scores, ties broken by candidate order. ``cutoff``: scores at or
    below the type-7 quantile, ties within ``TIE_TOLERANCE`` kept.
    """
    scores = np.asarray(scores)
    if n_best is not None:
        CutoffRule.check(None, n_best).check_candidates(len(scores))
        best = np.argpartition(scores, n_best - 1)[:n_best]
        best = best[np.lexsort((best, scores[best]))]  # ties broken by candidate order
        mask = np.zeros(len(scores), dtype=bool)
        mask[best] = True
        return mask, float(scores[best[-1]])
    cut = float(np.quantile(scores, cutoff))
    tol = TIE_TOLERANCE * max(abs(cut), 1e-6 * float(np.max(np.abs(scores))), 1e-300)
    mask = scores <= cut + tol
    return mask, float(np.max(scores[mask]))


def accept_bounded(scores: BoundedScores, *, cutoff: float | None = None,
                   n_best: int | None = None) -> tuple[np.ndarray, float]:
    """:func:`accept` for scores held within a bound of their float64 values (a streamed float32
    enumeration): the same rule and tie tolerance, decided on the float64 scores, returning the kept
    positions (ascending) rather than a mask over every candidate.

    >>> exact = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    >>> kept, largest = accept_bounded(BoundedScores.from_exact(exact), cutoff=0.5)
    >>> kept.tolist(), largest
    ([1, 2, 3], 2.0)
    """
    if n_best is not None:
        CutoffRule.check(None, n_best).check_candidates(len(scores))
        return bounded_scores.best_positions(scores, n_best)
    cut, below_cut = bounded_scores.quantile_parts(scores, cutoff)
    scale = abs(cut)
    if 1e-6 * bounded_scores.max_abs_bound(scores) >= scale:  # only then can the largest score set the tolerance
        scale = max(scale, 1e-6 * bounded_scores.max_abs(scores))
    tol = TIE_TOLERANCE * max(scale, 1e-300)
    # the largest kept score is at least the order statistic below the quantile
    return bounded_scores.kept_and_largest(scores, cut + tol, largest_at_least=below_cut)


def rule_changes(params: dict, changes: dict, keys: tuple[str, ...] = ("cutoff", "n_best")) -> dict:
    """The arguments a rescore passes on: a change to one way of constraining (a ``cutoff``, ``n_best``,
    constraints) replaces the others, and with none left the default quantile 0.1 applies.

    >>> rule_changes({"cutoff": None, "n_best": 50}, {"cutoff": 0.2})
    {'cutoff': 0.2, 'n_best': None}
    >>> rule_changes({"cutoff": 0.1, "n_best": None}, {"n_best": None})
    {'cutoff': 0.1, 'n_best': None}
    """
    if not any(k in changes for k in keys):
        return dict(changes)
    out = {**{k: None for k in keys}, **changes}
    if all(out[k] is None for k in keys):
        out["cutoff"] = 0.1
    return out
