"""crt-widgets: design and analysis of cluster randomized trials.

The public API is loaded lazily so that ``import crt_widgets`` stays fast and
the computational core never pulls in ipywidgets.

>>> import crt_widgets as crt
>>> design = crt.ConstrainedDesign(crt.datasets.load_dickinson(),
...     covariates=["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
...     categorical=["location", "incomecat"], cluster_id="county", n_treat=8)
>>> len(design.candidates)
12870
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (each concept lives in a module of its own name)
_EXPORTS = {
    # two-arm covariate-constrained randomization
    "ConstrainedDesign": "crt_widgets.core.randomization.constrained",
    "Allocation": "crt_widgets.core.randomization.constrained",
    "SchemeSet": "crt_widgets.core.spaces.schemes",
    "prepare_covariates": "crt_widgets.core.covariates",
    "parse_constraint": "crt_widgets.core.randomization.constraints",
    "cluster_coincidence": "crt_widgets.core.diagnostics.validity",
    "read_space": "crt_widgets.core.io.spacefiles",
    "read_cvcrand_space": "crt_widgets.core.io.spacefiles",
    "read_table": "crt_widgets.core.io.tables",
    "Cancelled": "crt_widgets.core.progress",   # raised when a long build is stopped on request (stop=)
    # analysis: clustered permutation test
    "permutation_test": "crt_widgets.core.permutation.test",
    # multi-arm, factorial and matched designs
    "stratified_arms": "crt_widgets.core.randomization.balanced_sampler",
    "StratifiedDesign": "crt_widgets.core.randomization.stratified",
    "Arms": "crt_widgets.core.randomization.arms",
    "verify_allocations": "crt_widgets.core.randomization.verification",
    "count_allocations": "crt_widgets.core.randomization.balanced_sampler",
    "MultiArmDesign": "crt_widgets.core.randomization.multiarm",
    "read_multiarm_space": "crt_widgets.core.io.spacefiles",
    "match_clusters": "crt_widgets.core.randomization.matching",
    "greedy_match": "crt_widgets.core.randomization.matching",
    "optimal_match": "crt_widgets.core.randomization.matching",
    "compare_matchings": "crt_widgets.core.randomization.matching",
    "MatchedDesign": "crt_widgets.core.randomization.matching",
    # hierarchical models and power
    "mixed_model": "crt_widgets.core.models.mixed",
    "gee": "crt_widgets.core.models.gee",
    "icc": "crt_widgets.core.models.icc",
    "bootstrap_ci": "crt_widgets.core.models.bootstrap",
    "crt_power": "crt_widgets.core.power.analytic",
    "design_effect": "crt_widgets.core.power.analytic",
    "crt_clusters_needed": "crt_widgets.core.power.analytic",
    "power_curve": "crt_widgets.core.power.analytic",
    "chapter_power_simulation": "crt_widgets.core.power.chapter",
    "design_power_simulation": "crt_widgets.core.power.design_simulation",
    # multi-period designs (stepped wedge, cluster crossover, ...) and their power
    "MultiPeriodDesign": "crt_widgets.core.multiperiod.designs",
    "stepped_wedge": "crt_widgets.core.multiperiod.designs",
    "staircase": "crt_widgets.core.multiperiod.designs",
    "cluster_crossover": "crt_widgets.core.multiperiod.designs",
    "parallel_arms": "crt_widgets.core.multiperiod.designs",
    "multiperiod_power": "crt_widgets.core.multiperiod.power",
    "multiperiod_power_grid": "crt_widgets.core.multiperiod.power",
    "multiperiod_clusters_needed": "crt_widgets.core.multiperiod.power",
    "stepped_wedge_steps_needed": "crt_widgets.core.multiperiod.power",
    "design_grid": "crt_widgets.core.multiperiod.designs",
    # randomizing the order of a multi-period design, and its analysis
    "SteppedWedgeDesign": "crt_widgets.core.randomization.stepped_wedge",
    "SteppedWedgeAllocation": "crt_widgets.core.randomization.stepped_wedge",
    "stepped_wedge_permutation_test": "crt_widgets.core.permutation.stepped_wedge",
    "stepped_wedge_analysis": "crt_widgets.core.analysis.stepped_wedge",
}

_SUBMODULES = {"datasets", "compat", "core", "cli"}

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"crt_widgets.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'crt_widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
