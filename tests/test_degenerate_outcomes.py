"""Outcomes that do not vary (all 0, all 1, one value): the permutation result that exists (p = 1, estimate 0, the
interval explained), model rows that say why they are absent, and no warning text anywhere."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import crt_widgets as crt
from crt_widgets.cli import main
from crt_widgets.core.analysis.trial import analyze_trial
from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome

CASES = [  # value, family, interval, what the note says
    (0, "binomial", (-np.inf, np.inf), "the outcome is 0 for everyone (no events)"),
    (1, "binomial", (-np.inf, np.inf), "the outcome is 1 for everyone (an event for everyone)"),
    (0, "poisson", (-np.inf, np.inf), "the outcome is 0 for everyone (no events)"),
    (3.5, "gaussian", (0.0, 0.0), "the outcome is 3.5 for everyone (constant)"),
]


@pytest.mark.parametrize("value,family,interval,what", CASES)
def test_analysis_of_an_outcome_that_does_not_vary(value, family, interval, what):
    data = load_dickinson_outcome().assign(outcome=value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = analyze_trial(data, "outcome", "county", dickinson_cvcrand_space_path(), ["inciis"], family=family,
                               estimands=True)
    assert [str(w.message) for w in caught] == []
    perm = report.permutation
    assert perm.p_value == 1.0 and perm.p_values == {"two-sided": 1.0, "greater": 1.0, "less": 1.0}
    assert perm.statistic == 0.0 and not perm.distribution.any()
    assert perm.estimate == 0.0 and perm.conf_int == interval
    assert f"{what}: every scheme gives U = 0, so p = 1" in perm.notes
    explained = perm.notes[-1]
    if interval == (0.0, 0.0):
        # 2 of the 1,287 schemes (the observed one and its mirror image) separate the arms as much
        assert explained == ("point estimate 0 with the degenerate interval [0, 0]: an outcome that is the same for "
                             "everyone rejects every non-zero mean difference (p = 0.00155 for any shift)")
    else:
        assert explained.startswith("point estimate 0 and no finite interval") and "consistent with the data" in explained
    for model in (report.gee, report.mixed):
        assert np.isnan(model.effect) and model.note == f"not fitted: {what}: a model cannot be fitted"
    assert report.estimands is None and "estimands: not estimated, the outcome does not vary" in report.notes
    table = report.table()
    assert table["note"].iloc[1:].str.startswith("not fitted: ").all() and table.iloc[0]["effect"] == 0.0


def test_the_command_line_says_so_without_warning_text(capsys, tmp_path):
    path = tmp_path / "zeros.csv"
    load_dickinson_outcome().assign(outcome=0).to_csv(path, index=False)
    code = main(["analyze", "--data", str(path), "--space", str(dickinson_cvcrand_space_path()), "--outcome",
                 "outcome", "--cluster", "county", "--family", "binary", "--ci"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "p-value = 1" in out and "note: the outcome is 0 for everyone (no events): every scheme gives U = 0" in out
    assert "not fitted: the outcome is 0 for everyone" in out
    for text in ("should be reported", "Warning", "warning", "Traceback"):
        assert text not in out


def test_permutation_test_without_interval_and_a_constant_count():
    data = load_dickinson_outcome().assign(outcome=2)
    result = crt.permutation_test(data, "outcome", "county", dickinson_cvcrand_space_path(), family="poisson")
    assert result.p_value == 1.0 and result.estimate is None
    # cvcrand's CSV has no audit beside it: a notice says it cannot be verified, then the constant outcome's note
    assert result.notes[-1] == "the outcome is 2 for everyone (constant): every scheme gives U = 0, so p = 1"
    assert len(result.notes) == 2 and "could not be verified" in result.notes[0]
    with_ci = crt.permutation_test(data, "outcome", "county", dickinson_cvcrand_space_path(), family="poisson", ci=True)
    assert with_ci.estimate == 0.0 and with_ci.conf_int == (0.0, 0.0)  # any shift makes the arms' counts differ


def test_models_and_icc_refuse_a_constant_outcome_by_name():
    data = load_dickinson_outcome().assign(outcome=1)
    with pytest.raises(ValueError, match=r"outcome 'outcome': the outcome is 1 for everyone \(an event for everyone\)"):
        crt.gee("outcome ~ inciis", data, "county", family="binomial")
    with pytest.raises(ValueError, match="outcome: 'outcome' is 1 for everyone; the ICC of a constant is undefined"):
        crt.icc(data, "outcome", "county")


def test_no_events_in_one_arm_leaves_the_models_empty_but_not_the_risk_difference():
    """Separation: the log odds ratio is infinite, so the GEE and GLMM rows say so instead of printing a
    diverged coefficient; the risk difference exists (the treated arm's mean of cluster risks minus 0) and the
    risk ratio is infinite, without an interval."""
    data = load_dickinson_outcome()
    arm = np.array([0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0])[data["county"] - 1]
    data.loc[arm == 0, "outcome"] = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = analyze_trial(data, "outcome", "county", dickinson_cvcrand_space_path(), family="binomial",
                               estimands=True)
        direct = crt.gee("outcome ~ arm", data.assign(arm=arm), "county", family="binomial")
    assert [str(w.message) for w in caught] == []
    reason = ("the outcome is 0 for everyone in the control arm (no events): the log odds ratio is infinite "
              "(separation), a model cannot estimate it")
    assert report.notes == [reason] and report.gee.note == report.mixed.note == f"not fitted: {reason}"
    assert any("separation" in note for note in direct.notes)
    risk = data.groupby("county")["outcome"].mean().to_numpy()
    treated = np.array([0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0]) == 1
    rd, rr = report.estimands[0], report.estimands[1]
    assert rd.scale == "risk difference" and rd.estimate == pytest.approx(risk[treated].mean(), rel=1e-6)
    assert np.isfinite(rd.se) and rd.conf_int[0] < rd.estimate < rd.conf_int[1]
    assert rr.estimate == np.inf and np.isnan(rr.se)
    assert rr.note == "the control arm's standardized mean is 0 (no events): no interval"


def test_an_outcome_constant_within_clusters_says_why_the_mixed_model_is_empty():
    """A cluster-level outcome repeated on its people: the mixed model's row said "the fitting routine failed
    on these data (e.g. no events in one arm)", for a continuous outcome; it now gives the model's own reason."""
    data = load_dickinson_outcome()
    data = data.assign(level=data["county"] * 0.5)  # one value per county
    found = analyze_trial(data, "level", "county", dickinson_cvcrand_space_path())
    assert np.isnan(found.mixed.effect)
    assert "does not vary within any 'cluster' group" in found.mixed.note and "no events" not in found.mixed.note


@pytest.mark.parametrize("family", ["gaussian", "binomial"])
def test_two_clusters_leave_the_mixed_model_without_between_cluster_df(family):
    """One cluster per arm: the arm is a cluster-level term with K - p = 0 between-cluster df, so the cluster
    variance cannot be told from the arm effect. The linear mixed model printed a Kenward-Roger t on 6.5 million
    df (p 0.99, a variance of 18.8) and the GLMM a t on 1 df (its df floored at 1); like the GEE, the row now says
    why it is empty."""
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"c": np.repeat(["A", "B"], 20), "y": rng.normal(size=40),
                         "b": (rng.random(40) < 0.4).astype(int)})
    found = analyze_trial(data, "y" if family == "gaussian" else "b", "c", "simple", observed={"A": 1, "B": 0},
                          family=family)
    assert np.isnan(found.mixed.effect) and np.isnan(found.mixed.p_value)
    assert "no between-cluster degrees of freedom" in found.mixed.note
    assert found.permutation.p_value == 1.0  # the test that exists is still given
