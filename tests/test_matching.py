"""Matching: optimality by brute force, odd counts, parity with the chapter's greedy code, groups,
the within-pair randomization space, bad input."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import distance_matrix as scipy_distance_matrix

from crt_widgets.core.randomization.matching import (MatchedDesign, compare_matchings, greedy_match, match_clusters,
                                       optimal_match, scaled_covariates)


def random_clusters(n, seed, p=3):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n, p)) * [1.0, 10.0, 0.1][:p], columns=["u", "v", "w"][:p])
    data.insert(0, "center_ID", np.arange(101, 101 + n))
    return data


def all_pairings(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for k, partner in enumerate(rest):
        for tail in all_pairings(rest[:k] + rest[k + 1:]):
            yield [(first, partner)] + tail


def brute_force_best(d):
    n = len(d)
    best = np.inf
    drop_options = [None] if n % 2 == 0 else list(range(n))
    for drop in drop_options:
        items = [i for i in range(n) if i != drop]
        for pairing in all_pairings(items):
            best = min(best, sum(d[a, b] for a, b in pairing))
    return best


def chapter_pair_fun(x, center_ID, K=2):
    """The chapter's pair_fun, verbatim apart from taking the scaled matrix directly."""
    match_len = K - 1
    match_idx = match_len - 1
    N = len(x)
    d_mat = scipy_distance_matrix(x, x)
    np.fill_diagonal(d_mat, N + 1)
    available = [i for i in range(N)]
    available_temp = available.copy()
    matches_lst = []
    lim = int(N / match_len)
    closest = np.argpartition(d_mat, kth=match_idx, axis=1)
    for n in available:
        if len(matches_lst) == lim:
            break
        if n in available_temp:
            for match_lim in range(match_idx, N - 1):
                possible_matches = closest[n, :match_lim].tolist()
                matches = list(set(available_temp) & set(possible_matches))
                if len(matches) == match_len:
                    matches.append(n)
                    matches_lst.append(matches)
                    available_temp = [m for m in available_temp if m not in matches]
                    break
                else:
                    closest[n, :] = np.argpartition(d_mat[n, :], kth=match_lim)
    return [sorted(center_ID[k] for k in m) for m in matches_lst]


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8, 9])
def test_optimal_matching_is_optimal_by_brute_force(n):
    strictly_better = 0
    for seed in range(6):
        data = random_clusters(n, seed)
        opt = optimal_match(data, ["u", "v", "w"], cluster_id="center_ID")
        greedy = greedy_match(data, ["u", "v", "w"], cluster_id="center_ID")
        assert opt.total_distance == pytest.approx(brute_force_best(opt.distances), rel=1e-9, abs=1e-12)
        assert greedy.total_distance >= opt.total_distance - 1e-12
        strictly_better += greedy.total_distance > opt.total_distance + 1e-9
        assert len(opt.group_index) == n // 2 and len(opt.unmatched) == n % 2
        covered = sorted(i for g in opt.group_index for i in g) + list(opt.unmatched_index)
        assert sorted(covered) == list(range(n))
    if n >= 6:
        assert strictly_better >= 1  # the optimiser gains over greedy on some of these data sets


def test_odd_count_leaves_out_the_cluster_that_minimises_the_total():
    data = pd.DataFrame({"id": list("abcde"), "x": [0.0, 0.05, 0.5, 0.52, 0.75]})
    m = optimal_match(data, ["x"], cluster_id="id")
    assert m.groups == [("a", "b"), ("c", "d")] and m.unmatched == ["e"]
    assert m.total_distance == pytest.approx((0.05 + 0.02) / 0.75)
    assert "unmatched=['e']" in repr(m)
    table = m.table()
    assert table.group.isna().sum() == 1 and table.loc[4, "cluster"] == "e"


def test_greedy_matches_the_chapter_code():
    compared = 0
    for seed in range(40):
        data = random_clusters(10, seed)
        x = scaled_covariates(data, ["u", "v", "w"])
        ref = chapter_pair_fun(x, data.center_ID.to_numpy())
        if len(ref) < 5:
            continue  # the chapter's loop missed a farthest-only partner (see the module docstring)
        ours = greedy_match(data, ["u", "v", "w"], cluster_id="center_ID")
        assert sorted(map(list, ours.groups)) == sorted(ref)
        compared += 1
    assert compared >= 30


def test_scaling_and_default_columns():
    data = random_clusters(6, 1)
    data["const"] = 3.0
    x = scaled_covariates(data)  # float columns, like the chapter (center_ID is int)
    assert x.shape == (6, 4)
    assert x[:, :3].min(axis=0).tolist() == [0, 0, 0] and x[:, :3].max(axis=0).tolist() == [1, 1, 1]
    assert (x[:, 3] == 0).all()


def test_greedy_groups_of_three():
    data = random_clusters(11, 3)
    m = greedy_match(data, ["u", "v", "w"], group_size=3, cluster_id="center_ID")
    assert len(m.group_index) == 3 and len(m.unmatched_index) == 2
    d = m.distances
    available = set(range(11))
    for g in m.group_index:
        first = min(available)  # each set starts at the first available cluster, in data order
        assert first in g
        others = sorted(available - {first}, key=lambda j: d[first, j])
        assert set(g) == {first, *others[:2]}
        available -= set(g)
    assert m.total_distance == pytest.approx(sum(d[a, b] for g in m.group_index for a, b in itertools.combinations(g, 2)))


