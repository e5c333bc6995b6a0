"""The app's words without a browser: plain words on the screen (program names only in the downloads), arms
named by the user through every view, help and glossary, accessible names for every control, chart menus."""
from __future__ import annotations

import html
import json
import re

import ipywidgets as w
import numpy as np
import pandas as pd
import pytest
from support import PAPER_CATEGORICAL, PAPER_COVARIATES

from crt_widgets import ConstrainedDesign
from crt_widgets.datasets import load_dickinson, load_dickinson_outcome
from crt_widgets.widgets.accessibility import accessible_name, name_control
from crt_widgets.widgets.app import TrialApp
from crt_widgets.widgets.charts import permutation_histogram
from crt_widgets.widgets.embedding import embed_options
from crt_widgets.widgets.glossary import GLOSSARY, HELP, REFERENCES, glossary_html
from crt_widgets.widgets.report import allocation_report
from crt_widgets.widgets.state import DesignState
from crt_widgets.widgets.words import default_arm_names, parse_arm_names, setting_words

# the program's names the issue found on the screen; they belong in the downloaded files only
PROGRAM_WORDS = ["samecount", "samefrac", "diffcount", "difffrac", "n_treat", "samearmhi", "samearmlo",
                 "arm = 0", "arm = 1", "n_schemes None", "P(treatment)", "chosen_space_position", "ci_low",
                 "p_value"]
# a control's name must say which control it is
GENERIC = {"", "stratify", "upload", "n"}


def _widgets(root) -> list[w.Widget]:
    found, seen, stack = [], set(), [root]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        for name in current.keys:
            value = getattr(current, name)
            if isinstance(value, w.Widget):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                stack.extend(v for v in value if isinstance(v, w.Widget))
    return found


def _titles(spec) -> list[str]:
    if isinstance(spec, dict):
        return [str(v) for k, v in spec.items() if k == "title" and isinstance(v, str)] + \
            [t for v in spec.values() for t in _titles(v)]
    if isinstance(spec, list):
        return [t for v in spec for t in _titles(v)]
    return []


def visible_text(root) -> str:
    """What a user reads: the text of every HTML widget (tags, links' data and attributes left out), every
    label, option, placeholder and tooltip, and the charts' titles."""
    parts = []
    for widget in _widgets(root):
        if isinstance(widget, (w.HTML, w.HTMLMath, w.Label)):
            text = re.sub(r"<style.*?</style>", " ", widget.value, flags=re.S)
            parts.append(html.unescape(re.sub(r"<[^>]+>", " ", text)))
        for name in ("description", "tooltip", "placeholder"):
            value = getattr(widget, name, None)
            if isinstance(value, str):
                parts.append(value)
        for option in getattr(widget, "_options_labels", ()) or ():
            parts.append(str(option))
        if hasattr(widget, "spec") and isinstance(widget.spec, dict):
            parts.extend(_titles(widget.spec))
    return "\n".join(parts)


def _draw(dash, seed) -> None:
    dash.draw.seed.value = str(seed)
    dash.draw.button.click()
    dash.draw.confirm.click()


@pytest.fixture(scope="module")
def app():
    return TrialApp(offline=False)


def test_the_screen_says_it_in_words_and_the_downloads_keep_the_program_names(app):
    before = visible_text(app.widget)
    _draw(app.design, 2024)
    outcomes = load_dickinson_outcome()
    app.analysis.state.load(outcomes, "outcomes.csv", outcome="outcome", cluster="county")
    assert app.analysis.state.result is not None
    after = visible_text(app.widget)
    for word in PROGRAM_WORDS:
        assert word not in before and word not in after, word
    # the validity summary in words, with the numbers of cvcrand's table
    validity = app.design.state.design.validity.table()
    assert f"pairs in the same arm: share of schemes" in after
    assert f"{validity.loc['samefrac', 'Mean']:.3f}" in app.design.outputs.validity.value
    # the scheme drawn is counted from 1 on the screen and from 0 in the audit, and the screen says both
    allocation = app.design.state.allocation
    position = allocation.space_position
    assert (f"Scheme {position + 1:,} of the 1,288 in the constrained space (the audit file counts from 0: "
            f"position {position:,}) was drawn") in after
    # the downloads keep cvcrand's names and codes: the audit, the allocation CSV, the cvcrand space
    files = app.design.state.draw_files(1)
    audit = json.loads(next(content for name, (content, _, _) in files.items() if name.startswith("audit_")))
    assert audit["chosen_space_position"] == position and audit["parameters"]["n_treat"] == 8
    assert audit["parameters"]["samearmhi"] == 0.75
    assert audit["arm_names"] == {"0": "Control", "1": "Intervention"}
    csv = next(content for name, (content, _, _) in files.items() if name.startswith("allocation_"))
    assert csv.splitlines()[0] == "county,arm" and set(pd.read_csv(pd.io.common.StringIO(csv))["arm"]) == {0, 1}
    assert "95% CI from" in app.analysis.table.value
    results = re.search(r'download="analysis_results.csv" href="data:text/csv;base64,([^"]+)"', app.analysis.downloads.value)
    import base64

    assert base64.b64decode(results.group(1)).decode().splitlines()[0].startswith("method,effect,se,ci_low,ci_high")
    space = next(content for name, (content, _, _) in files.items() if name.endswith(".csv")
                 and name.startswith("constrained_space"))
    assert space.startswith('"SchemeChosen"')


