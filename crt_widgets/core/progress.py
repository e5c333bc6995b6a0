"""Progress and cancellation of long computations: a callback told how much is done, and a check that stops
the work between chunks.

Long loops in the core (the stratified enumeration, scoring millions of schemes) take ``on_progress``, called
as ``on_progress(done, total)`` after each chunk with ``done`` increasing to ``total``, and ``stop``, a callable
returning True when the caller wants the work abandoned; it is checked between chunks and raises
:class:`Cancelled`. Both default to None: no callback, no check, nothing slower.

>>> seen = []
>>> work = Progress(on_progress=lambda done, total: seen.append((done, total)))
>>> for done in (4, 10):
...     work.advance(done, 10)
>>> seen
[(4, 10), (10, 10)]
>>> Progress(stop=lambda: True).check()
Traceback (most recent call last):
...
crt_widgets.core.progress.Cancelled: cancelled: stopped on request before the work was finished
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """A computation stopped on request (its ``stop`` check returned True); nothing partial is returned."""


@dataclass(frozen=True)
class Progress:
    """``on_progress(done, total)`` after each chunk, ``stop()`` checked before each (raising :class:`Cancelled`)."""

    on_progress: Callable[[int, int], None] | None = None
    stop: Callable[[], bool] | None = None

    @property
    def active(self) -> bool:
        return self.on_progress is not None or self.stop is not None

    def check(self) -> None:
        """Raise :class:`Cancelled` if the caller asked to stop."""
        if self.stop is not None and self.stop():
            raise Cancelled("cancelled: stopped on request before the work was finished")

    def advance(self, done: int, total: int) -> None:
        """Report ``done`` of ``total``, then check for a stop request."""
        if self.on_progress is not None:
            self.on_progress(int(done), int(total))
        self.check()


def as_progress(on_progress: Callable[[int, int], None] | None = None,
                stop: Callable[[], bool] | None = None) -> Progress:
    """A :class:`Progress` from the two optional callables, each checked to be callable (a clear error at the
    boundary rather than a TypeError deep inside a loop).

    >>> as_progress(stop=True)
    Traceback (most recent call last):
    ...
    ValueError: stop: expected a callable returning True to stop (or None), got bool
    """
    if on_progress is not None and not callable(on_progress):
        raise ValueError(f"on_progress: expected a callable(done, total) (or None), got {type(on_progress).__name__}")
    if stop is not None and not callable(stop):
        raise ValueError(f"stop: expected a callable returning True to stop (or None), got {type(stop).__name__}")
    return Progress(on_progress, stop)
