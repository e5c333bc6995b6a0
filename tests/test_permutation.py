"""The clustered permutation test: cptest parity, brute force, cluster matching, CI, bad input."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from crt_widgets import ConstrainedDesign, permutation_test
from crt_widgets.core.permutation.test import prepare_data, prepare_test, resolve_space, simple_space, smallest_p_value
from crt_widgets.core.permutation.interval import Inverter
from crt_widgets.core.spaces.schemes import SchemeSet, enumerate_schemes
from crt_widgets.core.io.spacefiles import read_space, write_space_json
from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome

ADJUST = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]


@pytest.fixture(scope="module")
def outcomes():
    return load_dickinson_outcome()


def _brute_force(data, outcome, cluster, covs, family, matrix, observed):
    """Residuals from statsmodels' GLM, then U for each scheme by a loop, cptest's recipe literally."""
    x = sm.add_constant(data[covs].astype(float)) if covs else np.ones((len(data), 1))
    fam = {"gaussian": sm.families.Gaussian(), "binomial": sm.families.Binomial(), "poisson": sm.families.Poisson()}[family]
    r = data[outcome] - sm.GLM(data[outcome], x, family=fam).fit().fittedvalues
    means = r.groupby(data[cluster]).mean().to_numpy()
    u = np.array([means[row == 1].mean() - means[row == 0].mean() for row in matrix])
    return u, np.mean(np.abs(u) >= abs(u[observed]) - 1e-12)


@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson"])
@pytest.mark.parametrize("n_treat", [4, 3])
def test_equals_brute_force(family, n_treat):
    rng = np.random.default_rng(5)
    n_clusters, m = 9, 25
    cl = np.repeat(np.arange(n_clusters), m)
    z = rng.normal(size=n_clusters * m)
    eta = 0.2 * z + rng.normal(0, 0.3, n_clusters)[cl]
    y = {"gaussian": eta + rng.normal(size=len(cl)), "binomial": (rng.random(len(cl)) < 1 / (1 + np.exp(-eta))) * 1.0,
         "poisson": rng.poisson(np.exp(eta)) * 1.0}[family]
    data = pd.DataFrame({"y": y, "cl": cl, "z": z})
    schemes = enumerate_schemes(n_clusters, n_treat)
    result = permutation_test(data, "y", "cl", schemes, ["z"], family=family, cluster_ids=np.arange(n_clusters), observed=17)
    u, p = _brute_force(data, "y", "cl", ["z"], family, schemes.matrix(), 17)
    np.testing.assert_allclose(result.distribution, u, atol=1e-9)
    assert result.p_value == pytest.approx(p)
    assert result.p_values["greater"] == pytest.approx(np.mean(u >= u[17] - 1e-12))
    assert ("unequal arms" in " ".join(result.notes)) == (n_treat != n_clusters - n_treat)


def test_equal_arms_equal_cptests_plus_minus_one_coding(outcomes):
    """cptest scores a scheme by sum(W* r) with W* = +1/-1; with equal arms that is U times n/2."""
    r = permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), ADJUST,
                         ["location", "incomecat"], "binomial")
    m = read_space(dickinson_cvcrand_space_path()).schemes.matrix().astype(float)
    means = None
    coded = 2 * m - 1
    # recover cluster means from two schemes' statistics is awkward; recompute them directly
    x = sm.add_constant(pd.get_dummies(outcomes[ADJUST], columns=["location", "incomecat"], drop_first=True).astype(float))
    res = outcomes["outcome"] - sm.GLM(outcomes["outcome"], x, family=sm.families.Binomial()).fit().fittedvalues
    means = res.groupby(outcomes["county"]).mean().to_numpy()
    plus_minus = coded @ means
    np.testing.assert_allclose(plus_minus, r.distribution * 8, atol=1e-9)


def test_clusters_are_matched_by_id_not_position(outcomes, tmp_path):
    base = permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), family="binomial")
    saved = read_space(dickinson_cvcrand_space_path())
    # the same space with its columns in another order and labelled: same p-value
    order = np.random.default_rng(1).permutation(16)
    m = saved.schemes.matrix()[:, order]
    path = write_space_json(tmp_path / "space.json", SchemeSet.from_matrix(m), saved.chosen, np.arange(1, 17)[order])
    shuffled = outcomes.sample(frac=1, random_state=3)
    again = permutation_test(shuffled, "outcome", "county", path, family="binomial")
    assert again.p_value == pytest.approx(base.p_value)
    # string ids in the data and numbers in the file still match
    text = shuffled.assign(county=shuffled["county"].astype(str))
    assert permutation_test(text, "outcome", "county", path, family="binomial").p_value == pytest.approx(base.p_value)


def test_space_from_a_design_and_its_allocation(outcomes):
    from crt_widgets.datasets import load_dickinson

    design = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county", seed=3)
    allocation = design.draw()
    r1 = permutation_test(outcomes, "outcome", "county", allocation, family="binomial")
    r2 = permutation_test(outcomes, "outcome", "county", design, family="binomial",
                          observed=dict(zip(design.cluster_ids, allocation.arm)))
    assert r1.n_schemes == len(design.space_index) and r1.p_value == r2.p_value


def test_simple_space_enumerates_or_samples_with_the_observed_scheme():
    ids = np.arange(12)
    arm = np.array([1] * 6 + [0] * 6)
    s = simple_space(ids, 6, arm)
    assert len(s.schemes) == 924 and s.observed_arm.tolist() == arm.tolist()
    big = simple_space(np.arange(30), 15, np.r_[np.ones(15), np.zeros(15)].astype(int), size=2000, seed=1)
    assert len(big.schemes) == 2000 and big.observed == 0 and "seed 1" in big.note
    again = simple_space(np.arange(30), 15, np.r_[np.ones(15), np.zeros(15)].astype(int), size=2000, seed=1)
    np.testing.assert_array_equal(again.schemes.packed, big.schemes.packed)


def test_sampled_simple_space_reports_its_seed():
    rng = np.random.default_rng(4)
    data = pd.DataFrame({"y": rng.normal(size=300), "cl": np.repeat(np.arange(30), 10)})
    arms = dict(enumerate(rng.permutation(np.r_[np.ones(15), np.zeros(15)]).astype(int)))
    r = permutation_test(data, "y", "cl", "simple", observed=arms, simple_size=5000)
    seed = int(r.notes[0].rsplit("seed ", 1)[1].rstrip(")"))
    again = permutation_test(data, "y", "cl", "simple", observed=arms, simple_size=5000, seed=seed)
    # 4,999 sampled schemes and the observed one, duplicates removed (a repeat among C(30, 15) draws is rare, not impossible)
    assert 4_990 <= r.n_schemes <= 5000 and again.n_schemes == r.n_schemes and again.p_value == r.p_value
    np.testing.assert_array_equal(again.distribution, r.distribution)
    with pytest.raises(ValueError, match="simple_size"):
        permutation_test(data, "y", "cl", "simple", observed=arms, simple_size=1)


def test_confidence_interval_inverts_the_test(outcomes):
    r = permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), ADJUST,
                         ["location", "incomecat"], "binomial", ci=True)
    lo, hi = r.conf_int
    assert lo < r.estimate < hi
    space = resolve_space(dickinson_cvcrand_space_path(), data_clusters=outcomes["county"].to_numpy())
    inv = Inverter(prepare_data(outcomes, "outcome", "county", space, ADJUST, ["location", "incomecat"], "binomial"), space)
    assert inv.p_value(lo + 1e-3) >= 0.05 > inv.p_value(lo - 1e-3)
    assert inv.p_value(hi - 1e-3) >= 0.05 > inv.p_value(hi + 1e-3)
    assert abs(inv.observed(r.estimate)) < 1e-9
    assert r.p_value < 0.05 and lo > 0  # consistent with the test


def test_small_space_gives_an_unbounded_interval():
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"y": rng.normal(size=40), "cl": np.repeat(np.arange(4), 10)})
    r = permutation_test(data, "y", "cl", enumerate_schemes(4, 2), cluster_ids=np.arange(4), observed=0, ci=True)
    assert np.isinf(r.conf_int[0]) and np.isinf(r.conf_int[1])
    assert any("too small" in n for n in r.notes)


@pytest.mark.parametrize("mutate,family,match", [
    (lambda d: d.assign(outcome=d["outcome"] * 2), "binomial", "0 or 1"),
    (lambda d: d.assign(outcome=-d["outcome"]), "poisson", "non-negative whole"),
    (lambda d: d.assign(outcome=d["outcome"] + 0.5), "poisson", "non-negative whole"),
    (lambda d: d.assign(outcome="x"), "gaussian", "numeric"),
    (lambda d: d[d["county"] != 3], "binomial", "no individuals.*: 3"),
    (lambda d: d.assign(county=d["county"].replace(16, 99)), "binomial", "not in the space: 99"),
    (lambda d: d, "ordinal", "family"),
])
def test_bad_input(outcomes, mutate, family, match, tmp_path):
    saved = read_space(dickinson_cvcrand_space_path())
    labelled = write_space_json(tmp_path / "s.json", saved.schemes, saved.chosen, np.arange(1, 17))
    with pytest.raises(ValueError, match=match):
        permutation_test(mutate(outcomes), "outcome", "county", labelled, family=family)


def test_unlabelled_cvcrand_space_needs_every_cluster(outcomes):
    with pytest.raises(ValueError, match="16 cluster columns but the data have 15"):
        permutation_test(outcomes[outcomes["county"] != 3], "outcome", "county", dickinson_cvcrand_space_path(),
                         family="binomial")


def test_missing_outcomes_are_dropped_and_counted(outcomes):
    d = outcomes.copy()
    d.loc[:9, "outcome"] = np.nan
    r = permutation_test(d, "outcome", "county", dickinson_cvcrand_space_path(), family="binomial")
    assert r.n_dropped == 10 and r.n_individuals == len(d) - 10
    assert "10 row(s) with missing values were dropped" in r.notes


def test_bad_space_files(outcomes, tmp_path):
    p = tmp_path / "wrong.csv"
    p.write_text('"SchemeChosen","","",""\n1,1,0,1\n0,0,1,0\n')
    with pytest.raises(ValueError, match="3 cluster columns but the data have 16"):
        permutation_test(outcomes, "outcome", "county", p, family="binomial")
    q = tmp_path / "unchosen.csv"
    q.write_text('"SchemeChosen","",""\n0,1,0\n0,0,1\n')
    with pytest.raises(ValueError, match="no scheme is marked"):
        permutation_test(outcomes, "outcome", "county", q, family="binomial")
    with pytest.raises(ValueError, match="space"):
        permutation_test(outcomes, "outcome", "county", 42, family="binomial")


def test_single_column_names_and_bad_observed(outcomes):
    by_string = permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), "location",
                                 "location", "binomial")
    by_list = permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), ["location"],
                               ["location"], "binomial")
    assert by_string.p_value == by_list.p_value
    ids = np.arange(1, 17)
    arms = dict(zip(ids, read_space(dickinson_cvcrand_space_path()).chosen_scheme))
    with pytest.raises(ValueError, match="no arm given for cluster.*16"):
        permutation_test(outcomes, "outcome", "county", "simple", family="binomial",
                         observed={k: v for k, v in arms.items() if k != 16})
    # arms keyed by text match numeric cluster ids
    text_keys = permutation_test(outcomes, "outcome", "county", enumerate_schemes(16, 8), family="binomial",
                                 cluster_ids=ids, observed={str(k): v for k, v in arms.items()})
    assert text_keys.observed_scheme.tolist() == list(arms.values())
    with pytest.raises(ValueError, match="listed twice"):
        permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), ["inciis", "inciis"])
    with pytest.raises(ValueError, match="not in the randomization space"):
        permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), observed=np.ones(16))


def test_schemes_need_both_arms():
    data = pd.DataFrame({"y": np.arange(30.0), "cl": np.repeat(np.arange(3), 10)})
    with pytest.raises(ValueError, match="no treated or no control"):
        permutation_test(data, "y", "cl", np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1]]), cluster_ids=[0, 1, 2],
                         observed=0)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_small_space_interval_needs_no_search(family, recwarn):
    rng = np.random.default_rng(2)
    y = (rng.random(60) < 0.4) * 1 if family == "binomial" else rng.poisson(2, 60)
    data = pd.DataFrame({"y": y, "cl": np.repeat(np.arange(6), 10), "x": rng.normal(size=60)})
    r = permutation_test(data, "y", "cl", enumerate_schemes(6, 3), ["x"], family=family, cluster_ids=np.arange(6),
                         observed=0, ci=True)
    assert r.conf_int == (-np.inf, np.inf) and "smallest p-value is 0.1" in r.notes[0]
    assert not [w for w in recwarn if "overflow" in str(w.message) or "converge" in str(w.message)]


def test_smallest_p_value_counts_the_mirror_scheme():
    equal = resolve_space(enumerate_schemes(6, 3), cluster_ids=np.arange(6), observed=0)
    unequal = resolve_space(enumerate_schemes(6, 2), cluster_ids=np.arange(6), observed=0)
    assert smallest_p_value(equal) == 2 / 20 and smallest_p_value(unequal) == 1 / 15


def test_all_events_in_one_arm_gives_a_one_sided_interval():
    """Every treated individual has the event: the estimate is +inf, the lower limit is finite."""
    rng = np.random.default_rng(2)
    arm = np.array([1] * 6 + [0] * 6)
    cl = np.repeat(np.arange(12), 20)
    data = pd.DataFrame({"y": np.where(arm[cl] == 1, 1, (rng.random(240) < 0.5) * 1), "cl": cl})
    r = permutation_test(data, "y", "cl", enumerate_schemes(12, 6), family="binomial", cluster_ids=np.arange(12),
                         observed=arm, ci=True)
    assert r.estimate == np.inf and r.conf_int[1] == np.inf and 0 < r.conf_int[0] < 30
    inv = Inverter(*reversed(prepare_test(data, "y", "cl", enumerate_schemes(12, 6), family="binomial",
                                           cluster_ids=np.arange(12), observed=arm)))
    lo = r.conf_int[0]
    assert inv.p_value(lo + 1e-6) >= 0.05 > inv.p_value(lo - 1e-6)
    assert any("infinite" in n for n in r.notes)


def test_irls_recovers_from_a_bad_start():
    from crt_widgets.core.models.residuals import fit_glm

    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(200), rng.normal(size=200)])
    y = (rng.random(200) < 1 / (1 + np.exp(-0.5 * x[:, 1]))) * 1.0
    good = fit_glm(x, y, "binomial")
    from_far = fit_glm(x, y, "binomial", start=np.array([40.0, -25.0]))
    np.testing.assert_allclose(from_far.coef, good.coef, atol=1e-8)
    statsmodels_fit = sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-12)
    np.testing.assert_allclose(good.coef, statsmodels_fit.params, atol=1e-8)


def test_point_estimate_is_the_glm_effect_with_equal_clusters_and_arms(outcomes):
    """U(delta) = 0 is then the GLM's score equation for the treatment: the estimate is its coefficient."""
    arm = read_space(dickinson_cvcrand_space_path()).chosen_scheme
    z = pd.get_dummies(outcomes[ADJUST], columns=["location", "incomecat"], drop_first=True).astype(float)
    z.insert(0, "treat", arm[outcomes["county"] - 1])
    fit = sm.GLM(outcomes["outcome"], sm.add_constant(z), family=sm.families.Binomial()).fit(tol=1e-13)
    r = permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), ADJUST,
                         ["location", "incomecat"], "binomial", ci=True)
    assert r.estimate == pytest.approx(fit.params["treat"], abs=1e-8)  # 0.42003795
    assert (round(r.conf_int[0], 3), round(r.conf_int[1], 3)) == (0.018, 0.817)
    rng = np.random.default_rng(6)
    counts = outcomes.assign(n=rng.poisson(np.exp(0.3 * z["treat"] + 0.01 * outcomes["hispanic"])))
    fit = sm.GLM(counts["n"], sm.add_constant(z[["treat", "hispanic"]]), family=sm.families.Poisson()).fit(tol=1e-13)
    r = permutation_test(counts, "n", "county", dickinson_cvcrand_space_path(), "hispanic", family="poisson", ci=True)
    assert r.estimate == pytest.approx(fit.params["treat"], abs=1e-8)
    # a cluster-level outcome equal on average in the two arms: the estimate is exactly 0, not a run-away
    same = outcomes.assign(n=outcomes["inciis"] // 10)
    r = permutation_test(same, "n", "county", dickinson_cvcrand_space_path(), family="poisson", ci=True)
    assert r.estimate == 0.0 and r.conf_int[0] < 0 < r.conf_int[1]


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_histogram_counts_every_scheme_and_its_extreme_part_is_the_p_value(outcomes, alternative):
    from crt_widgets.widgets.charts import permutation_histogram

    r = permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), ADJUST,
                         ["location", "incomecat"], "binomial", alternative=alternative)
    h = r.histogram(bins=30)
    assert len(h) == 30 and h.total.sum() == r.n_schemes == 1287
    assert h.extreme.sum() == round(r.p_value * r.n_schemes)  # 54 two-sided, as cptest
    assert (h.extreme <= h.total).all() and h.left.iloc[0] == r.distribution.min()
    spec = permutation_histogram(r, bins=30).to_dict()
    rule = next(rows for rows in spec["datasets"].values() if rows[0].get("what") == "observed")
    assert rule[0]["value"] == pytest.approx(r.statistic)
    if alternative == "two-sided":
        assert h.extreme.sum() == 54


