"""A bounded history of the design's settings, for Undo.

Each entry is a snapshot of the data (the same DataFrame object, never a copy: data are replaced, not edited)
and every setting before a change. The state records one snapshot per change it acts on (one rebuild or
re-score), so a change and its follow-ups (dropping a covariate drops its weight too) undo together, and the
many small changes of one slider drag, arriving within :attr:`SettingsHistory.merge_seconds` of each other on
the same setting, undo as one step.

>>> history = SettingsHistory()
>>> history.record({"cutoff": 0.1, "metric": "l2"}, now=0.0)   # the first state: nothing to undo yet
>>> history.record({"cutoff": 0.2, "metric": "l2"}, now=5.0)   # a change
>>> history.record({"cutoff": 0.3, "metric": "l2"}, now=5.1)   # the same slider a moment later: the same step
>>> history.record({"cutoff": 0.3, "metric": "l1"}, now=9.0)
>>> len(history), history.undo()["metric"], history.undo()["cutoff"], len(history)
(2, 'l2', 0.1, 0)
"""
from __future__ import annotations

import time
from collections import deque
from typing import Any

UNDO_LIMIT = 50  # steps kept: a day's work of deliberate changes, at a few kB each (the data are shared)


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> frozenset[str]:
    """The settings that differ (the data compared by identity: a new table is a change).

    >>> sorted(changed_keys({"a": 1, "b": [1]}, {"a": 1, "b": [2]}))
    ['b']
    """
    keys = set(before) | set(after)

    def same(key: str) -> bool:
        a, b = before.get(key), after.get(key)
        if key == "data":
            return a is b
        return a == b

    return frozenset(k for k in keys if not same(k))


class SettingsHistory:
    """Snapshots before each change, newest last, at most ``limit``; :meth:`undo` returns the one to restore."""

    merge_seconds = 1.0  # changes of the same setting closer than this are one step (a slider being dragged)

    def __init__(self, limit: int = UNDO_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit: at least 1 step, got {limit}")
        self._steps: deque[dict[str, Any]] = deque(maxlen=limit)
        self._current: dict[str, Any] | None = None
        self._last_keys: frozenset[str] = frozenset()
        self._last_time = float("-inf")

    def __len__(self) -> int:
        return len(self._steps)

    def record(self, snapshot: dict[str, Any], now: float | None = None) -> None:
        """The settings now in force, after a change: remember the ones before it (unless nothing changed,
        or the change continues the last one)."""
        now = time.monotonic() if now is None else now
        if self._current is None:
            self._current = snapshot
            return
        keys = changed_keys(self._current, snapshot)
        if not keys:
            return
        merge = (keys == self._last_keys and "data" not in keys and self._steps
                 and now - self._last_time < self.merge_seconds)
        if not merge:
            self._steps.append(self._current)
        self._current, self._last_keys, self._last_time = snapshot, keys, now

    def undo(self) -> dict[str, Any] | None:
        """The snapshot before the last change (now the current one), or None when there is nothing to undo."""
        if not self._steps:
            return None
        self._current = self._steps.pop()
        self._last_keys, self._last_time = frozenset(), float("-inf")
        return self._current
