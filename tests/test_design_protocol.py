"""One contract for every design (randomizr's ``expect_declaration``, scikit-learn's ``parametrize_with_checks``).

Every design declares a space, probabilities that match the space's frequencies, its parameters (the seed
included), a reproducible draw of one allocation type that lies in the space and carries its audit, and
the two-group space the permutation test reads. A new design joins by adding one line to ``DESIGNS``.
"""
from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest

from crt_widgets import (ConstrainedDesign, MatchedDesign, MultiArmDesign, SteppedWedgeDesign, StratifiedDesign,
                         greedy_match, optimal_match, stepped_wedge)
from crt_widgets.core.io.files import json_ready
from crt_widgets.core.permutation.test import permutation_test
from crt_widgets.core.randomization.allocation import AllocationRecord
from crt_widgets.core.randomization.protocol import Design
from crt_widgets.core.spaces.space import RandomizationSpace
from crt_widgets.datasets import load_dickinson, simulate_edlead, simulate_stepped_wedge_clusters

DICKINSON = load_dickinson()
EDS = simulate_edlead(seed=1)
SW_CLUSTERS = simulate_stepped_wedge_clusters(12, seed=3)

DESIGNS = {
    "constrained, enumerated": lambda: ConstrainedDesign(DICKINSON, ["inciis", "hispanic", "location"], 8,
                                                         categorical=["location"], cluster_id="county", seed=3),
    "constrained, sampled, stratified": lambda: ConstrainedDesign(
        DICKINSON, ["inciis", "location"], 8, categorical=["location"], cluster_id="county", stratify="location",
        enumerate=False, size=3_000, n_best=500, seed=4),
    "multi-arm, 3 arms": lambda: MultiArmDesign(DICKINSON, ["inciis"], 3, cluster_id="county", size=3_000, seed=5),
    "multi-arm, 2 arms": lambda: MultiArmDesign(DICKINSON, ["inciis"], ["usual care", "reminder"], cluster_id="county",
                                                size=3_000, seed=6),
    "multi-arm, factorial": lambda: MultiArmDesign(EDS, ["volume"], factors=["a", "b"], strata="health_system",
                                                   cluster_id="ed", size=3_000, cutoff=0.2, seed=7),
    "stratified, 2 arms": lambda: StratifiedDesign(EDS["health_system"], 2, unit_ids=EDS["ed"], size=4_000, seed=8),
    "stratified, factorial": lambda: StratifiedDesign(EDS["health_system"], factors=["a", "b", "c"], unit_ids=EDS["ed"],
                                                      size=4_000, seed=9),
    "matched pairs": lambda: MatchedDesign(optimal_match(DICKINSON, ["inciis", "hispanic"], cluster_id="county"), seed=10),
    "matched triples, 3 arms": lambda: MatchedDesign(
        greedy_match(EDS.iloc[:30], ["volume"], cluster_id="ed", group_size=3), n_arms=3, seed=11),
    "stepped wedge, enumerated": lambda: SteppedWedgeDesign(SW_CLUSTERS.iloc[:8], ["size", "baseline"], 4,
                                                            cluster_id="cluster", seed=12),
    "stepped wedge, sampled, stratified, by time": lambda: SteppedWedgeDesign(
        SW_CLUSTERS, ["size", "baseline", "location"], stepped_wedge(3, [5, 4, 3]), cluster_id="cluster",
        categorical=["location"], stratify="location", balance="time", size=5_000, n_best=400, seed=13),
}


@pytest.fixture(scope="module", params=list(DESIGNS))
def design(request):
    return DESIGNS[request.param]()


def outcomes_for(unit_ids, seed: int = 0, per_unit: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.asarray(unit_ids), per_unit)
    unit_effect = np.repeat(rng.normal(size=len(unit_ids)), per_unit)
    return pd.DataFrame({"unit": ids, "y": unit_effect + rng.normal(size=len(ids))})


def brute_force_p(data: pd.DataFrame, unit_ids, treated: np.ndarray, control: np.ndarray, observed: int) -> float:
    """Formula (5) of the cvcrand paper, gaussian, unadjusted: difference of the arms' mean cluster residuals."""
    means = (data["y"] - data["y"].mean()).groupby(data["unit"]).mean().reindex(unit_ids).to_numpy()
    u = np.array([means[t].mean() - means[c].mean() for t, c in zip(treated.astype(bool), control.astype(bool))])
    return float(np.mean(np.abs(u) >= abs(u[observed]) - 1e-12))


def test_it_is_a_declaration(design):
    assert isinstance(design, Design)
    space = design.space
    assert isinstance(space, RandomizationSpace) and len(space) >= 2
    assert space.n_units == len(design.unit_ids) and list(space.unit_ids) == list(design.unit_ids)
    assert design.arm_labels == space.arm_labels and len(space.arm_labels) >= 2
    assert type(design).__name__ in repr(design) and "RandomizationSpace" in repr(space)


