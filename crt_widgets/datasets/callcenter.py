"""Call-centre data like Buisson's (2021, ch. 10) (calls nested in representatives nested in centres).

Buisson (2021, ch. 10, "Cluster Randomization and Hierarchical Modeling") fits
``call_CSAT ~ reason + age`` with random intercepts for the centre and for the representative
within the centre to 695,205 historical calls, and finds (REML): intercept 3.90, ``property``
+0.20, age +0.020 per year, centre variance 1.30, representative variance 0.78, residual
variance 0.39. :func:`simulate_callcenter` generates data from exactly that model (the defaults),
with every parameter adjustable; :func:`load_callcenter` returns a small generated example shipped
with the package.

>>> from crt_widgets.datasets import simulate_callcenter
>>> calls = simulate_callcenter(n_calls=2_000, seed=1)
>>> sorted(calls.center_ID.unique().tolist())[:3], len(calls)
([101, 102, 103], 2000)
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from crt_widgets.core.seeds import generator

#: REML estimates of Buisson's (2021) nested model (Buisson 2021, ch. 10), the simulator's defaults.
CHAPTER_PARAMETERS = {
    "intercept": 3.901,
    "property_effect": 0.200,
    "age_effect": 0.020,
    "center_var": 1.304,
    "rep_var": 0.776,
    "residual_var": 0.3904,
}
CHAPTER_N_CALLS = 695_205
CSAT_CAP = 10.0

_EXAMPLES = {"historical": "callcenter_historical.csv", "experimental": "callcenter_experimental.csv"}


def simulate_callcenter(
    n_calls: int = CHAPTER_N_CALLS,
    *,
    n_centers: int = 10,
    reps_per_center: tuple[int, int] = (15, 22),
    intercept: float = CHAPTER_PARAMETERS["intercept"],
    property_effect: float = CHAPTER_PARAMETERS["property_effect"],
    age_effect: float = CHAPTER_PARAMETERS["age_effect"],
    center_var: float = CHAPTER_PARAMETERS["center_var"],
    rep_var: float = CHAPTER_PARAMETERS["rep_var"],
    residual_var: float = CHAPTER_PARAMETERS["residual_var"],
    p_payment: float = 0.6,
    age_mean: float = 40.0,
    age_sd: float = 12.0,
    n_months: int = 12,
    experimental: bool = False,
    treatment_effect: float = 0.5,
    cap: float | None = CSAT_CAP,
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Simulate calls from Buisson's (2021) nested random-intercept model.

    ``call_CSAT = intercept + property_effect * [reason == property] + age_effect * age
    + u_center + u_rep + e`` (plus ``treatment_effect`` for calls of treated centres when
    ``experimental``), capped at ``cap`` (10, as in Buisson (2021); ``None`` for no cap), with
    ``u_center ~ N(0, center_var)``, ``u_rep ~ N(0, rep_var)``, ``e ~ N(0, residual_var)``.

    Centres have ids 101, 102, ...; each has a uniform number of representatives in
    ``reps_per_center`` (inclusive); ``rep_ID`` is unique across centres. The ``n_calls`` calls
    are spread over the representatives at random (multinomially, equal chances), each with a
    month in 1..``n_months``, a reason (``payment`` with probability ``p_payment``, else
    ``property``) and a customer age (normal, rounded, clipped to 18-90). With ``experimental``,
    the centres are paired in id order (101-102, 103-104, ...) and one centre of each pair,
    chosen at random, is ``treat`` (an odd last centre is ``ctrl``); column ``group``.

    >>> simulate_callcenter(500, seed=3, experimental=True).group.value_counts().index.tolist()
    ['ctrl', 'treat']
    """
    rng = generator(seed)
    _check_args(n_calls, n_centers, reps_per_center, center_var, rep_var, residual_var, p_payment, n_months)

    center_ids = 101 + np.arange(n_centers)
    n_reps = rng.integers(reps_per_center[0], reps_per_center[1] + 1, size=n_centers)
    rep_center = np.repeat(np.arange(n_centers), n_reps)          # centre index of each rep
    rep_calls = rng.multinomial(n_calls, np.full(rep_center.size, 1.0 / rep_center.size))
    call_rep = np.repeat(np.arange(rep_center.size), rep_calls)   # rep index of each call
    call_center = rep_center[call_rep]

    u_center = rng.normal(0.0, np.sqrt(center_var), n_centers)
    u_rep = rng.normal(0.0, np.sqrt(rep_var), rep_center.size)
    is_property = rng.random(n_calls) >= p_payment
    age = np.clip(np.rint(rng.normal(age_mean, age_sd, n_calls)), 18, 90)
    month = rng.integers(1, n_months + 1, size=n_calls)
    csat = (intercept + property_effect * is_property + age_effect * age
            + u_center[call_center] + u_rep[call_rep] + rng.normal(0.0, np.sqrt(residual_var), n_calls))

    columns: dict[str, np.ndarray] = {
        "center_ID": center_ids[call_center],
        "rep_ID": call_rep + 1,
        "month": month,
        "reason": np.where(is_property, "property", "payment"),
        "age": age,
    }
    if experimental:
        treated = _pairwise_treatment(n_centers, rng)
        csat = csat + treatment_effect * treated[call_center]
        columns["group"] = np.where(treated[call_center], "treat", "ctrl")
    columns["call_CSAT"] = np.minimum(csat, cap) if cap is not None else csat
    return pd.DataFrame(columns)


