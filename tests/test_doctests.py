"""The examples in the docstrings of the public modules run and give what they show."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["crt_widgets", "crt_widgets.core.covariates", "crt_widgets.core.schemes", "crt_widgets.core.constraints",
           "crt_widgets.core.validity", "crt_widgets.core.tables", "crt_widgets.core.spaceio",
           "crt_widgets.core.design", "crt_widgets.compat._cvr", "crt_widgets.datasets",
           "crt_widgets.core.residuals", "crt_widgets.core.permutation", "crt_widgets.core.glmm",
           "crt_widgets.core.modelbased", "crt_widgets.compat._cptest", "crt_widgets.widgets.state",
           "crt_widgets.widgets.charts", "crt_widgets.widgets.panels", "crt_widgets.widgets.dashboard",
           "crt_widgets.widgets.report", "crt_widgets.widgets.downloads", "crt_widgets.widgets.notebook"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
