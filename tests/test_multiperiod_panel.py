"""The app's Multi-period section (widgets/multiperiod_panel.py, widgets/multiperiod_state.py) without a browser:
the grid is the design's, the power shown is the core's (and swCRTdesign's, pinned in tests/data), the curves are
brute-forced design by design, bad input is a message with the stale results gone, and the order is randomized,
concealed, drawn, logged and saved as the Design section's draws are."""
from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import ipywidgets as w
import numpy as np
import pandas as pd
import pytest

import crt_widgets as crt
from crt_widgets.compat.swcrtdesign import swDsn, swPwr
from crt_widgets.core.randomization.stepped_wedge import SteppedWedgeDesign
from crt_widgets.datasets import load_dickinson
from crt_widgets.widgets.multiperiod_panel import MultiPeriodDesignPanel, MultiPeriodPowerPanel, MultiPeriodSection
from crt_widgets.widgets.multiperiod_state import (MultiPeriodInputs, build_design, clusters_per_step_curve,
                                                   design_power, steps_curve)
from crt_widgets.widgets.state import DesignState

R_CASES = json.loads((Path(__file__).parent / "data" / "swcrtdesign_R.json").read_text())
COVARIATES = ["inciis", "hispanic", "location"]


def shown_power(panel: MultiPeriodPowerPanel) -> float:
    found = re.search(r"Power <b>([0-9.]+)</b>", panel.answer.value)
    assert found, panel.answer.value
    return float(found.group(1))


def grid_rows(chart) -> pd.DataFrame:
    spec = chart.chart.to_dict()
    return pd.DataFrame(spec["datasets"][spec["data"]["name"]])


class Panels(MultiPeriodPowerPanel):
    """The power panel with the design panel's inputs beside it (as the section lays them out)."""

    def __init__(self, inputs: MultiPeriodInputs) -> None:
        super().__init__(inputs)
        self.design = MultiPeriodDesignPanel(inputs)

    def __getattr__(self, name):
        return getattr(self.design, name)


def page_html(widget) -> str:
    """Every HTML text of a widget tree (what the page shows, hidden parts included)."""
    if isinstance(widget, w.HTML):
        return widget.value
    return " ".join(page_html(child) for child in getattr(widget, "children", ()))


@pytest.fixture
def power_panel():
    return Panels(MultiPeriodInputs(n_clusters=24, steps=4))


def text(widget) -> str:
    return html.unescape(widget.value)


@pytest.fixture
def clusters(tmp_path):
    state = DesignState(records_dir=str(tmp_path / "records"))
    state.load(load_dickinson(), "Dickinson counties", cluster_id="county", covariates=COVARIATES,
               categorical=["location"])
    return state


@pytest.fixture
def section(clusters):
    return MultiPeriodSection(clusters)


# -- the design and its grid ---------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, expected", [
    (dict(kind="stepped wedge", n_clusters=16, steps=4), crt.stepped_wedge(4, 4)),
    (dict(kind="stepped wedge", n_clusters=16, steps=3, extra_periods=2), crt.stepped_wedge(3, [6, 5, 5],
                                                                                             extra_periods=2)),
    (dict(kind="parallel", n_clusters=9, periods=3), crt.parallel_arms((5, 4), n_periods=3)),
    (dict(kind="parallel with baseline", n_clusters=10, periods=2, baseline_periods=2),
     crt.parallel_arms(5, n_periods=2, baseline_periods=2)),
    (dict(kind="two-period crossover", n_clusters=8), crt.cluster_crossover(4)),
    (dict(kind="multi-period crossover", n_clusters=8, periods=4), crt.cluster_crossover(4, n_periods=4)),
])
def test_each_design_type_is_the_cores_design_and_its_grid(settings, expected):
    inputs = MultiPeriodInputs(**settings)
    assert build_design(inputs) == expected
    panel = MultiPeriodDesignPanel(inputs)
    rows = grid_rows(panel.grid)
    assert len(rows) == expected.n_clusters * expected.n_periods
    # the grid's cells are the design's clusters x periods matrix, row by row
    matrix = rows.pivot(index="cluster", columns="period", values="value").loc[pd.unique(rows.cluster)].to_numpy()
    np.testing.assert_array_equal(matrix, expected.cluster_matrix())
    assert f"{expected.n_clusters} clusters" in panel.summary.value
    assert f"{expected.n_periods} periods" in panel.summary.value


