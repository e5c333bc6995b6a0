"""Perfectly balanced stratified allocation of units to K arms (ED-LEAD's design): the samplers, vectorised.

The rule (Goldfeld's ED-LEAD randomization): every arm receives ``n / K`` units exactly (when K
does not divide n, arm sizes differ by at most one and the arms receiving the extra unit are
random); within a stratum no arm repeats until every arm has been used, i.e. a stratum of size
``s = m K + r`` (``0 <= r < K``) gives every arm ``m`` units and ``r`` distinct arms one more
(a stratum larger than K is, equivalently, split into random subgroups of K).

So an allocation is: for each stratum, the set ``R_j`` of its ``r_j`` "extra" arms (a 0/1 matrix
X with row sums ``r_j`` and column sums fixed by the arm sizes), then a uniformly random order of
the stratum's arm multiset over its units.

Two samplers, both valid (every unit has probability 1/K of every arm, every stratum's expected
count per arm is size/K) because both treat the arms symmetrically:

- ``method="exact"`` **cannot fail**: it draws X uniformly from all 0/1 matrices with
  those margins, by exact counting (a dynamic programme over the multiset of the arms' remaining
  capacities, in exact integer arithmetic). Every allocation satisfying the rule is then equally
  likely (each X corresponds to the same number of unit-level allocations).
- ``method="sequential"`` is Goldfeld's (2024) algorithm (subgroups in decreasing size, each taking
  distinct arms at random among arms not yet full). It can reach a dead end (a subgroup needs
  more distinct arms than still have room: about 9 % of draws for strata 12, 1, 11, 5, 4, 7 and
  8 arms); dead ends are detected and those draws redrawn, which keeps the arm symmetry and hence
  validity, but its allocations are not equally likely. Kept for parity with the published code.
- ``method="auto"`` (default) is "exact" unless its counting table would exceed ``STATE_BUDGET``
  transitions (many strata with many units per arm, e.g. 40 strata of up to 20 units and 8 arms), and
  then "sequential", with a warning.

Both are vectorised across draws: loops run over strata and arms, never over draws.

>>> arms = stratified_arms([1] * 12 + [2] * 1 + [3] * 11 + [4] * 5 + [5] * 4 + [6] * 7, 8, n_draws=3, seed=1)
>>> arms.shape, [sorted(map(int, __import__("numpy").bincount(a))) for a in arms][0]
((3, 40), [5, 5, 5, 5, 5, 5, 5, 5])
"""
from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.seeds import generator
from crt_widgets.core.sizes import check_memory

METHODS = ("auto", "exact", "sequential")
# the exact sampler's counting table is built only while it needs at most this many transitions
# (about a second); larger problems use the sequential sampler under method="auto"
STATE_BUDGET = 250_000


class _PlanTooLarge(Exception):
    """The exact sampler's counting table would exceed STATE_BUDGET transitions."""
# draws generated per block, to bound memory (the result itself is int8)
_BLOCK = 250_000


