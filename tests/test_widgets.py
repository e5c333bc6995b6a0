"""Dashboard panels without a browser: set widget values in code, compare with the core."""
from __future__ import annotations

import base64
import datetime as dt
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import PAPER_CATEGORICAL, PAPER_COVARIATES

from crt_widgets import ConstrainedDesign
from crt_widgets.core.diagnostics.smd import smd_distribution
from crt_widgets.widgets import DesignDashboard
from crt_widgets.widgets.panels import read_uploaded_csv
from crt_widgets.widgets.binning import histogram_data
from crt_widgets.widgets.state import DesignState


@pytest.fixture(scope="module")
def dash():
    return DesignDashboard(example="dickinson", offline=False)


def _draw(dash, seed) -> None:
    """Draw as a user does: type the seed, press Draw, read the confirmation, confirm."""
    dash.draw.seed.value = str(seed)
    dash.draw.button.click()
    assert f"seed <b class='crt-pending-seed'>{seed}</b>" in dash.draw.question.value
    dash.draw.confirm.click()


def _core(dickinson, **rule):
    return ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                             seed=12345, **rule)


def test_initial_state_equals_the_core(dash, dickinson):
    core = _core(dickinson)
    heat = dash.outputs.heatmap.spec
    assert heat["encoding"]["color"]["scale"]["domain"] == [0, pytest.approx(core.validity.expected_fraction), 1]
    cells = {(r["a"], r["b"]): r["fraction"] for r in heat["datasets"]["pairs"]}
    assert cells[("1", "2")] == pytest.approx(core.validity.same_fraction[0, 1], abs=1e-4)
    assert dash.state.kept == len(core.space_index) == 1288
    np.testing.assert_allclose(dash.state.design.scores, core.scores)
    assert "1,288" in dash.cutoff.count.value
    # before the draw: what describes the space, never a scheme (no allocation anywhere in the state)
    assert dash.state.allocation is None and dash.state.history == [] and not hasattr(dash.state, "preview")
    pd.testing.assert_frame_equal(dash.state.smd, smd_distribution(core))
    assert f"{smd_distribution(core).iloc[1, 1]:.3f}" in dash.outputs.smd.value
    assert "P(Intervention)" in dash.outputs.probabilities.value and "0.50" in dash.outputs.probabilities.value
    bins = histogram_data(dash.state.design)
    counts, edges = np.histogram(core.scores, bins=60)
    np.testing.assert_array_equal(bins["total"], counts)
    np.testing.assert_allclose(bins["left"], edges[:-1])
    assert bins["total"].sum() == 12870 and bins["kept"].sum() == 1288
    assert (bins["kept"] <= bins["total"]).all()
    # what the browser receives: the same counts and the cutoff; no chosen scheme before the draw
    spec = dash.outputs.histogram.spec
    assert [r["total"] for r in spec["datasets"]["bins"]] == counts.tolist()
    assert [m["value"] for m in spec["datasets"]["marks"]] == [core.cutoff_score]
    assert "chosen scheme" not in str(spec)
    zoom, _ = np.histogram(core.space_scores, bins=30)
    zoomed = dash.outputs.zoom.spec  # a chart of its own, beside or below the full histogram
    assert [r["count"] for r in zoomed["datasets"]["zoom"]] == zoom.tolist()
    assert [m["value"] for m in zoomed["datasets"]["marks"]] == [core.cutoff_score]


def test_weight_slider_rescores_without_rebuilding(dash, dickinson):
    candidates = dash.state.design.candidates
    dash.weights.sliders["inciis"].value = 3.0
    core = _core(dickinson, weights=[1, 3, 1, 1, 1])
    assert dash.state.design.candidates is candidates  # re-scored, not rebuilt
    np.testing.assert_allclose(dash.state.design.scores, core.scores)
    assert dash.state.kept == len(core.space_index)
    expected = smd_distribution(core)
    pd.testing.assert_frame_equal(dash.state.smd, expected)
    assert f"{expected.loc['inciis (mean (sd))', '95th percentile |SMD|']:.3f}" in dash.outputs.smd.value
    dash.weights.sliders["inciis"].value = 1.0


def test_cutoff_metric_and_best_n(dash, dickinson):
    dash.cutoff.quantile.value = 0.05
    assert dash.state.kept == len(_core(dickinson, cutoff=0.05).space_index)
    dash.arms.metric.value = "l1"
    assert dash.state.kept == len(_core(dickinson, cutoff=0.05, metric="l1").space_index)
    assert dash.cutoff.n_best.disabled and not dash.cutoff.quantile.disabled
    dash.cutoff.mode.value = True
    assert dash.cutoff.quantile.disabled and not dash.cutoff.n_best.disabled
    dash.cutoff.n_best.value = 30
    assert dash.state.kept == 30
    assert any("permutation test" in m for m in dash.state.warnings)  # 30 < 40 schemes
    assert "permutation test" in dash.cutoff.warnings.value
    dash.cutoff.mode.value = False
    dash.arms.metric.value = "l2"
    dash.cutoff.quantile.value = 0.1
    assert dash.state.kept == 1288


def test_structural_change_rebuilds_and_stratify(dash, dickinson):
    dash.arms.n_treat.value = 6
    assert len(dash.state.design.scores) == 8008
    dash.arms.n_treat.value = 8
    dash.weights.stratify["location"].value = True
    core = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                             stratify=["location"], seed=12345)
    assert dash.state.kept == len(core.space_index)
    dash.weights.stratify["location"].value = False
    assert dash.state.kept == 1288


