"""The examples in the docstrings of every module run and give what they show.

Modules are discovered from the package, so a new module's examples run without touching this file.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import crt_widgets

# modules with no importable body of their own (entry points that run on import)
SKIP = {"crt_widgets.__main__"}
MODULES = ["crt_widgets"] + sorted(m.name for m in pkgutil.walk_packages(crt_widgets.__path__, "crt_widgets.")
                                   if m.name not in SKIP)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_core_modules_show_examples():
    """Every public core module carries at least one example (a newcomer learns from them)."""
    core = [m for m in MODULES if m.startswith("crt_widgets.core.") and not m.rsplit(".", 1)[1].startswith("_")]
    without = [m for m in core if not doctest.DocTestFinder().find(importlib.import_module(m))
               or not any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(m)))]
    assert without == []
