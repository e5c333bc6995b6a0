"""The analysis dashboard without a browser: set widget values in code, compare with the core."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crt_widgets import permutation_test
from crt_widgets.core.analysis.trial import analyze_trial
from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome
from crt_widgets.widgets.analysis import AnalysisDashboard, guess_family

ADJUST = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]


def _file(name: str, content: bytes) -> tuple[dict]:
    """What the browser puts in a FileUpload's value."""
    return ({"name": name, "type": "text/csv", "size": len(content), "content": memoryview(content),
             "last_modified": dt.datetime(2026, 11, 23)},)


@pytest.fixture()
def dash():
    return AnalysisDashboard(example="dickinson", offline=False)


def test_example_reproduces_cptest_and_the_core(dash):
    r = dash.state.result
    assert round(r.permutation.p_value * 1287) == 54 and r.permutation.n_schemes == 1287
    core = permutation_test(load_dickinson_outcome(), "outcome", "county", dickinson_cvcrand_space_path(), ADJUST,
                            ["location", "incomecat"], "binomial", ci=True)
    assert r.permutation.estimate == pytest.approx(core.estimate, abs=1e-9)
    assert r.permutation.conf_int == pytest.approx(core.conf_int, abs=1e-9)
    assert "p-value = 0.04196" in dash.statement.value and "<td>0.42</td>" in dash.table.value
    bins = dash.histogram.chart.layer[0].data  # the chart shows the result's own bins
    assert bins["total"].sum() == 1287 and bins["extreme"].sum() == 54


def test_inputs_follow_the_widgets(dash):
    data, space = load_dickinson_outcome(), dickinson_cvcrand_space_path()
    dash.covariates.value = ("inciis",)
    dash.models.value = False
    expected = analyze_trial(data, "outcome", "county", space, ["inciis"], [], "binomial", models=())
    assert dash.state.result.permutation.p_value == expected.permutation.p_value
    assert len(dash.state.result.table()) == 1  # the permutation test alone
    dash.family.value = "gaussian"  # a linear model of the 0/1 outcome: a different but valid test
    gaussian = permutation_test(data, "outcome", "county", space, ["inciis"], family="gaussian", ci=True)
    assert dash.state.result.permutation.p_value == gaussian.p_value
    assert dash.state.result.permutation.estimate == pytest.approx(gaussian.estimate, abs=1e-9)


def test_one_sided_alternative(dash):
    dash.alternative.value = "greater"
    core = permutation_test(load_dickinson_outcome(), "outcome", "county", dickinson_cvcrand_space_path(), ADJUST,
                            ["location", "incomecat"], "binomial", alternative="greater")
    assert dash.state.result.permutation.p_value == core.p_value < 54 / 1287
    assert "one-sided (treatment &gt; control)" in dash.statement.value and "p_value (greater)" in dash.table.value


def test_uploaded_outcomes_and_space(dash, tmp_path):
    data = load_dickinson_outcome()
    data["visits"] = np.random.default_rng(1).poisson(3, len(data))  # a count outcome
    dash.upload_data.value = _file("children.csv", data.to_csv(index=False, sep=";").encode())
    assert dash.upload_data.value == ()  # ready for the next file
    # the column named outcome is proposed, its type guessed from its values
    assert dash.state.source == "children.csv" and dash.state.outcome == "outcome" and dash.state.family == "binomial"
    dash.outcome.value, dash.cluster.value = "visits", "county"
    dash.family.value = "poisson"
    assert "Load the randomization space" in dash.message.value or dash.state.result is not None
    dash.upload_space.value = _file("space.csv", dickinson_cvcrand_space_path().read_bytes())
    expected = permutation_test(data, "visits", "county", dickinson_cvcrand_space_path(), family="poisson")
    assert dash.state.result.permutation.p_value == expected.p_value
    assert "log rate ratio" in dash.statement.value


