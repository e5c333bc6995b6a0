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

from crt_widgets.widgets.formatting import message_html
from crt_widgets.widgets.state import DesignState, analytic_power

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
        state.observe(self._show, names=["data", "n_treat", "n_arms"])
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
