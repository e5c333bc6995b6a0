"""Balance scores against the paper's formulas (1)-(4), by brute force, and the block enumeration."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from crt_widgets import ConstrainedDesign
from crt_widgets.core.randomization import constrained as design_module
from crt_widgets.core.randomization.candidates import EnumeratedCandidates, SchemeCandidates
from crt_widgets.core.randomization.constraints import parse_constraint
from crt_widgets.core.spaces.schemes import enumerate_schemes


def _paper_scores(x, n_treat, d, metric):
    """Formula (3)/(4) of the cvcrand paper, literally, one scheme at a time."""
    n = len(x)
    s = x.std(axis=0, ddof=1)
    out = []
    for combo in itertools.combinations(range(n), n_treat):
        t = np.zeros(n, bool)
        t[list(combo)] = True
        diff = x[t].mean(axis=0) - x[~t].mean(axis=0)
        out.append(np.sum(d * diff**2 / s**2) if metric == "l2" else np.sum(d * np.abs(diff) / s))
    return np.array(out)


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("n_treat", [3, 4])
def test_scores_are_the_papers_formula_on_cvcrands_scale(small_clusters, metric, n_treat):
    d = {"size": 2.0, "rate": 0.5, "region": 3.0}
    design = ConstrainedDesign(small_clusters, ["size", "rate", "region"], n_treat, categorical=["region"],
                               cluster_id="id", metric=metric, weights=d)
    x = np.column_stack([small_clusters["size"], small_clusters["rate"],
                         small_clusters["region"] == "north", small_clusters["region"] == "south"]).astype(float)
    weights = np.array([2.0, 0.5, 3.0, 3.0])  # a categorical weight applies to each dummy ("east" is the reference)
    paper = _paper_scores(x, n_treat, weights, metric)
    n, nc = 9, 9 - n_treat
    # sum over treated of standardised x = (mean_T - mean_C) * n_T n_C / n / s
    factor = (n_treat * nc / n) ** (2 if metric == "l2" else 1)
    np.testing.assert_allclose(design.scores, factor * paper, rtol=1e-10)


def test_zero_weight_switches_a_covariate_off(small_clusters):
    a = ConstrainedDesign(small_clusters, ["size", "rate"], 4, cluster_id="id", weights=[1, 0])
    b = ConstrainedDesign(small_clusters, ["size"], 4, cluster_id="id")
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-12)


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("n,k", [(12, 5), (13, 6), (11, 1)])
def test_block_enumeration_equals_explicit_enumeration(metric, n, k):
    rng = np.random.default_rng(n)
    z = rng.normal(size=(n, 3))
    w = np.array([1.0, 2.0, 0.5])
    explicit = SchemeCandidates(enumerate_schemes(n, k), z, z, True)
    blocks = EnumeratedCandidates(k, z, z)
    assert len(blocks) == len(explicit)
    all_rows = blocks.schemes_at(np.arange(len(blocks))).matrix()
    assert (all_rows.sum(axis=1) == k).all()
    assert len({tuple(r) for r in all_rows.tolist()}) == len(explicit)  # every scheme once
    block_scores = dict(zip(map(tuple, all_rows.tolist()), blocks.scores(w, metric)))
    expl = dict(zip(map(tuple, explicit.schemes.matrix().tolist()), explicit.scores(w, metric)))
    keys = list(expl)
    np.testing.assert_allclose([block_scores[r] for r in keys], [expl[r] for r in keys], rtol=1e-9, atol=1e-12)
    cons = [parse_constraint("m0.5"), parse_constraint("any"), parse_constraint("sf1")]
    ok_blocks = dict(zip(map(tuple, all_rows.tolist()), blocks.satisfies(cons, k)))
    ok_expl = explicit.satisfies(cons, k)
    assert [ok_blocks[r] for r in keys] == ok_expl.tolist()


def test_design_switches_to_block_enumeration_above_the_limit(small_clusters, monkeypatch):
    monkeypatch.setattr(design_module, "_EXPLICIT_LIMIT", 10)
    big = ConstrainedDesign(small_clusters, ["size", "rate", "region"], 4, categorical=["region"], cluster_id="id", seed=3)
    assert isinstance(big.candidates, EnumeratedCandidates)
    monkeypatch.setattr(design_module, "_EXPLICIT_LIMIT", 10**9)
    small = ConstrainedDesign(small_clusters, ["size", "rate", "region"], 4, categorical=["region"], cluster_id="id", seed=3)
    assert isinstance(small.candidates, SchemeCandidates)
    assert big.cutoff_score == pytest.approx(small.cutoff_score, rel=1e-12)
    assert {tuple(r) for r in big.space.schemes.matrix().tolist()} == {tuple(r) for r in small.space.schemes.matrix().tolist()}
    pd_big, pd_small = big.validity.table(), small.validity.table()
    np.testing.assert_allclose(pd_big.to_numpy(), pd_small.to_numpy())
