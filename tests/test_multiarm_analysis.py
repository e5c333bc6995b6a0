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
from crt_widgets.core.io.spacefiles import read_multiarm_space
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
    treated = np.isin(np.asarray(design.arms.labels)[design.space.arm_matrix()], treated_arms)
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
    with pytest.raises(ValueError, match=r"has 8 arms; .* .two_arm\(factor=...\)"):
        permutation_test(outcomes, "y", "ed", allocation)


def test_arm_against_control_leaves_the_other_arms_out_exhaustively():
    """6 clusters, 3 arms of 2: all 90 allocations. Arm 2 against arm 1 (arm 3 left out): U and the p-value
    by brute force, the observed scheme's mirror image found, and the smallest p-value 2/90."""
    import itertools

    from crt_widgets.core.spaces.comparisons import arm_groups, two_arm_space
    from crt_widgets.core.permutation.space import resolve_space, smallest_p_value

    rows = sorted({p for p in itertools.permutations([0, 0, 1, 1, 2, 2])})
    arm_index = np.array(rows)
    assert len(arm_index) == 90
    chosen = rows.index((0, 1, 2, 0, 1, 2))
    space = two_arm_space(arm_index, arm_groups(["1", "2", "3"], treated=["2"], control=["1"]), chosen,
                          list("uvwxyz"), labels=["1", "2", "3"])
    rng = np.random.default_rng(2)
    patients = np.repeat(np.arange(6), 4)
    outcomes = pd.DataFrame({"c": np.array(list("uvwxyz"))[patients], "y": rng.normal(size=24) + patients % 3})
    result = permutation_test(outcomes, "y", "c", space)
    means = (outcomes.y - outcomes.y.mean()).groupby(outcomes.c).mean().to_numpy()
    u = np.array([means[row == 1].mean() - means[row == 0].mean() for row in arm_index])
    assert result.statistic == pytest.approx(u[chosen], abs=1e-12)
    assert result.p_value == pytest.approx(np.mean(np.abs(u) >= abs(u[chosen]) - 1e-12), abs=0)
    assert smallest_p_value(resolve_space(space)) == pytest.approx(2 / 90)
    assert space.metadata["comparison"] == "arms 2 against arms 1 (the others left out)"


