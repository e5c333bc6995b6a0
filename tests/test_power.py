"""Analytic power of a two-arm CRT against published formulas and reference software.

- Donner & Klar (2000), *Design and Analysis of Cluster Randomization Trials in Health Research*,
  ch. 5: n_cluster = n_individual x (1 + (m - 1) ICC). Stata's ``sampsi``/``sampclus`` implement it;
  their documented example ``sampsi 12 16, sd(5) power(.8)`` then ``sampclus, obsclus(10) rho(.3)``
  gives 25 -> 93 individuals per arm and 19 clusters (pinned in the pwrcalc R package's tests).
- Eldridge, Ashby & Kerry (2006), Int J Epidemiol 35:1292: design effect 1 + ((cv^2 + 1) m - 1) ICC.
- With equal cluster sizes the analysis of cluster means is a two-sample t test, so the power
  equals R's ``power.t.test(n = k, delta, sd = sd * sqrt(DE / m), strict = TRUE)``; the numbers
  below are R 4.2's output (script in the test's comments).
"""
from __future__ import annotations

import math

import pytest

from crt_widgets.core.power.analytic import crt_clusters_needed, crt_power, design_effect, individuals_per_arm


def test_donner_klar_design_effect_reproduces_the_stata_sampclus_example():
    n = math.ceil(individuals_per_arm(16 - 12, sd=5, alpha=0.05, power=0.8))
    assert n == 25
    deff = design_effect(10, 0.3)
    assert deff == pytest.approx(3.7)
    assert math.ceil(n * deff) == 93
    assert math.ceil(2 * n * deff / 10) == 19


# R: f <- function(d, icc, m, k, sd = 1, cv = 0) { deff <- 1 + ((cv^2 + 1) * m - 1) * icc
#      power.t.test(n = k, delta = d, sd = sd * sqrt(deff / m), strict = TRUE)$power }
@pytest.mark.parametrize(
    "effect, icc, m, k, sd, cv, r_power",
    [
        (0.3, 0.05, 20, 10, 1.0, 0.0, 0.5291934022),
        (0.5, 0.10, 30, 6, 1.0, 0.0, 0.5825978620),
        (0.2, 0.02, 50, 12, 1.0, 0.6, 0.5812729948),
        (4.0, 0.30, 10, 10, 5.0, 0.0, 0.7941916890),
    ],
)
def test_continuous_power_equals_r_power_t_test_on_cluster_means(effect, icc, m, k, sd, cv, r_power):
    result = crt_power(effect, icc=icc, cluster_size=m, clusters_per_arm=k, sd=sd, cv=cv)
    assert result.power == pytest.approx(r_power, abs=1e-8)
    assert result.df == 2 * k - 2
    assert result.design_effect == pytest.approx(1 + ((cv**2 + 1) * m - 1) * icc)


def test_binary_power_equals_r_power_t_test():
    # R: s <- sqrt((.1 * .9 + .2 * .8) / 2 * (1 + 49 * .05) / 50); power.t.test(n = 15, delta = .1, sd = s, strict = TRUE)
    result = crt_power(0.1, outcome="binary", p_control=0.1, icc=0.05, cluster_size=50, clusters_per_arm=15)
    assert result.power == pytest.approx(0.8123024398, abs=1e-8)


def test_one_sided_power_and_clusters_needed():
    two = crt_power(0.3, icc=0.05, cluster_size=20, clusters_per_arm=10)
    one = crt_power(0.3, icc=0.05, cluster_size=20, clusters_per_arm=10, sides=1)
    assert one.power > two.power
    k = crt_clusters_needed(0.3, icc=0.05, cluster_size=20, power=0.8)
    assert crt_power(0.3, icc=0.05, cluster_size=20, clusters_per_arm=k).power >= 0.8
    assert crt_power(0.3, icc=0.05, cluster_size=20, clusters_per_arm=k - 1).power < 0.8
    assert k == 19


@pytest.mark.parametrize("k_treat, k_control", [(8, 12), (5, 9), (10, 10)])
def test_unequal_arms_equal_the_two_sample_t_power_on_cluster_means(k_treat, k_control):
    """statsmodels' TTestIndPower (noncentral t, k_t + k_c - 2 df) on cluster means of variance DE / m."""
    from statsmodels.stats.power import TTestIndPower

    r = crt_power(0.3, icc=0.05, cluster_size=20, cv=0.4, clusters_per_arm=k_treat, clusters_control=k_control)
    d = 0.3 / math.sqrt(design_effect(20, 0.05, 0.4) / 20)
    expected = TTestIndPower().power(effect_size=d, nobs1=k_treat, ratio=k_control / k_treat, alpha=0.05)
    assert r.power == pytest.approx(expected, abs=1e-10)
    assert r.df == k_treat + k_control - 2 and r.clusters_control == k_control


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(icc=1.5), "icc"),
        (dict(cluster_size=0), "cluster_size"),
        (dict(clusters_per_arm=1), "clusters_per_arm"),
        (dict(outcome="survival"), "outcome must be one of"),
        (dict(outcome="count"), "icc: a count outcome takes rate_cv"),
        (dict(outcome="binary"), "p_control"),
        (dict(outcome="binary", p_control=0.95), "p_control \\+ effect"),
        (dict(cv=-1), "cv"),
        (dict(alpha=0), "alpha"),
        (dict(clusters_control=0), "clusters_control"),
        (dict(clusters_control=2.5), "clusters_control"),
        # arrays that do not broadcast: numpy's "operands could not be broadcast together" named no argument
        (dict(icc=[0.01, 0.05], cluster_size=[10, 20, 30]),
         r"icc \(shape \(2,\)\) and cluster_size \(shape \(3,\)\) do not broadcast"),
    ],
)
def test_bad_input(kwargs, message):
    args = dict(icc=0.05, cluster_size=20, clusters_per_arm=10) | kwargs
    with pytest.raises(ValueError, match=message):
        crt_power(0.1, **args)