def test_the_grid_follows_the_steps_live():
    inputs = MultiPeriodInputs(n_clusters=12, steps=3)
    panel = MultiPeriodDesignPanel(inputs)
    assert grid_rows(panel.grid)["period"].max() == 4
    panel.steps.value = 6
    rows = grid_rows(panel.grid)
    assert rows["period"].max() == 7 and len(rows) == 12 * 7
    assert "2 per step" in panel.summary.value
    # only the inputs of the chosen design type are shown
    assert panel.periods.layout.display == "none" and panel.steps.layout.display is None
    panel.kind.value = "multi-period crossover"
    assert panel.steps.layout.display == "none" and panel.periods.layout.display is None


# -- power: the core's numbers ---------------------------------------------------------------------------------
def test_the_shown_power_is_multiperiod_power(power_panel):
    sw = crt.stepped_wedge(4, 6)
    core = crt.multiperiod_power(sw, 0.2, icc=0.05, cac=0.8, cluster_size=20)
    assert shown_power(power_panel) == round(core.power, 3) == 0.765
    assert design_power(power_panel.inputs).power == core.power
    assert f"SE of the estimate {core.se:.4g}" in text(power_panel.answer)
    needed = crt.multiperiod_clusters_needed(crt.stepped_wedge(4), 0.2, icc=0.05, cac=0.8, cluster_size=20)
    assert f"80% power: {needed.replicates} clusters per step" in power_panel.answer.value  # 7 per step
    assert needed.replicates == 7


@pytest.mark.parametrize("changes, core_kwargs", [
    (dict(correlation="exponential decay", decay=0.7), dict(decay=0.7)),
    (dict(cohort=True, iac=0.4), dict(cac=0.8, iac=0.4)),
    (dict(outcome="binary", p_control=0.3, p_treatment=0.4), dict(cac=0.8, outcome="binary", p_control=0.3)),
    (dict(cluster_size=50, icc=0.1, alpha=0.01, sd=2.0, effect=0.5), dict(cac=0.8, sd=2.0)),
])
def test_every_power_input_reaches_the_core(power_panel, changes, core_kwargs):
    for name, value in changes.items():
        getattr(power_panel, name).value = value  # through the widgets, as a user types
    q = power_panel.inputs
    effect = q.p_treatment - q.p_control if q.outcome == "binary" else q.effect
    core = crt.multiperiod_power(crt.stepped_wedge(4, 6), effect, icc=q.icc, cluster_size=q.cluster_size,
                                 alpha=q.alpha, **core_kwargs)
    assert design_power(q).power == core.power
    assert shown_power(power_panel) == round(core.power, 3)


# swCRTdesign's own values (tests/data/swcrtdesign_R.R): our inputs take the total SD, swPwr's sigma is the
# residual SD, sd^2 = sigma^2 / ((1 - icc) (1 - iac))
R_PANEL = {
    "cross_sectional_icc_cac": dict(kind="stepped wedge", n_clusters=10, steps=5),
    "stepped_wedge_10x6": dict(kind="stepped wedge", n_clusters=60, steps=10),
    "cohort_icc_cac_iac": dict(kind="stepped wedge", n_clusters=9, steps=3, cohort=True),
    "parallel_baseline": dict(kind="parallel with baseline", n_clusters=10, periods=1, baseline_periods=1),
    "crossover_two_period": dict(kind="two-period crossover", n_clusters=8),
}


