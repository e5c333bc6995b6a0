"""The app's Multi-period section: a stepped-wedge, parallel or crossover design drawn as a clusters x periods
grid, its power with curves against the number of steps and the clusters per step, and the constrained
randomization of the order in which the Design section's clusters cross over, drawn as the Design section draws
(a seed named and confirmed, the draw logged; the order stays concealed until then).

Views over :mod:`crt_widgets.widgets.multiperiod_state`; the charts are
:mod:`crt_widgets.widgets.multiperiod_charts` (the grid), :mod:`crt_widgets.widgets.power_charts` (the curves) and
:mod:`crt_widgets.widgets.charts` (the histogram of balance scores); the draw is the Design section's
:class:`~crt_widgets.widgets.panels.DrawPanel`.

>>> from crt_widgets.datasets import load_dickinson
>>> clusters = DesignState()
>>> clusters.load(load_dickinson(), "Dickinson counties", cluster_id="county", covariates=["inciis", "hispanic"])
>>> section = MultiPeriodSection(clusters)
>>> section.inputs.n_clusters, "Power <b>0.5" in section.power.answer.value
(16, True)
>>> section.design.steps.value = 40
>>> section.design.message.value.count("steps: 40 steps need at least one cluster each")
1
"""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import pandas as pd

from crt_widgets.core.multiperiod.power import multiperiod_clusters_needed
from crt_widgets.widgets.embedding import chart_widget
from crt_widgets.widgets.formatting import message_html, smd_distribution_html
from crt_widgets.widgets.multiperiod_state import (CORRELATIONS, KINDS, MultiPeriodInputs, OrderState, build_design,
                                                   design_power, design_power_curves, power_question)
from crt_widgets.widgets.panels import DrawPanel, significant
from crt_widgets.widgets.state import DesignState

STYLE = {"description_width": "170px"}
# the most clusters per sequence the "clusters needed" line looks for
MAX_REPLICATES = 10_000


def _wide() -> w.Layout:  # one Layout per widget: hiding one input must not hide the others that share it
    return w.Layout(width="400px")
# which design inputs each design type uses
DESIGN_INPUTS = {"stepped wedge": ("steps", "extra_periods"), "parallel": ("periods",),
                 "parallel with baseline": ("periods", "baseline_periods"), "two-period crossover": (),
                 "multi-period crossover": ("periods",)}
EFFECT_INPUTS = {"continuous": ("effect", "sd"), "binary": ("p_control", "p_treatment")}
INTRO = ("<p style='margin:0 0 6px'>A trial in which clusters change condition over periods: a <b>stepped wedge</b>, "
         "parallel arms (with baseline periods) or a cluster <b>crossover</b>. Set the design and see its grid; its "
         "<b>power</b> by GLS with period effects (Hussey and Hughes 2007; block-exchangeable correlation, Hooper et "
         "al. 2016; exponential decay, Kasza et al. 2019); then <b>randomize the order</b> of the Design section's "
         "clusters with covariate constraints.</p>")


def _hidden(widget: w.Widget, hide: bool) -> None:
    widget.layout.display = "none" if hide else None


