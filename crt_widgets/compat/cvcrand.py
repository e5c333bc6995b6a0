"""cvcrand's interface, for R users porting scripts line by line: ``cvrall``, ``cvrcov``, ``cptest``.

Arguments keep cvcrand's names and defaults; results are dicts with cvcrand's element names.
Where we differ from cvcrand on purpose, the docstring says so in one sentence.
"""
from __future__ import annotations

import importlib
from typing import Any

from crt_widgets.compat._cvr import cvrall, cvrcov

__all__ = ["cvrall", "cvrcov", "cptest"]


def __getattr__(name: str) -> Any:
    # cptest lives with the analysis code; loaded on first use
    if name == "cptest":
        return importlib.import_module("crt_widgets.compat._cptest").cptest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