def test_arm_names_flow_to_tables_charts_confirmation_report_and_power(app):
    state = app.design.state
    assert state.arm_names == ["Control", "Intervention"]
    state.arm_names_text = "Usual care, Text reminders"
    assert state.arm_names == ["Usual care", "Text reminders"] and state.arm_names_error == ""
    outputs = app.design.outputs
    assert "P(Text reminders)" in outputs.probabilities.value
    assert "assign 8 clusters to Text reminders and 8 to Usual care" in outputs.messages.value
    assert "Text reminders (8 clusters) against Usual care (8)" in app.power.analytic.answer.value
    assert [label for label, _ in app.analysis.alternative.options][1:] == [
        "Text reminders > Usual care", "Text reminders < Usual care"]
    # the confirmation names the arms before anything is drawn, and the draw keeps them
    app.design.draw.seed.value = "99"
    app.design.draw.button.click()
    assert '<span class="crt-pending-arms">Usual care and Text reminders</span>' in app.design.draw.question.value
    app.design.draw.confirm.click()
    allocation = state.allocation
    core = ConstrainedDesign(load_dickinson(), PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL,
                             cluster_id="county", weights=[1.0] * 5, seed=12345).draw(99)
    np.testing.assert_array_equal(allocation.arm, core.arm)
    result = app.design.draw.result.value
    assert "Text reminders: " + ", ".join(map(str, core.treated_clusters)) in result
    assert "Usual care: " in result
    assert "<th>Usual care</th>" in result and "<th>Text reminders</th>" in result  # the baseline table
    # the report and audit of this draw carry the names; renaming later does not rewrite them
    number = state.draws[-1]["draw"]
    state.arm_names_text = "A, B"
    files = state.draw_files(number)
    report = next(content for name, (content, _, _) in files.items() if name.endswith(".html"))
    assert "Usual care (0), Text reminders (1)" in report and "<th>Usual care</th>" in report
    audit = json.loads(next(content for name, (content, _, _) in files.items() if name.startswith("audit_")))
    assert audit["arm_names"] == {"0": "Usual care", "1": "Text reminders"}
    baseline = next(content for name, (content, _, _) in files.items() if name.startswith("baseline_table") and
                    name.endswith(".csv"))
    assert baseline.splitlines()[0] == "Characteristic,Usual care,Text reminders,Standardized mean difference"
    # the analysis of the draw names the groups in the chart
    app.analysis.state.load(load_dickinson_outcome(), "outcomes.csv", outcome="outcome", cluster="county")
    x_title = app.analysis.histogram.chart.to_dict()["layer"][0]["encoding"]["x"]["title"]
    assert x_title == "statistic U (B minus A mean residual)"
    state.arm_names_text = "Control, Intervention"


@pytest.mark.parametrize("text, message", [
    ("Control", "arm names: give 2 names separated by commas (one per arm), got 1"),
    ("Control, ", "arm names: a name is empty; give every arm a name"),
    ("Care, care", "arm names: two arms have the same name; give each arm its own"),
    ("Control, " + "x" * 41, "arm names: at most 40 characters each; 'xxxxxxxxxxxxxxxxxxxx'... is 41"),
])
def test_bad_arm_names_are_a_message_and_the_names_stay(text, message):
    state = DesignState()
    state.arm_names_text = text
    assert state.arm_names_error == message and state.arm_names == ["Control", "Intervention"]
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_arm_names(text, 2)


def test_three_arms_are_named_and_back_to_two():
    state = DesignState()
    state.load(load_dickinson(), "Dickinson counties", cluster_id="county", covariates=["inciis", "hispanic"])
    state.n_arms = 3
    assert state.arm_names == ["Control", "Intervention A", "Intervention B"]
    from crt_widgets.widgets.panels import probabilities_html

    shown = probabilities_html(state.design.probabilities(), state.arm_names)
    assert all(f"P({name})" in shown for name in state.arm_names)
    state.n_arms = 2
    assert state.arm_names == ["Control", "Intervention"]
    with pytest.raises(ValueError, match="n_arms: a trial has at least 2 arms, got 1"):
        default_arm_names(1)