def test_draw_offers_downloads_equal_to_the_api(dash, dickinson):
    _draw(dash, 12345)
    a = dash.state.allocation
    np.testing.assert_array_equal(a.arm, _core(dickinson).draw(12345).arm)  # the typed seed picks the scheme
    assert "Draw 1 of this session" in dash.draw.result.value and "typed" in dash.draw.result.value
    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.draw.downloads.value))
    assert set(links) == {"allocation_seed12345.csv", "constrained_space_seed12345.csv",
                          "constrained_space_seed12345.json.gz", "audit_seed12345.json",
                          "randomization_report_seed12345.html", "input_data_seed12345.csv",
                          "baseline_table_seed12345.csv", "baseline_table_seed12345.docx"}
    csv = base64.b64decode(links["allocation_seed12345.csv"]).decode()
    assert csv.splitlines()[0] == "county,arm"
    assert [int(r.split(",")[1]) for r in csv.splitlines()[1:]] == a.arm.tolist()
    report = base64.b64decode(links["randomization_report_seed12345.html"]).decode()
    assert "<svg" in report and dash.state.design.data_hash() in report and "12345" in report
    assert "draw 1 of this session" in report and "No earlier draw in this session" in report
    space = base64.b64decode(links["constrained_space_seed12345.csv"]).decode().splitlines()
    assert len(space) == 1289 and sum(int(r.split(",")[0]) for r in space[1:]) == 1
    # the labelled JSON space beside it: the same schemes, and the SHA-256 the commitment showed
    from crt_widgets.core.io.spacehash import sha256_of_space
    from crt_widgets.widgets.analysis import read_uploaded_space

    labelled = read_uploaded_space(base64.b64decode(links["constrained_space_seed12345.json.gz"]), "space.json.gz")
    assert labelled.chosen == a.space_position and sha256_of_space(labelled) == dash.state.space_sha256
    assert dash.state.space_sha256 in dash.draw.commitment.value
    # a change of inputs clears the current draw; it stays listed and downloadable
    dash.cutoff.quantile.value = 0.2
    assert dash.state.allocation is None and "Earlier draws (1)" in dash.draw.earlier.value
    _draw(dash, 12345)
    _draw(dash, 12345)  # the same seed again: the same scheme, and a draw of its own in the log
    assert "Earlier draws (2)" in dash.draw.earlier.value and len(dash.state.history) == 3
    assert [e["draw"] for e in dash.state.draws] == [1, 2, 3]
    earlier = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.draw.earlier.value))
    assert base64.b64decode(earlier["allocation_seed12345.csv"]).decode() == csv  # the first draw, still there
    report = _files(dash.draw.downloads.value)["randomization_report_seed12345.html"].decode()
    assert "draw 3 of this session" in report and "Earlier draws of this session (2)" in report
    dash.cutoff.quantile.value = 0.1


def test_draw_is_a_confirmed_act_with_a_named_seed(dickinson):
    dash = DesignDashboard(example="dickinson", offline=False)
    assert dash.draw.confirmation.layout.display == "none"
    dash.draw.seed.value = ""  # no seed typed: fresh entropy from the operating system at the draw
    dash.draw.button.click()
    pending = dash.state.pending
    assert pending["seed_source"] == "entropy" and pending["seed"] >= 2**64  # 128 bits of entropy
    assert f"<b class='crt-pending-seed'>{pending['seed']}</b>" in dash.draw.question.value
    assert "operating system" in dash.draw.question.value and dash.draw.confirmation.layout.display is None
    assert dash.state.allocation is None  # nothing drawn before the confirmation
    dash.draw.cancel.click()
    assert dash.state.pending is None and dash.state.draws == [] and dash.draw.confirmation.layout.display == "none"
    dash.draw.button.click()
    second = dash.state.pending["seed"]
    assert second != pending["seed"]  # a new seed at each proposal
    dash.cutoff.quantile.value = 0.2  # a new space: the confirmation named the old one
    assert dash.state.pending is None
    dash.draw.button.click()
    dash.draw.confirm.click()
    a = dash.state.allocation
    np.testing.assert_array_equal(a.arm, _core(dickinson, cutoff=0.2).draw(a.seed).arm)
    assert dash.state.draws[0]["seed_source"] == "entropy" and dash.state.draws[0]["seed"] == a.seed
    dash.draw.seed.value = "12a"  # a bad seed: a message, nothing proposed
    dash.draw.button.click()
    assert dash.state.pending is None and "draw seed: expected a whole number" in dash.draw.question.value


