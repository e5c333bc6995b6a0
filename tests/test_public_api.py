"""Every public name resolves, has a docstring, and the core never imports ipywidgets."""
from __future__ import annotations

import subprocess
import sys

import crt_widgets


def test_every_export_resolves_and_is_documented():
    for name in crt_widgets._EXPORTS:
        obj = getattr(crt_widgets, name)
        assert obj.__doc__ and obj.__doc__.strip(), name


def test_core_does_not_import_ipywidgets():
    code = ("import sys, pkgutil, importlib, crt_widgets.core as c\n"
            "[importlib.import_module(f'crt_widgets.core.{m.name}') for m in pkgutil.iter_modules(c.__path__)]\n"
            "print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