def test_arm_against_control_in_the_factorial_trial(trial, tmp_path, capsys):
    from crt_widgets.core.analysis.trial import analyze_trial

    design, allocation, outcomes = trial
    labels = allocation.allocation.set_index("ed")["arm_label"]
    # a fresh outcome where only arm a+b+c differs (by 0.8), so the interval's assumption holds
    rng = np.random.default_rng(12)
    ed = outcomes["ed"].to_numpy()
    y = 0.8 * (labels.loc[ed].to_numpy() == "a+b+c") + rng.normal(0, 0.3, len(design.cluster_ids))[
        pd.Index(design.cluster_ids).get_indexer(ed)] + rng.normal(size=len(ed))
    data = pd.DataFrame({"ed": ed, "y": y})
    space = allocation.two_arm(treated=["a+b+c"], control=["none"])
    treated_arm = np.asarray(design.arms.labels)[design.space.arm_matrix()] == "a+b+c"
    control_arm = np.asarray(design.arms.labels)[design.space.arm_matrix()] == "none"
    means = (data.y - data.y.mean()).groupby(data.ed).mean().reindex(design.cluster_ids).to_numpy()
    u = np.array([means[t].mean() - means[c].mean() for t, c in zip(treated_arm, control_arm)])
    observed = u[allocation.space_position]
    report = analyze_trial(data, "y", "ed", space)
    assert report.permutation.statistic == pytest.approx(observed, abs=1e-12)
    assert report.permutation.p_value == pytest.approx(np.mean(np.abs(u) >= abs(observed) - 1e-12), abs=0)
    assert report.permutation.conf_int[0] < 0.8 < report.permutation.conf_int[1]
    # the companions fit the 20 compared EDs only: with equal cluster sizes the GEE effect is the difference of means
    in_arm = labels.loc[ed].to_numpy()
    assert report.gee.effect == pytest.approx(y[in_arm == "a+b+c"].mean() - y[in_arm == "none"].mean(), rel=1e-6)
    files = allocation.save(tmp_path)
    data.to_csv(tmp_path / "patients.csv", index=False)
    assert main(["analyze", "--data", str(tmp_path / "patients.csv"), "--space", str(files["space"]), "--outcome", "y",
                 "--cluster", "ed", "--treated-arms", "a+b+c", "--control-arms", "none", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["p_value"] == report.permutation.p_value and doc["comparison"]["control_arms"] == ["none"]


@pytest.mark.parametrize("comparison, message", [
    (dict(treated=["a"], control=["a", "none"]), "arm\\(s\\) a are in both groups"),
    (dict(factor="a", control=["none"]), "control= goes with treated="),
    (dict(treated=["a"], control=["zz"]), "control: arm\\(s\\) zz not among the arms"),
])
def test_bad_control_arms_are_named(trial, comparison, message):
    with pytest.raises(ValueError, match=message):
        trial[1].two_arm(**comparison)


def test_final_scheme_marks_the_left_out_clusters(trial):
    design, allocation, outcomes = trial
    result = permutation_test(outcomes, "y", "ed", allocation.two_arm(treated=["a"], control=["none"]))
    labels = allocation.allocation["arm_label"].to_numpy()
    expected = np.where(labels == "a", 1, np.where(labels == "none", 0, -1))
    np.testing.assert_array_equal(result.observed_scheme, expected)
    assert sorted(set(result.to_dict()["FinalScheme"].values())) == [-1, 0, 1]
    whole = permutation_test(outcomes, "y", "ed", allocation.two_arm(factor="a"))
    assert set(np.unique(whole.observed_scheme)) == {0, 1}


def test_a_saved_multiarm_space_needs_a_comparison_and_three_arm_matched_allocations_give_one(trial, tmp_path):
    from crt_widgets import MatchedDesign, greedy_match
    from crt_widgets.datasets import simulate_edlead

    design, allocation, outcomes = trial
    saved = read_multiarm_space(allocation.save(tmp_path)["space"])
    with pytest.raises(ValueError, match="a multi-arm space; .* .two_arm\\(treated=\\[arms\\], control=\\[arms\\]\\)"):
        permutation_test(outcomes, "y", "ed", saved)
    eds = simulate_edlead(seed=3)
    triples = MatchedDesign(greedy_match(eds, ["volume"], group_size=3, cluster_id="ed"), n_arms=3, seed=1)
    with pytest.raises(ValueError, match="the design has 3 arms; the permutation test compares two groups"):
        permutation_test(outcomes, "y", "ed", triples, observed=np.zeros(len(eds), dtype=int))
    # the protocol gives every allocation its comparisons: arm 1 against arm 0 within the matched triples
    drawn = triples.draw()
    pair = drawn.two_arm(treated=["1"], control=["0"])
    result = permutation_test(outcomes, "y", "ed", pair)
    space = triples.space.arm_matrix()
    assert result.n_schemes == len(space) and int(pair.chosen_scheme.sum()) == int((drawn.arm == 1).sum())


@pytest.mark.slow
@pytest.mark.parametrize("comparison", [dict(factor="a"), dict(treated=["a+b+c"], control=["none"])],
                         ids=["factor-a", "arm-vs-control"])
def test_size_is_nominal_over_the_design_space(trial, comparison):
    """Null outcomes (related to ED volume, the balanced covariate, with an ED intercept), the allocation used
    drawn uniformly from the constrained space: P(p <= 0.05) is 0.05 within 3.3 Monte Carlo SEs (3,000
    replicates: SE 0.004), so keeping one row per allocation, duplicates included, gives an exact test."""
    from crt_widgets.core.spaces.saved import SavedSpace

    design, allocation, _ = trial
    space = allocation.two_arm(**comparison)
    schemes, control, ids = space.schemes, space.control, design.cluster_ids
    reps, per_ed, n = 3000, 10, len(ids)
    rng = np.random.default_rng(55)
    volume = design.data["volume"].to_numpy(dtype=float)
    volume = (volume - volume.mean()) / volume.std()
    ed = np.repeat(np.arange(n), per_ed)
    y = 0.5 * volume[ed, None] + rng.normal(0, 0.5, (n, reps))[ed] + rng.normal(size=(len(ed), reps))
    means = (y - y.mean(axis=0)).reshape(n, per_ed, reps).mean(axis=1)  # cluster means of the residuals
    treated_mean = schemes.treated_sums(means) / schemes.treated_counts()[:, None]
    control_mean = control.treated_sums(means) / control.treated_counts()[:, None] if control is not None else \
        (means.sum(axis=0) - schemes.treated_sums(means)) / (n - schemes.treated_counts())[:, None]
    u = treated_mean - control_mean
    observed = rng.integers(len(schemes), size=reps)
    u_obs = u[observed, np.arange(reps)]
    p = np.mean(np.abs(u) >= np.abs(u_obs) - 1e-9 * np.abs(u_obs), axis=0)
    for r in range(3):  # the shortcut is the public test
        data = pd.DataFrame({"ed": ids[ed], "y": y[:, r]})
        direct = permutation_test(data, "y", "ed", SavedSpace(schemes, int(observed[r]), ids, control=control))
        assert direct.p_value == pytest.approx(p[r], abs=1e-12)
    band = 3.3 * np.sqrt(0.05 * 0.95 / reps)
    assert abs(np.mean(p <= 0.05) - 0.05) < band, np.mean(p <= 0.05)
    assert abs(np.mean(p <= 0.2) - 0.2) < 3.3 * np.sqrt(0.2 * 0.8 / reps)


def test_comparison_arguments_that_do_not_fit_are_named(trial, tmp_path, capsys):
    from crt_widgets.core.spaces.comparisons import two_group_space

    design, allocation, outcomes = trial
    with pytest.raises(ValueError, match="comparison: the space has more than two arms; choose what to compare"):
        two_group_space(allocation, "factor:z")
    files = allocation.save(tmp_path)
    outcomes.to_csv(tmp_path / "patients.csv", index=False)
    command = ["analyze", "--data", str(tmp_path / "patients.csv"), "--outcome", "y", "--cluster", "ed"]
    assert main(command + ["--space", str(files["space"]), "--control-arms", "none"]) == 2
    assert "--control-arms: goes with --treated-arms" in capsys.readouterr().err
    assert main(command + ["--space", "simple", "--factor", "a"]) == 2
    assert "--factor/--treated-arms: they choose a comparison of a saved multi-arm space" in capsys.readouterr().err
