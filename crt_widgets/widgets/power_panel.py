"""The power panel: analytic power of the trial being designed, the instant first answer.

Inputs are traits of the state's :class:`~crt_widgets.widgets.state.PowerInputs`; the cluster counts
come from the design settings (clusters in treatment, or the number of arms), so moving those
updates the answer. The numbers are the core's :func:`~crt_widgets.core.power.crt_power`.

>>> from crt_widgets.datasets import load_dickinson
>>> state = DesignState()
>>> state.load(load_dickinson(), "Dickinson counties")
>>> panel = PowerPanel(state)
>>> panel.icc.value = 0.01
>>> "Power <b>0.898</b>" in panel.answer.value
True
"""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import pandas as pd

from crt_widgets.widgets.accessibility import name_control
from crt_widgets.widgets.formatting import STALE_CSS, message_html
from crt_widgets.widgets.reflow import ChartReflow, container_chart
from crt_widgets.widgets.theme import PAGE_CSS
from crt_widgets.widgets.state import DesignState, analytic_power, power_curves
from crt_widgets.widgets.uploads import take_upload

# which inputs each outcome type shows
EFFECT_INPUTS = {"continuous": ("effect", "sd"), "binary": ("p_control", "p_treatment")}


class PowerPanel:
    """Outcome type, effect, ICC, mean cluster size and its CV, alpha; the power and the clusters needed."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        q = state.power_inputs
        style = {"description_width": "150px"}
        self.outcome = w.ToggleButtons(options=["continuous", "binary"], value=q.outcome, description="outcome",
                                       style=style)
        name_control(self.outcome, "Outcome type for the power")
        self.effect = w.FloatText(value=q.effect, step=0.05, description="difference in means", style=style)
        self.sd = w.FloatText(value=q.sd, step=0.1, description="SD of an individual", style=style)
        self.p_control = w.FloatText(value=q.p_control, step=0.01, description="control proportion", style=style)
        self.p_treatment = w.FloatText(value=q.p_treatment, step=0.01, description="treatment proportion",
                                       style=style)
        self.icc = w.FloatText(value=q.icc, step=0.01, description="ICC", style=style)
        self.cluster_size = w.FloatText(value=q.cluster_size, step=5, description="mean cluster size", style=style)
        self.cv = w.FloatText(value=q.cv, step=0.1, description="CV of cluster sizes", style=style)
        self.alpha = w.FloatText(value=q.alpha, step=0.01, description="alpha (two-sided)", style=style)
        self.answer = w.HTML()
        # out-of-range values are reported by the core in the panel, not clamped silently
        for name in ("outcome", "effect", "sd", "p_control", "p_treatment", "icc", "cluster_size", "cv", "alpha"):
            w.link((getattr(self, name), "value"), (q, name))
        q.observe(self._show, names=list(q.trait_names()))
        state.observe(self._show, names=["data", "n_treat", "n_arms", "arm_names"])
        self.widget = w.VBox([
            w.HTML("<b>Analytic power</b> (design effect 1 + ((CV&sup2; + 1) m &minus; 1) ICC; "
                   "t test on clusters &minus; 2 df)"),
            self.outcome, self.effect, self.sd, self.p_control, self.p_treatment, self.icc, self.cluster_size,
            self.cv, self.alpha, self.answer])
        self._show()

    def _show(self, change=None) -> None:
        shown = EFFECT_INPUTS[self.state.power_inputs.outcome]
        for name in ("effect", "sd", "p_control", "p_treatment"):
            getattr(self, name).layout.display = None if name in shown else "none"
        try:
            answer = analytic_power(self.state)
        except ValueError as exc:
            self.answer.value = message_html(str(exc))
            return
        r = answer.result
        needed = "; ".join(f"{target:.0%} power: " + (f"{k} clusters per arm" if k else "more than 10,000 per arm")
                           for target, k in answer.needed.items())
        self.answer.value = (
            f'<div class="crt-power" style="font-size:110%;margin-top:6px">Power <b>{r.power:.3f}</b> for '
            f"{html.escape(answer.comparison)}</div>"
            f"<div>design effect {r.design_effect:.2f}; effective sample size {r.effective_n:,.0f}; "
            f"t on {r.df} df</div><div>For {needed}.</div>")


class PowerCurvePanel:
    """Analytic power against the clusters per arm and against the ICC, for the current inputs
    (:func:`~crt_widgets.widgets.state.power_curves`); the design's own point is marked."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        # each curve as wide as its box: side by side when there is room, one below the other when not
        self.by_clusters = container_chart("crt_power_by_clusters")
        self.by_icc = container_chart("crt_power_by_icc")
        for chart in (self.by_clusters, self.by_icc):
            chart.layout = w.Layout(flex="1 1 260px")
        self.message = w.HTML()
        self.charts = w.HBox([self.by_clusters, self.by_icc], layout=w.Layout(flex_flow="row wrap"))
        q = state.power_inputs
        q.observe(self._show, names=list(q.trait_names()))
        state.observe(self._show, names=["data", "n_treat", "n_arms", "arm_names"])
        self.widget = w.VBox([w.HTML("<b>Power curves</b> (analytic; the red point is the design being made)"),
                              self.message, self.charts])
        self._show()

    def _show(self, change=None) -> None:
        import altair as alt

        from crt_widgets.widgets.power_charts import AXIS_TITLES, power_curve_chart

        try:
            curves = power_curves(self.state)
        except ValueError as exc:  # no stale curves beside the message
            self.message.value = message_html(str(exc))
            self.charts.layout.display = "none"
            return
        self.message.value = ""
        self.charts.layout.display = None
        for widget, curve in ((self.by_clusters, curves["clusters per arm"]), (self.by_icc, curves["ICC"])):
            x = curve.attrs["against"]
            here = alt.Chart(curve[curve["current"]]).mark_point(color="#d62728", filled=True, size=80).encode(
                x=f"{x}:Q", y="power:Q", tooltip=[alt.Tooltip(f"{x}:Q", title=f"this design: {AXIS_TITLES[x]}"),
                                                  alt.Tooltip("power:Q", format=".3f")])
            widget.chart = (power_curve_chart(curve.drop(columns="current"), target=0.8, width="container", height=200,
                                              title=f"Power against {AXIS_TITLES[x]}") + here).properties(
                width="container")