class MultiPeriodDesignPanel:
    """Design type, clusters, steps or periods; the design's clusters x periods grid, updated live."""

    def __init__(self, inputs: MultiPeriodInputs) -> None:
        self.inputs = inputs
        self.kind = w.Dropdown(options=list(KINDS), value=inputs.kind, description="design", style=STYLE,
                               layout=_wide())
        self.n_clusters = w.IntText(value=inputs.n_clusters, description="clusters", style=STYLE, layout=_wide())
        self.steps = w.IntText(value=inputs.steps, description="steps", style=STYLE, layout=_wide())
        self.extra_periods = w.IntText(value=inputs.extra_periods, description="periods after the last step",
                                       style=STYLE, layout=_wide())
        self.periods = w.IntText(value=inputs.periods, description="periods", style=STYLE, layout=_wide())
        self.baseline_periods = w.IntText(value=inputs.baseline_periods, description="baseline periods", style=STYLE,
                                          layout=_wide())
        for name in ("kind", "n_clusters", "steps", "extra_periods", "periods", "baseline_periods"):
            w.link((getattr(self, name), "value"), (inputs, name))
        self.summary = w.HTML()
        self.message = w.HTML()
        self.grid = chart_widget("crt_multiperiod_design", "rect")
        self.grid.add_class("crt-mp-grid")
        self.controls = w.VBox([self.kind, self.n_clusters, self.steps, self.extra_periods, self.periods,
                                self.baseline_periods])
        self.widget = w.VBox([self.summary, self.message, self.grid])
        inputs.observe(self._show, names=["kind", "n_clusters", "steps", "extra_periods", "periods",
                                          "baseline_periods"])
        self._show()

    def _show(self, change=None) -> None:
        from crt_widgets.widgets.multiperiod_charts import design_matrix_chart

        used = DESIGN_INPUTS[self.inputs.kind]
        for name in ("steps", "extra_periods", "periods", "baseline_periods"):
            _hidden(getattr(self, name), name not in used)
        try:
            design = build_design(self.inputs)
        except ValueError as exc:  # no grid of other inputs beside the message
            self.message.value = message_html(str(exc))
            self.summary.value = ""
            _hidden(self.grid, True)
            return
        counts = design.clusters_per_sequence.tolist()
        word = "step" if self.inputs.kind == "stepped wedge" else "sequence"
        per = f"{counts[0]} per {word}" if len(set(counts)) == 1 else f"{', '.join(map(str, counts))} per {word}"
        self.summary.value = (f'<div class="crt-mp-design">{html.escape(design.kind)}: {design.n_clusters} clusters '
                              f"({per}), {design.n_sequences} sequences, {design.n_periods} periods</div>")
        self.message.value = ""
        self.grid.chart = design_matrix_chart(design, cell=14 if design.n_clusters <= 40 else 6)
        _hidden(self.grid, False)


