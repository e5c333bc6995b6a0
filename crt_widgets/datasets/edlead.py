"""ED-LEAD-like emergency departments: 80 EDs in 14 health systems (simulated, not the trial's data).

ED-LEAD randomizes 80 emergency departments (EDs) in 14 health systems to the 8 arms of a 2x2x2
factorial, stratified by health system, then constrains on ED characteristics. The real ED-level
data are not public; :func:`simulate_edlead` generates plausible stand-ins with the trial's system
sizes (12, 11, 9, 8, 7, 6, 6, 5, 4, 4, 3, 2, 2, 1):

- ``location``: ``"urban"`` or ``"rural"`` (each system has its own urban share, so EDs of a
  system resemble each other);
- ``volume``: annual ED visits by patients aged 66+ living with dementia (log-normal, higher in
  urban EDs, with a health-system effect), a whole number.

>>> from crt_widgets.datasets import simulate_edlead
>>> eds = simulate_edlead(seed=1)
>>> eds.shape, int(eds.health_system.value_counts().max()), sorted(eds.location.unique())
((80, 4), 12, ['rural', 'urban'])
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crt_widgets.core.seeds import generator

#: EDs per health system in ED-LEAD (80 EDs, 14 systems)
EDLEAD_SYSTEM_SIZES = (12, 11, 9, 8, 7, 6, 6, 5, 4, 4, 3, 2, 2, 1)


def simulate_edlead(
    seed: int | np.random.Generator | None = None,
    *,
    system_sizes: Sequence[int] = EDLEAD_SYSTEM_SIZES,
    median_volume: float = 600.0,
    urban_ratio: float = 1.8,
    system_sd: float = 0.35,
    ed_sd: float = 0.45,
    urban_share: tuple[float, float] = (2.0, 1.5),
) -> pd.DataFrame:
    """Simulate ED-level covariates for an ED-LEAD-like trial.

    Parameters
    ----------
    seed : seed or Generator (same seed, same data).
    system_sizes : EDs per health system (default: ED-LEAD's 14 systems, 80 EDs).
    median_volume : median annual volume of a rural ED.
    urban_ratio : multiplicative volume of an urban ED relative to a rural one.
    system_sd, ed_sd : SDs of the health-system and ED effects on log volume.
    urban_share : Beta(a, b) parameters of each system's probability that an ED is urban.

    Returns
    -------
    One row per ED: ``ed`` (ED01..), ``health_system`` (HS01..), ``volume`` (int), ``location``
    (pandas Categorical with categories rural, urban: rural is the reference level).
    """
    sizes = np.asarray(system_sizes)
    if sizes.ndim != 1 or len(sizes) == 0 or (sizes < 1).any() or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"system_sizes: expected positive whole numbers, got {list(system_sizes)}")
    if median_volume <= 0 or urban_ratio <= 0 or system_sd < 0 or ed_sd < 0:
        raise ValueError("median_volume and urban_ratio must be > 0; system_sd and ed_sd >= 0")
    rng = generator(seed)
    n_sys, n = len(sizes), int(sizes.sum())
    system = np.repeat(np.arange(n_sys), sizes)
    p_urban = rng.beta(*urban_share, size=n_sys)
    urban = rng.random(n) < p_urban[system]
    log_volume = (np.log(median_volume) + np.log(urban_ratio) * urban
                  + rng.normal(0, system_sd, n_sys)[system] + rng.normal(0, ed_sd, n))
    width = max(2, len(str(n)))
    return pd.DataFrame({
        "ed": [f"ED{i:0{width}d}" for i in range(1, n + 1)],
        "health_system": [f"HS{s + 1:02d}" for s in system],
        "volume": np.rint(np.exp(log_volume)).astype(int),
        "location": pd.Categorical(np.where(urban, "urban", "rural"), categories=["rural", "urban"]),
    })