def test_multiarm_allocation_of_two_arms_is_a_space_and_more_arms_a_message(outcomes, tmp_path):
    from crt_widgets import MultiArmDesign
    from crt_widgets.datasets import load_dickinson

    counties = load_dickinson()
    design = MultiArmDesign(counties, ["inciis", "hispanic"], n_arms=2, cluster_id="county", size=2000, seed=1)
    allocation = design.draw()
    result = permutation_test(outcomes, "outcome", "county", allocation, family="gaussian")
    # formula (5) by hand over the design's own space, the second arm as treatment
    means = (outcomes["outcome"] - outcomes["outcome"].mean()).groupby(outcomes["county"]).mean()
    means = means.reindex(design.cluster_ids).to_numpy()
    arms = design.space.arm_matrix()
    u = np.array([means[row == 1].mean() - means[row == 0].mean() for row in arms])
    observed = u[allocation.space_position]
    assert len(arms) > 100 and result.n_schemes == len(arms)
    assert result.statistic == pytest.approx(observed, abs=1e-12)
    assert result.p_value == pytest.approx(np.mean(np.abs(u) >= abs(observed) - 1e-12))

    three = MultiArmDesign(counties, ["inciis"], n_arms=3, cluster_id="county", size=2000, seed=1).draw()
    with pytest.raises(ValueError, match="has 3 arms; the permutation test compares two groups"):
        permutation_test(outcomes, "outcome", "county", three, family="binomial")
    saved = three.save(tmp_path)["space"]
    with pytest.raises(ValueError, match="a multi-arm space"):
        permutation_test(outcomes, "outcome", "county", saved, family="binomial")