class MultiPeriodPowerPanel:
    """Cluster-period size, ICC, CAC or decay, cross-sectional or cohort, the effect; the power of the design and
    power curves against the number of steps and the clusters per step (the core's numbers)."""

    def __init__(self, inputs: MultiPeriodInputs) -> None:
        self.inputs = q = inputs
        self.cluster_size = w.FloatText(value=q.cluster_size, description="individuals per cluster-period",
                                        style=STYLE, layout=_wide())
        self.icc = w.FloatText(value=q.icc, step=0.01, description="ICC", style=STYLE, layout=_wide())
        self.correlation = w.ToggleButtons(options=list(CORRELATIONS), value=q.correlation,
                                           description="over periods", style={"description_width": "170px",
                                                                              "button_width": "155px"})
        self.cac = w.FloatText(value=q.cac, step=0.05, description="CAC", style=STYLE, layout=_wide(),
                               tooltip="cluster autocorrelation: the correlation of a cluster's means in two periods")
        self.decay = w.FloatText(value=q.decay, step=0.05, description="decay (one period apart)", style=STYLE,
                                 layout=_wide())
        self.cohort = w.ToggleButtons(options=[("cross-sectional", False), ("closed cohort", True)], value=q.cohort,
                                      description="sampling", style={"description_width": "170px",
                                                                     "button_width": "155px"})
        self.iac = w.FloatText(value=q.iac, step=0.05, description="IAC", style=STYLE, layout=_wide(),
                               tooltip="individual autocorrelation: one person's outcomes in two periods")
        self.outcome = w.ToggleButtons(options=["continuous", "binary"], value=q.outcome, description="outcome",
                                       style={"description_width": "170px", "button_width": "155px"})
        self.effect = w.FloatText(value=q.effect, step=0.05, description="difference in means", style=STYLE,
                                  layout=_wide())
        self.sd = w.FloatText(value=q.sd, step=0.1, description="SD of an individual", style=STYLE, layout=_wide())
        self.p_control = w.FloatText(value=q.p_control, step=0.01, description="control proportion", style=STYLE,
                                     layout=_wide())
        self.p_treatment = w.FloatText(value=q.p_treatment, step=0.01, description="treatment proportion",
                                       style=STYLE, layout=_wide())
        self.alpha = w.FloatText(value=q.alpha, step=0.01, description="alpha (two-sided)", style=STYLE, layout=_wide())
        names = ("cluster_size", "icc", "correlation", "cac", "decay", "cohort", "iac", "outcome", "effect", "sd",
                 "p_control", "p_treatment", "alpha")
        for name in names:
            w.link((getattr(self, name), "value"), (q, name))
        self.controls = w.VBox([getattr(self, name) for name in names])
        self.answer = w.HTML()
        self.by_steps = chart_widget("crt_multiperiod_power_by_steps", "line")
        self.by_clusters = chart_widget("crt_multiperiod_power_by_clusters", "line")
        self.curves = w.HBox([self.by_steps, self.by_clusters], layout=w.Layout(flex_flow="row wrap"))
        self.widget = w.VBox([self.answer, self.curves])
        q.observe(self._show, names=list(q.trait_names()))
        self._show()

    def _show(self, change=None) -> None:
        q = self.inputs
        shown = EFFECT_INPUTS[q.outcome] + (("cac",) if q.correlation == "block exchangeable" else ("decay",)) + \
            (("iac",) if q.cohort else ())
        for name in ("effect", "sd", "p_control", "p_treatment", "cac", "decay", "iac"):
            _hidden(getattr(self, name), name not in shown)
        try:
            result = design_power(q)
            curves = design_power_curves(q)
            needed = self._needed()
        except ValueError as exc:  # stale numbers go: the message alone
            self.answer.value = message_html(str(exc))
            _hidden(self.curves, True)
            return
        d = result.design
        word = "step" if q.kind == "stepped wedge" else "sequence"
        reach = "; ".join(f"{target:.0%} power: " + (f"{k} clusters per {word}" if k else
                                                       f"more than {MAX_REPLICATES:,} clusters per {word}")
                          for target, k in needed.items())
        correlation = (f"CAC {q.cac:g}" if q.correlation == "block exchangeable" else f"decay {q.decay:g}") + \
            (f", closed cohort (IAC {q.iac:g})" if q.cohort else ", cross-sectional")
        self.answer.value = (
            f'<div class="crt-mp-power" style="font-size:110%;margin-top:6px">Power <b>{result.power:.3f}</b> '
            f"to detect {result.effect:g} ({html.escape(q.outcome)})</div>"
            f"<div>SE of the estimate {result.se:.4g}; {d.n_clusters} clusters, {d.n_periods} periods of "
            f"{q.cluster_size:g} individuals; ICC {q.icc:g}, {html.escape(correlation)}; GLS with period effects, "
            f"two-sided normal test at alpha {q.alpha:g}.</div><div>With the same sequences, {reach}.</div>")
        self._draw(curves)
        _hidden(self.curves, False)

    def _needed(self) -> dict[float, int | None]:
        """Clusters per sequence that 80% and 90% power need (the same on every sequence; None: more than
        ``MAX_REPLICATES``, said so rather than failing the whole answer)."""
        design = build_design(self.inputs)
        effect, settings = power_question(self.inputs)
        one_each = design.with_clusters(np.ones(design.n_sequences, dtype=int))
        needed = {}
        for target in (0.8, 0.9):
            try:
                needed[target] = multiperiod_clusters_needed(one_each, effect, power=target,
                                                             max_replicates=MAX_REPLICATES, **settings).replicates
            except ValueError:
                needed[target] = None
        return needed

    def _draw(self, curves: dict[str, pd.DataFrame]) -> None:
        import altair as alt

        from crt_widgets.widgets.power_charts import power_curve_chart

        word = "step" if self.inputs.kind == "stepped wedge" else "sequence"
        for widget, key, title in ((self.by_steps, "steps", "Power against the number of steps"),
                                   (self.by_clusters, "clusters per step", f"Power against the clusters per {word}")):
            curve = curves.get(key)
            _hidden(widget, curve is None)
            if curve is None:
                continue
            x = curve.attrs["against"]
            here = alt.Chart(curve[curve["current"]]).mark_point(color="#d62728", filled=True, size=80).encode(
                x=f"{x}:Q", y="power:Q", tooltip=[alt.Tooltip(f"{x}:Q", title="this design"),
                                                  alt.Tooltip("power:Q", format=".3f")])
            widget.chart = power_curve_chart(curve.drop(columns="current"), against=x, target=0.8, width=300,
                                             height=200, title=title) + here


