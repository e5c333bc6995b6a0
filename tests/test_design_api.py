"""The ConstrainedDesign declaration: cutoff, n_best, sampling, seeds, re-scoring, bad input."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from support import PAPER_CATEGORICAL, PAPER_COVARIATES

from crt_widgets import ConstrainedDesign


@pytest.fixture
def paper(dickinson):
    return ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL,
                             cluster_id="county", seed=12345)


def test_cutoff_keeps_every_score_at_or_below_the_type7_quantile(paper):
    for q in (0.05, 0.2, 0.5):
        d = paper.rescore(cutoff=q)
        cut = np.quantile(d.scores, q)
        assert len(d.space_index) == int(np.sum(d.scores <= cut * (1 + 1e-9)))
        assert d.space_scores.max() <= cut * (1 + 1e-9)
        # the reported cutoff is the largest kept score, a real scheme's score (not the interpolated quantile)
        assert d.cutoff_score == d.space_scores.max() == np.sort(d.scores)[len(d.space_index) - 1]


def test_cutoff_score_is_cvcrands_largest_kept_score(paper):
    # cvcrand (l1, q = 0.2, Dickinson): 2,574 schemes kept, cutoff reported 6.421 (the type-7 quantile is 6.425)
    d = paper.rescore(metric="l1", cutoff=0.2)
    assert len(d.space_index) == 2574
    assert round(d.cutoff_score, 3) == 6.421
    assert round(float(np.quantile(d.scores, 0.2)), 3) == 6.425


def test_cutoff_one_is_simple_randomization(paper):
    d = paper.rescore(cutoff=1)
    assert len(d.space_index) == 12870
    np.testing.assert_allclose(d.validity.table().loc["samefrac", "Mean"], 7 / 15)  # (8*7+8*7)/(16*15)


def test_n_best_keeps_exactly_the_best(paper):
    d = paper.rescore(n_best=100)
    assert len(d.space_index) == 100
    assert d.space_scores.max() <= np.sort(d.scores)[100] + 1e-12
    np.testing.assert_allclose(np.sort(d.space_scores), np.sort(d.scores)[:100])
    assert "the 100 best schemes" in d.cutoff_message


def test_same_seed_same_allocation_and_draws_are_uniform(paper):
    a, b = paper.draw(), paper.draw()
    np.testing.assert_array_equal(a.arm, b.arm)
    assert paper.draw(seed=99).seed == 99
    # uniform choice: over many seeds each scheme of a small space is equally likely
    small = paper.rescore(n_best=4)
    picks = np.array([small.draw(seed=s).space_position for s in range(4000)])
    counts = np.bincount(picks, minlength=4)
    assert np.all(np.abs(counts - 1000) < 5 * np.sqrt(4000 * 0.25 * 0.75))


def test_rescore_reuses_the_candidates_and_equals_a_fresh_design(dickinson, paper):
    paper.scores
    r = paper.rescore(weights=[2, 1, 1, 0.5, 1], metric="l1", cutoff=0.2)
    assert r.candidates is paper.candidates
    fresh = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                              weights=[2, 1, 1, 0.5, 1], metric="l1", cutoff=0.2, seed=12345)
    np.testing.assert_allclose(r.scores, fresh.scores)
    np.testing.assert_array_equal(r.draw().arm, fresh.draw().arm)
    with pytest.raises(ValueError, match="rebuilding"):
        paper.rescore(n_treat=7)


def test_probabilities_are_column_means_of_the_space(paper):
    p = paper.probabilities()
    np.testing.assert_allclose(p["1"].to_numpy(), paper.permutation_matrix().mean(axis=0))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p.index.tolist() == list(range(1, 17)) and p.columns.tolist() == ["0", "1"]


def test_n_schemes_is_the_former_name_of_n_best(dickinson):
    with pytest.warns(DeprecationWarning, match="renamed n_best"):
        old = ConstrainedDesign(dickinson, ["inciis"], 8, n_schemes=100, seed=1)
    assert old.n_best == 100 and "n_schemes" not in old.get_params()
    np.testing.assert_array_equal(old.space_index, ConstrainedDesign(dickinson, ["inciis"], 8, n_best=100, seed=1).space_index)


def test_unequal_arms(dickinson):
    d = ConstrainedDesign(dickinson, PAPER_COVARIATES, 5, categorical=PAPER_CATEGORICAL, cluster_id="county", seed=1)
    assert len(d.scores) == 4368  # C(16, 5)
    assert d.draw().arm.sum() == 5
    assert "assign 5 clusters to treatment and 11 to control" in d.assignment_message
    # with unequal arms the expected same-arm fraction is (5*4 + 11*10) / (16*15)
    assert d.validity.expected_fraction == pytest.approx(130 / 240)


def test_sampling_when_the_space_exceeds_size(dickinson):
    d = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                          size=5000, seed=4)
    assert not d.enumerated
    assert len(d.scores) == 5000 - d.candidates.n_duplicates
    assert d.candidates.n_duplicates > 0  # 5,000 draws from 12,870 schemes repeat some
    assert "5,000 were drawn at random" in d.scheme_message
    again = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                              size=5000, seed=4)
    np.testing.assert_array_equal(d.candidates.schemes.packed, again.candidates.schemes.packed)
    forced = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                               size=5000, enumerate=True)
    assert len(forced.scores) == 12870


def test_seed_none_records_fresh_entropy(dickinson):
    d = ConstrainedDesign(dickinson, ["inciis"], 8)
    assert isinstance(d.seed, int)
    np.testing.assert_array_equal(d.draw().arm, ConstrainedDesign(dickinson, ["inciis"], 8, seed=d.seed).draw().arm)


def test_small_space_and_validity_diagnostics(dickinson):
    d = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, n_best=6)
    assert any("permutation test" in m for m in d.diagnostics)
    assert d.validity.always_together or d.validity.often_together


@pytest.mark.parametrize("kwargs,match", [
    ({"cutoff": 0}, "cutoff"), ({"cutoff": 1.5}, "cutoff"), ({"cutoff": -0.1}, "cutoff"),
    ({"n_best": 1}, "n_best"), ({"n_treat": 0}, "n_treat"), ({"n_treat": 16}, "n_treat"),
    ({"n_treat": 2.5}, "n_treat"), ({"metric": "l3"}, "metric"), ({"weights": [1, 2]}, "weights"),
    ({"weights": [1, 1, 1, -1, 1]}, "weights"), ({"weights": {"nope": 1}}, "weights"),
    ({"constraints": ["s5", "any"]}, "constraints"), ({"constraints": ["s5", "x", "any", "any", "any"]}, "malformed"),
    ({"stratify": "nope"}, "stratify"), ({"size": 1}, "size"), ({"covariates": ["nope"]}, "not in the data"),
    ({"covariates": []}, "at least one"), ({"cluster_id": "nope"}, "cluster_id"),
    ({"categorical": ["income"]}, "categorical"), ({"covariates": ["location"], "categorical": []}, "not numeric"),
    ({"samearmhi": 0.2}, "samearm"),
])
def test_bad_input_is_a_clear_error(dickinson, kwargs, match):
    args = dict(covariates=PAPER_COVARIATES, n_treat=8, categorical=PAPER_CATEGORICAL, cluster_id="county")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ConstrainedDesign(dickinson, **args)


def test_spaces_too_large_to_hold_are_refused_before_any_memory_is_used():
    """80 clusters, 40 treated: C(80, 40) ~ 1.1e23 schemes; listing them would exhaust any machine."""
    big = pd.DataFrame({"x": np.arange(80.0)})
    with pytest.raises(ValueError, match=r"enumerate: there are 107,507,208,733,336,176,461,620 possible schemes"):
        ConstrainedDesign(big, ["x"], 40, enumerate=True)
    with pytest.raises(ValueError, match="size: at most 500,000,000 sampled"):
        ConstrainedDesign(big, ["x"], 40, size=10**9)
    # a large size is also the enumeration threshold: a small space under it is simply enumerated
    assert ConstrainedDesign(big.head(12), ["x"], 6, size=10**9).enumerated
    assert len(ConstrainedDesign(big, ["x"], 40, size=1_000, seed=1).scores) == 1_000  # sampling still works


def test_n_best_not_below_the_space_size_is_an_error(dickinson):
    with pytest.raises(ValueError, match="n_best: 12,870 is not smaller than the 12,870 candidate schemes"):
        ConstrainedDesign(dickinson, ["inciis"], 8, n_best=12870)  # at the boundary: the count is known
    # sampling 200 of the 252 schemes of 10 clusters leaves fewer after duplicates go: known only then
    ten = dickinson.head(10)
    d = ConstrainedDesign(ten, ["inciis"], 5, cluster_id="county", enumerate=False, size=200, n_best=199, seed=1)
    assert len(d.candidates) < 199
    with pytest.raises(ValueError, match=f"n_best: 199 is not smaller than the {len(d.candidates)} candidate"):
        d.space


def test_bad_data_is_a_clear_error(dickinson):
    d = dickinson.copy()
    d.loc[3, "inciis"] = np.nan
    with pytest.raises(ValueError, match="inciis.*missing"):
        ConstrainedDesign(d, ["inciis"], 8)
    d = dickinson.copy()
    d.loc[3, "county"] = 1
    with pytest.raises(ValueError, match="duplicate cluster ids"):
        ConstrainedDesign(d, ["inciis"], 8, cluster_id="county")
    with pytest.raises(ValueError, match="at least 2 clusters"):
        ConstrainedDesign(dickinson.head(1), ["inciis"], 1)
    with pytest.raises(ValueError, match="DataFrame"):
        ConstrainedDesign(dickinson.to_numpy(), ["inciis"], 8)
    with pytest.raises(ValueError, match="none of the covariates varies"), \
            pytest.warns(UserWarning, match="no variation in k: dropped from the balance score"):
        ConstrainedDesign(dickinson.assign(k=1.0), ["k"], 8)


def test_cvcrand_style_warnings(dickinson):
    with pytest.warns(UserWarning, match="communityhealthcenters.*distinct values"):
        ConstrainedDesign(dickinson.assign(communityhealthcenters=dickinson.index % 3), ["communityhealthcenters"], 8)
    with pytest.warns(UserWarning, match="no variation in flat"):
        d = ConstrainedDesign(dickinson.assign(flat=5.0), ["inciis", "flat"], 8)
    assert d.covariate_matrix.columns == ("inciis",)


def test_reference_level_rule(dickinson):
    d = dickinson.copy()
    d["incomecat"] = pd.Categorical(d["incomecat"], categories=["Med", "Low", "High"])
    design = ConstrainedDesign(d, ["incomecat"], 8, categorical=["incomecat"])
    assert design.covariate_matrix.columns == ("incomecat=Low", "incomecat=High")
    plain = ConstrainedDesign(dickinson, ["incomecat"], 8, categorical=["incomecat"])
    assert plain.covariate_matrix.columns == ("incomecat=Low", "incomecat=Med")  # "High" first in sorted order


def test_allocation_outputs_and_audit(paper, tmp_path):
    a = paper.draw()
    assert list(a.allocation.columns) == ["county", "arm"]
    assert list(a.data_cr.columns[:2]) == ["arm", "county"]
    audit = a.audit()
    assert audit["parameters"]["seed"] == 12345 and audit["n_constrained"] == 1288
    assert len(audit["data_sha256"]) == 64
    files = a.save(tmp_path)
    assert pd.read_csv(files["allocation"])["arm"].tolist() == a.arm.tolist()
    from crt_widgets import read_space

    back = read_space(files["space_json"])
    np.testing.assert_array_equal(back.chosen_scheme, a.arm)
    assert back.metadata["parameters"]["cutoff"] == 0.1
    np.testing.assert_allclose(back.scores, paper.space_scores, rtol=1e-11)
    assert back.cluster_ids.tolist() == list(range(1, 17))
    csv_back = read_space(files["space_cvcrand"])
    np.testing.assert_array_equal(csv_back.schemes.packed, paper.space.schemes.packed)
    assert "score=" in repr(a) and "ConstrainedDesign(" in repr(paper)
