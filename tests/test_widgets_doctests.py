"""The docstring examples of every dashboard module run (new modules are picked up by themselves)."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import crt_widgets.widgets

MODULES = sorted(m.name for m in pkgutil.iter_modules(crt_widgets.widgets.__path__, "crt_widgets.widgets."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
