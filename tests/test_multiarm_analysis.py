"""Permutation tests of multi-arm and factorial trials: one two-group comparison at a time over the design's space.

Checked by brute force: for every allocation of the constrained space, the difference of cluster
means between the compared groups (formula (5)), and the share at least as extreme as the observed.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crt_widgets import MultiArmDesign, permutation_test
from crt_widgets.cli import main
from crt_widgets.core.multiarm import read_multiarm_space
from crt_widgets.datasets import simulate_edlead


@pytest.fixture(scope="module")
def trial():
    """An ED-LEAD-like 2x2x2 factorial (80 EDs, stratified by health system), its allocation, and
    patient outcomes with a factor-a effect of 0.4 and a random ED intercept."""
    eds = simulate_edlead(seed=3)
    design = MultiArmDesign(eds, ["volume", "location"], factors=["a", "b", "c"], categorical=["location"],
                            strata="health_system", cluster_id="ed", size=5000, cutoff=0.2, seed=11)
    allocation = design.draw()
    rng = np.random.default_rng(8)
    patients = np.repeat(np.arange(len(eds)), 15)
    factor_a = allocation.allocation["a"].to_numpy()
    y = 0.4 * factor_a[patients] + rng.normal(0, 0.5, len(eds))[patients] + rng.normal(size=len(patients))
    outcomes = pd.DataFrame({"ed": eds["ed"].to_numpy()[patients], "y": y})
    return design, allocation, outcomes


def _brute_force(outcomes, design, position, treated_arms):
    means = (outcomes["y"] - outcomes["y"].mean()).groupby(outcomes["ed"]).mean().reindex(design.cluster_ids).to_numpy()
    treated = np.isin(np.asarray(design.arms.labels)[design.space], treated_arms)
    u = np.array([means[row].mean() - means[~row].mean() for row in treated])
    return u[position], np.mean(np.abs(u) >= abs(u[position]) - 1e-12)


@pytest.mark.parametrize("comparison, treated_arms", [
    (dict(factor="a"), ["a", "a+b", "a+c", "a+b+c"]),       # a main effect: 40 against 40
    (dict(treated=["a+b+c"]), ["a+b+c"]),                    # one arm against the other seven: 10 against 70
])
def test_comparison_equals_brute_force_over_the_design_space(trial, comparison, treated_arms):
    design, allocation, outcomes = trial
    space = allocation.two_arm(**comparison)
    assert space.metadata["treated_arms"] == treated_arms
    assert len(space.schemes) == len(design.space_index) == 1000  # one row per allocation, duplicates kept
    result = permutation_test(outcomes, "y", "ed", space)
    observed, p = _brute_force(outcomes, design, allocation.space_position, treated_arms)
    assert result.statistic == pytest.approx(observed, abs=1e-12)
    assert result.p_value == pytest.approx(p, abs=0)


def test_factor_effect_is_found_and_its_interval_covers_it(trial):
    design, allocation, outcomes = trial
    result = permutation_test(outcomes, "y", "ed", allocation.two_arm(factor="a"), ci=True)
    assert result.p_value < 0.01 and result.conf_int[0] < 0.4 < result.conf_int[1]
    null_factor = permutation_test(outcomes, "y", "ed", allocation.two_arm(factor="b"))
    assert null_factor.p_value > 0.05  # b has no effect (one draw; this seed's outcome)


def test_saved_space_and_command_line_give_the_same_test(trial, tmp_path, capsys):
    design, allocation, outcomes = trial
    files = allocation.save(tmp_path)
    in_memory = permutation_test(outcomes, "y", "ed", allocation.two_arm(factor="a"))
    from_file = permutation_test(outcomes, "y", "ed", read_multiarm_space(files["space"]).two_arm(factor="a"))
    assert from_file.p_value == in_memory.p_value and from_file.statistic == pytest.approx(in_memory.statistic)
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    command = ["analyze", "--data", str(tmp_path / "outcomes.csv"), "--space", str(files["space"]), "--outcome", "y",
               "--cluster", "ed"]
    assert main(command + ["--factor", "a", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["p_value"] == in_memory.p_value and doc["comparison"]["treated_arms"] == ["a", "a+b", "a+b+c", "a+c"]
    assert main(command + ["--treated-arms", "none"]) == 0
    assert "Comparison: arms none against the others" in capsys.readouterr().out
    assert main(command) == 2
    assert "a multi-arm space" in capsys.readouterr().err


@pytest.mark.parametrize("comparison, message", [
    (dict(factor="d"), "factor: 'd' is not a factor of the arms"),
    (dict(treated=["x"]), "treated: arm\\(s\\) x not among the arms"),
    (dict(treated=["none", "a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"]), "every arm is in the treated group"),
    (dict(), "give either factor= .* or treated="),
    (dict(factor="a", treated=["b"]), "give either factor= .* or treated="),
])
def test_bad_comparisons_are_named(trial, comparison, message):
    with pytest.raises(ValueError, match=message):
        trial[1].two_arm(**comparison)


def test_more_than_two_arms_without_a_comparison_says_how(trial):
    design, allocation, outcomes = trial
    with pytest.raises(ValueError, match=r"has 8 arms; .* allocation.two_arm\(factor=...\)"):
        permutation_test(outcomes, "y", "ed", allocation)