@pytest.mark.parametrize("case", sorted(R_PANEL))
def test_the_shown_power_is_swcrtdesigns_in_r(case):
    args = R_CASES[case]["swPwr_args"]
    iac = args.get("iac", 0.0)
    inputs = MultiPeriodInputs(**R_PANEL[case], cluster_size=args["n"], icc=args["icc"], cac=args["cac"],
                               iac=iac, effect=args["mu1"] - args["mu0"],
                               sd=args["sigma"] / np.sqrt((1 - args["icc"]) * (1 - iac)))
    panel = MultiPeriodPowerPanel(inputs)
    expected = R_CASES[case]["power"]
    assert design_power(inputs).power == pytest.approx(expected, abs=1e-6)
    assert shown_power(panel) == round(expected, 3)


def test_the_shown_power_is_swpwr_through_compat(power_panel):
    q = power_panel.inputs
    through_r_interface = swPwr(swDsn([6, 6, 6, 6]), "gaussian", n=q.cluster_size, mu0=0, mu1=q.effect,
                                sigma=np.sqrt(1 - q.icc), icc=q.icc, cac=q.cac)
    assert shown_power(power_panel) == round(through_r_interface, 3)
    assert design_power(q).power == pytest.approx(through_r_interface, abs=1e-9)


def test_the_curves_are_the_cores_power_design_by_design(power_panel):
    q = power_panel.inputs
    per_step = clusters_per_step_curve(q)
    for m in (1, 3, 6, 12):  # brute force: the design with m clusters on every step
        core = crt.multiperiod_power(crt.stepped_wedge(4, m), 0.2, icc=0.05, cac=0.8, cluster_size=20).power
        assert per_step.loc[per_step.clusters_per_step == m, "power"].item() == pytest.approx(core, abs=1e-12)
    assert per_step.query("current").clusters_per_step.tolist() == [6.0]
    steps = steps_curve(q)
    assert set(steps.line) == {"6 clusters per step", "24 clusters in all"}
    for s in (2, 5, 8):
        same_per_step = crt.multiperiod_power(crt.stepped_wedge(s, 6), 0.2, icc=0.05, cac=0.8, cluster_size=20).power
        spread = 24 // s + (np.arange(s) < 24 % s)
        same_total = crt.multiperiod_power(crt.stepped_wedge(s, spread), 0.2, icc=0.05, cac=0.8,
                                           cluster_size=20).power
        rows = steps[steps.steps == s].set_index("line").power
        assert rows["6 clusters per step"] == same_per_step and rows["24 clusters in all"] == same_total
    # with the total fixed, more steps mean more power here (Hemming and Girling 2013's observation)
    fixed_total = steps[steps.line == "24 clusters in all"].power.to_numpy()
    assert (np.diff(fixed_total) > 0).all()
    # the charts carry the curves; a design without steps shows only the clusters curve
    assert power_panel.by_steps.layout.display is None
    power_panel.kind.value = "two-period crossover"
    assert power_panel.by_steps.layout.display == "none" and power_panel.by_clusters.layout.display is None


def test_a_tiny_effect_says_how_many_clusters_it_would_take(power_panel):
    power_panel.effect.value = 0.001
    assert "80% power: more than 10,000 clusters per step" in text(power_panel.answer)
    assert shown_power(power_panel) == round(crt.multiperiod_power(crt.stepped_wedge(4, 6), 0.001, icc=0.05,
                                                                   cac=0.8, cluster_size=20).power, 3)


def test_uneven_clusters_mark_the_designs_own_power():
    inputs = MultiPeriodInputs(n_clusters=14, steps=4)   # 4, 4, 3, 3 clusters per step
    curve = clusters_per_step_curve(inputs)
    row = curve.query("current")
    assert row.clusters_per_step.item() == 3.5
    assert row.power.item() == crt.multiperiod_power(crt.stepped_wedge(4, [4, 4, 3, 3]), 0.2, icc=0.05, cac=0.8,
                                                     cluster_size=20).power


