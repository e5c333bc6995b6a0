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


# -- spaces read by their content; sizes; messages -----------------------------------------------------------
def test_compressed_spaces_are_read_by_their_content(tmp_path):
    import gzip

    from crt_widgets import ConstrainedDesign
    from crt_widgets.datasets import load_dickinson
    from crt_widgets.widgets.analysis import read_uploaded_space

    allocation = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county", seed=1).draw(3)
    files = allocation.save(tmp_path)
    csv_bytes, json_gz = files["space_cvcrand"].read_bytes(), files["space_json"].read_bytes()
    for content, name in [(gzip.compress(csv_bytes), "space.csv.gz"), (gzip.compress(csv_bytes), "space.json.gz"),
                          (json_gz, "space.json.gz"), (json_gz, "space.csv"), (gzip.decompress(json_gz), "space.gz"),
                          (gzip.compress(csv_bytes[:1000]) + gzip.compress(csv_bytes[1000:]), "two_members.gz")]:
        space = read_uploaded_space(content, name)  # the name never decides, the content does
        assert len(space.schemes) == len(allocation.design.space_index), name
        np.testing.assert_array_equal(np.sort(space.chosen_scheme), np.sort(allocation.arm))


# ids by message: a parameter's bytes in the id would differ between xdist workers if they held a time
@pytest.mark.parametrize("content,declared,match", [
    (b"", None, "space.csv: the file is empty"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff\xff", None, "space.csv: not a readable gzip file"),
    (__import__("gzip").compress(b"\"SchemeChosen\",\"\",\"\"\n1,1,0\n", mtime=0)[:-12], None, "the gzip file is cut short"),
    (b'{"format": "something else"}', None, "not a crt-widgets space"),
    (b"x", 300_000_000, "space.csv is 300.0 MB, more than the 200 MB one upload can carry"),
], ids=["empty", "not-gzip", "gzip-cut-short", "foreign-json", "too-large"])
def test_bad_space_uploads_are_messages(content, declared, match):
    from crt_widgets.widgets.analysis import read_uploaded_space

    with pytest.raises(ValueError, match=match):
        read_uploaded_space(content, "space.csv", declared_size=declared)


def test_a_space_that_expands_too_far_is_refused(monkeypatch):
    import gzip

    import crt_widgets.widgets.analysis as analysis

    monkeypatch.setattr(analysis, "UNCOMPRESSED_LIMIT_BYTES", 10_000)
    bomb = gzip.compress(b"0" * 50_000)
    with pytest.raises(ValueError, match="bomb.gz: it expands to more than"):
        analysis.read_uploaded_space(bomb, "bomb.gz")


def test_a_file_above_the_limit_is_a_message_and_no_stale_result_stays(dash):
    """The page sends a few bytes in place of a file above the limit, with the file's true size. A space
    that cannot be read takes the previous file's results with it; outcomes that cannot be read leave
    the result of the outcomes before, greyed, with the message beside it."""
    assert dash.state.result is not None and "crt-stale" not in dash.results._dom_classes
    big = {"name": "huge.csv", "type": "text/csv", "size": 300_000_000, "content": memoryview(b"not sent"),
           "last_modified": dt.datetime(2026, 11, 23)}
    dash.upload_data.value = ({**big, "name": "huge_outcomes.csv"},)
    assert "huge_outcomes.csv is 300.0 MB, more than the 200 MB one upload can carry" in dash.message.value
    assert "crt-stale" in dash.results._dom_classes and dash.state.result is not None
    assert "for the inputs before this file" in dash.message.value
    dash.upload_space.value = (big,)
    assert "huge.csv is 300.0 MB, more than the 200 MB one upload can carry" in dash.message.value
    assert dash.state.result is None and dash.pvalue.value == "" and dash.histogram.layout.display == "none"
    dash.upload_space.value = _file("space.csv", dickinson_cvcrand_space_path().read_bytes())
    assert dash.message.value == "" and "crt-stale" not in dash.results._dom_classes
    assert round(dash.state.result.permutation.p_value * 1287) == 54
    assert all("crt-upload-limit-200000000" in u._dom_classes for u in (dash.upload_data, dash.upload_space))


# -- columns from the data's structure ------------------------------------------------------------------------
def _pupils(rng, ids, per=6):
    """Pupils of clusters ``ids``: a per-pupil id first, a cluster-level covariate, an outcome."""
    n = len(ids) * per
    frame = pd.DataFrame({"pupil_no": np.arange(n) + 100, "size": np.repeat(rng.integers(100, 900, len(ids)), per),
                          "site": np.repeat(ids, per), "y": rng.normal(size=n).round(3),
                          "age": rng.integers(5, 11, n)})
    return frame


def test_the_cluster_column_is_the_one_holding_the_space_ids():
    from crt_widgets import ConstrainedDesign
    from crt_widgets.widgets.analysis import guess_columns

    rng = np.random.default_rng(2)
    sites = pd.DataFrame({"code": [f"K{i}" for i in range(12)], "size": rng.integers(100, 900, 12),
                          "rural": rng.choice(["y", "n"], 12)})
    allocation = ConstrainedDesign(sites, ["size", "rural"], 6, categorical=["rural"], cluster_id="code", seed=1).draw(4)
    data = _pupils(rng, sites["code"].to_numpy())
    data["rural"] = np.repeat(sites["rural"].to_numpy(), 6)
    g = guess_columns(data, allocation)
    assert g.cluster == "site" and g.outcome == "y" and g.person_ids == ["pupil_no"]
    assert g.adjustable == ["size", "age", "rural"]  # never the cluster, the outcome or a person id
    assert g.covariates == ["size", "rural"] and g.categorical == ["rural"]
    assert "Li et al. 2016, 2017" in g.note and "the covariates the design balanced (size, rural)" in g.note


def test_a_cvcrand_space_takes_an_id_like_column_with_as_many_clusters():
    from crt_widgets.core.spaces.saved import SavedSpace
    from crt_widgets.core.spaces.schemes import enumerate_schemes
    from crt_widgets.widgets.analysis import guess_columns

    rng = np.random.default_rng(3)
    data = _pupils(rng, [f"S{i}" for i in range(8)])
    data["ward"] = np.repeat(["a", "b"], len(data) // 2)  # text, but 2 values: not the 8 clusters of the space
    data["score"] = rng.normal(size=len(data))            # two outcomes: one named like an outcome wins
    space = SavedSpace(enumerate_schemes(8, 4), 0)          # no ids, no covariates (a cvcrand CSV)
    g = guess_columns(data[["ward", "pupil_no", "y", "size", "site", "age", "score"]], space)
    assert g.cluster == "site" and g.outcome == "y" and g.covariates == []
    assert "does not name the covariates the design balanced" in g.note
    # a numeric cluster column named like an id, and an outcome that is not named like one
    renamed = data.rename(columns={"site": "school_id", "y": "reading"}).assign(
        school_id=np.repeat(np.arange(8), 6), score=np.nan)
    g = guess_columns(renamed.drop(columns="score"), space)
    assert g.cluster == "school_id" and g.outcome in ("reading", "age")
    assert guess_columns(renamed.drop(columns=["score", "age"]), space).outcome == "reading"


def test_uploaded_outcomes_follow_the_json_space_and_propose_its_covariates(tmp_path):
    from crt_widgets import ConstrainedDesign
    from crt_widgets.datasets import load_dickinson

    shuffled = load_dickinson_outcome()[["outcome", "inciis", "location", "county", "hispanic"]]
    allocation = ConstrainedDesign(load_dickinson(), ["inciis", "location"], 8, categorical=["location"],
                                   cluster_id="county", seed=1).draw(5)
    path = allocation.save_space(tmp_path / "space.json.gz")
    dash = AnalysisDashboard(example=None, offline=False)
    dash.upload_data.value = _file("children.csv", shuffled.to_csv(index=False).encode())
    assert dash.state.cluster == "county" and dash.state.outcome == "outcome"  # not the first or last column
    dash.upload_space.value = _file("space.json.gz", path.read_bytes())
    assert dash.state.covariates == ["inciis", "location"] and dash.state.categorical == ["location"]
    assert "Li et al. 2016, 2017" in dash.adjust_note.value
    assert list(dash.covariates.options) == ["inciis", "location", "hispanic"]
    expected = permutation_test(shuffled, "outcome", "county", path, ["inciis", "location"], ["location"], "binomial")
    assert dash.state.result.permutation.p_value == expected.p_value
    # a user's own choice stands when a new space arrives
    dash.covariates.value = ("hispanic",)
    dash.upload_space.value = _file("space.json.gz", path.read_bytes())
    assert dash.state.covariates == ["hispanic"]


# -- p-values as exact counts ---------------------------------------------------------------------------------
def test_p_values_show_as_exact_counts():
    from crt_widgets.core.permutation.test import PermutationResult
    from crt_widgets.widgets.analysis import p_value_count, p_value_text

    distribution = np.r_[np.linspace(-1, 1, 191_882 - 16), np.full(16, 5.0)]
    r = PermutationResult(5.0, distribution, 16 / 191_882, {}, "two-sided", "gaussian", 191_882, 30, 600, 0,
                          np.zeros(30), np.arange(30))
    assert p_value_count(r) == (16, 191_882)
    assert p_value_text(r) == "p < 0.001 (16 of 191,882 schemes at least as extreme)"


def test_the_example_shows_its_count(dash):
    assert "p = 0.04196 (54 of 1,287 schemes at least as extreme)" in dash.pvalue.value


def test_the_record_carries_the_space_sha256_of_the_draw(dash):
    import base64
    import json
    import re

    from crt_widgets.widgets import DesignDashboard

    design = DesignDashboard(example="dickinson", offline=False)
    dash.follow(design)
    design.state.draw(77)
    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.downloads.value))
    record = json.loads(base64.b64decode(links["analysis_record.json"]))
    assert record["space"]["sha256"] == design.state.draws[-1]["space_sha256"] == design.state.space_sha256
