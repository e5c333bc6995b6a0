"""The call-centre simulator and the shipped examples."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crt_widgets.datasets import load_callcenter, simulate_callcenter
from crt_widgets.datasets.callcenter import CHAPTER_N_CALLS


def test_structure_like_the_chapter():
    calls = simulate_callcenter(20_000, seed=1)
    assert list(calls.columns) == ["center_ID", "rep_ID", "month", "reason", "age", "call_CSAT"]
    assert len(calls) == 20_000
    assert sorted(calls.center_ID.unique()) == list(range(101, 111))
    reps = calls.groupby("center_ID").rep_ID.nunique()
    assert reps.between(15, 22).all()
    # rep ids are unique across centres
    assert calls.groupby("rep_ID").center_ID.nunique().max() == 1
    assert calls.call_CSAT.max() <= 10.0
    assert set(calls.reason) == {"payment", "property"}
    assert calls.month.between(1, 12).all()
    # P(payment) = 0.6: 4 binomial SEs on 20,000 calls
    assert (calls.reason == "payment").mean() == pytest.approx(0.6, abs=4 * np.sqrt(0.24 / 20_000))


def test_same_seed_same_data_and_default_size():
    a = simulate_callcenter(5_000, seed=42)
    pd.testing.assert_frame_equal(a, simulate_callcenter(5_000, seed=42))
    assert not a.call_CSAT.equals(simulate_callcenter(5_000, seed=43).call_CSAT)
    assert CHAPTER_N_CALLS == 695_205


def test_cap_applies():
    capped = simulate_callcenter(5_000, intercept=9.5, seed=3)
    assert capped.call_CSAT.max() == 10.0 and (capped.call_CSAT == 10.0).mean() > 0.3
    uncapped = simulate_callcenter(5_000, intercept=9.5, cap=None, seed=3)
    assert uncapped.call_CSAT.max() > 10.0


def test_experimental_version_treats_one_centre_per_pair_and_adds_the_effect():
    calls = simulate_callcenter(50_000, experimental=True, treatment_effect=3.0, center_var=0.0, rep_var=0.0,
                                cap=None, seed=9)
    arm = calls.groupby("center_ID").group.first()
    assert (arm.to_numpy().reshape(5, 2) == "treat").sum(axis=1).tolist() == [1] * 5
    assert calls.groupby("center_ID").group.nunique().max() == 1
    # no random effects: the treated-minus-control difference in means, adjusted for the
    # covariates, is the effect; residual SD 0.62 over 50,000 calls gives SE ~0.006
    from crt_widgets.core.models.mixed import mixed_model

    fit = mixed_model("call_CSAT ~ reason + age + group", calls, groups=["center_ID", "rep_ID"])
    assert fit.fe_params["group[T.treat]"] == pytest.approx(3.0, abs=0.03)


def test_shipped_examples_are_small_and_loadable():
    hist = load_callcenter()
    exp = load_callcenter("experimental")
    assert hist.shape == (6000, 6) and exp.shape == (6000, 7)
    assert set(exp.group) == {"ctrl", "treat"}
    assert sorted(hist.center_ID.unique()) == list(range(101, 111))
    with pytest.raises(ValueError, match="kind must be one of"):
        load_callcenter("future")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_calls=0), "n_calls"),
        (dict(n_centers=0), "n_centers"),
        (dict(reps_per_center=(5, 2)), "reps_per_center"),
        (dict(rep_var=-1.0), "rep_var"),
        (dict(p_payment=1.5), "p_payment"),
        (dict(n_months=0), "n_months"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_callcenter(**({"n_calls": 100} | kwargs))