@pytest.mark.parametrize("name, value, message", [
    ("steps", 30, "steps: 30 steps need at least one cluster each; there are 24 clusters"),
    ("steps", 1, "steps: a stepped wedge has a number of steps between 2 and 200, got 1"),
    ("n_clusters", 1, "clusters: a whole number of clusters between 2 and 2,000, got 1"),
    ("extra_periods", -1, "extra periods: all-treated periods after the last step between 0 and 195, got -1"),
    ("icc", 1.0, "ICC: icc must be in [0, 1), got 1"),
    ("icc", -0.1, "ICC: icc must be in [0, 1), got -0.1"),
    ("cac", 1.5, "CAC: cac must be in [0, 1], got 1.5"),
    ("cluster_size", 0, "individuals per cluster-period: cluster_size must be in (0, inf], got 0"),
    ("sd", 0, "SD: sd must be in (0, inf], got 0"),
    ("effect", 0, "effect: a difference of zero has no power to speak of"),
    ("alpha", 1.0, "alpha must be a number in (0, 1), got 1.0"),
])
def test_bad_input_is_a_message_and_the_stale_results_go(power_panel, name, value, message):
    assert power_panel.curves.layout.display is None
    getattr(power_panel, name).value = value
    assert message in text(power_panel.answer)
    assert "Power <b>" not in power_panel.answer.value and power_panel.curves.layout.display == "none"
    design_panel = MultiPeriodDesignPanel(power_panel.inputs)
    if name in ("steps", "n_clusters", "extra_periods"):  # the grid of other inputs goes too
        assert message in text(design_panel.message) and design_panel.grid.layout.display == "none"
    getattr(power_panel, name).value = MultiPeriodInputs().trait_defaults(name) if name != "n_clusters" else 24
    assert shown_power(power_panel) == 0.765 and power_panel.curves.layout.display is None


@pytest.mark.parametrize("changes, message", [
    (dict(outcome="binary", p_control=0.0), "control proportion: must be between 0 and 1, got 0"),
    (dict(outcome="binary", p_treatment=1.2), "treatment proportion: must be between 0 and 1, got 1.2"),
    (dict(kind="multi-period crossover", periods=2), "periods: a multi-period crossover alternates over between 3"),
    (dict(kind="parallel", periods=0), "periods: periods measured between 1 and 200, got 0"),
    (dict(correlation="exponential decay", decay=-0.2), "decay: decay must be in [0, 1], got -0.2"),
    (dict(cohort=True, iac=1.0), "IAC: iac must be in [0, 1), got 1"),
])
def test_more_bad_inputs_are_messages(power_panel, changes, message):
    for name, value in changes.items():
        getattr(power_panel, name).value = value
    assert message in text(power_panel.answer) and power_panel.curves.layout.display == "none"


# -- randomizing the order ---------------------------------------------------------------------------------------
def core_order(seed_of_space: int = 12345, **kwargs) -> SteppedWedgeDesign:
    """The core's design the section builds by default, for comparison."""
    return SteppedWedgeDesign(load_dickinson(), COVARIATES, crt.stepped_wedge(4, 4), cluster_id="county",
                              categorical=["location"], weights=[1.0, 1.0, 1.0], size=50_000, seed=seed_of_space,
                              **kwargs)


def test_the_order_follows_the_design_sections_clusters(section):
    order = section.order
    assert section.inputs.n_clusters == 16 and section.inputs.steps == 4
    core = core_order()
    assert order.design.n_possible == core.n_possible == 63_063_000
    np.testing.assert_array_equal(order.design.space_scores, core.space_scores)
    assert order.kept == len(core.space) == 4999
    assert f'<span class="crt-mp-kept">{order.kept:,}</span>' in section.ordering.count.value
    # the histogram is charts.histogram_spec of the scores: every candidate counted, no chosen order marked
    spec = section.ordering.histogram.spec
    bins = pd.DataFrame(spec["datasets"]["bins"])
    assert bins.total.sum() == len(core.scores) and bins.kept.sum() == 4999
    assert [m["what"] for m in spec["datasets"]["marks"]] == ["cutoff"]
    # each covariate's |SMD| over the kept orders, and the balance with time on treatment, against simple
    assert "95th percentile |SMD|" in section.ordering.smd.value
    table = core.balance_comparison()["|r| with time on treatment"]
    assert f"{table.iloc[0, 0]:.3f}" in section.ordering.time_balance.value
    # a cheaper cutoff re-scores the listed orders (no new candidates)
    candidates = order.design.candidates
    section.ordering.cutoff.value = 0.05
    assert order.design.candidates is candidates and order.kept == len(core.rescore(cutoff=0.05).space)
    section.ordering.balance.value = "time"
    assert order.kept == len(core.rescore(cutoff=0.05, balance="time").space)
    # location spread evenly over the sequences: the core's stratified space
    assert section.ordering.stratify.options == ("location",)
    section.ordering.stratify.value = ("location",)
    stratified = core_order(stratify=["location"], cutoff=0.05, balance="time")
    assert order.design.n_possible == stratified.n_possible < core.n_possible
    np.testing.assert_array_equal(order.design.space_scores, stratified.space_scores)


