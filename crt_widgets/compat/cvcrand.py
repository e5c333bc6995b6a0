"""cvcrand's interface, for R users porting scripts line by line: ``cvrall``, ``cvrcov``, ``cptest``.

Arguments keep cvcrand's names and defaults; results are dicts with cvcrand's element names.
Where we differ from cvcrand on purpose, the docstrings say so in one sentence.
"""
from __future__ import annotations

from crt_widgets.compat._cptest import cptest
from crt_widgets.compat._cvr import cvrall, cvrcov

__all__ = ["cvrall", "cvrcov", "cptest"]