class SimulationPanel:
    """The simulated power of the design being made: its own clusters and constrained space, the
    permutation test over that space, beside simple randomization; a progress bar and Cancel."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        run = state.simulation
        style = {"description_width": "150px"}
        self.n_trials = w.BoundedIntText(value=run.n_trials, min=1, max=100_000, description="trials", style=style)
        self.covariate_r2 = w.BoundedFloatText(value=run.covariate_r2, min=0, max=1, step=0.1,
                                               description="covariates' R\u00b2", style=style,
                                               tooltip="share of the between-cluster variance the balanced "
                                                       "covariates explain")
        self.seed = w.BoundedIntText(value=run.seed, min=0, max=2**63 - 1, description="simulation seed", style=style)
        for name in ("n_trials", "covariate_r2", "seed"):
            w.link((getattr(self, name), "value"), (run, name))
        self.run = w.Button(description="Simulate power", icon="play", button_style="primary")
        self.cancel = w.Button(description="Cancel", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="trials done", style=style,
                                      layout=w.Layout(width="420px"))
        self.status = w.HTML()
        self.table = w.HTML()
        self.run.on_click(lambda _: run.start(state))
        self.cancel.on_click(lambda _: run.cancel())
        run.observe(self._show_progress, names=["done", "total", "running"])
        run.observe(self._show_result, names=["result", "message", "running"])
        self.widget = w.VBox([
            w.HTML("<b>Simulated power of this design</b>: outcomes simulated on the design's own clusters (their "
                   "balanced covariates explain the share R\u00b2 of the between-cluster variance; equal cluster "
                   "sizes of the mean above; for a binary outcome the ICC is read on the logistic scale), an "
                   "allocation drawn from its constrained space and the covariate-adjusted permutation test over "
                   "that space (Li et al. 2016, 2017), beside simple randomization of the same clusters."),
            self.n_trials, self.covariate_r2, self.seed, w.HBox([self.run, self.cancel]), self.progress,
            self.status, self.table])
        self._show_progress()
        self._show_result()

    def _show_progress(self, change=None) -> None:
        run = self.state.simulation
        self.progress.max = max(run.total, 1)
        self.progress.value = min(run.done, self.progress.max)
        self.progress.description = f"{run.done:,} of {run.total:,}" if run.total else "trials done"
        self.run.disabled = run.running
        self.cancel.disabled = not run.running
        if run.running:
            self.status.value = '<i class="crt-simulating">simulating… (the app stays usable; Cancel stops it)</i>'

    def _show_result(self, change=None) -> None:
        run = self.state.simulation
        if run.running:
            self.table.value = ""
            return
        kind = "warning" if run.result is not None else "error"
        self.status.value = message_html(run.message, kind)
        r = run.result
        if r is None:
            self.table.value = ""
            return
        table = r.table.assign(power=r.table["power"].map(lambda v: f"{v:.3f}"),
                               mcse=r.table["mcse"].map(lambda v: f"{v:.3f}"))
        s = r.settings
        self.table.value = (f'<div class="crt-simulated">{table.to_html(index=False, border=0, classes="crt-sim-table")}'
                            f"<small>{s['n_trials']:,} simulated trials of {s['n_clusters']} clusters, ICC {s['icc']:g}, "
                            f"effect {s['effect']:.3g} ({s['outcome']}), alpha {s['alpha']:g}, seed {s['seed']}; "
                            "mcse: Monte Carlo standard error.</small></div>")


def is_binary(values: pd.Series) -> bool:
    """A 0/1 outcome (missing values aside).

    >>> is_binary(pd.Series([0, 1, None])), is_binary(pd.Series([0, 2]))
    (True, False)
    """
    present = values.dropna()
    return bool(len(present)) and pd.api.types.is_numeric_dtype(present) and bool(present.isin((0, 1)).all())


class PilotIccPanel:
    """The ICC from pilot data (one row per person: a cluster column and an outcome column, guessed and
    changeable): the ANOVA estimate with Searle's interval (:func:`~crt_widgets.core.models.icc.icc`), and for
    a 0/1 outcome the latent-scale ICC of a logistic random-intercept model beside it. *Use this ICC* puts the
    ANOVA estimate into the power inputs (to 4 significant digits, as one would type it) and shades its
    interval on the power curve.

    >>> from crt_widgets.datasets import load_dickinson, load_dickinson_outcome
    >>> state = DesignState()
    >>> state.load(load_dickinson(), "Dickinson counties")
    >>> panel = PilotIccPanel(state)
    >>> panel.set_data(load_dickinson_outcome(), "pilot.csv", latent=False)
    >>> panel.use.click()
    >>> state.power_inputs.icc, [round(v, 4) for v in state.power_inputs.icc_band]
    (0.01641, [0.0075, 0.0427])
    """

    def __init__(self, state: DesignState) -> None:
        style = {"description_width": "150px"}
        self.state = state
        self.data: pd.DataFrame | None = None
        self.source = ""
        self.result = None      # the ANOVA ICCResult of the columns chosen
        self.latent = None      # the latent-scale ICCResult (0/1 outcomes), or None
        self.upload = w.FileUpload(accept=".csv", multiple=False, description="Pilot data (CSV)",
                                   layout=w.Layout(width="200px"))
        self.cluster = w.Dropdown(description="cluster column", options=[""], style=style)
        self.outcome = w.Dropdown(description="outcome column", options=[""], style=style)
        self.answer = w.HTML()
        self.use = w.Button(description="Use this ICC", icon="arrow-up", disabled=True,
                            tooltip="put the estimate into the power inputs and shade its interval on the power curve")
        self.clear = w.Button(description="Remove the band", icon="times", disabled=True,
                              tooltip="stop shading the pilot's ICC interval on the power curve")
        self._syncing = False
        self._with_latent = True
        self.upload.observe(self._on_upload, names="value")
        self.cluster.observe(self._on_columns, names="value")
        self.outcome.observe(self._on_columns, names="value")
        self.use.on_click(lambda _: self.apply())
        self.clear.on_click(lambda _: setattr(state.power_inputs, "icc_band", []))
        state.power_inputs.observe(self._show_band, names="icc_band")
        self.widget = w.VBox([
            w.HTML("<b>ICC from pilot data</b> (one row per person; ANOVA estimate with Searle's interval)"),
            self.upload, self.cluster, self.outcome, self.answer, w.HBox([self.use, self.clear])])
        self.widget.add_class("crt-pilot-icc")

    def _on_upload(self, change) -> None:
        from crt_widgets.commands._voila import MB, UPLOAD_LIMIT_BYTES
        from crt_widgets.widgets.panels import read_uploaded_csv

        uploaded = take_upload(change, self.upload)
        if uploaded is None:
            return
        name, content, _ = uploaded
        try:
            if len(content) > UPLOAD_LIMIT_BYTES:
                raise ValueError(f"{name} is {len(content) / MB:.1f} MB, more than the "
                                 f"{UPLOAD_LIMIT_BYTES / MB:.0f} MB one upload can carry")
            data = read_uploaded_csv(content, name)
        except ValueError as exc:
            self._fail(str(exc))
            return
        self.set_data(data, name)

    def set_data(self, data: pd.DataFrame, source: str = "pilot data", latent: bool = True) -> None:
        """Take pilot data (one row per person), guess the cluster and outcome columns, and estimate the ICC
        (``latent=False`` skips the latent-scale fit of a 0/1 outcome, a few seconds)."""
        from crt_widgets.widgets.analysis import guess_columns

        self.data, self.source, self._with_latent = data, source, latent
        guess = guess_columns(data)
        columns = [str(c) for c in data.columns]
        self._syncing = True
        try:
            self.cluster.options = columns
            self.outcome.options = columns
            self.cluster.value = guess.cluster if guess.cluster in columns else columns[0]
            self.outcome.value = guess.outcome if guess.outcome in columns else columns[-1]
        finally:
            self._syncing = False
        self.estimate()

    def _on_columns(self, change) -> None:
        if not self._syncing and self.data is not None:
            self.estimate()

    def _fail(self, text: str) -> None:
        self.result = self.latent = None
        self.use.disabled = True
        self.answer.value = message_html(text)

    def estimate(self) -> None:
        """The ICC of the chosen columns (a problem is a message in the panel, never a traceback)."""
        from crt_widgets.core.models.icc import icc

        cluster, outcome = self.cluster.value, self.outcome.value
        if cluster == outcome:
            self._fail("outcome column: choose a column other than the cluster column")
            return
        try:
            result = icc(self.data, outcome, cluster, method="anova")
        except ValueError as exc:
            self._fail(str(exc))
            return
        latent = None
        binary = is_binary(self.data[outcome])
        if binary and self._with_latent:
            try:
                latent = icc(self.data, outcome, cluster, method="latent")
            except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                latent = None  # the ANOVA estimate stands; the latent line says it could not be fitted
        self.result, self.latent = result, latent
        self.use.disabled = False
        dropped = f"; {result.n_dropped:,} rows with a missing value left out" if result.n_dropped else ""
        text = (f'<div class="crt-pilot-icc-value">ICC <b>{result.estimate:.4f}</b> ({result.conf_level:.0%} CI '
                f"{result.ci_low:.4f} to {result.ci_high:.4f}; ANOVA estimator, Searle's interval) from "
                f"{result.nobs:,} people in {result.n_clusters:,} clusters of {html.escape(self.source)}{dropped}.</div>")
        if binary:
            text += ("<div>" + (f"Latent (logistic) scale: {latent.estimate:.4f} ({latent.conf_level:.0%} CI "
                                f"{latent.ci_low:.4f} to {latent.ci_high:.4f}), the scale the simulated power reads "
                                "for a binary outcome; the analytic power takes the ANOVA value (proportion scale)."
                                if latent is not None else
                                "The latent-scale ICC was not computed" + (
                                    " (the logistic model could not be fitted)." if self._with_latent else "."))
                     + "</div>")
        self.answer.value = text

    def apply(self) -> None:
        """Put the estimate into the power inputs and its interval into the power curve's ICC band."""
        if self.result is None:
            return
        q = self.state.power_inputs
        with q.hold_trait_notifications():
            q.icc = float(f"{self.result.estimate:.4g}")
            q.icc_band = [float(self.result.ci_low), float(self.result.ci_high)]

    def _show_band(self, change=None) -> None:
        self.clear.disabled = len(self.state.power_inputs.icc_band) != 2


class PowerSection:
    """The Power section of the app: analytic power, power curves, the simulated power of the design."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        self.analytic = PowerPanel(state)
        self.curves = PowerCurvePanel(state)
        self.simulation = SimulationPanel(state)
        self.pilot = PilotIccPanel(state)
        # side by side when both fit, else the curves and the simulation below (see theme.PAGE_CSS)
        left = w.VBox([self.analytic.widget, w.HTML("<hr>"), self.pilot.widget],
                      layout=w.Layout(flex="0 1 470px", min_width="0", max_width="100%"))
        right = w.VBox([self.curves.widget, w.HTML("<hr>"), self.simulation.widget],
                       layout=w.Layout(flex="1 1 420px", min_width="0"))
        columns = w.HBox([left, right], layout=w.Layout(flex_flow="row wrap"))
        columns.add_class("crt-columns")
        self.widget = w.VBox([w.HTML(STALE_CSS + PAGE_CSS), ChartReflow(), columns])
        self.widget.add_class("crt-section")
