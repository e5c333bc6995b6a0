"""The dashboard's power tab: set its widgets in code and compare with the core's crt_power."""
from __future__ import annotations

import html
import re
import threading

import numpy as np
import pandas as pd
import pytest

from crt_widgets.core.power.analytic import crt_clusters_needed, crt_power
from crt_widgets.widgets import DesignDashboard


@pytest.fixture()
def dash():
    return DesignDashboard(example="dickinson", offline=False)


def _shown_power(dash) -> float:
    return float(re.search(r"Power <b>([0-9.]+)</b>", dash.power.answer.value).group(1))


def test_continuous_power_follows_the_inputs_and_the_arm_counts(dash):
    p = dash.power
    p.effect.value, p.icc.value, p.cluster_size.value, p.cv.value = 0.4, 0.02, 30, 0.5
    expected = crt_power(0.4, icc=0.02, cluster_size=30, cv=0.5, clusters_per_arm=8)
    assert _shown_power(dash) == pytest.approx(expected.power, abs=5e-4)
    assert f"{crt_clusters_needed(0.4, icc=0.02, cluster_size=30, cv=0.5)} clusters per arm" in p.answer.value
    dash.arms.n_treat.value = 6  # 6 treated, 10 control: unequal arms
    unequal = crt_power(0.4, icc=0.02, cluster_size=30, cv=0.5, clusters_per_arm=6, clusters_control=10)
    assert _shown_power(dash) == pytest.approx(unequal.power, abs=5e-4)
    assert "treatment (6 clusters) against control (10)" in p.answer.value and f"t on {unequal.df} df" in p.answer.value


def test_binary_outcome_and_multi_arm_comparison(dash):
    p = dash.power
    p.outcome.value = "binary"
    assert p.effect.layout.display == "none" and p.p_control.layout.display is None
    p.p_control.value, p.p_treatment.value = 0.2, 0.35
    expected = crt_power(0.15, outcome="binary", p_control=0.2, icc=0.05, cluster_size=50, clusters_per_arm=8)
    assert _shown_power(dash) == pytest.approx(expected.power, abs=5e-4)
    dash.arms.n_arms.value = 4  # 16 counties, 4 per arm
    four = crt_power(0.15, outcome="binary", p_control=0.2, icc=0.05, cluster_size=50, clusters_per_arm=4)
    assert _shown_power(dash) == pytest.approx(four.power, abs=5e-4)
    assert "any two of the 4 arms (4 clusters each" in p.answer.value


@pytest.mark.parametrize("field,value,match", [
    ("icc", 1.5, "icc"), ("cluster_size", 0, "cluster_size"), ("alpha", 0, "alpha"), ("effect", 0, "effect"),
    ("cv", -1, "cv"),
])
def test_bad_input_is_a_message_in_the_panel_and_recovers(dash, field, value, match):
    good = getattr(dash.power, field).value
    getattr(dash.power, field).value = value
    assert 'class="crt-error"' in dash.power.answer.value and match in dash.power.answer.value
    getattr(dash.power, field).value = good
    assert "Power <b>" in dash.power.answer.value


# -- the app's Power section: curves and the simulated power of the design being made --------------------------
@pytest.fixture()
def section():
    from crt_widgets.widgets.app import TrialApp

    return TrialApp(offline=False)