@pytest.mark.parametrize("change,message", [
    ({"outcome": "county"}, "other than the cluster id"),
    ({"outcome": "location"}, "must be numeric"),
    ({"cluster": "outcome"}, "cluster"),
])
def test_bad_choices_are_messages_and_recover(dash, change, message):
    for name, value in change.items():
        getattr(dash, name).value = value
    assert message in dash.message.value and dash.state.result is None and dash.statement.value == ""
    assert dash.histogram.layout.display == "none"
    dash.outcome.value, dash.cluster.value = "outcome", "county"
    assert dash.message.value == "" and round(dash.state.result.permutation.p_value * 1287) == 54


def test_bad_files_are_messages(dash):
    dash.upload_space.value = _file("space.csv", b"not,a\nspace,file\n")
    assert "space.csv" in dash.message.value
    # the previous file's results go: nothing on screen may look like the result of the file just chosen
    assert dash.state.result is None and dash.statement.value == "" and dash.histogram.layout.display == "none"
    dash.upload_data.value = _file("one.csv", b"x\n1\n")
    assert "at least two columns" in dash.message.value


def test_guess_family():
    assert [guess_family(load_dickinson_outcome()[c]) for c in ("outcome", "inciis")] == ["binomial", "poisson"]


def test_follows_the_allocation_a_design_dashboard_draws(dash):
    from crt_widgets.widgets import DesignDashboard

    design = DesignDashboard(example="dickinson", offline=False)
    dash.follow(design)
    assert dash.state.result.permutation.n_schemes == 1287          # cvcrand's space until a draw
    allocation = design.state.draw()
    core = permutation_test(load_dickinson_outcome(), "outcome", "county", allocation, ADJUST,
                            ["location", "incomecat"], "binomial", ci=True)
    r = dash.state.result.permutation
    assert r.n_schemes == 1288 and r.p_value == pytest.approx(core.p_value, abs=0)
    assert r.conf_int == pytest.approx(core.conf_int, abs=1e-9)
    assert f"seed {allocation.seed}" in dash.sources.value and dash.message.value == ""


def test_space_object_given_up_front():
    from crt_widgets import MultiArmDesign
    from crt_widgets.datasets import load_dickinson

    three = MultiArmDesign(load_dickinson(), ["inciis"], n_arms=3, cluster_id="county", size=2000, seed=1).draw()
    dash = AnalysisDashboard(example="dickinson", offline=False, space=three)
    # three arms: the first comparison (no factors: arm 2 against arm 1) until another is chosen
    assert dash.state.comparison == "pair:2|1"
    assert [v for _, v in dash.comparison.options] == ["pair:2|1", "pair:3|1", "arm:1", "arm:2", "arm:3"]
    expected = permutation_test(load_dickinson_outcome(), "outcome", "county", three.two_arm(treated=["2"], control=["1"]),
                                ADJUST, ["location", "incomecat"], "binomial")
    assert dash.state.result.permutation.p_value == expected.p_value
    assert f"seed {three.seed}" in dash.sources.value