def test_bad_inputs_show_in_the_panel(dash):
    dash.arms.n_treat.value = 40
    assert dash.state.design is None and dash.state.error.startswith("intervention clusters: must be between 1 and 15")
    assert "intervention clusters" in dash.cutoff.warnings.value and "intervention clusters" in dash.data.message.value
    assert "n_treat" not in dash.cutoff.warnings.value + dash.data.message.value  # the program's name stays off screen
    dash.arms.n_treat.value = 8
    assert dash.state.error == "" and dash.state.kept == 1288
    dash.covariates.categorical.value = ("incomecat",)  # location (text) no longer categorical
    assert "location" in dash.state.error and "not numeric" in dash.state.error
    dash.covariates.categorical.value = ("location", "incomecat")
    assert dash.state.error == ""


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"\xff\xfe\x00\x01binary", "not a text CSV"),
    (b"just one column\n1\n2\n", "at least two columns"),
    (b'a,b\n1,"unterminated\n', "could not be read"),
    (b"   \n\n", "empty"),
    (b"PK\x03\x04\x00\x00binary spreadsheet", "not a text CSV"),
    (b"1,2,3\n4,5,6\n7,8,9\n", "should name the columns"),  # no header row
    (b"site,size\n1,2\n3,4\n", None),  # the smallest good file
    (b"county,,\n1,2,3\n2,5,6\n", "should name the columns"),
])
def test_malformed_uploads_are_messages(content, match):
    if match is None:
        assert read_uploaded_csv(content, "upload.csv").to_dict("list") == {"site": [1, 3], "size": [2, 4]}
        return
    with pytest.raises(ValueError, match=match):
        read_uploaded_csv(content, "upload.csv")


def test_spreadsheet_exports_are_read(dickinson):
    """Semicolon-separated with decimal commas (European Excel), tab-separated, cp1252 text."""
    semicolon = dickinson.to_csv(index=False, sep=";", decimal=",").encode()
    pd.testing.assert_frame_equal(read_uploaded_csv(semicolon, "eu.csv"), dickinson)
    tab = dickinson.to_csv(index=False, sep="\t").encode()
    pd.testing.assert_frame_equal(read_uploaded_csv(tab, "tab.csv"), dickinson)
    latin = "site,région\n1,Orléans\n2,Besançon\n".encode("cp1252")
    assert read_uploaded_csv(latin, "fr.csv")["région"].tolist() == ["Orléans", "Besançon"]


def test_bad_data_through_the_upload_is_a_message(dickinson):
    dash = DesignDashboard(example=None, offline=False)
    duplicated = dickinson.assign(county=[1, 1] + list(range(3, 17)))
    dash.data._on_upload({"new": ({"name": "dup.csv", "content": duplicated.to_csv(index=False).encode()},)})
    assert dash.state.cluster_id == "county"  # the id column is kept, and its problem reported
    assert "duplicate cluster ids" in dash.data.message.value and dash.state.design is None
    missing = dickinson.assign(inciis=dickinson["inciis"].where(dickinson["county"] != 3))
    dash.data._on_upload({"new": ({"name": "nan.csv", "content": missing.to_csv(index=False).encode()},)})
    assert "missing value" in dash.data.message.value and "inciis" in dash.data.message.value
    dash.data._on_upload({"new": ({"name": "ok.csv", "content": dickinson.to_csv(index=False).encode()},)})
    assert dash.data.message.value == "" and dash.state.design is not None


def test_all_weights_zero_is_simple_randomization(dickinson):
    state = DesignState()
    state.load(dickinson, "Dickinson", cluster_id="county", covariates=["inciis", "hispanic"], n_treat=8)
    state.weights = {"inciis": 0.0, "hispanic": 0.0}
    assert state.kept == 12870 and np.all(state.design.scores == 0)
    assert any("simple (unconstrained) randomization" in m for m in state.warnings)
    state.weights = {"inciis": 1.0, "hispanic": 0.0}
    assert not any("simple" in m for m in state.warnings)
    core = ConstrainedDesign(dickinson, ["inciis", "hispanic"], 8, cluster_id="county", weights=[1, 0], seed=12345)
    assert state.kept == len(core.space_index)


def test_example_dropdown_and_progress_indicator(dickinson):
    dash = DesignDashboard(example="dickinson", offline=False)
    assert dash.data.example.value == "dickinson"
    shown = []
    dash.outputs.progress.observe(lambda c: shown.append(c["new"]), names="value")
    dash.arms.n_treat.value = 7  # a structural change: the space is rebuilt behind a progress note
    assert "Building the randomization space" in shown[0] and shown[-1] == ""
    assert len(dash.state.design.scores) == 11440
    dash.data.set_data(dickinson, "my file")
    assert dash.data.example.value == ""


def test_upload_widget_path(dickinson):
    dash = DesignDashboard(example=None, offline=False)
    dash.data.upload.value = ({"name": "bad.csv", "type": "text/csv", "size": 4, "content": memoryview(b"x\n1\n"),
                               "last_modified": dt.datetime(2026, 11, 23)},)  # as from the browser
    assert "at least two columns" in dash.data.message.value
    assert dash.data.upload.value == ()  # the same file can be chosen again
    dash.data._on_upload({"new": ({"name": "ok.csv", "content": dickinson.to_csv(index=False).encode()},)})
    assert dash.state.cluster_id == "county" and dash.state.design is not None
    assert "ok.csv" in dash.data.preview.value


def test_examples_load(dash):
    for key in ("edlead", "callcenter", "dickinson"):
        dash.data.example.value = key
        assert dash.state.error == "" and dash.state.kept >= 2, key
    assert dash.state.kept == 1288


def test_state_on_its_own(dickinson):
    state = DesignState()
    state.load(dickinson[["county", "inciis", "hispanic"]], "two covariates")
    assert state.cluster_id == "county" and state.covariates == ["inciis", "hispanic"]
    assert state.kept == len(ConstrainedDesign(dickinson, ["inciis", "hispanic"], 8, cluster_id="county").space_index)
    state.load(pd.DataFrame({"only": [1, 2]}), "bad")
    assert "two columns" in state.error


