"""Bad input across the public API: a ValueError that names the argument, never numpy's or patsy's own error.

Seeds are checked once (crt_widgets.core.seeds) wherever they enter; infinite values are refused
where missing values are; a malformed formula is named.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import crt_widgets as crt
from crt_widgets.core.power.design_simulation import simple_randomization
from crt_widgets.core.seeds import check_seed, generator
from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome

SEED_MESSAGE = r"seed: expected a whole number of at least 0"
NESTED = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 7], "x": [1.0, 2, 3, 4, 5, 6], "g": [1, 1, 2, 2, 3, 3]})


@pytest.mark.parametrize("seed", ["abc", -1, 1.5, True, [1, 2]])
def test_every_seed_entry_names_a_bad_seed(dickinson, seed):
    design = crt.ConstrainedDesign(dickinson, ["inciis"], 8, cluster_id="county", seed=1)
    entries = [
        lambda: crt.ConstrainedDesign(dickinson, ["inciis"], 8, cluster_id="county", seed=seed),
        lambda: design.draw(seed=seed),
        lambda: crt.stratified_arms([1, 1, 2, 2], 2, seed=seed),
        lambda: crt.StratifiedDesign([1, 1, 2, 2], 2, seed=seed),
        lambda: crt.MultiArmDesign(dickinson, ["inciis"], 3, cluster_id="county", size=100, seed=seed),
        lambda: crt.MatchedDesign(crt.optimal_match(dickinson, ["inciis"]), seed=seed),
        lambda: crt.bootstrap_ci("y ~ x", NESTED, ["g"], "x", n_boot=10, seed=seed),
        lambda: crt.design_power_simulation(n_clusters=8, icc=0.05, effect=0.3, n_trials=2, seed=seed),
        lambda: crt.datasets.simulate_edlead(seed=seed),
    ]
    for entry in entries:
        with pytest.raises(ValueError, match=SEED_MESSAGE):
            entry()


def test_a_checked_seed_is_the_same_generator_as_numpy_and_none_is_recorded():
    assert generator(42).integers(1 << 30) == np.random.default_rng(42).integers(1 << 30)
    rng = np.random.default_rng(3)
    assert generator(rng) is rng
    fresh = check_seed(None)
    assert isinstance(fresh, int) and fresh >= 0 and check_seed(np.int64(7)) == 7
    sim = crt.design_power_simulation(n_clusters=8, icc=0.05, effect=0.3, n_trials=2, seed=None,
                                      allocations={"simple": simple_randomization})
    assert isinstance(sim.settings["seed"], int)  # the fresh seed is kept, so the run can be repeated


def _with_infinity(frame: pd.DataFrame, column: str, row: int = 3) -> pd.DataFrame:
    values = frame[column].astype(float).to_numpy().copy()
    values[row] = np.inf
    return frame.assign(**{column: values})


def test_infinite_values_are_refused_where_they_enter(dickinson):
    bad = _with_infinity(dickinson, "inciis")
    outcomes = load_dickinson_outcome()
    cases = [
        (lambda: crt.ConstrainedDesign(bad, ["inciis"], 8, cluster_id="county"), "covariate 'inciis' has 1 infinite"),
        (lambda: crt.MultiArmDesign(bad, ["inciis"], 3, cluster_id="county", size=100), "covariate 'inciis' has 1 infinite"),
        (lambda: crt.optimal_match(bad, ["inciis"]), "covariate 'inciis' has 1 infinite"),
        (lambda: crt.greedy_match(bad, ["inciis"]), "covariate 'inciis' has 1 infinite"),
        (lambda: crt.permutation_test(_with_infinity(outcomes, "inciis"), "outcome", "county",
                                      dickinson_cvcrand_space_path(), covariates=["inciis"]),
         "covariate 'inciis' has 1 infinite"),
        (lambda: crt.mixed_model("y ~ x", _with_infinity(NESTED, "y"), groups=["g"]), "infinite values in 'y'"),
        (lambda: crt.mixed_model("y ~ x", _with_infinity(NESTED, "x"), groups=["g"]), "infinite values in 'x'"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("formula", ["y ~ ", "y ~ x +* g"])
def test_a_malformed_formula_is_named(formula):
    with pytest.raises(ValueError, match=r"formula .* could not be read"):
        crt.mixed_model(formula, NESTED, groups=["g"])


@pytest.mark.parametrize("argument, value", [("effect", "big"), ("effect", np.nan), ("sd", np.inf),
                                             ("clusters_per_arm", "ten")])
def test_analytic_power_names_a_non_number(argument, value):
    inputs = dict(effect=0.3, icc=0.05, cluster_size=20, clusters_per_arm=10, sd=1.0) | {argument: value}
    with pytest.raises(ValueError, match=f"{argument} must be a finite number"):
        crt.crt_power(**inputs)


def test_strata_must_be_one_label_per_unit():
    with pytest.raises(ValueError, match=r"strata: give one stratum label per unit \(a flat list\), got shape \(2, 2\)"):
        crt.stratified_arms([[1, 1], [2, 2]], 2)


def test_all_weights_zero_is_said_by_both_designs(dickinson):
    note = "every weight is 0: all schemes score 0, so the design is simple (unconstrained) randomization"
    two_arm = crt.ConstrainedDesign(dickinson, ["inciis", "hispanic"], 8, cluster_id="county", weights=[0, 0])
    assert len(two_arm.space_index) == 12870 and note in two_arm.diagnostics
    one_on = crt.ConstrainedDesign(dickinson, ["inciis", "hispanic"], 8, cluster_id="county", weights=[0, 1])
    assert note not in one_on.diagnostics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        multi = crt.MultiArmDesign(dickinson, ["inciis"], 3, cluster_id="county", size=500, weights=[0], seed=1)
    assert note in multi.diagnostics and len(multi.space_index) == len(multi.scores)


def test_dashboard_port_is_checked_by_argparse(capsys):
    from crt_widgets.cli import main

    for port, message in [("99999", "a port is between 1 and 65535, got 99999"), ("x", "not a whole number: 'x'")]:
        with pytest.raises(SystemExit):
            main(["dashboard", "--port", port])
        assert message in capsys.readouterr().err


def test_a_misspelt_column_is_named_before_the_space_is_read():
    outcomes = load_dickinson_outcome().query("county <= 2")  # 2 clusters: the 16-column space would not fit
    with pytest.raises(ValueError, match="data: column\\(s\\) not found: outcme"):
        crt.permutation_test(outcomes, "outcme", "county", dickinson_cvcrand_space_path())


def test_values_too_large_to_standardise_are_named(dickinson):
    huge = dickinson.assign(inciis=dickinson["inciis"] * 1e306)  # finite, but their squares overflow
    with pytest.raises(ValueError, match="inciis: values too large to standardise"):
        crt.ConstrainedDesign(huge, ["inciis", "hispanic"], 8, cluster_id="county")
