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
_FOUND = list(pkgutil.walk_packages(crt_widgets.__path__, "crt_widgets."))
MODULES = ["crt_widgets"] + sorted(m.name for m in _FOUND if m.name not in SKIP)
# a package's __init__ only names its modules; the examples live in the modules
PACKAGES = {m.name for m in _FOUND if m.ispkg}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_core_modules_show_examples():
    """Every public core module carries at least one example (a newcomer learns from them)."""
    core = [m for m in MODULES if m.startswith("crt_widgets.core.") and not m.rsplit(".", 1)[1].startswith("_")
            and m not in PACKAGES]
    without = [m for m in core if not doctest.DocTestFinder().find(importlib.import_module(m))
               or not any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(m)))]
    assert without == []
