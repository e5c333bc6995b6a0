"""Bundled example data sets (no network access, ever).

- ``load_dickinson()``: the 16 Colorado counties of Dickinson et al. (2015), one row per county
  (from the R package cvcrand, GPL >= 2).
- ``load_dickinson_outcome()``: cvcrand's simulated binary outcomes, 300 children per county.
- ``dickinson_cvcrand_space_path()``: the constrained space cvcrand saved for the paper's example.
- ``simulate_edlead(...)``: ED-LEAD-like emergency departments in health systems (module ``edlead``).
- ``load_callcenter()`` / ``simulate_callcenter(...)``: call-centre data like Buisson's (2021, ch. 10) (module ``callcenter``).
- ``simulate_stepped_wedge_clusters(...)`` / ``simulate_stepped_wedge_outcomes(...)``: a stepped-wedge trial's
  clusters and its individual outcomes (module ``stepped_wedge``).

>>> from crt_widgets.datasets import load_dickinson
>>> load_dickinson().shape
(16, 11)
"""
from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

_HERE = resources.files(__name__)


def _path(name: str) -> Path:
    return Path(str(_HERE / name))


def load_dickinson() -> pd.DataFrame:
    """County-level covariates of the Dickinson et al. (2015) immunization trial (16 rows)."""
    return pd.read_csv(_path("dickinson_design.csv"))


def load_dickinson_outcome() -> pd.DataFrame:
    """cvcrand's simulated individual-level binary outcomes for the Dickinson counties (4,800 rows)."""
    return pd.read_csv(_path("dickinson_outcome.csv"))


def dickinson_cvcrand_space_path() -> Path:
    """Path of the constrained space cvcrand saved for the paper's example (l2, cutoff 0.1, 1,287 schemes)."""
    return _path("dickinson_constrained_cvcrand.csv")


_LAZY = {
    "simulate_edlead": "edlead",
    "simulate_callcenter": "callcenter",
    "load_callcenter": "callcenter",
    "simulate_stepped_wedge_clusters": "stepped_wedge",
    "simulate_stepped_wedge_outcomes": "stepped_wedge",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