# -- input checks ----------------------------------------------------------------------------
def check_whole_number(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int of at least ``minimum``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    return int(value)


def stratum_codes(strata: Sequence | np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Validate one stratum label per unit; return (codes 0..J-1 per unit, the J labels in order
    of first appearance)."""
    if isinstance(strata, (str, bytes)):
        raise ValueError("strata: give one stratum label per unit, not a single string")
    if not isinstance(strata, pd.Series) and np.ndim(np.asarray(strata, dtype=object)) != 1:
        raise ValueError(f"strata: give one stratum label per unit (a flat list), got shape "
                         f"{np.shape(np.asarray(strata, dtype=object))}")
    labels = pd.Series(np.asarray(strata, dtype=object) if not isinstance(strata, pd.Series) else strata)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError("strata: empty; give one stratum label per unit")
    missing = np.flatnonzero(labels.isna().to_numpy())
    if len(missing):
        raise ValueError(f"strata: missing stratum label for {len(missing)} unit(s), "
                         f"at position(s) {', '.join(map(str, missing[:10]))}")
    codes, uniques = pd.factorize(labels, sort=False)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _arm_dtype(n_arms: int) -> type:
    return np.int8 if n_arms <= 127 else np.int32


# -- exact uniform sampler of the extra-arm matrix X ------------------------------------------
class _ExactPlan:
    """Counts of completions for the extra-arm matrix, and per-row transition tables.

    State before a row: how many arms have each remaining capacity 0..cmax (a tuple). A row with
    ``r`` extras takes ``t_c`` arms of capacity ``c`` (sum t_c = r); the number of ways is
    ``prod C(n_c, t_c)`` times the completions of the next state. Counts are exact Python ints.
    """

    def __init__(self, rows: Sequence[int], start: tuple[int, ...], budget: int = STATE_BUDGET) -> None:
        self.rows = tuple(rows)
        self.start = start
        self.cmax = len(start) - 1
        n_arms = sum(start)
        memo: dict[tuple[int, tuple[int, ...]], int] = {}
        work = [0]

        def count(j: int, state: tuple[int, ...]) -> int:
            key = (j, state)
            if key not in memo:
                if j == len(self.rows):
                    memo[key] = int(all(v == 0 for v in state[1:]))
                else:
                    moves = list(_moves(state, self.rows[j]))
                    work[0] += len(moves)
                    if work[0] > budget:
                        raise _PlanTooLarge
                    memo[key] = sum(ways * count(j + 1, nxt) for _, nxt, ways in moves)
            return memo[key]

        self.total = count(0, start)
        self.work = work[0]
        if self.total == 0:
            raise ValueError("strata: no allocation satisfies both the arm sizes and the "
                             "no-repeat rule within strata for these stratum sizes")
        # forward pass: reachable states per row with transition tables
        self.tables = []
        frontier = {start: 0}
        for j, r in enumerate(self.rows):
            states = list(frontier)
            moves = [[(t, nxt, w * count(j + 1, nxt)) for t, nxt, w in _moves(s, r)] for s in states]
            moves = [[m for m in ms if m[2] > 0] for ms in moves]
            width = max(len(ms) for ms in moves)
            cum = np.ones((len(states), width))
            # which sorted positions (arms ordered by remaining capacity) each move takes
            positions = np.zeros((len(states), width, n_arms), dtype=bool)
            nxt_states: dict[tuple[int, ...], int] = {}
            nxt_index = np.zeros((len(states), width), dtype=np.int64)
            for i, (state, ms) in enumerate(zip(states, moves)):
                starts = np.concatenate([[0], np.cumsum(state)[:-1]])
                total = sum(m[2] for m in ms)
                running = 0
                for k, (t, nxt, w) in enumerate(ms):
                    running += w
                    cum[i, k] = running / total  # exact integer counts, one rounding
                    for c, tc in enumerate(t):
                        positions[i, k, starts[c]: starts[c] + tc] = True
                    nxt_index[i, k] = nxt_states.setdefault(nxt, len(nxt_states))
                cum[i, len(ms) - 1:] = 1.0  # padding moves are never chosen
                positions[i, len(ms):] = positions[i, len(ms) - 1]
                nxt_index[i, len(ms):] = nxt_index[i, len(ms) - 1]
            self.tables.append((cum, positions, nxt_index))
            frontier = nxt_states


def _moves(state: tuple[int, ...], r: int):
    """Ways a row with r extras can take arms from the capacity classes (capacity >= 1):
    yields (t per class, next state, number of ways); only compositions of r over the non-empty
    classes (at most K of them) are generated."""
    classes = [c for c in range(1, len(state)) if state[c]]
    room = list(itertools.accumulate(state[c] for c in reversed(classes)))[::-1] + [0]

    def compositions(k: int, left: int):
        if left > room[k]:  # the remaining classes cannot supply enough arms
            return
        if k == len(classes):
            yield ()
            return
        for tc in range(min(state[classes[k]], left), max(0, left - room[k + 1]) - 1, -1):
            for rest in compositions(k + 1, left - tc):
                yield (tc, *rest)

    for taken in compositions(0, r):
        t = [0] * len(state)
        nxt = list(state)
        ways = 1
        for c, tc in zip(classes, taken):
            if tc:
                t[c] = tc
                ways *= math.comb(state[c], tc)
                nxt[c] -= tc
                nxt[c - 1] += tc
        yield tuple(t), tuple(nxt), ways


def _extras_exact(plan: _ExactPlan, capacity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n_draws, n_rows, K) bool: the extra arms of each remainder row, uniform given the margins.

    Per row: pick the class-level move with its exact probability, then which arms within each
    capacity class uniformly: sorting ``capacity + U(0, 1)`` groups the arms by class in a random
    order, and the move's table says which sorted positions are taken.
    """
    n_draws, n_arms = capacity.shape
    capacity = capacity.copy()
    state = np.zeros(n_draws, dtype=np.int64)
    out = np.zeros((n_draws, len(plan.rows), n_arms), dtype=bool)
    for j, (cum, positions, nxt_index) in enumerate(plan.tables):
        move = _pick_moves(cum, state, rng.random(n_draws))
        order = np.argsort(capacity + rng.random((n_draws, n_arms)), axis=1)
        chosen = np.zeros((n_draws, n_arms), dtype=bool)
        np.put_along_axis(chosen, order, positions[state, move], axis=1)
        out[:, j] = chosen
        capacity -= chosen
        state = nxt_index[state, move]
    return out


def _pick_moves(cum: np.ndarray, state: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF choice of a move per draw (cum: cumulative probabilities per state)."""
    move = np.zeros(len(state), dtype=np.int64)
    for k in range(cum.shape[1] - 1):  # moves per state are few; loop over them, not over draws
        move += u >= cum[state, k]
    return move


def _extras_sequential(rows: Sequence[int], capacity: np.ndarray, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Goldfeld's (2024) sequential draw (rows in decreasing size): (extras, dead_end flag per draw)."""
    n_draws, n_arms = capacity.shape
    capacity = capacity.copy()
    out = np.zeros((n_draws, len(rows), n_arms), dtype=bool)
    dead = np.zeros(n_draws, dtype=bool)
    order = sorted(range(len(rows)), key=lambda j: -rows[j])  # stable, like R's order(-N)
    for j in order:
        r = rows[j]
        open_ = capacity > 0
        dead |= open_.sum(axis=1) < r
        key = np.where(open_, rng.random((n_draws, n_arms)), 2.0)
        first = np.argpartition(key, r - 1, axis=1)[:, :r] if r < n_arms else np.tile(np.arange(n_arms), (n_draws, 1))
        chosen = np.zeros((n_draws, n_arms), dtype=bool)
        np.put_along_axis(chosen, first, True, axis=1)
        chosen &= open_
        out[:, j] = chosen
        capacity -= chosen
    return out, dead


# -- the allocation layout -----------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    n_units: int
    n_arms: int
    codes: np.ndarray                 # stratum code per unit
    sizes: np.ndarray                 # units per stratum
    full: np.ndarray                  # m_j: complete rounds of K arms per stratum
    extra: np.ndarray                 # r_j: extra distinct arms per stratum
    members: tuple[np.ndarray, ...]   # unit positions of each stratum
    remainder_rows: tuple[int, ...] = field(default=())   # strata with r_j > 0
    base: int = 0                     # floor(n / K)
    n_bigger: int = 0                 # arms receiving base + 1 units

    @classmethod
    def build(cls, codes: np.ndarray, n_arms: int) -> "_Layout":
        n = len(codes)
        sizes = np.bincount(codes)
        full, extra = np.divmod(sizes, n_arms)
        members = tuple(np.flatnonzero(codes == j) for j in range(len(sizes)))
        rows = tuple(int(j) for j in np.flatnonzero(extra))
        base, bigger = divmod(n, n_arms)
        return cls(n, n_arms, codes, sizes, full, extra, members, rows, base, bigger)

    def start_capacity(self) -> tuple[int, int]:
        """Remaining capacity for extras of the arms with base and base + 1 units."""
        low = self.base - int(self.full.sum())
        return low, low + 1

    def column_sums(self) -> list[int]:
        low, high = self.start_capacity()
        return [high] * self.n_bigger + [low] * (self.n_arms - self.n_bigger)

    def check_feasible(self) -> None:
        """Gale-Ryser: does a 0/1 extras matrix with these row and column sums exist?"""
        rows = [int(self.extra[j]) for j in self.remainder_rows]
        cols = sorted(self.column_sums(), reverse=True)
        ok = min(cols) >= 0 and sum(cols) == sum(rows) and all(
            sum(cols[:k]) <= sum(min(r, k) for r in rows) for k in range(1, self.n_arms + 1))
        if not ok:
            raise ValueError("strata: no allocation satisfies both the arm sizes and the "
                             "no-repeat rule within strata for these stratum sizes")

    def resolve(self, method: str) -> str:
        """The sampler to use: "auto" is "exact" unless its counting table is too large."""
        self.check_feasible()
        if method == "sequential":
            return method
        try:
            self.plan
        except _PlanTooLarge:
            if method == "exact":
                raise ValueError(f"method: the exact sampler's counting table exceeds {STATE_BUDGET:,} transitions "
                                 "for these strata; use method='sequential' (valid, not uniform)") from None
            warnings.warn("the exact sampler's counting table is too large for these strata; using the "
                          "sequential sampler (valid: every unit has probability 1/K of every arm)",
                          UserWarning, stacklevel=4)
            return "sequential"
        return "exact"

    @cached_property
    def plan(self) -> _ExactPlan:
        low, high = self.start_capacity()
        cmax = high if self.n_bigger else low
        start = [0] * (cmax + 1)
        start[low] += self.n_arms - self.n_bigger
        if self.n_bigger:
            start[high] += self.n_bigger
        return _ExactPlan([int(self.extra[j]) for j in self.remainder_rows], tuple(start))


def _initial_capacity(layout: _Layout, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    low, _ = layout.start_capacity()
    capacity = np.full((n_draws, layout.n_arms), low, dtype=np.int16)
    if layout.n_bigger:
        # the arms receiving the extra unit: a uniformly random subset of n mod K arms
        key = rng.random((n_draws, layout.n_arms))
        bigger = np.argpartition(key, layout.n_bigger - 1, axis=1)[:, :layout.n_bigger]
        np.put_along_axis(capacity, bigger, low + 1, axis=1)
    return capacity


def _units_from_extras(layout: _Layout, extras: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Place each stratum's arm multiset on its units in a uniformly random order."""
    n_draws = extras.shape[0]
    K = layout.n_arms
    out = np.empty((n_draws, layout.n_units), dtype=_arm_dtype(K))
    row_of = {j: i for i, j in enumerate(layout.remainder_rows)}
    for j, units in enumerate(layout.members):
        m, r = int(layout.full[j]), int(layout.extra[j])
        block = np.empty((n_draws, len(units)), dtype=out.dtype)
        if m:
            block[:, : m * K] = np.tile(np.arange(K, dtype=out.dtype), m)
        if r:
            # each row of the extras has exactly r True entries, so nonzero reshapes cleanly
            block[:, m * K:] = np.nonzero(extras[:, row_of[j]])[1].reshape(n_draws, r)
        out[:, units] = rng.permuted(block, axis=1) if len(units) > 1 else block
    return out


def _draw_block(layout: _Layout, n_draws: int, method: str, rng: np.random.Generator
                ) -> tuple[np.ndarray, int]:
    capacity = _initial_capacity(layout, n_draws, rng)
    rows = [int(layout.extra[j]) for j in layout.remainder_rows]
    if method == "exact":
        return _units_from_extras(layout, _extras_exact(layout.plan, capacity, rng), rng), 0
    extras, dead = _extras_sequential(rows, capacity, rng)
    n_dead = int(dead.sum())
    redraws = n_dead
    while n_dead:
        # redraw the dead ends only; arm symmetry of the rule keeps every draw valid
        again, dead_again = _extras_sequential(rows, _initial_capacity(layout, n_dead, rng), rng)
        where = np.flatnonzero(dead)
        extras[where] = again
        dead[where] = dead_again
        n_dead = int(dead_again.sum())
        redraws += n_dead
    return _units_from_extras(layout, extras, rng), redraws


def check_draws_memory(n_draws: int, n_units: int, argument: str = "n_draws") -> None:
    """Refuse, before any draw, a number of allocations whose arrays would not fit in memory: each takes
    ``n_units`` arm indices, held twice while the blocks are joined, and its score."""
    check_memory(n_draws * (2.0 * n_units + 16), argument, f"{n_draws:,} allocations of {n_units:,} units")


def _generate(codes: np.ndarray, n_arms: int, n_draws: int, rng: np.random.Generator,
              method: str) -> tuple[np.ndarray, int]:
    check_draws_memory(n_draws, len(codes))
    layout = _Layout.build(codes, n_arms)
    method = layout.resolve(method)
    blocks, dead_ends = [], 0
    for start in range(0, n_draws, _BLOCK):
        block, dead = _draw_block(layout, min(_BLOCK, n_draws - start), method, rng)
        blocks.append(block)
        dead_ends += dead
    return (blocks[0] if len(blocks) == 1 else np.concatenate(blocks)), dead_ends


def _check_args(strata, n_arms, n_draws, method) -> tuple[np.ndarray, np.ndarray, int, int]:
    codes, labels = stratum_codes(strata)
    n_arms = check_whole_number(n_arms, "n_arms", 2)
    if n_arms > len(codes):
        raise ValueError(f"n_arms: {n_arms} arms for {len(codes)} units; every arm needs at least one unit")
    n_draws = check_whole_number(n_draws, "n_draws", 1)
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    return codes, labels, n_arms, n_draws


def stratified_arms(strata: Sequence | np.ndarray | pd.Series, n_arms: int, n_draws: int = 1,
                    seed: int | np.random.Generator | None = None, *, method: str = "auto") -> np.ndarray:
    """Draw perfectly balanced stratified allocations of units to ``n_arms`` arms.

    Parameters
    ----------
    strata : one stratum label per unit (any hashable labels; no missing values).
    n_arms : number of arms K (2 <= K <= number of units).
    n_draws : number of independent allocations.
    seed : seed or Generator (same inputs and seed give the same allocations).
    method : ``"exact"`` (uniform over every allocation satisfying the rule; cannot fail),
        ``"sequential"`` (Goldfeld's (2024) algorithm, dead ends redrawn), or ``"auto"`` (default:
        exact unless its counting table would exceed ``STATE_BUDGET`` transitions, as for many large
        strata, then sequential with a warning).

    Returns
    -------
    (n_draws, n_units) integer array (int8 for K <= 127) of arm indices 0..K-1: each arm has
    ``n // K`` or ``n // K + 1`` units (exactly ``n / K`` when K divides n) and, within each
    stratum, arm counts differ by at most one.

    >>> a = stratified_arms(["x"] * 5 + ["y"] * 3, 4, n_draws=2, seed=7)
    >>> [sorted(__import__("numpy").bincount(row, minlength=4).tolist()) for row in a]
    [[2, 2, 2, 2], [2, 2, 2, 2]]
    """
    codes, _, n_arms, n_draws = _check_args(strata, n_arms, n_draws, method)
    return _generate(codes, n_arms, n_draws, generator(seed), method)[0]


def count_allocations(strata: Sequence | np.ndarray | pd.Series, n_arms: int) -> int:
    """Exact number of allocations satisfying the rule (the size of the randomization space).

    >>> count_allocations(["x", "x", "y", "y"], 2)  # each stratum: one unit per arm
    4
    """
    codes, _, n_arms, _ = _check_args(strata, n_arms, 1, "exact")
    layout = _Layout.build(codes, n_arms)
    layout.check_feasible()
    try:
        total = layout.plan.total
    except _PlanTooLarge:
        raise ValueError(f"strata: too many strata and units per arm to count the allocations exactly "
                         f"(counting table over {STATE_BUDGET:,} transitions)") from None
    orders = 1
    for s, m, r in zip(layout.sizes, layout.full, layout.extra):
        orders *= math.factorial(int(s)) // (math.factorial(int(m) + 1) ** int(r)
                                             * math.factorial(int(m)) ** (n_arms - int(r)))
    return math.comb(n_arms, layout.n_bigger) * total * orders