def test_multi_arm_designs_in_the_dashboard():
    from crt_widgets.core.randomization.multiarm import MultiArmDesign
    from crt_widgets.datasets import simulate_edlead

    dash = DesignDashboard(example="edlead", offline=False)
    dash.arms.n_arms.value = 8
    dash.weights.stratify["health_system"].value = True
    eds = simulate_edlead(seed=2026)
    state = dash.state
    core = MultiArmDesign(eds, state.covariates, 8, categorical=state.categorical, cluster_id=state.cluster_id,
                          strata="health_system", size=state.size, seed=state.seed,
                          weights=[state.weights[c] for c in state.covariates], cutoff=0.1)
    assert state.error == "" and state.kept == len(core.space_index)
    np.testing.assert_allclose(state.design.scores, core.scores)
    assert dash.arms.n_treat.disabled
    pd.testing.assert_frame_equal(state.smd, smd_distribution(core))  # the largest SMD over pairs of arms
    _draw(dash, 12345)
    np.testing.assert_array_equal(state.allocation.arm, core.draw(12345).arm)
    named = dict(zip(state.arm_names, state.allocation.arm_sizes()))
    assert named == {"Control": 10, "Intervention A": 10, **{f"Intervention {c}": 10 for c in "BCDEFG"}}
    assert "Control: " in dash.draw.result.value and "Intervention G: " in dash.draw.result.value
    assert "Could not" not in dash.draw.downloads.value
    # the messages and the heatmap's neutral colour come from the core's numbers
    drawn = core.draw(12345)
    assert (f"Scheme {drawn.space_position + 1:,} of the {len(core.space_index):,} in the constrained space "
            f"(the audit file counts from 0: position {drawn.space_position:,}) was drawn") in dash.draw.result.value
    assert f"balance score {drawn.score:.3f}" in dash.draw.result.value
    assert f"cutoff score {core.cutoff_score:.3f}" in dash.outputs.messages.value
    heat = dash.outputs.heatmap.spec
    assert heat["encoding"]["color"]["scale"]["domain"][1] == pytest.approx(core.validity.constrained.expected_fraction)
    assert len(heat["datasets"]["pairs"]) == 80 * 79
    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.draw.downloads.value))
    space = base64.b64decode(links["constrained_space_seed12345.csv"]).decode().splitlines()
    assert space[0].startswith("scheme,chosen,score,") and len(space) == state.kept + 1
    # a weight change re-scores the same candidates: equal to a fresh core design with the new weights
    candidates = state.design.candidates
    dash.weights.sliders["volume"].value = 3.0
    assert state.design.candidates is candidates
    fresh = MultiArmDesign(eds, state.covariates, 8, categorical=state.categorical, cluster_id=state.cluster_id,
                           strata="health_system", size=state.size, seed=state.seed,
                           weights=[state.weights[c] for c in state.covariates], cutoff=0.1)
    np.testing.assert_allclose(state.design.scores, fresh.scores)
    assert state.kept == len(fresh.space_index) and state.allocation is None
    dash.weights.stratify["location"].value = True  # two stratification columns: a message, not a traceback
    assert "one stratification column" in state.error


def test_dashboard_command_arguments(tmp_path):
    from crt_widgets.cli import main
    from crt_widgets.commands.dashboard import voila_command, voila_environment

    assert main(["dashboard", "--notebook", str(tmp_path / "missing.ipynb")]) == 2
    cmd = voila_command(tmp_path / "x.ipynb", 9999, "127.0.0.1")
    assert "--Voila.ip=127.0.0.1" in cmd and "--template=crt-offline" in cmd and "--no-browser" in cmd
    assert cmd[1:3] == ["-m", "crt_widgets.commands._voila"]  # Voila with the raised websocket message limit
    template = voila_environment()["JUPYTER_PATH"].split(":")[0]
    assert (tmp_path.__class__(template) / "voila" / "templates" / "crt-offline" / "index.html.j2").exists()


def test_smd_highlighting_follows_the_core_numbers(dickinson):
    import re as _re

    dash = DesignDashboard(example="dickinson", offline=False)
    _draw(dash, 12345)
    table = _core(dickinson).draw(12345).baseline_table
    html_ = dash.draw.result.value
    high = {row for row, v in table.attrs["smd"].items() if abs(v) > 0.2}
    mid = {row for row, v in table.attrs["smd"].items() if 0.1 < abs(v) <= 0.2}
    assert high and mid  # the paper's example has both kinds
    shown_high = _re.findall(r'<th>([^<]+)</th>\s*<td>[^<]*</td>\s*<td>[^<]*</td>\s*<td><span class="crt-smd-high"', html_)
    shown_mid = _re.findall(r'<th>([^<]+)</th>\s*<td>[^<]*</td>\s*<td>[^<]*</td>\s*<td><span class="crt-smd-mid"', html_)
    assert set(shown_high) == high and set(shown_mid) == mid