def test_every_control_has_a_name_of_its_own(app):
    controls = [x for x in _widgets(app.widget)
                if isinstance(x, (w.ValueWidget, w.Button, w.FileUpload)) and not isinstance(x, (w.HTML, w.Label))
                and not isinstance(x, w.IntProgress)]
    assert len(controls) > 30
    names = [accessible_name(x) for x in controls]
    generic = [(type(x).__name__, n) for x, n in zip(controls, names) if n.strip().casefold() in GENERIC]
    assert not generic
    # the name holds the words the control shows (WCAG 2.5.3, label in name): speech users say what they see
    hidden = [(x.description, n) for x, n in zip(controls, names)
              if getattr(x, "description", "") and x.description.casefold() not in n.casefold()]
    assert not hidden, hidden
    weights = app.design.weights
    assert {accessible_name(s) for s in weights.sliders.values()} == {f"Weight of {c}" for c in PAPER_COVARIATES}
    assert {accessible_name(b) for b in weights.stratify.values()} == {"Stratify on location", "Stratify on incomecat"}
    with pytest.raises(ValueError, match="name: an accessible name must not be empty"):
        name_control(w.FloatSlider(), " ")


def test_a_stratified_covariate_cannot_be_weighted(app):
    weights = app.design.weights
    app.design.state.stratify = ["location"]
    assert weights.sliders["location"].disabled and not weights.sliders["inciis"].disabled
    assert "balanced exactly by stratification" in weights.sliders["location"].tooltip
    app.design.state.stratify = []
    assert not weights.sliders["location"].disabled


def test_help_and_glossary_cite_the_methods(app):
    shown = visible_text(app.widget)
    for key in ("weights", "stratify", "metric", "cutoff", "score", "validity", "arm_names", "adjust", "alternative"):
        assert HELP[key] in shown, key
    assert "three or more arms" in HELP["score"]  # the score's scale changes with the number of arms
    assert "25% and 75%" in HELP["validity"] and "Greene 2017" in HELP["validity"]
    page = glossary_html()
    assert app.glossary.value == page
    for term, _ in GLOSSARY:
        assert f">{term}</dt>" in page
    for author in ("Li F, Lokhnygina Y", "Li F, Turner EL", "Moulton LH (2004)", "Greene EJ (2017)"):
        assert sum(author in ref for ref in REFERENCES) == 1 and author in page


def test_chart_menus_export_and_never_open_the_editor(app):
    app.multiperiod  # built on first opening: its charts too
    charts = [x for x in _widgets(app.widget) if hasattr(x, "embed_options") and hasattr(x, "spec")]
    assert len(charts) == 11
    names = set()
    for chart in charts:
        options = chart.embed_options
        assert options["actions"] == {"export": True, "source": False, "compiled": False, "editor": False}
        names.add(options["downloadFileName"])
    assert names == {"crt_balance_scores", "crt_balance_scores_zoom", "crt_pairs_same_arm",
                     "crt_permutation_distribution", "crt_power_by_clusters", "crt_power_by_icc",
                     "crt_multiperiod_design", "crt_multiperiod_power_by_steps", "crt_multiperiod_power_by_clusters",
                     "crt_multiperiod_balance_scores", "crt_multiperiod_drawn_order"}
    with pytest.raises(ValueError, match="file_name: letters, digits"):
        embed_options("my chart/1")


def test_few_extreme_schemes_are_marked_under_the_histogram():
    from crt_widgets import permutation_test

    drawn = ConstrainedDesign(load_dickinson(), PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL,
                              cluster_id="county", seed=12345).draw(2024)
    result = permutation_test(load_dickinson_outcome(), "outcome", "county", drawn, family="binomial")
    counts = result.histogram(40)
    layers = permutation_histogram(result).to_dict()
    marked = [layer for layer in layers["layer"] if layer["mark"]["type"] == "point"][0]
    data = layers["datasets"][marked["data"]["name"]]
    # one triangle per bin holding any scheme at least as extreme, however few
    assert len(data) == int((counts["extreme"] > 0).sum()) >= 1
    assert sum(row["extreme"] for row in data) == int(counts["extreme"].sum()) == round(result.p_value * result.n_schemes)


def test_report_settings_in_words_with_the_program_names_beside():
    drawn = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county",
                              weights=[2.0, 0.5], seed=3).draw()
    table = setting_words(drawn.audit()["parameters"], ["inciis", "hispanic"], ["Control", "Intervention"])
    rows = dict(zip(table["program name"], table["value"]))
    assert rows["weights"] == "inciis 2, hispanic 0.5" and "n_best" not in rows
    assert table.set_index("program name").loc["n_treat", "setting"] == "clusters in the Intervention arm"
    report = allocation_report(drawn)
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", report, flags=re.S))
    assert "inciis 2, hispanic 0.5" in text and "None" not in text.split("Reproduce")[0]
    assert "pairs in the same arm: share of schemes" in text and "samefrac" not in text