def test_unlabelled_space_with_text_ids_out_of_natural_order_is_noted(outcomes):
    """cvcrand's CSV maps columns to the sorted ids; "C10" sorts before "C2", which a design listing C1..C16
    would not match: the result says so. Natural-order ids (numbers) get no note."""
    labelled = outcomes.assign(county="C" + outcomes["county"].astype(str))
    result = permutation_test(labelled, "outcome", "county", dickinson_cvcrand_space_path(), family="binomial")
    assert any("sorted text order (C1, C10, C11, C12, ...)" in n for n in result.notes)
    plain = permutation_test(outcomes, "outcome", "county", dickinson_cvcrand_space_path(), family="binomial")
    assert not any("sorted text order" in n for n in plain.notes)


def test_an_observed_allocation_that_contradicts_the_space_file_is_refused(outcomes, tmp_path):
    """A space file marks the allocation used; an ``observed`` that names another replaced it without a word, so
    the test ran on an allocation the file says was not used (the CLI's --treatment with a saved space was worse:
    ignored). Both are refused unless they agree."""
    from crt_widgets.datasets import load_dickinson

    design = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county", seed=3)
    allocation = design.draw()
    files = allocation.save(tmp_path)
    used = dict(zip(design.cluster_ids, allocation.arm))
    same = permutation_test(outcomes, "outcome", "county", files["space_json"], family="binomial", observed=used)
    assert same.p_value == permutation_test(outcomes, "outcome", "county", allocation, family="binomial").p_value
    other = design.space.arm_matrix()[(allocation.space_position + 1) % len(design.space)]
    with pytest.raises(ValueError, match="observed: the allocation given is not the one the space marks as used"):
        permutation_test(outcomes, "outcome", "county", files["space_json"], family="binomial",
                         observed=dict(zip(design.cluster_ids, other)))
    with pytest.raises(ValueError, match="observed: the allocation given is not the one the space marks as used"):
        permutation_test(outcomes, "outcome", "county", allocation, family="binomial",
                         observed=dict(zip(design.cluster_ids, other)))


def test_summary_counts_the_extreme_schemes_by_brute_force(outcomes):
    """The summary's exact count is the number of schemes with |U_s| >= |U| (cptest's p-value numerator),
    found here by a loop over the space; Dickinson's binomial test gives 54 of 1,287 (p 0.0420)."""
    space = read_space(dickinson_cvcrand_space_path())
    result = permutation_test(outcomes, "outcome", "county", space, covariates=ADJUST,
                              categorical=["location", "incomecat"], family="binomial")
    loop = sum(abs(u) >= abs(result.statistic) - 1e-12 for u in result.distribution)
    assert result.n_extreme == loop == 54
    text = result.summary()
    assert "0.0420 (54 of 1,287 schemes at least as extreme)" in text
    assert "16 (8 treated, 8 control)" in text and "greater:" in text and "less:" in text