def load_callcenter(kind: str = "historical") -> pd.DataFrame:
    """A small generated example (about 6,000 calls, 10 centres) shipped with the package.

    ``kind="historical"`` (no treatment) or ``"experimental"`` (with ``group``, treatment effect
    0.5 in one centre of each id-ordered pair). Both were made by :func:`simulate_callcenter`
    with ``n_calls=6000`` and seeds 2026 and 2027; values are rounded to 3 decimals.

    >>> load_callcenter().shape
    (6000, 6)
    """
    if kind not in _EXAMPLES:
        raise ValueError(f"kind must be one of {sorted(_EXAMPLES)}, got {kind!r}")
    path = Path(str(resources.files("crt_widgets.datasets") / _EXAMPLES[kind]))
    return pd.read_csv(path)


def _pairwise_treatment(n_centers: int, rng: np.random.Generator) -> np.ndarray:
    """One treated centre per consecutive pair, chosen by a fair coin per pair."""
    n_pairs = n_centers // 2
    treated = np.zeros(n_centers, dtype=bool)
    first_treated = rng.random(n_pairs) < 0.5
    treated[2 * np.arange(n_pairs) + np.where(first_treated, 0, 1)] = True
    return treated


def _check_args(n_calls, n_centers, reps_per_center, center_var, rep_var, residual_var, p_payment, n_months) -> None:
    if int(n_calls) < 1:
        raise ValueError(f"n_calls must be at least 1, got {n_calls}")
    if int(n_centers) < 1:
        raise ValueError(f"n_centers must be at least 1, got {n_centers}")
    lo, hi = reps_per_center
    if not 1 <= lo <= hi:
        raise ValueError(f"reps_per_center must be (low, high) with 1 <= low <= high, got {reps_per_center}")
    for name, value in (("center_var", center_var), ("rep_var", rep_var), ("residual_var", residual_var)):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
    if not 0.0 <= p_payment <= 1.0:
        raise ValueError(f"p_payment must be in [0, 1], got {p_payment}")
    if int(n_months) < 1:
        raise ValueError(f"n_months must be at least 1, got {n_months}")


def _write_examples() -> None:  # pragma: no cover - run once by hand to regenerate the shipped CSVs
    here = Path(__file__).parent
    for kind, seed in (("historical", 2026), ("experimental", 2027)):
        data = simulate_callcenter(6000, seed=seed, experimental=kind == "experimental")
        data.round(3).to_csv(here / _EXAMPLES[kind], index=False)