def test_power_curves_are_crt_power_over_grids(section):
    state = section.design.state
    chart = section.power.curves.by_clusters.chart
    by_k, here = chart.layer[0].data, chart.layer[-1].data  # the curve's line, and last the design's point
    icc_chart = section.power.curves.by_icc.chart
    by_icc, here_icc = icc_chart.layer[0].data, icc_chart.layer[-1].data
    assert [layer.mark.type if hasattr(layer.mark, "type") else layer.mark for layer in chart.layer] == \
        ["line", "rule", "point"]
    for k in (2, 8, 17, 24):
        assert by_k.set_index("clusters_per_arm").loc[k, "power"] == pytest.approx(
            crt_power(0.3, icc=0.05, cluster_size=50, clusters_per_arm=k).power, abs=1e-12)
    assert list(here.clusters_per_arm) == [8] and list(here_icc.icc) == [0.05]
    assert here.power.iloc[0] == pytest.approx(crt_power(0.3, icc=0.05, cluster_size=50, clusters_per_arm=8).power)
    for icc in (0.0, 0.1, 0.2):
        row = by_icc[np.isclose(by_icc.icc, icc)]
        assert row.power.iloc[0] == pytest.approx(crt_power(0.3, icc=icc, cluster_size=50, clusters_per_arm=8).power)
    state.n_treat = 6  # unequal arms: the control:treated ratio kept along the curve
    by_k = section.power.curves.by_clusters.chart.layer[0].data
    assert by_k.set_index("clusters_per_arm").loc[9, "power"] == pytest.approx(
        crt_power(0.3, icc=0.05, cluster_size=50, clusters_per_arm=9, clusters_control=15).power)
    section.power.analytic.effect.value = 0  # an input error: a message, no stale curves beside it
    assert "effect" in section.power.curves.message.value and section.power.curves.charts.layout.display == "none"


def test_the_simulation_runs_in_the_background_equal_to_the_core(section):
    from crt_widgets.core.power.design_simulation import design_space_power

    panel, run = section.power.simulation, section.design.state.simulation
    panel.n_trials.value, panel.seed.value = 20, 9
    panel.run.click()
    assert run.wait(300) and run.message == ""
    expected = design_space_power(section.design.state.design, effect=0.3, icc=0.05, cluster_size=50, n_trials=20,
                                  seed=9)
    pd.testing.assert_frame_equal(run.result.pvalues, expected.pvalues)
    assert panel.progress.value == panel.progress.max == 20 and panel.progress.description == "20 of 20"
    for power in expected.table["power"]:
        assert f"<td>{power:.3f}</td>" in panel.table.value
    assert not panel.run.disabled and panel.cancel.disabled
    section.design.state.cutoff = 0.2  # a new design: the simulated power of the old one goes
    assert run.result is None and panel.table.value == ""


def test_cancel_stops_between_chunks_and_says_so(section):
    panel, run = section.power.simulation, section.design.state.simulation
    panel.n_trials.value = 100_000
    started = threading.Event()
    run.observe(lambda change: started.set() if change["new"] >= 10 else None, names="done")
    panel.run.click()
    assert run.running and panel.cancel.disabled is False and panel.run.disabled
    assert started.wait(300)
    panel.cancel.click()
    assert run.wait(300)
    done = run.result.settings["n_trials"]
    assert 10 <= done < 100_000 and run.result.settings["stopped"]
    assert f"Cancelled after {done:,} of 100,000 trials" in panel.status.value


def test_an_input_change_while_simulating_stops_it_and_drops_its_result(section):
    panel, run = section.power.simulation, section.design.state.simulation
    panel.n_trials.value = 100_000
    started = threading.Event()
    run.observe(lambda change: started.set() if change["new"] >= 10 else None, names="done")
    panel.run.click()
    assert started.wait(300)
    section.power.analytic.icc.value = 0.01
    assert run.wait(300) and run.result is None
    assert "changed while simulating" in panel.status.value and panel.table.value == ""


@pytest.mark.parametrize("change,match", [
    ({"n_arms": 3}, "simulation: the power of the design's own space is simulated for two arms"),
    ({"n_treat": 40}, "simulation: there is no valid design to simulate"),
])
def test_simulation_refusals_are_messages(section, change, match):
    for name, value in change.items():
        setattr(section.design.state, name, value)
    section.power.simulation.run.click()
    assert match in html.unescape(section.power.simulation.status.value)
    assert not section.design.state.simulation.running


@pytest.mark.parametrize("field,value,match", [
    ("sd", 0, "SD of an individual: must be positive"),
    ("cluster_size", 0.4, "mean cluster size: at least 1"),
])
def test_simulation_inputs_are_checked(section, field, value, match):
    setattr(section.design.state.power_inputs, field, value)
    section.power.simulation.run.click()
    assert match in section.power.simulation.status.value