def test_the_dashboard_command_prints_the_address_once_the_server_listens(capsys):
    import socket
    import threading

    from crt_widgets.commands.dashboard import announce_when_ready

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        # nothing listens yet: nothing is printed
        assert not announce_when_ready("127.0.0.1", port, f"http://127.0.0.1:{port}/", timeout=0.5, poll=0.05)
        assert capsys.readouterr().out == ""
        listening = threading.Timer(0.3, server.listen)  # the server comes up while the watcher waits
        listening.start()
        assert announce_when_ready("0.0.0.0", port, f"http://0.0.0.0:{port}/", timeout=30, poll=0.05)
        listening.join()
    assert capsys.readouterr().out == f"crt-widgets dashboard: ready at http://0.0.0.0:{port}/  (Ctrl-C to stop)\n"


def test_the_zoom_axis_drops_labels_that_would_collide():
    from crt_widgets.widgets.charts import histogram_spec

    bins = pd.DataFrame({"left": [0.0, 1.0], "right": [1.0, 2.0], "total": [5, 3], "kept": [5, 1]})
    zoom = pd.DataFrame({"left": [0.0123, 0.0124], "right": [0.0124, 0.0125], "count": [2, 4]})
    axis = histogram_spec(bins, 1.2, None, zoom)["hconcat"][1]["layer"][0]["encoding"]["x"]["axis"]
    assert axis == {"labelFlush": True, "labelOverlap": "greedy", "tickCount": 4}


def test_the_dashboard_command_says_it_is_starting_then_becomes_voila(monkeypatch, capsys):
    import argparse
    import os

    from crt_widgets.commands import dashboard

    class BecameVoila(Exception):
        pass

    def execve(path, command, env):
        raise BecameVoila(command)

    forked = []
    monkeypatch.setattr(os, "fork", lambda: forked.append(True) or 4242)  # the parent's side of the fork
    monkeypatch.setattr(os, "execve", execve)
    parser = argparse.ArgumentParser()
    dashboard.add_arguments(parser)
    args = parser.parse_args(["--port", str(dashboard.free_port("127.0.0.1", 47100))])
    with pytest.raises(BecameVoila) as became:
        dashboard.run(args)
    assert forked == [True] and f"--port={args.port}" in became.value.args[0]
    out = capsys.readouterr().out
    # the address itself is printed by the watcher once the port answers, never before
    assert out == f"crt-widgets dashboard: starting the server on port {args.port}...\n"


def test_a_factorial_design_names_its_arms_by_its_factor_levels():
    from crt_widgets.core.randomization.multiarm import MultiArmDesign
    from crt_widgets.datasets import simulate_edlead
    from crt_widgets.widgets.downloads import allocation_files

    design = MultiArmDesign(simulate_edlead(seed=1), ["volume", "location"], factors=["a", "b"],
                            categorical=["location"], strata="health_system", cluster_id="ed", size=2000,
                            cutoff=0.05, seed=7)
    drawn = design.draw(3)
    files = allocation_files(drawn)
    audit = json.loads(next(content for name, (content, _, _) in files.items() if name.startswith("audit_")))
    assert audit["arm_names"] == {"0": "none", "1": "a", "2": "b", "3": "a+b"}
    report = next(content for name, (content, _, _) in files.items() if name.endswith(".html"))
    assert "none (0), a (1), b (2), a+b (3)" in report and "arm = a+b" not in report
    named = allocation_files(drawn, arm_names=["Usual care", "Audit", "Training", "Both"])
    report = next(content for name, (content, _, _) in named.items() if name.endswith(".html"))
    assert "<th>Usual care</th>" in report and "<th>Both</th>" in report
    sizes = drawn.arm_sizes()
    assert report.count("<td>Both</td>") == int(sizes.iloc[3])


def test_a_saved_session_keeps_the_arm_names():
    from crt_widgets.widgets.dashboard import DesignDashboard

    dash = DesignDashboard(example="dickinson", offline=False)
    dash.state.arm_names_text = "Usual care, Text reminders"
    saved = dash.session.prepare().encode()   # what Save session downloads
    assert json.loads(saved)["settings"]["arm_names_text"] == "Usual care, Text reminders"
    fresh = DesignDashboard(example="dickinson", offline=False)
    assert fresh.session.open_bytes(saved, "trial.json")
    assert fresh.state.arm_names == ["Usual care", "Text reminders"]
    assert "P(Text reminders)" in fresh.outputs.probabilities.value
