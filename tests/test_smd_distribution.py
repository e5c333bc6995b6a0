"""Each covariate's |SMD| over the kept schemes, vectorised: equal, scheme by scheme, to the baseline table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crt_widgets import ConstrainedDesign, MultiArmDesign
from crt_widgets.core.diagnostics.smd import scheme_smds, smd_distribution
from crt_widgets.core.diagnostics.tables import baseline_table


def _brute_force(design, arms_of_scheme) -> pd.DataFrame:
    rows = []
    for s in range(len(design.space_index)):
        table = baseline_table(design.data, design.covariates, design.categorical, *arms_of_scheme(s))
        rows.append(table.attrs["smd"])
    return pd.DataFrame(rows)


def test_two_arms_equal_the_baseline_table_scheme_by_scheme(small_clusters):
    # continuous covariates and a three-level category, every scheme of 9 clusters (4 treated) kept
    design = ConstrainedDesign(small_clusters, ["size", "rate", "region"], 4, categorical=["region"], cluster_id="id",
                               cutoff=1.0)
    matrix = design.space.schemes.matrix()
    brute = _brute_force(design, lambda s: (matrix[s],))
    fast = scheme_smds(design.data, design.covariates, design.categorical, design.space)
    assert list(fast.columns) == list(brute.columns) == ["size (mean (sd))", "rate (mean (sd))", "region (%)"]
    np.testing.assert_allclose(fast.to_numpy(), brute.to_numpy(), rtol=1e-10, atol=1e-12)
    table = smd_distribution(design)
    np.testing.assert_allclose(table.to_numpy(), np.quantile(brute.to_numpy(), [0.5, 0.95], axis=0).T, rtol=1e-10)
    assert list(table.columns) == ["median |SMD|", "95th percentile |SMD|"] and table.attrs["n_schemes"] == 126


def test_blocks_do_not_change_the_answer(dickinson):
    design = ConstrainedDesign(dickinson, ["inciis", "location", "incomecat"], 8, categorical=["location", "incomecat"],
                               cluster_id="county", seed=1)
    pd.testing.assert_frame_equal(smd_distribution(design, chunk_rows=97), smd_distribution(design))
    two_levels = smd_distribution(design).loc["location = Urban (%)"]  # a binary category: |p1 - p0| / pooled sd
    matrix = design.space.schemes.matrix()
    urban = (dickinson["location"] == "Urban").to_numpy()
    p1 = matrix @ urban / 8
    p0 = (1 - matrix) @ urban / 8
    by_hand = np.abs(p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    by_hand = np.where(p1 == p0, 0.0, by_hand)
    assert two_levels["median |SMD|"] == pytest.approx(np.median(by_hand), abs=1e-12)
    assert two_levels["95th percentile |SMD|"] == pytest.approx(np.quantile(by_hand, 0.95), abs=1e-12)


def test_multi_arm_takes_the_largest_pairwise_smd(small_clusters):
    design = MultiArmDesign(small_clusters, ["size", "region"], 3, categorical=["region"], cluster_id="id",
                            size=400, seed=3, cutoff=0.5)
    labels = np.asarray(design.arms.labels, dtype=object)
    arms = design.space.arm_matrix()
    brute = _brute_force(design, lambda s: (labels[arms[s]], list(design.arms.labels)))
    fast = scheme_smds(design.data, design.covariates, design.categorical, design.space)
    np.testing.assert_allclose(fast.to_numpy(), brute.to_numpy(), rtol=1e-10, atol=1e-12)


def test_constant_covariate_within_both_arms():
    data = pd.DataFrame({"id": range(4), "x": [1.0, 1.0, 2.0, 2.0]})
    schemes = np.array([[1, 1, 0, 0], [1, 0, 1, 0]])  # arms constant but different; then mixed
    smd = scheme_smds(data, ["x"], [], schemes)["x (mean (sd))"].to_numpy()
    assert smd[0] == np.inf and smd[1] == 0.0
    assert smd[1] == abs(baseline_table(data, ["x"], [], schemes[1]).attrs["smd"]["x (mean (sd))"])


@pytest.mark.parametrize("kwargs,match", [
    ({"quantiles": (0.5, 1.5)}, "quantiles: expected numbers between 0 and 1"),
    ({"quantiles": ()}, "quantiles: expected numbers between 0 and 1"),
    ({"chunk_rows": 0}, "chunk_rows: expected a positive number of schemes"),
])
def test_bad_arguments_are_messages(dickinson, kwargs, match):
    design = ConstrainedDesign(dickinson, ["inciis"], 8, cluster_id="county")
    with pytest.raises(ValueError, match=match):
        smd_distribution(design, **kwargs)