def test_tiny_space_warnings_equal_the_core(dickinson):
    dash = DesignDashboard(example="dickinson", offline=False)
    dash.cutoff.mode.value = True
    dash.cutoff.n_best.value = 2
    core = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                             n_best=2, seed=12345)
    assert dash.state.warnings == core.diagnostics
    assert any("always in the same arm" in m for m in core.diagnostics)
    assert any("never in the same arm" in m for m in core.diagnostics)
    for message in core.diagnostics:
        assert html.escape(message) in dash.cutoff.warnings.value
    dash.cutoff.mode.value = False
    dash.cutoff.quantile.value = 0.001  # 13 of 12,870 schemes: too few for a permutation test at 5%
    assert dash.state.kept == len(_core(dickinson, cutoff=0.001).space_index) < 40
    assert "permutation test" in dash.cutoff.warnings.value


def test_too_small_to_randomize_is_a_message():
    tiny = pd.DataFrame({"site": [1, 2, 3], "size": [10.0, 20.0, 30.0]})
    dash = DesignDashboard(example=None, offline=False)
    dash.data.set_data(tiny, "three sites")
    assert dash.state.design is None and "at least 2 are needed to randomize" in dash.cutoff.warnings.value
    assert "Fix the inputs" in dash.draw.result.value
    dash.draw.button.click()  # nothing to draw: no exception, nothing recorded
    assert dash.state.allocation is None and dash.state.history == []


def test_cutoff_slider_records_three_significant_digits(dickinson):
    dash = DesignDashboard(example="dickinson", offline=False)
    dash.cutoff.quantile.value = 10 ** -1.30103  # where the log slider puts a typed 0.05
    assert dash.state.cutoff == 0.05
    assert dash.state.kept == len(_core(dickinson, cutoff=0.05).space_index)
    dash.cutoff.quantile.value = 10 ** -0.5229  # 0.3 on the slider's grid
    assert dash.state.cutoff == 0.3 and dash.state.design.parameters()["cutoff"] == 0.3


def test_enumerating_an_astronomical_space_is_refused_with_a_message():
    dash = DesignDashboard(example="edlead", offline=False)  # 80 EDs: about 1e23 schemes
    dash.arms.sampling.value = "enumerate"
    assert dash.state.design is None and "more than the 20,000,000" in dash.state.error
    assert html.escape("choose 'sample'") in dash.cutoff.warnings.value
    dash.arms.sampling.value = "sample"
    dash.arms.size.value = 30_000_000
    assert "at most 20,000,000" in dash.state.error
    dash.arms.size.value = 50_000
    assert dash.state.error == "" and dash.state.kept == 5000


@pytest.mark.parametrize("field,value,match", [
    ("seed", -3, "sampling seed: expected a whole number of at least 0"),
    ("size", 0, "sample size: must be a whole number of at least 2"),
    ("n_treat", 0, "intervention clusters: must be between 1 and 15"),
])
def test_bad_settings_are_messages_and_recover(field, value, match):
    dash = DesignDashboard(example="dickinson", offline=False)
    dash.arms.sampling.value = "sample"  # so that the sample size matters
    kept = dash.state.kept
    setattr(getattr(dash.arms, field), "value", value)
    assert dash.state.design is None and match in dash.state.error and match in dash.data.message.value
    setattr(getattr(dash.arms, field), "value", {"seed": 12345, "size": 50_000, "n_treat": 8}[field])
    assert dash.state.error == "" and dash.state.kept == kept


def test_dashboard_command_moves_off_a_busy_port():
    import socket

    from crt_widgets.commands.dashboard import free_port, voila_command

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        chosen = free_port("127.0.0.1", taken)
        assert chosen is not None and chosen != taken
    assert "--Voila.port_retries=0" in voila_command(Path("x.ipynb"), chosen, "127.0.0.1")