def test_the_order_is_concealed_then_drawn_confirmed_logged_and_shown(section, clusters):
    order, draw = section.order, section.ordering.draw
    assert order.allocation is None and section.ordering.drawn.layout.display == "none"
    before = page_html(section.widget)
    assert "crt-allocation" not in before and "first_treated_period" not in before
    draw.seed.value = "20240611"
    draw.button.click()
    assert order.pending["seed"] == 20240611 and "seed <b class='crt-pending-seed'>20240611</b>" in \
        draw.question.value
    assert order.allocation is None  # named, not drawn
    draw.confirm.click()
    allocation = order.allocation
    expected = core_order().draw(20240611)
    np.testing.assert_array_equal(allocation.sequence, expected.sequence)
    assert "Draw 1 of this session" in draw.result.value
    # the drawn order: its allocation table and its clusters x periods grid, neither on the page before
    first = allocation.allocation.iloc[0]
    assert "crt-allocation" in page_html(section.widget) and "first_treated_period" in draw.result.value
    assert section.ordering.drawn.layout.display is None
    rows = grid_rows(section.ordering.drawn)
    matrix = rows.pivot(index="cluster", columns="period", values="value").loc[
        [str(c) for c in allocation.design.cluster_ids]]
    np.testing.assert_array_equal(matrix.to_numpy(), allocation.treatment_matrix().to_numpy())
    assert first["sequence"] == expected.sequence[0] + 1
    assert [m["what"] for m in section.ordering.histogram.spec["datasets"]["marks"]] == ["cutoff", "chosen scheme"]
    # logged and saved as the Design section's draws: draws.jsonl, a folder with the treatment matrix
    log = [json.loads(line) for line in (Path(clusters.records_dir) / "draws.jsonl").read_text().splitlines()]
    assert [(e["draw"], e["seed"], e["seed_source"]) for e in log] == [(1, 20240611, "typed")]
    assert log[0]["session"] == f"{clusters.session}-order"  # the app's session, the order's draws
    assert log[0]["space_sha256"] == order.space_sha256
    assert log[0]["allocation"] == {str(s): [int(c) for c in ids] for s, ids in
                                    allocation.allocation.groupby("sequence")["county"]}
    folder = Path(order.saved_to)
    saved = pd.read_csv(folder / "treatment_matrix_seed20240611.csv", index_col=0)
    np.testing.assert_array_equal(saved.to_numpy(), allocation.treatment_matrix().to_numpy())
    audit = json.loads((folder / "audit_seed20240611.json").read_text())
    assert audit["parameters"]["design"]["kind"] == "stepped wedge"
    # the report names the method and its Python reproduces the draw from the saved input data
    report = (folder / "randomization_report_seed20240611.html").read_text()
    assert "randomization of the order in which clusters cross over" in report
    code = re.search(r"<pre[^>]*>(.*?)</pre>", report, re.S).group(1)
    code = (code.replace("&#x27;", "'").replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
            .replace("&amp;", "&")).replace("print(allocation.allocation)",
                                            "print([int(s) for s in allocation.sequence])")
    out = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str([int(s) for s in allocation.sequence])
    # a second draw, the operating system's entropy: counted and logged as a draw of its own
    draw.seed.value = ""
    draw.button.click()
    draw.confirm.click()
    assert len(order.draws) == 2 and order.draws[1]["seed_source"] == "entropy"
    assert "Earlier draws (1)" in draw.earlier.value
    # a new input withdraws the drawn order from the screen (it stays in the log)
    section.ordering.cutoff.value = 0.2
    assert order.allocation is None and section.ordering.drawn.layout.display == "none"