class OrderPanel:
    """The constrained randomization of the order: covariates, weights, balance, cutoff; the live histogram of
    balance scores, each covariate's |SMD| over the kept orders and the balance with time on treatment; the
    Design section's Draw; the order drawn as a grid after the draw."""

    def __init__(self, order: OrderState) -> None:
        from crt_widgets.widgets.binning import histogram_data, zoom_data
        from crt_widgets.widgets.charts import histogram_spec

        self._histogram_data, self._zoom_data, self._histogram_spec = histogram_data, zoom_data, histogram_spec
        self.order = order
        self.covariates = w.SelectMultiple(rows=5, description="balance on", style=STYLE, layout=_wide())
        self.stratify = w.SelectMultiple(rows=2, description="spread evenly (strata)", style=STYLE, layout=_wide(),
                                         tooltip="categorical covariates whose levels every sequence shares evenly")
        self.weights_box = w.VBox()
        self.sliders: dict[str, w.FloatSlider] = {}
        self.balance = w.ToggleButtons(options=[("across sequences", "sequences"), ("with time on treatment", "time")],
                                       value=order.balance, description="balance",
                                       style={"description_width": "170px", "button_width": "150px"})
        self.metric = w.ToggleButtons(options=["l2", "l1"], value=order.metric, description="metric",
                                      style={"description_width": "170px", "button_width": "60px"})
        self.mode = w.ToggleButtons(options=[("quantile", False), ("best N", True)], value=order.use_n_best,
                                    description="keep", style={"description_width": "170px", "button_width": "90px"})
        self.cutoff = w.FloatLogSlider(value=order.cutoff, base=10, min=-3, max=0, step=0.0001, description="cutoff q",
                                       readout_format=".3f", style=STYLE, layout=_wide())
        self.n_best = w.BoundedIntText(value=order.n_best, min=2, max=10**9, description="N", style=STYLE, layout=_wide())
        self.size = w.IntText(value=order.size, step=10_000, description="orders listed or sampled", style=STYLE,
                              layout=_wide())
        self.seed = w.IntText(value=order.seed, description="sampling seed", style=STYLE, layout=_wide())
        w.link((self.cutoff, "value"), (order, "cutoff"), transform=(significant, lambda v: v))
        for name in ("balance", "metric", "size", "seed", "n_best"):
            w.link((getattr(self, name), "value"), (order, name))
        w.link((self.mode, "value"), (order, "use_n_best"))
        self._syncing = False
        self.covariates.observe(self._on_covariates, names="value")
        self.stratify.observe(self._on_stratify, names="value")
        self.count = w.HTML()
        self.message = w.HTML()
        self.histogram = chart_widget("crt_multiperiod_balance_scores", "bar")
        self.smd = w.HTML()
        self.time_balance = w.HTML()
        self.validity = w.HTML()
        self.results = w.VBox([
            self.histogram,
            w.HTML("<h4>Balance across the constrained space: each covariate's |SMD| between sequences over the kept "
                   "orders (the order to be drawn stays concealed)</h4>"), self.smd,
            w.HTML("<h4>Balance with time on treatment: |correlation| of each covariate with the periods a cluster "
                   "is treated, over the kept orders and over all (simple randomization)</h4>"), self.time_balance,
            w.HTML("<h4>Randomization validity: how often each pair of clusters shares a sequence</h4>"),
            self.validity])
        self.draw = DrawPanel(order)
        self.drawn = chart_widget("crt_multiperiod_drawn_order", "rect")
        self.drawn.add_class("crt-mp-drawn-grid")
        self.controls = w.VBox([self.covariates, self.stratify, self.weights_box, self.balance, self.metric, self.mode, self.cutoff,
                                self.n_best, self.size, self.seed, self.count])
        self.widget = w.VBox([self.message, self.results])
        order.observe(self._show, names=["design", "error", "warnings"])
        order.observe(self._show_drawn, names=["allocation"])
        order.observe(self._sync_covariates, names=["covariates", "stratify"])
        order.clusters.observe(self._sync_covariates, names=["data", "cluster_id"])
        order.observe(self._mode, names="use_n_best")
        self._sync_covariates()
        self._mode()
        self._show()
        self._show_drawn()

    def _mode(self, change=None) -> None:
        self.cutoff.disabled = self.order.use_n_best
        self.n_best.disabled = not self.order.use_n_best

    def _sync_covariates(self, change=None) -> None:
        o, c = self.order, self.order.clusters
        self._syncing = True
        try:
            columns = [] if c.data is None else [str(k) for k in c.data.columns if str(k) != c.cluster_id]
            self.covariates.options = columns
            self.covariates.value = tuple(k for k in o.covariates if k in columns)
            self.stratify.options = [k for k in o.covariates if k in c.categorical]
            self.stratify.value = tuple(k for k in o.stratify if k in self.stratify.options)
        finally:
            self._syncing = False
        sliders = []
        self.sliders = {}
        for name in o.covariates:
            slider = w.FloatSlider(value=float(o.weights.get(name, 1.0)), min=0, max=5, step=0.1, description=name,
                                   readout_format=".1f", style=STYLE, layout=_wide())
            slider.observe(self._on_weight, names="value")
            self.sliders[name] = slider
            sliders.append(slider)
        self.weights_box.children = [w.HTML("<b>Weights</b> (0 switches a covariate off)")] + sliders

    def _on_covariates(self, change) -> None:
        if not self._syncing:
            self.order.covariates = list(change["new"])

    def _on_stratify(self, change) -> None:
        if not self._syncing:
            self.order.stratify = list(change["new"])

    def _on_weight(self, change) -> None:
        self.order.weights = {name: s.value for name, s in self.sliders.items()}

    def _show(self, change=None) -> None:
        o = self.order
        d = o.design
        if d is None:  # the message alone: nothing of other inputs stays on screen
            self.message.value = message_html(o.error)
            self.count.value = "<b>Orders kept:</b> –"
            _hidden(self.results, True)
            return
        cut = f" (cutoff score {d.cutoff_score:.3f})" if d.cutoff_score is not None else ""
        self.count.value = (f'<b>Orders kept:</b> <span class="crt-mp-kept">{o.kept:,}</span> of '
                            f"{len(d.scores):,}{cut}<div><small>{html.escape(d.scheme_message)}</small></div>")
        self.message.value = "".join(message_html(text, "warning") for text in o.warnings)
        try:
            chosen = None if o.allocation is None else o.allocation.score  # marked only once drawn
            self.histogram.spec = self._histogram_spec(self._histogram_data(d), d.cutoff_score, chosen,
                                                       self._zoom_data(d))
            few = int(d.arm_counts.min())
            # an SMD divides by the SD within a sequence: with one or two clusters on a sequence it is unstable
            # (or undefined), and the balance with time on treatment below is the better guide
            note = ("" if few >= 3 else message_html(
                f"With {few} cluster(s) on a sequence the SMD between sequences is unstable (nan: no spread within "
                "a sequence); judge the balance with time on treatment below.", "warning"))
            self.smd.value = "" if o.smd is None else note + smd_distribution_html(o.smd)
            self.time_balance.value = "" if o.time_balance is None else time_balance_html(o.time_balance)
            self.validity.value = (d.validity.table().to_html(float_format=lambda v: f"{v:.3f}", border=0)
                                   if d.validity.available else message_html(d.validity.unavailable))
        except Exception as exc:  # a display problem must not hide the design or raise into the browser
            self.message.value = message_html(f"Could not draw the outputs: {exc}")
        _hidden(self.results, False)

    def _show_drawn(self, change=None) -> None:
        from crt_widgets.widgets.multiperiod_charts import design_matrix_chart

        a = self.order.allocation
        _hidden(self.drawn, a is None)
        if a is not None:
            self.drawn.chart = design_matrix_chart(a, title=f"The order drawn (seed {a.seed}): each cluster's "
                                                            "condition by period")
            self._show()  # the histogram marks the drawn order's score