def test_multiarm_space_upload_offers_the_comparisons(dash, tmp_path):
    from crt_widgets import MultiArmDesign
    from crt_widgets.datasets import simulate_edlead

    eds = simulate_edlead(seed=3)
    allocation = MultiArmDesign(eds, ["volume"], factors=["a", "b"], strata="health_system", cluster_id="ed",
                                size=2000, seed=2).draw()
    space_file = allocation.save(tmp_path)["space"]
    rng = np.random.default_rng(4)
    patients = np.repeat(np.arange(len(eds)), 6)
    outcomes = pd.DataFrame({"ed": eds["ed"].to_numpy()[patients], "y": rng.normal(size=len(patients))})
    dash.upload_data.value = _file("eds.csv", outcomes.to_csv(index=False).encode())
    assert dash.comparison.layout.display == "none"          # the Dickinson space is two-arm: nothing to choose
    dash.upload_space.value = _file("multiarm_space.csv", space_file.read_bytes())
    assert dash.comparison.layout.display is None and dash.state.comparison == "factor:a"
    assert [v for _, v in dash.comparison.options] == ["factor:a", "factor:b", "pair:a|none", "pair:a+b|none",
                                                         "pair:b|none", "arm:a", "arm:a+b", "arm:b", "arm:none"]
    dash.outcome.value, dash.cluster.value, dash.family.value = "y", "ed", "gaussian"
    expected = permutation_test(outcomes, "y", "ed", allocation.two_arm(factor="a"))
    assert dash.state.result.permutation.p_value == expected.p_value
    dash.comparison.value = "arm:a+b"
    expected = permutation_test(outcomes, "y", "ed", allocation.two_arm(treated=["a+b"]))
    assert dash.state.result.permutation.p_value == expected.p_value and dash.message.value == ""
    dash.comparison.value = "pair:b|none"
    expected = permutation_test(outcomes, "y", "ed", allocation.two_arm(treated=["b"], control=["none"]))
    assert dash.state.result.permutation.p_value == expected.p_value and dash.message.value == ""


def test_result_downloads_carry_inputs_settings_and_numbers(dash):
    import base64
    import json
    import re

    from crt_widgets.core.io.files import data_sha256

    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.downloads.value))
    assert sorted(links) == ["analysis_record.json", "analysis_results.csv"]
    record = json.loads(base64.b64decode(links["analysis_record.json"]))
    assert record["outcomes"]["sha256"] == data_sha256(load_dickinson_outcome()) and record["outcomes"]["rows"] == len(load_dickinson_outcome())
    assert record["settings"]["covariates"] == ADJUST and record["settings"]["family"] == "binomial"
    assert record["permutation"]["p_value"] == pytest.approx(54 / 1287) and record["space"]["n_schemes"] == 1287
    assert [e["method"] for e in record["estimates"]][0] == "Clustered permutation test (inverted)"
    results = base64.b64decode(links["analysis_results.csv"]).decode()
    assert results.splitlines()[0] == "method,effect,se,ci_low,ci_high,p_value,df,icc,note"
    dash.state.outcome = "county"  # an error: no stale downloads beside it
    assert dash.downloads.value == "" and "other than the cluster id" in dash.message.value


def test_both_saved_space_formats_upload_and_agree_with_the_allocation(dash, tmp_path):
    """A design whose rows are not sorted by cluster: its JSON (labelled) and cvcrand CSV (sorted order) give
    the analysis of the allocation itself."""
    from crt_widgets import ConstrainedDesign
    from crt_widgets.datasets import load_dickinson

    shuffled = load_dickinson().sample(frac=1, random_state=4).reset_index(drop=True)
    allocation = ConstrainedDesign(shuffled, ["inciis", "hispanic"], 8, cluster_id="county", seed=1).draw()
    files = allocation.save(tmp_path)
    direct = permutation_test(load_dickinson_outcome(), "outcome", "county", allocation, ADJUST,
                              ["location", "incomecat"], "binomial")
    for key in ("space_json", "space_cvcrand"):
        dash.upload_space.value = _file(files[key].name, files[key].read_bytes())
        assert dash.state.space_source == files[key].name and dash.message.value == ""
        assert dash.state.result.permutation.p_value == direct.p_value


def test_the_result_notes_are_shown(dash):
    """Rows dropped for missing values (and the test's other notes) are said in the panel."""
    data = load_dickinson_outcome()
    data.loc[data.index[:7], "outcome"] = np.nan
    dash.upload_data.value = _file("gaps.csv", data.to_csv(index=False).encode())
    dash.upload_space.value = _file("space.csv", dickinson_cvcrand_space_path().read_bytes())
    assert "7 row(s) with missing values were dropped" in dash.statement.value
    assert dash.state.result.permutation.n_dropped == 7


def test_record_without_a_result_is_refused():
    dash = AnalysisDashboard(example=None, offline=False)
    with pytest.raises(ValueError, match="record: there is no result to record"):
        dash.state.record()