def test_records_folder_keeps_every_draw(tmp_path, dickinson):
    import json

    from crt_widgets.core.io.spacehash import sha256_of_space

    dash = DesignDashboard(example="dickinson", offline=False, records_dir=str(tmp_path))
    _draw(dash, 12345)
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) == 1 and folders[0].name.endswith("_draw1_seed12345")
    saved = pd.read_csv(folders[0] / "allocation_seed12345.csv")
    np.testing.assert_array_equal(saved["arm"].to_numpy(), _core(dickinson).draw(12345).arm)
    assert {p.name for p in folders[0].iterdir()} == {"allocation_seed12345.csv", "constrained_space_seed12345.csv",
                                                     "constrained_space_seed12345.json.gz", "audit_seed12345.json",
                                                     "randomization_report_seed12345.html", "input_data_seed12345.csv",
                                                     "baseline_table_seed12345.csv", "baseline_table_seed12345.docx",
                                                     "draw.json"}
    assert f"files saved in {folders[0]}" in html.unescape(dash.draw.downloads.value)
    log = [json.loads(line) for line in (tmp_path / "draws.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["seed"] == 12345 and log[0]["seed_source"] == "typed"
    # the dashboard records its weights (the API's default None is the same rule, recorded differently)
    assert log[0]["space_sha256"] == sha256_of_space(_core(dickinson, weights=[1.0] * 5)) == dash.state.space_sha256
    assert log[0]["space_sha256"] != sha256_of_space(_core(dickinson, weights=[1.0, 1.0, 1.0, 1.0, 2.0]))
    assert log[0]["folder"] == folders[0].name
    assert log[0]["allocation"]["1"] == dash.state.allocation.treated_clusters
    assert log[0]["settings"]["cutoff"] == 0.1 and log[0]["package_version"]
    first_line = (tmp_path / "draws.jsonl").read_bytes()
    dash.arms.seed.value = 7  # the design's (sampling) seed: a new space, drawn from with a seed of its own
    _draw(dash, 12345)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
    assert (tmp_path / "draws.jsonl").read_bytes().startswith(first_line)  # appended, never rewritten
    # a folder that cannot be written: the draw stands, downloadable, with a note
    blocked = tmp_path / "file"
    blocked.write_text("")
    dash.state.records_dir = str(blocked)
    dash.arms.seed.value = 8
    _draw(dash, 8)
    assert dash.state.allocation is not None and "Allocation (CSV)" in dash.draw.downloads.value
    assert "Could not save a copy on disk" in dash.draw.downloads.value


def test_dashboard_command_passes_the_records_folder(tmp_path, monkeypatch):
    from crt_widgets.commands.dashboard import voila_environment
    from crt_widgets.widgets.dashboard import RECORDS_VARIABLE

    monkeypatch.delenv(RECORDS_VARIABLE, raising=False)
    assert voila_environment(tmp_path)[RECORDS_VARIABLE] == str(tmp_path.resolve())
    assert RECORDS_VARIABLE not in voila_environment()  # no --records: no folder


def test_an_uploaded_file_opens_the_covariates_tab(dickinson):
    dash = DesignDashboard(example="dickinson", offline=False)
    assert dash.tabs.selected_index == 0  # an example: straight to weights and cutoff
    dash.data._on_upload({"new": ({"name": "mine.csv", "content": dickinson.to_csv(index=False).encode()},)})
    assert dash.tabs.selected_index == 1 and "mine.csv" in dash.data.preview.value
    dash.data.example.value = "callcenter"
    assert dash.tabs.selected_index == 0


def test_covariate_picker_keeps_state_and_lists_in_step(dickinson):
    dash = DesignDashboard(example="dickinson", offline=False)
    dash.covariates.covariates.value = ()
    assert "choose at least one covariate" in dash.state.error and "choose at least one" in dash.data.message.value
    dash.covariates.covariates.value = ("inciis", "hispanic")
    assert dash.state.kept == len(ConstrainedDesign(dickinson, ["inciis", "hispanic"], 8,
                                                    cluster_id="county").space_index)
    assert list(dash.weights.sliders) == ["inciis", "hispanic"]
    dash.covariates.cluster_id.value = "inciis"  # a covariate becomes the id: no longer balanced on
    assert dash.state.covariates == ["hispanic"] and list(dash.covariates.covariates.value) == ["hispanic"]
    assert "duplicate cluster ids in 'inciis'" in dash.state.error
    dash.covariates.cluster_id.value = "county"
    dash.covariates.covariates.value = ("hispanic", "incomecat")
    assert "incomecat" in dash.covariates.categorical.options
    dash.covariates.categorical.value = ("incomecat",)
    assert list(dash.weights.stratify) == ["incomecat"]  # a stratify toggle for the categorical one only
    core = ConstrainedDesign(dickinson, ["hispanic", "incomecat"], 8, categorical=["incomecat"], cluster_id="county",
                             seed=12345)
    assert dash.state.error == "" and dash.state.kept == len(core.space_index)


def test_large_trial_skips_the_pair_heatmap_but_not_the_numbers():
    rng = np.random.default_rng(3)
    sites = pd.DataFrame({"site": [f"S{i:03d}" for i in range(150)], "size": rng.normal(100, 20, 150).round(1),
                          "rate": rng.uniform(0, 1, 150).round(3)})
    dash = DesignDashboard(example=None, offline=False)
    dash.state.load(sites, "150 sites", size=2000)
    core = ConstrainedDesign(sites, ["size", "rate"], 75, cluster_id="site", size=2000, seed=12345)
    assert dash.state.kept == len(core.space_index)
    spec = dash.outputs.heatmap.spec
    assert spec["mark"]["type"] == "text" and "150 clusters" in spec["data"]["values"][0]["t"]
    assert "pairs in the same arm: share of schemes" in dash.outputs.validity.value and dash.outputs.problem.value == ""


def _files(links_html: str) -> dict[str, bytes]:
    return {name: base64.b64decode(b64) for name, b64 in
            re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', links_html)}


@pytest.mark.parametrize("example,settings", [
    ("dickinson", {"cutoff": 0.05, "weights": {"inciis": 2.5}, "stratify": ["location"]}),
    ("edlead", {"n_arms": 8, "stratify": ["health_system"], "cutoff": 0.2}),
])
def test_report_code_reproduces_the_draw_from_the_input_file(example, settings, tmp_path, monkeypatch):
    import hashlib
    import json

    from crt_widgets.widgets.report import reproduce_code

    dash = DesignDashboard(example=example, offline=False)
    for key, value in settings.items():
        setattr(dash.state, key, {**dash.state.weights, **value} if key == "weights" else value)
    assert dash.state.error == ""
    seed = 4242
    _draw(dash, seed)
    files = _files(dash.draw.downloads.value)
    data = files[f"input_data_seed{seed}.csv"]
    audit = json.loads(files[f"audit_seed{seed}.json"])
    assert hashlib.sha256(data).hexdigest() == audit["data_sha256"]
    (tmp_path / f"input_data_seed{seed}.csv").write_bytes(data)
    monkeypatch.chdir(tmp_path)
    code = reproduce_code(dash.state.allocation)
    assert f"allocation = design.draw(seed={seed})" in code  # the app draws with the seed named at the draw
    assert html.escape(code) in files[f"randomization_report_seed{seed}.html"].decode()
    namespace: dict = {}
    exec(code.replace("print(allocation.allocation)", ""), namespace)
    rerun = namespace["allocation"]
    assert rerun.score == dash.state.allocation.score
    pd.testing.assert_frame_equal(rerun.allocation, dash.state.allocation.allocation)
    assert rerun.allocation.to_csv(index=False).encode() == files[f"allocation_seed{seed}.csv"]


def test_best_n_larger_than_the_space_is_a_message():
    dash = DesignDashboard(example="dickinson", offline=False)
    dash.cutoff.mode.value = True
    dash.cutoff.n_best.value = 20_000  # more than the 12,870 schemes
    assert dash.state.design is None and "not smaller than the 12,870 candidate schemes" in dash.cutoff.warnings.value
    dash.cutoff.n_best.value = 500
    assert dash.state.error == "" and dash.state.kept == 500


def test_weights_set_from_code_rescore_once(dickinson):
    dash = DesignDashboard(example="dickinson", offline=False)
    designs = []
    dash.state.observe(lambda c: designs.append(c["new"]), names="design")
    dash.state.weights = {**dash.state.weights, "inciis": 2.0, "hispanic": 3.0}
    assert len(designs) == 1  # no intermediate design with half the new weights
    assert dash.weights.sliders["inciis"].value == 2.0 and dash.weights.sliders["hispanic"].value == 3.0
    np.testing.assert_allclose(dash.state.design.scores, _core(dickinson, weights=[1, 2, 1, 3, 1]).scores)
    dash.state.stratify = ["location", "incomecat"]
    assert len(designs) == 2 and dash.weights.stratify["incomecat"].value


# -- the one app ----------------------------------------------------------------------------------------------
def _everything_shown(widget) -> str:
    """Every text a widget tree sends to the browser: HTML values, descriptions, options, chart specs."""
    import json

    import ipywidgets as w

    seen, parts, stack = set(), [], [widget]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for name in current.keys:
            value = getattr(current, name)
            if isinstance(value, w.Widget):
                stack.append(value)
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, w.Widget) for v in value):
                stack.extend(value)
            elif isinstance(value, (str, int, float)):
                parts.append(str(value))
            elif isinstance(value, (dict, list, tuple)):
                parts.append(json.dumps(value, default=str))
    return "\n".join(parts)


def test_the_app_conceals_the_allocation_until_the_draw(dickinson):
    from crt_widgets.widgets.app import TrialApp

    app = TrialApp(offline=False)
    assert [app.sections.get_title(i) for i in range(3)] == ["Design", "Analysis", "Power"]
    before = _everything_shown(app.widget)
    # the walk sees every section
    assert "Balance across the constrained space" in before and "Power against intra-cluster correlation" in before
    allocation = _core(dickinson, weights=[1.0] * 5).draw(20240611)
    treated = ", ".join(map(str, allocation.treated_clusters))
    _draw(app.design, 20240611)
    after = _everything_shown(app.widget)
    np.testing.assert_array_equal(app.design.state.allocation.arm, allocation.arm)
    assert f"Intervention: {treated}" in after and f"Intervention: {treated}" not in before
    assert f"score {allocation.score:.3f}" in after and f"{allocation.score:.3f}" not in before
    assert "chosen scheme" in after and "chosen scheme" not in before  # the histogram's mark, once drawn
    # the analysis follows the draw in the same session: no file in between
    assert app.analysis.state.space is app.design.state.allocation
    assert "seed 20240611" in app.analysis.sources.value


def test_the_app_analyses_the_outcomes_over_the_allocation_drawn(dickinson):
    from crt_widgets import permutation_test
    from crt_widgets.datasets import load_dickinson_outcome
    from crt_widgets.widgets.app import TrialApp

    app = TrialApp(offline=False)
    _draw(app.design, 31)
    outcomes = load_dickinson_outcome()
    content = outcomes.to_csv(index=False).encode()
    app.analysis.upload_data.value = ({"name": "children.csv", "type": "text/csv", "size": len(content),
                                       "content": memoryview(content), "last_modified": dt.datetime(2026, 12, 1)},)
    s = app.analysis.state
    assert s.cluster == "county" and s.outcome == "outcome" and s.covariates == PAPER_COVARIATES
    expected = permutation_test(outcomes, "outcome", "county", app.design.state.allocation, PAPER_COVARIATES,
                                PAPER_CATEGORICAL, "binomial")
    assert s.result.permutation.p_value == expected.p_value and s.result.permutation.n_schemes == 1288
    assert "Li et al. 2016, 2017" in app.analysis.adjust_note.value
    _draw(app.design, 32)  # a second draw: the analysis follows it
    assert s.space is app.design.state.allocation and s.result.permutation.n_schemes == 1288


def test_stale_design_results_are_greyed_beside_the_message():
    dash = DesignDashboard(example="dickinson", offline=False)
    assert "crt-stale" not in dash.outputs.results._dom_classes
    dash.arms.n_treat.value = 40
    assert "crt-stale" in dash.outputs.results._dom_classes
    assert "intervention clusters: must be" in dash.outputs.problem.value and "last valid inputs" in dash.outputs.problem.value
    assert dash.draw.commitment.value == "" and dash.draw.button.disabled
    dash.arms.n_treat.value = 8
    assert "crt-stale" not in dash.outputs.results._dom_classes and dash.outputs.problem.value == ""


def test_app_notebook_is_generated_packaged_and_served():
    import argparse

    import nbformat

    from crt_widgets.commands import dashboard as command
    from crt_widgets.widgets.notebook import PACKAGED_APP, app_notebook

    expected = [c.source for c in app_notebook().cells]
    for path in (Path(__file__).parents[1] / "notebooks" / "app.ipynb", PACKAGED_APP):
        assert [c.source for c in nbformat.read(str(path), as_version=4).cells] == expected
    served = []
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--port", "9"])
    original = command.os.execve
    command.os.execve = lambda path, argv, env: served.append(argv)
    try:
        command.run(args)
    finally:
        command.os.execve = original
    assert served and served[0][3] == str(PACKAGED_APP)


def test_the_server_takes_uploads_up_to_the_limit():
    from crt_widgets.commands._voila import FRAMING_BYTES, UPLOAD_LIMIT_BYTES, server_settings

    assert server_settings() == {"websocket_max_message_size": UPLOAD_LIMIT_BYTES + FRAMING_BYTES}
    assert UPLOAD_LIMIT_BYTES == 200_000_000 > 10 * 1024 * 1024  # above Jupyter's default of 10 MiB
    template = (Path(__file__).parents[1] / "crt_widgets" / "widgets" / "share" / "voila" / "templates"
                / "crt-offline" / "index.html.j2").read_text()
    assert "crt-upload-limit-" in template and "readAsArrayBuffer" in template


def test_a_draw_whose_files_fail_is_still_logged(tmp_path, monkeypatch):
    import json

    from crt_widgets.widgets import downloads

    def broken(*args, **kwargs):
        raise RuntimeError("no charts today")

    dash = DesignDashboard(example="dickinson", offline=False, records_dir=str(tmp_path))
    monkeypatch.setattr(downloads, "allocation_files", broken)
    dash.state.draw(5)
    (entry,) = [json.loads(line) for line in (tmp_path / "draws.jsonl").read_text().splitlines()]
    assert entry["seed"] == 5 and entry["allocation"]["1"] == dash.state.allocation.treated_clusters
    assert dash.state.saved_to == "not saved: the files could not be made (no charts today)"
    assert "Could not save a copy on disk" in dash.draw.downloads.value
    assert "Could not prepare the downloads: no charts today" in dash.draw.downloads.value
    dash.state.draw(6)  # the first draw moves to the earlier draws, listed with its problem
    assert "Draw 1:" in dash.draw.earlier.value and "Could not prepare the downloads" in dash.draw.earlier.value
    assert len((tmp_path / "draws.jsonl").read_text().splitlines()) == 2


def test_a_design_upload_above_the_limit_is_a_message(dickinson):
    dash = DesignDashboard(example="dickinson", offline=False)
    dash.data.upload.value = ({"name": "census.csv", "type": "text/csv", "size": 250_000_000,
                               "content": memoryview(b"not sent"), "last_modified": dt.datetime(2026, 12, 1)},)
    assert "census.csv is 250.0 MB, more than the 200 MB one upload can carry" in dash.data.message.value
    assert dash.state.kept == 1288  # the design shown still stands
    assert "crt-upload-limit-200000000" in dash.data.upload._dom_classes


def test_the_commitment_shows_its_hash_even_without_its_file():
    dash = DesignDashboard(example="dickinson", offline=False)
    commitment = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.draw.commitment.value))
    import json

    record = json.loads(base64.b64decode(commitment["space_commitment.json"]))
    assert record["space_sha256"] == dash.state.space_sha256 and record["n_schemes"] == 1288
    assert record["settings"] == json.loads(json.dumps(dash.state.design.parameters()))

    def broken(design, digest):
        raise OSError("no room")

    dash.draw._commitment = broken
    dash.cutoff.quantile.value = 0.2
    assert dash.state.space_sha256 in dash.draw.commitment.value
    assert "Could not prepare the commitment file: no room" in dash.draw.commitment.value


def test_the_seed_note_says_what_draw_will_do():
    dash = DesignDashboard(example="dickinson", offline=False)
    assert "operating system's entropy" in html.unescape(dash.draw.seed_note.value)
    dash.draw.seed.value = "2024"
    assert "Draw will use seed 2024 (typed)." in dash.draw.seed_note.value
    dash.draw.seed.value = "20x"
    assert "draw seed: expected a whole number" in dash.draw.seed_note.value


def test_a_late_keystroke_renames_the_seed_of_the_confirmation():
    """Typing sends the seed a key at a time, and a click on Draw can overtake the last keys: the
    confirmation follows the text, so it always names the seed that will be used."""
    dash = DesignDashboard(example="dickinson", offline=False)
    dash.draw.seed.value = "3"
    dash.draw.button.click()
    assert dash.state.pending["seed"] == 3
    dash.draw.seed.value = "31"  # the last key arrives after the click
    assert dash.state.pending["seed"] == 31 and "<b class='crt-pending-seed'>31</b>" in dash.draw.question.value
    dash.draw.confirm.click()
    assert dash.state.allocation.seed == 31 and dash.state.draws[-1]["seed"] == 31
