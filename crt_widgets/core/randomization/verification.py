"""Empirical check of a stratified allocation procedure: each unit's arm probabilities and each stratum's
arm counts over many draws against what a valid procedure gives (Goldfeld's (2024) 50,000-draw table).

>>> from crt_widgets.core.randomization.balanced_sampler import stratified_arms
>>> strata = [1] * 5 + [2] * 3
>>> verify_allocations(stratified_arms(strata, 4, n_draws=2000, seed=3), strata, 4).passed()
True
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crt_widgets.core.randomization.balanced_sampler import check_whole_number, stratum_codes


@dataclass(frozen=True, eq=False)
class Verification:
    """Empirical check of a stratified allocation procedure (Goldfeld's (2024) 50,000-draw table).

    Attributes
    ----------
    n_draws : allocations examined.
    unit_probabilities : (units x arms) empirical probability of each arm; expected 1/K.
    stratum_means : (strata x arms) mean count of each arm per stratum; expected size/K.
    expected_counts : (strata x arms) the expected size/K.
    max_unit_deviation, max_stratum_deviation : largest absolute deviation from expectation.
    unit_chi2, stratum_chi2 : per unit / per stratum chi-square statistics (K - 1 df) of the
        arm totals over draws, scaled by their exact covariance under a valid procedure (for a
        unit: multinomial; for a stratum: an exchangeable set of r extra arms per draw).
    unit_p_min, stratum_p_min : Bonferroni-adjusted smallest p-value across units / strata
        (valid whatever the dependence between units).
    """

    n_draws: int
    unit_probabilities: pd.DataFrame
    stratum_means: pd.DataFrame
    expected_counts: pd.DataFrame
    unit_chi2: np.ndarray
    stratum_chi2: np.ndarray
    n_arms: int

    @property
    def expected_probability(self) -> float:
        return 1.0 / self.n_arms

    @property
    def max_unit_deviation(self) -> float:
        return float(np.max(np.abs(self.unit_probabilities.to_numpy() - 1.0 / self.n_arms)))

    @property
    def max_stratum_deviation(self) -> float:
        return float(np.max(np.abs(self.stratum_means.to_numpy() - self.expected_counts.to_numpy())))

    @property
    def unit_p_min(self) -> float:
        p = stats.chi2.sf(self.unit_chi2, self.n_arms - 1)
        return float(min(1.0, p.min() * len(p)))

    @property
    def stratum_p_min(self) -> float:
        p = stats.chi2.sf(self.stratum_chi2, self.n_arms - 1)
        return float(min(1.0, p.min() * len(p)))

    def passed(self, level: float = 0.001) -> bool:
        """True when neither Bonferroni-adjusted chi-square check rejects at ``level``."""
        return self.unit_p_min > level and self.stratum_p_min > level

    def __repr__(self) -> str:
        return (f"Verification(n_draws={self.n_draws:,}, max unit deviation from 1/{self.n_arms}: "
                f"{self.max_unit_deviation:.4f}, max stratum deviation: {self.max_stratum_deviation:.4f}, "
                f"chi-square min p (Bonferroni) units {self.unit_p_min:.3g}, strata {self.stratum_p_min:.3g})")


def verify_allocations(draws: np.ndarray, strata: Sequence | np.ndarray | pd.Series, n_arms: int,
                       unit_ids: Sequence | None = None, arm_labels: Sequence[str] | None = None) -> Verification:
    """Check many allocations against a valid procedure's expectations (any sampler's output).

    >>> from crt_widgets.core.randomization.balanced_sampler import stratified_arms
    >>> arms = stratified_arms([1] * 5 + [2] * 3, 4, n_draws=2000, seed=3)
    >>> verify_allocations(arms, [1] * 5 + [2] * 3, 4).max_stratum_deviation < 0.1
    True
    """
    codes, labels = stratum_codes(strata)
    draws = np.asarray(draws)
    if draws.ndim != 2 or draws.shape[1] != len(codes):
        raise ValueError(f"draws: expected an (n_draws, {len(codes)}) array, got shape {draws.shape}")
    n_arms = check_whole_number(n_arms, "n_arms", 2)
    N = len(draws)
    arm_cols = list(arm_labels) if arm_labels is not None else list(range(n_arms))
    ids = np.arange(1, len(codes) + 1) if unit_ids is None else np.asarray(unit_ids)
    counts = np.stack([(draws == a).sum(axis=0) for a in range(n_arms)], axis=1).astype(float)  # units x arms
    sizes = np.bincount(codes)
    totals = np.zeros((len(sizes), n_arms))
    np.add.at(totals, codes, counts)
    expected = np.repeat(sizes[:, None] / n_arms, n_arms, axis=1)
    # unit: multinomial(N, 1/K) -> Pearson statistic
    unit_chi2 = ((counts - N / n_arms) ** 2).sum(axis=1) / (N / n_arms)
    # stratum: totals = N m + (draws with arm a among the r extras); exchangeable extras give
    # covariance N p (1 - p) K / (K - 1) (I - J / K) with p = r / K
    p = (sizes % n_arms) / n_arms
    scale = N * p * (1 - p) * n_arms / (n_arms - 1)
    dev2 = ((totals - N * expected) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        stratum_chi2 = np.where(scale > 0, dev2 / np.where(scale > 0, scale, 1.0),
                                np.where(dev2 < 1e-9, 0.0, np.inf))
    frame = lambda v, idx, name: pd.DataFrame(v, index=pd.Index(idx, name=name), columns=arm_cols)
    return Verification(
        n_draws=N,
        unit_probabilities=frame(counts / N, ids, "unit"),
        stratum_means=frame(totals / N, labels, "stratum"),
        expected_counts=frame(expected, labels, "stratum"),
        unit_chi2=unit_chi2, stratum_chi2=stratum_chi2, n_arms=n_arms,
    )