def test_probabilities_match_the_space(design):
    p = design.probabilities()
    space = design.space
    assert p.shape == (space.n_units, space.n_arms) and list(p.columns) == list(space.arm_labels)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    frequencies = space.arm_counts() / len(space)
    if space.exhaustive or not isinstance(design, StratifiedDesign):
        np.testing.assert_allclose(p.to_numpy(), frequencies)
    else:  # exact probabilities of the rule against a sample of it: within 4.5 binomial SEs
        se = np.sqrt(p.to_numpy() * (1 - p.to_numpy()) / len(space))
        assert (np.abs(frequencies - p.to_numpy()) <= 4.5 * se).all()


def test_parameters_hold_every_argument_and_redeclare_the_design(design):
    params = design.get_params()
    names = [n for n in inspect.signature(type(design).__init__).parameters if n != "self"]
    assert set(params) == set(names) - set(type(design)._renamed_params)
    assert isinstance(params["seed"], int) and params["seed"] == design.seed
    again = type(design)(**params)
    assert again.space.sha256() == design.space.sha256()
    assert again.draw().space_position == design.draw().space_position
    assert design.with_params(seed=design.seed + 1).seed == design.seed + 1
    with pytest.raises(ValueError, match="no argument"):
        design.with_params(colour="blue")


def test_the_draw_is_one_type_in_the_space_and_reproducible(design):
    a = design.draw()
    assert isinstance(a, AllocationRecord) and a.seed == design.seed and a.seeded_by_design
    assert 0 <= a.space_position < len(design.space)
    np.testing.assert_array_equal(a.arm, design.space.arm_matrix(np.array([a.space_position]))[0])
    np.testing.assert_array_equal(a.arm, design.draw().arm)
    b = design.draw(seed=123)
    assert b.seed == 123 and not b.seeded_by_design
    np.testing.assert_array_equal(b.arm, design.draw(seed=123).arm)
    assert list(a.arm_label) == [design.space.arm_labels[i] for i in a.arm]
    assert a.arm_sizes().sum() == design.space.n_units


def test_the_audit_carries_every_parameter_and_the_space(design):
    a = design.draw()
    audit = a.audit()
    expected = {k for k in design.get_params() if not isinstance(design.get_params()[k], pd.DataFrame)}
    assert expected <= set(audit["parameters"]) | {"matching"}
    assert audit["draw_seed"] == a.seed and audit["chosen_space_position"] == a.space_position
    assert audit["space"]["sha256"] == design.space.sha256(design.parameters()) and audit["space"]["n_allocations"] == len(design.space)
    assert audit["allocation"] == {str(k): str(v) for k, v in zip(design.unit_ids, a.arm_label)} or \
        audit["allocation"] == {str(k): int(v) for k, v in zip(design.unit_ids, a.arm)}
    json.dumps(json_ready(audit))  # plain JSON


def test_the_permutation_test_takes_any_draw(design):
    a = design.draw()
    data = outcomes_for(design.unit_ids)
    space = design.space.arm_matrix()
    labels = list(design.space.arm_labels)
    if design.space.n_arms == 2:
        result = permutation_test(data, "y", "unit", a)
        treated, control = space == 1, space == 0
        assert result.n_schemes == len(space)
    else:
        with pytest.raises(ValueError, match="compares two groups"):
            permutation_test(data, "y", "unit", a)
        result = permutation_test(data, "y", "unit", a.two_arm(treated=[labels[1]], control=[labels[0]]))
        treated, control = space == 1, space == 0
    assert result.p_value == pytest.approx(brute_force_p(data, design.unit_ids, treated, control, a.space_position),
                                           abs=1e-12)
    # the design itself is a space too, with the allocation used given
    if design.space.n_arms == 2:
        again = permutation_test(data, "y", "unit", design, observed=a.arm)
        assert again.p_value == result.p_value


def test_every_draw_saves_its_files_and_the_saved_space_gives_the_same_test(design, tmp_path):
    """StratifiedAllocation and MatchedAllocation had no save() (the README's allocation.save("results/") raised
    AttributeError for them; only their command-line runs wrote files). Every draw saves its allocation, its space
    and its audit, refuses a second save, and the saved space gives the test the draw itself gives."""
    from crt_widgets import read_multiarm_space, read_space

    a = design.draw()
    files = a.save(tmp_path)
    assert files["audit"].name.endswith("_audit.json") and list(files)[-1] == "audit"
    audit = json.loads(files["audit"].read_text())
    assert audit["chosen_space_position"] == a.space_position and audit["space_files"]
    with pytest.raises(FileExistsError):
        a.save(tmp_path)
    if design.space.n_arms != 2 or isinstance(design, SteppedWedgeDesign):
        return
    data = outcomes_for(design.unit_ids)
    expected = permutation_test(data, "y", "unit", a).p_value
    readable = [p for kind, p in files.items() if p.name.endswith(".json.gz") or "cvcrand" in p.name]
    for path in readable:
        assert read_space(path).notes == ()
        assert permutation_test(data, "y", "unit", path).p_value == expected
    labels = list(design.space.arm_labels)
    arm_csv = [p for kind, p in files.items() if kind == "space" and p.suffix == ".csv"]
    for path in arm_csv:
        two = read_multiarm_space(path).two_arm(treated=[labels[1]], control=[labels[0]])
        assert permutation_test(data, "y", "unit", two).p_value == expected