def test_binary_simulation_inputs_are_log_odds(section):
    from crt_widgets.widgets.state import simulation_inputs

    q = section.design.state.power_inputs
    q.outcome, q.p_control, q.p_treatment = "binary", 0.2, 0.35
    args = simulation_inputs(section.design.state)
    assert args["effect"] == pytest.approx(np.log(0.35 / 0.65) - np.log(0.2 / 0.8)) and args["baseline"] == 0.2
    q.p_treatment = 1.2
    with pytest.raises(ValueError, match="treatment proportion: must be between 0 and 1"):
        simulation_inputs(section.design.state)


def test_simulation_messages_for_every_end(section, monkeypatch):
    from crt_widgets.widgets import state as state_module
    from crt_widgets.widgets.state import simulation_inputs

    run = section.design.state.simulation
    run.n_trials = 0
    run.start(section.design.state)
    assert run.message == "trials: at least 1, got 0" and not run.running
    run.n_trials = 20
    run._stop.set()  # cancelled before the first chunk ended
    run._run(simulation_inputs(section.design.state))
    assert run.message == "Cancelled before the first trials finished." and run.result is None

    def broken(**kwargs):
        raise RuntimeError("out of threads")

    monkeypatch.setattr(state_module, "design_space_power", broken)
    run._stop.clear()
    run._run(simulation_inputs(section.design.state))
    assert run.message == "Unexpected problem (RuntimeError): out of threads"
    section.design.state.power_inputs.effect = 0.0
    with pytest.raises(ValueError, match="effect: a difference of zero has no power to speak of"):
        simulation_inputs(section.design.state)


# -- the ICC from pilot data (PilotIccPanel) -----------------------------------------------------------------------
def _reference_icc() -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "data" / "icc_R.json").read_text())["dickinson"]


def _upload(widget, content: bytes, name: str) -> None:
    import datetime as dt

    widget.value = ({"name": name, "type": "text/csv", "size": len(content), "content": memoryview(content),
                     "last_modified": dt.datetime(2026, 12, 2)},)


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"\d+\.\d{4}", text)]


def test_pilot_icc_from_an_upload_matches_r_and_goes_into_the_power_inputs(section):
    from crt_widgets.datasets import load_dickinson_outcome

    pilot = section.power.pilot
    r = _reference_icc()
    _upload(pilot.upload, load_dickinson_outcome().to_csv(index=False).encode(), "pilot.csv")
    assert (pilot.cluster.value, pilot.outcome.value) == ("county", "outcome")  # guessed from the structure
    assert pilot.upload.value == ()
    anova, latent = r["anova"], r["latent"]
    assert pilot.result.estimate == pytest.approx(anova["estimate"], abs=1e-9)
    assert (pilot.result.ci_low, pilot.result.ci_high) == pytest.approx((anova["ci_low"], anova["ci_high"]), abs=1e-9)
    assert pilot.latent.estimate == pytest.approx(latent["estimate"], abs=1e-4)
    assert (pilot.latent.ci_low, pilot.latent.ci_high) == pytest.approx((latent["ci_low"], latent["ci_high"]), abs=1e-4)
    shown = _numbers(pilot.answer.value)
    assert shown[:3] == [0.0164, 0.0075, 0.0427] and shown[3:6] == [0.0277, 0.0121, 0.0658]
    assert "4,800 people in 16 clusters of pilot.csv" in pilot.answer.value
    assert pilot.clear.disabled and not pilot.use.disabled

    pilot.use.click()
    q = section.design.state.power_inputs
    assert q.icc == section.power.analytic.icc.value == 0.01641 == float(f"{anova['estimate']:.4g}")
    assert q.icc_band == [pilot.result.ci_low, pilot.result.ci_high] and not pilot.clear.disabled
    expected = crt_power(0.3, icc=0.01641, cluster_size=50, clusters_per_arm=8)
    assert float(re.search(r"Power <b>([0-9.]+)</b>", section.power.analytic.answer.value).group(1)) == \
        pytest.approx(expected.power, abs=5e-4)
    # the interval is the band of the power curve against the clusters per arm
    layers = section.power.curves.by_clusters.chart.to_dict()["layer"]
    assert layers[0]["mark"]["type"] == "area"
    from crt_widgets.widgets.state import power_curves

    curve = power_curves(section.design.state)["clusters per arm"]
    ks = curve["clusters_per_arm"].to_numpy()
    for column, end in (("power_low", anova["ci_high"]), ("power_high", anova["ci_low"])):
        np.testing.assert_allclose(curve[column], crt_power(0.3, icc=end, cluster_size=50, clusters_per_arm=ks).power,
                                   atol=1e-7)
    assert curve.attrs["band_label"] == "ICC from 0.00752 to 0.0427"
    pilot.clear.click()
    assert q.icc_band == [] and pilot.clear.disabled and "power_low" not in power_curves(section.design.state)[
        "clusters per arm"].columns