def test_a_design_that_does_not_fit_the_clusters_is_a_message(section):
    ordering = section.ordering
    section.design.n_clusters.value = 24
    assert "clusters: the design has 24 clusters and the Design section's data 16" in text(ordering.message)
    assert ordering.results.layout.display == "none" and section.order.design is None
    assert section.ordering.draw.button.disabled
    assert "Power <b>" in section.power.answer.value  # planning 24 clusters stays possible
    section.design.n_clusters.value = 16
    assert section.order.kept == 4999 and ordering.results.layout.display is None
    section.design.kind.value = "two-period crossover"
    ordering.balance.value = "time"
    assert "balance: 'time' needs sequences that differ in time on treatment" in text(ordering.message)
    ordering.balance.value = "sequences"
    assert section.order.design.n_arms == 2
    ordering.covariates.value = ()
    assert "covariates: choose at least one covariate" in text(ordering.message)
    ordering.covariates.value = ("inciis",)
    section.ordering.size.value = 1
    assert "candidate orders: a number of sampled orders between 2 and 2,000,000, got 1" in text(ordering.message)


def test_new_clusters_in_the_design_section_reach_the_order(section, clusters):
    clinics = crt.datasets.simulate_stepped_wedge_clusters(12, seed=8)
    clusters.load(clinics, "clinics.csv", cluster_id="cluster", covariates=["size", "baseline", "location"])
    assert section.inputs.n_clusters == 12 and section.order.covariates == ["size", "baseline", "location"]
    assert section.order.design.n_possible == 369_600 and len(section.order.design.candidates) <= 50_000
    assert set(section.ordering.sliders) == {"size", "baseline", "location"}
    section.ordering.sliders["size"].value = 0.0
    assert section.order.design.get_params()["weights"] == [0.0, 1.0, 1.0]


def test_the_app_builds_the_section_when_first_opened():
    from crt_widgets.widgets.app import TrialApp

    app = TrialApp(offline=False)
    assert app.sections.get_title(3) == "Multi-period" and app._multiperiod is None
    app.sections.selected_index = 3
    section = app._multiperiod
    assert section is not None and app.sections.children[3].children == (section.widget,)
    assert section.order.clusters is app.design.state and section.order.design.n_clusters == 16


def test_the_remaining_messages(section, clusters):
    from crt_widgets.widgets.multiperiod_state import OrderState

    # two clusters per step: the SMD between sequences is flagged as unstable
    section.design.steps.value = 8
    assert "With 2 cluster(s) on a sequence the SMD between sequences is unstable" in text(section.ordering.smd)
    assert "invalid value" not in text(section.ordering.message)  # numpy's words are not the user's
    section.ordering.seed.value = -1
    assert "sampling seed" in text(section.ordering.message) and section.order.design is None
    section.ordering.seed.value = 12345
    assert section.order.design is not None
    # no clusters yet, or clusters the Design section cannot use
    empty = OrderState(DesignState(), MultiPeriodInputs())
    assert empty.error == "clusters: load the clusters in the Design section first" and empty.design is None
    # the Design section's two-arm settings do not concern the order (its own checks do)
    section.design.steps.value = 4
    clusters.n_treat = 40
    assert clusters.error and section.order.error == "" and section.order.kept == 4999
    duplicated = load_dickinson().assign(county=[1] * 16)
    clusters.load(duplicated, "duplicated.csv", cluster_id="county", covariates=["inciis"])
    assert section.order.design is None and "county" in text(section.ordering.message)
    with pytest.raises(ValueError, match="steps: the power against the number of steps is for a stepped wedge"):
        steps_curve(MultiPeriodInputs(kind="parallel"))
    with pytest.raises(ValueError, match="baseline periods: a parallel design with baseline has baseline periods "
                                         "between 1 and 196, got 0"):
        build_design(MultiPeriodInputs(kind="parallel with baseline", baseline_periods=0))
