"""Pair coincidence against a loop over pairs, for two and for many arms."""
from __future__ import annotations

import numpy as np
import pytest

from crt_widgets.core.spaces.schemes import SchemeSet
from crt_widgets.core.diagnostics.validity import cluster_coincidence, same_arm_counts


def _loop_counts(arms):
    s, n = arms.shape
    out = np.zeros((n, n), dtype=int)
    for i in range(n):
        for j in range(n):
            out[i, j] = np.sum(arms[:, i] == arms[:, j])
    return out


def test_two_arm_counts_equal_the_loop():
    rng = np.random.default_rng(1)
    m = (rng.random((300, 11)) < 0.4).astype(np.uint8)
    np.testing.assert_array_equal(same_arm_counts(SchemeSet.from_matrix(m)), _loop_counts(m))


def test_many_arm_counts_equal_the_loop():
    rng = np.random.default_rng(2)
    arms = rng.integers(0, 4, size=(200, 9))
    np.testing.assert_array_equal(same_arm_counts(arms, n_arms=4), _loop_counts(arms))
    v = cluster_coincidence(arms, n_arms=4)
    assert v.n_schemes == 200


def test_pairs_always_never_and_thresholds():
    m = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]])
    v = cluster_coincidence(m, cluster_ids=["a", "b", "c", "d"])
    assert v.always_together == []
    assert ("a", "c") in v.rarely_together
    assert ("a", "b") in v.often_together  # together in 3 of 4
    m2 = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    v2 = cluster_coincidence(m2, cluster_ids=["a", "b", "c", "d"])
    assert v2.always_together == [("a", "b"), ("c", "d")]
    assert set(v2.never_together) == {("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")}
    assert any("always in the same arm" in s for s in v2.messages())
    t = v2.table()
    assert list(t.index) == ["samecount", "samefrac", "diffcount", "difffrac"]
    assert t.loc["samecount", "Maximum"] == 2 and t.loc["samecount", "Minimum"] == 0
    assert t.loc["samefrac", "Mean"] == pytest.approx(1 / 3)


def test_bad_input():
    with pytest.raises(ValueError, match="assignments"):
        cluster_coincidence(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="cluster_ids"):
        cluster_coincidence(np.array([[0, 1, 1]]), cluster_ids=[1, 2])