def test_pilot_icc_columns_can_be_changed_and_problems_are_messages(section):
    from crt_widgets.core.models.icc import icc
    from crt_widgets.datasets import load_callcenter

    pilot = section.power.pilot
    calls = load_callcenter("historical")
    pilot.set_data(calls, "calls.csv")
    assert pilot.cluster.value in ("center_ID", "rep_ID")  # calls nest in agents (rep_ID) within centres
    pilot.cluster.value, pilot.outcome.value = "center_ID", "age"
    expected = icc(calls, "age", "center_ID")
    assert pilot.result.estimate == expected.estimate and pilot.latent is None
    assert "Latent" not in pilot.answer.value and f"{expected.estimate:.4f}" in pilot.answer.value
    pilot.outcome.value = "center_ID"
    assert "outcome column: choose a column other than the cluster column" in pilot.answer.value
    assert pilot.use.disabled and pilot.result is None
    pilot.outcome.value = "reason"  # text
    assert "outcome: &#x27;reason&#x27; must be numeric" in pilot.answer.value and pilot.use.disabled
    before = section.design.state.power_inputs.icc
    pilot.use.click()  # nothing to use: the inputs stay
    assert section.design.state.power_inputs.icc == before
    _upload(pilot.upload, b"\x00\x01 not a csv", "pilot.csv")
    assert 'class="crt-error"' in pilot.answer.value and "pilot.csv" in pilot.answer.value
    one = pd.DataFrame({"site": ["a"] * 5, "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    pilot.set_data(one, "one.csv")
    pilot.cluster.value, pilot.outcome.value = "site", "y"
    assert "an ICC needs at least two" in pilot.answer.value


def test_the_pilot_band_is_saved_with_the_session(section):
    from crt_widgets.datasets import load_dickinson_outcome
    from crt_widgets.widgets.session_panel import session_settings

    pilot = section.power.pilot
    pilot.set_data(load_dickinson_outcome(), "pilot.csv", latent=False)
    assert "The latent-scale ICC was not computed." in pilot.answer.value
    pilot.use.click()
    saved = session_settings(section.design.state)["power"]
    assert saved["icc"] == 0.01641 and saved["icc_band"] == [pilot.result.ci_low, pilot.result.ci_high]


def test_pilot_messages_for_a_large_file_and_a_failed_latent_fit(section, monkeypatch):
    from crt_widgets.commands import _voila
    from crt_widgets.core.models import icc as icc_module
    from crt_widgets.datasets import load_dickinson_outcome

    pilot = section.power.pilot
    monkeypatch.setattr(_voila, "UPLOAD_LIMIT_BYTES", 10)
    _upload(pilot.upload, b"site,y\n" + b"a,1\n" * 500_000, "big.csv")
    assert "big.csv is 2.0 MB, more than the 0 MB one upload can carry" in pilot.answer.value
    original = icc_module.icc

    def no_latent(data, outcome, cluster, method="anova", alpha=0.05):
        if method == "latent":
            raise ArithmeticError("no convergence")
        return original(data, outcome, cluster, method, alpha)

    monkeypatch.setattr(icc_module, "icc", no_latent)
    pilot.set_data(load_dickinson_outcome(), "pilot.csv")
    assert "The latent-scale ICC was not computed (the logistic model could not be fitted)." in pilot.answer.value
    assert pilot.result.estimate == pytest.approx(_reference_icc()["anova"]["estimate"], abs=1e-9)