def test_compare_matchings_table():
    table = compare_matchings(random_clusters(9, 2), ["u", "v"])
    assert list(table.index) == ["greedy", "optimal"]
    assert table.loc["optimal", "total_distance"] <= table.loc["greedy", "total_distance"]
    assert table.loc["optimal", "pairs"] == 4 and table.loc["optimal", "unmatched"] != ""


def test_pair_design_space_enumerated():
    m = optimal_match(random_clusters(11, 4), ["u", "v", "w"], cluster_id="center_ID")
    design = MatchedDesign(m, seed=3)
    space = design.permutation_matrix()
    assert design.enumerated and design.n_possible == 2 ** 6 and space.shape == (64, 11)
    assert len(np.unique(space, axis=0)) == 64
    for a, b in m.group_index:
        assert (space[:, a] + space[:, b] == 1).all()  # one cluster of each pair per arm
    np.testing.assert_allclose(design.probabilities().to_numpy(), 0.5)
    v = design.validity
    assert set(v.never_together) == {tuple(p) for p in m.groups}
    # any two clusters of different pairs share an arm in exactly half of the schemes
    (a, b), (c, _) = m.group_index[:2]
    assert v.same_counts[a, c] == 32
    alloc = design.draw()
    np.testing.assert_array_equal(alloc.arm, MatchedDesign(m, seed=3).draw().arm)
    assert list(alloc.allocation.columns) == ["cluster", "group", "arm", "arm_label"]


def test_pair_design_space_sampled_when_large():
    m = optimal_match(random_clusters(40, 5), ["u", "v"])
    design = MatchedDesign(m, max_enumerate=1000, size=5000, seed=1)
    assert not design.enumerated and design.n_possible == 2 ** 20
    space = design.space.arm_matrix()
    assert len(np.unique(space, axis=0)) == len(space) > 4900
    for a, b in m.group_index:
        assert (space[:, a] != space[:, b]).all()
    p = space.mean(axis=0)
    assert np.abs(p - 0.5).max() < 5 * np.sqrt(0.25 / len(space))


def test_groups_with_more_arms():
    m = greedy_match(random_clusters(9, 6), ["u", "v", "w"], group_size=3)
    design = MatchedDesign(m, n_arms=3, seed=2)
    assert design.n_possible == 6 ** 3
    for g in m.group_index:
        assert (np.sort(design.space.arm_matrix()[:, list(g)], axis=1) == [0, 1, 2]).all()
    two = MatchedDesign(greedy_match(random_clusters(8, 1), ["u"], group_size=4), n_arms=2)
    assert two.n_possible == 36  # C(4, 2) arrangements per group of 4
    assert design.permutation_matrix().max() == 2  # arm indices, whatever the number of arms


@pytest.mark.parametrize("call,match", [
    (lambda d: greedy_match(d, ["u"], group_size=1), "group_size"),
    (lambda d: greedy_match(d, ["u"], group_size=9), "group_size"),
    (lambda d: match_clusters(d, ["u"], group_size=3), "group_size"),
    (lambda d: match_clusters(d, ["u"], method="nearest"), "method"),
    (lambda d: optimal_match(d, ["nope"]), "covariates"),
    (lambda d: optimal_match(d, []), "covariates"),
    (lambda d: optimal_match(d.assign(u=["a"] * 6), ["u"]), "not numeric"),
    (lambda d: optimal_match(d.assign(u=[1.0, np.nan, 2, 3, 4, 5]), ["u"]), "missing"),
    (lambda d: optimal_match(d, ["u"], cluster_id="nope"), "cluster_id"),
    (lambda d: MatchedDesign(optimal_match(d, ["u"]), n_arms=3), "n_arms"),
    (lambda d: MatchedDesign("pairs"), "matching"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(random_clusters(6, 0))


def test_docstring_examples():
    import doctest

    import crt_widgets.core.randomization.matching as matching

    assert doctest.testmod(matching).failed == 0


def test_the_matching_says_which_covariates_it_used():
    """Without covariates the matching uses every float column (Buisson 2021), so an integer column such as a
    size is left out, and a float cluster id was matched on as if it were a covariate; neither the Matching nor
    the command line said which columns were used. The id is never a covariate, and both say what was used."""
    import pandas as pd

    from crt_widgets.core.randomization.matching import optimal_match

    data = pd.DataFrame({"site": [1.0, 2.0, 3.0, 4.0], "size": [10, 50, 12, 48], "rate": [0.1, 0.9, 0.2, 0.8]})
    matching = optimal_match(data, cluster_id="site")
    assert matching.covariates == ("rate",) and "on rate" in repr(matching)
    assert optimal_match(data, ["size", "rate"], cluster_id="site").covariates == ("size", "rate")


def test_match_command_prints_the_covariates_it_matched_on(tmp_path, capsys):
    import pandas as pd

    from crt_widgets.cli import main

    path = tmp_path / "sites.csv"
    pd.DataFrame({"site": list("ABCD"), "size": [10, 50, 12, 48], "rate": [0.1, 0.9, 0.2, 0.8]}).to_csv(path, index=False)
    assert main(["match", "--data", str(path), "--cluster-id", "site", "--seed", "1"]) == 0
    assert "matched on: rate (every float column; name others with --covariates)" in capsys.readouterr().out
