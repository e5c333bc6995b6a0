"""Perfectly balanced stratified randomization to K arms (ED-LEAD's design), as a declaration.

The rule and its samplers are in :mod:`crt_widgets.core.randomization.balanced_sampler`, the arms in
:mod:`crt_widgets.core.randomization.arms` and the empirical check in
:mod:`crt_widgets.core.randomization.verification`; this module declares the design on the protocol
every design follows.

>>> d = StratifiedDesign([1] * 12 + [2] + [3] * 11 + [4] * 5 + [5] * 4 + [6] * 7, factors=["a", "b", "c"], seed=1)
>>> d.n_arms, d.draw().arm_sizes().tolist()
(8, [5, 5, 5, 5, 5, 5, 5, 5])
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from crt_widgets.core.randomization.allocation import AllocationRecord
from crt_widgets.core.randomization.arms import Arms
from crt_widgets.core.randomization.balanced_sampler import (_check_args, _generate, _Layout, check_whole_number,
                                                             count_allocations)
from crt_widgets.core.randomization.protocol import Design
from crt_widgets.core.randomization.verification import Verification, verify_allocations
from crt_widgets.core.seeds import check_seed, generator
from crt_widgets.core.spaces.space import RandomizationSpace

# allocations a StratifiedDesign samples into its space by default
DEFAULT_SPACE_SIZE = 10_000


class StratifiedAllocation(AllocationRecord):
    """One drawn allocation: unit ids, strata, arm index and arm label (one row per unit in ``.table``)."""

    file_stem = "stratify"  # the files the command line's `stratify` writes

    @property
    def strata(self) -> np.ndarray:
        return self.design.strata

    @property
    def arms(self) -> Arms:
        return self.design.arms

    @property
    def table(self) -> pd.DataFrame:
        """One row per unit: unit, stratum, arm (index 0..K-1), arm_label (plus one 0/1 column per
        factor for a factorial design)."""
        out = pd.DataFrame({"unit": self.unit_ids, "stratum": self.strata, "arm": self.arm.astype(int),
                            "arm_label": self.arm_label})
        if self.arms.is_factorial:
            for f, name in enumerate(self.arms.factors):
                out[name] = self.arms.levels[self.arm, f].astype(int)
        return out

    @property
    def allocation(self) -> pd.DataFrame:
        return self.table

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}: {v}" for k, v in self.arm_sizes().items())
        return f"StratifiedAllocation(n_units={len(self.arm)}, arm sizes {{{sizes}}}, seed={self.seed})"


class StratifiedDesign(Design):
    """Perfectly balanced stratified randomization to K arms, as a declaration.

    Holds the inputs; exposes each unit's arm probabilities, each stratum's expected arm counts and the
    exact number of allocations; :meth:`sample` draws many allocations and :meth:`verify` checks the
    procedure empirically, all from the design's seed. The allocations are far too many to list (over
    1e20 for ED-LEAD's 40 units), so the design's ``space`` is a random sample of ``size`` of them and
    :meth:`draw` picks one of that sample uniformly: the drawn allocation has the design's distribution,
    and the permutation test over the sample is exact for the draw.

    Parameters
    ----------
    strata : one stratum label per unit.
    n_arms : number of arms, or a list of arm labels (default 8 when no factors are given).
    factors : names of two-level factors of a full factorial design (``["a", "b", "c"]`` gives 8 arms
        labelled none, a, b, c, a+b, a+c, b+c, a+b+c).
    unit_ids : unit labels (default 1..n).
    method : ``"auto"`` (default), ``"exact"`` or ``"sequential"`` (see the module docstring);
        ``.method`` records the sampler actually used.
    size : allocations sampled into the design's ``space`` (duplicates kept: the draw is uniform over rows).
    seed : seed of every draw; ``None`` takes fresh entropy and records it.

    >>> d = StratifiedDesign([1] * 12 + [2] + [3] * 11 + [4] * 5 + [5] * 4 + [6] * 7, factors=["a", "b", "c"], seed=1)
    >>> d.n_arms, d.arms.labels[4], d.draw().arm_sizes().tolist()
    (8, 'a+b', [5, 5, 5, 5, 5, 5, 5, 5])
    """

    def __init__(self, strata: Sequence | np.ndarray | pd.Series, n_arms: int | Sequence[str] | None = None,
                 *, factors: Sequence[str] | None = None, unit_ids: Sequence | None = None,
                 method: str = "auto", size: int = DEFAULT_SPACE_SIZE, seed: int | None = None) -> None:
        self.seed = check_seed(seed)
        self._declare(locals(), self.seed)
        self.arms = Arms.build(8 if n_arms is None and factors is None else n_arms, factors)
        self.codes, self.stratum_labels, _, _ = _check_args(strata, self.arms.n_arms, 1, method)
        self.strata = np.asarray(self.stratum_labels, dtype=object)[self.codes]
        if unit_ids is None:
            self._unit_ids = np.arange(1, len(self.codes) + 1)
        else:
            self._unit_ids = np.asarray(unit_ids)
            if len(self._unit_ids) != len(self.codes):
                raise ValueError(f"unit_ids: got {len(self._unit_ids)} ids for {len(self.codes)} units")
            if pd.Series(self._unit_ids).isna().any() or len(pd.unique(self._unit_ids)) != len(self._unit_ids):
                raise ValueError("unit_ids: must be unique and not missing")
        self.size = check_whole_number(size, "size", 2)
        self._layout = _Layout.build(self.codes, self.arms.n_arms)
        self.method = self._layout.resolve(method)  # fails now, clearly, if no allocation exists
        # independent streams: the space's sample, (unused since draws come from the space), verification,
        # the choice
        self._streams = np.random.SeedSequence(self.seed).spawn(4)
        self.dead_ends = 0

    method_name = "balanced stratified randomization"
    allocation_type = StratifiedAllocation

    @property
    def unit_ids(self) -> np.ndarray:
        return self._unit_ids

    @cached_property
    def space(self) -> RandomizationSpace:
        """``size`` allocations sampled from the design (a random sample of all of them)."""
        return RandomizationSpace.from_arms(self.sample(self.size), self.unit_ids, self.arms.labels,
                                            exhaustive=False, n_possible=self.n_possible)

    @property
    def _choice_stream(self) -> np.random.SeedSequence:
        return self._streams[3]

    @property
    def n_units(self) -> int:
        return len(self.codes)

    @property
    def n_arms(self) -> int:
        return self.arms.n_arms

    @property
    def stratum_sizes(self) -> pd.Series:
        return pd.Series(self._layout.sizes, index=pd.Index(self.stratum_labels, name="stratum"), name="units")

    @property
    def arm_size_range(self) -> tuple[int, int]:
        """Smallest and largest arm size (equal when K divides n)."""
        base, bigger = self._layout.base, self._layout.n_bigger
        return base, base + (1 if bigger else 0)

    @cached_property
    def n_possible(self) -> int | None:
        """Exact number of allocations satisfying the rule (all equally likely with method="exact");
        None when the problem is too large to count (then method="auto" samples sequentially)."""
        try:
            return count_allocations(self.codes, self.n_arms)
        except ValueError:
            return None

    def probabilities(self) -> pd.DataFrame:
        """Each unit's probability of each arm: exactly 1/K (the rule treats arms symmetrically)."""
        return pd.DataFrame(np.full((self.n_units, self.n_arms), 1.0 / self.n_arms),
                            index=pd.Index(self.unit_ids, name="unit"), columns=list(self.arms.labels))

    def expected_counts(self) -> pd.DataFrame:
        """Each stratum's expected count of each arm: size / K."""
        sizes = self._layout.sizes / self.n_arms
        return pd.DataFrame(np.repeat(sizes[:, None], self.n_arms, axis=1),
                            index=pd.Index(self.stratum_labels, name="stratum"), columns=list(self.arms.labels))

    def sample(self, n_draws: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """``n_draws`` allocations as an (n_draws, n_units) array of arm indices (the candidate pool
        of a constrained design). Without ``seed``, the design's own sampling stream."""
        n_draws = check_whole_number(n_draws, "n_draws", 1)
        rng = generator(self._streams[0] if seed is None else seed)
        arms, self.dead_ends = _generate(self.codes, self.n_arms, n_draws, rng, self.method)
        return arms

    def verify(self, n_draws: int = 50_000, seed: int | None = None) -> Verification:
        """Draw ``n_draws`` allocations and compare them with the expected probabilities and counts."""
        rng = generator(self._streams[2] if seed is None else seed)
        arms, _ = _generate(self.codes, self.n_arms, check_whole_number(n_draws, "n_draws", 1), rng, self.method)
        return verify_allocations(arms, self.strata, self.n_arms, self.unit_ids, list(self.arms.labels))

    def __repr__(self) -> str:
        lo, hi = self.arm_size_range
        size = f"{lo}" if lo == hi else f"{lo}-{hi}"
        return (f"StratifiedDesign(n_units={self.n_units}, strata={len(self.stratum_labels)}, arms={list(self.arms.labels)}, "
                f"{size} units per arm, method={self.method!r}, seed={self.seed})")
