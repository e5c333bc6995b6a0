"""Bootstrap intervals: reproducibility, worker independence, and the bootstrap variance theory."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crt_widgets.core.models.bootstrap import bootstrap_ci
from crt_widgets.core.models.mixed import mixed_model
from crt_widgets.datasets import load_callcenter

FORMULA = "call_CSAT ~ reason + age + group"
NESTED = ["center_ID", "rep_ID"]


@pytest.fixture(scope="module")
def experiment() -> pd.DataFrame:
    return load_callcenter("experimental")


def test_cluster_bootstrap_reproducible_and_independent_of_workers_and_chunks(experiment):
    a = bootstrap_ci(FORMULA, experiment, NESTED, "group[T.treat]", arm="group", n_boot=60, seed=3)
    b = bootstrap_ci(FORMULA, experiment, NESTED, "group[T.treat]", arm="group", n_boot=60, seed=3,
                     n_jobs=2, chunk_size=7)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert a.ci == b.ci
    c = bootstrap_ci(FORMULA, experiment, NESTED, "group[T.treat]", arm="group", n_boot=60, seed=4)
    assert not np.array_equal(a.draws, c.draws)
    fit = mixed_model(FORMULA, experiment, NESTED)
    assert a.estimate == pytest.approx(fit.fe_params["group[T.treat]"], rel=1e-6)
    assert a.ci == tuple(np.quantile(a.draws, [0.025, 0.975]))
    assert "95% CI" in repr(a)


def test_cluster_bootstrap_variance_equals_plug_in_variance_of_cluster_means():
    # equal cluster sizes, cluster-level treatment only: every refit estimate is the difference of
    # the resampled clusters' mean outcomes, whose bootstrap variance is sum_arm var_pop / k
    rng = np.random.default_rng(8)
    k, m = 8, 12
    cluster = np.repeat(np.arange(2 * k), m)
    treat = (cluster >= k).astype(int)
    y = 0.5 * treat + rng.normal(0, 1, 2 * k)[cluster] + rng.normal(0, 1, cluster.size)
    data = pd.DataFrame({"y": y, "arm": np.where(treat, "b", "a"), "cluster": cluster})
    res = bootstrap_ci("y ~ arm", data, "cluster", "arm[T.b]", arm="arm", n_boot=1000, seed=1)
    means = data.groupby("cluster").y.mean().to_numpy()
    theory = np.sqrt(means[:k].var() / k + means[k:].var() / k)
    # SD of 1,000 bootstrap draws has relative MC error ~ 1/sqrt(2000) = 2.2%
    assert res.se == pytest.approx(theory, rel=0.08)
    assert res.n_failed == 0


def test_calls_bootstrap_matches_model_se_for_a_within_rep_covariate(experiment):
    # age varies within reps; the chapter's bootstrap (calls within reps, clusters fixed) then
    # estimates the within-rep sampling error that the model SE describes
    res = bootstrap_ci("call_CSAT ~ reason + age", experiment, NESTED, "age", method="calls", n_boot=400, seed=2)
    model_se = mixed_model("call_CSAT ~ reason + age", experiment, NESTED).bse["age"]
    assert res.se == pytest.approx(model_se, rel=0.15)
    # ...but for the cluster-level treatment it is far too narrow (it ignores between-centre error)
    narrow = bootstrap_ci(FORMULA, experiment, NESTED, "group[T.treat]", method="calls", n_boot=50, seed=2)
    assert narrow.ci[1] - narrow.ci[0] < 0.2 * 2 * 1.96 * mixed_model(FORMULA, experiment, NESTED).bse["group[T.treat]"]


def test_calls_bootstrap_fixed_rows_per_rep_like_the_chapter(experiment):
    res = bootstrap_ci(FORMULA, experiment, NESTED, "group[T.treat]", method="calls", rows_per_group=200,
                       n_boot=20, conf_level=0.9, seed=5)
    again = bootstrap_ci(FORMULA, experiment, NESTED, "group[T.treat]", method="calls", rows_per_group=200,
                         n_boot=20, conf_level=0.9, seed=5, n_jobs=2, chunk_size=3)
    np.testing.assert_array_equal(res.draws, again.draws)
    assert res.ci[0] <= np.median(res.draws) <= res.ci[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(term="group[T.placebo]"), "term 'group\\[T.placebo\\]' is not a fixed effect"),
        (dict(method="wild"), "method must be one of"),
        (dict(n_boot=5), "n_boot"),
        (dict(arm="reason"), "constant within every cluster"),
        (dict(arm="arm"), "arm column 'arm' is not a column"),
        (dict(conf_level=1.0), "conf_level"),
    ],
)
def test_bad_input(experiment, kwargs, message):
    args = dict(term="group[T.treat]", n_boot=20, seed=1) | kwargs
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(FORMULA, experiment, NESTED, args.pop("term"), **args)