def time_balance_html(table: pd.DataFrame) -> str:
    """The |correlation with time on treatment| part of ``balance_comparison()`` as an HTML table.

    >>> t = pd.DataFrame([[0.1, 0.3, 0.2, 0.6]], index=pd.Index(["size"], name="covariate"),
    ...     columns=pd.MultiIndex.from_product([["|r| with time on treatment"],
    ...         ["constrained median", "constrained 95%", "unconstrained median", "unconstrained 95%"]]))
    >>> "unconstrained 95%" in time_balance_html(t)
    True
    """
    part = table["|r| with time on treatment"]
    return part.to_html(float_format=lambda v: f"{v:.3f}", border=0, classes="crt-mp-time-balance")


class MultiPeriodSection:
    """The Multi-period section: design and grid, power and curves, the randomization of the order and its draw.

    Parameters
    ----------
    clusters : the Design section's state, whose clusters (data, cluster id, covariates) the order randomizes.
    records_dir : where draws are logged (default: the Design section's).
    """

    def __init__(self, clusters: DesignState, records_dir: str | None = None) -> None:
        n = len(clusters.data) if clusters.data is not None else 16
        steps = next((s for s in (4, 3, 5, 2) if n % s == 0 and n >= s), 2)
        self.inputs = MultiPeriodInputs(n_clusters=n, steps=steps)
        self.order = OrderState(clusters, self.inputs, **({} if records_dir is None else {"records_dir": records_dir}))
        self.design = MultiPeriodDesignPanel(self.inputs)
        self.power = MultiPeriodPowerPanel(self.inputs)
        self.ordering = OrderPanel(self.order)
        # controls left, results right; on a narrow screen the results wrap below the controls
        left = w.VBox([w.HTML("<b>Design</b>"), self.design.controls, w.HTML("<b>Power</b>"), self.power.controls],
                      layout=w.Layout(flex="0 1 440px", min_width="0"))
        right = w.VBox([self.design.widget, self.power.widget],
                       layout=w.Layout(flex="1 1 340px", min_width="0", overflow="auto"))
        order_left = w.VBox([self.ordering.controls, self.ordering.draw.widget],
                            layout=w.Layout(flex="0 1 440px", min_width="0"))
        order_right = w.VBox([self.ordering.drawn, self.ordering.widget],
                             layout=w.Layout(flex="1 1 340px", min_width="0", overflow="auto"))
        heading = ("<h3>Randomizing the order</h3><p style='margin:0 0 6px'>The Design section's clusters assigned "
                   "to the sequences of this design: every order is scored for balance, the best are kept, and one is "
                   "drawn when you confirm (concealed until then, and logged like the Design section's draws).</p>")
        self.widget = w.VBox([w.HTML(INTRO), w.HBox([left, right], layout=w.Layout(flex_flow="row wrap")),
                              w.HTML("<hr>" + heading),
                              w.HBox([order_left, order_right], layout=w.Layout(flex_flow="row wrap"))])
        self.widget.add_class("crt-section")
        self.widget.add_class("crt-multiperiod")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
