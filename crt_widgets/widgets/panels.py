"""ipywidgets panels, each a thin view over a :class:`DesignState` (usable on its own in JupyterLab).

Every panel has a ``.widget`` to display. Inputs are linked to the state's traits; outputs observe
the state and only format what the core computed.

>>> from crt_widgets.widgets.state import DesignState
>>> panel = CutoffPanel(DesignState())
>>> panel.quantile.min, panel.quantile.max, format(0.0104, panel.quantile.readout_format)
(-3.0, 0.0, '0.0104')
"""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import pandas as pd

from crt_widgets.commands._voila import MB, UPLOAD_LIMIT_BYTES
from crt_widgets.core.io.drawlog import draw_seed
from crt_widgets.core.io.tables import read_table
from crt_widgets.widgets.accessibility import hide_file_count, log_keys, name_control
from crt_widgets.widgets.charts import HEATMAP_MAX_CLUSTERS, too_many_for_heatmap
from crt_widgets.widgets.formatting import STALE_CSS, message_html, smd_distribution_html, smd_table_html
from crt_widgets.widgets.glossary import help_html
from crt_widgets.widgets.state import DesignState, arm_names_of
from crt_widgets.widgets.uploads import take_upload
from crt_widgets.widgets.words import (allocation_words, assignment_words, baseline_words, design_arm_labels,
                                       group_names, position_words, validity_table_words)

EXAMPLES = {
    "Dickinson counties (cvcrand paper)": "dickinson",
    "ED-LEAD-like emergency departments": "edlead",
    "Call centres (Buisson 2021)": "callcenter",
}


def load_example(key: str) -> tuple[pd.DataFrame, dict]:
    """A bundled example and the settings that suit it."""
    from crt_widgets import datasets

    if key == "dickinson":
        return datasets.load_dickinson(), {
            "cluster_id": "county", "n_treat": 8,
            "covariates": ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
            "categorical": ["location", "incomecat"]}
    if key == "edlead":
        eds = datasets.simulate_edlead(seed=2026)
        cid = eds.columns[0]
        covs = [c for c in eds.columns if c != cid and eds[c].nunique() > 1]
        return eds, {"cluster_id": cid, "covariates": covs, "n_treat": len(eds) // 2, "sampling": "sample",
                     "size": 50_000}
    if key == "callcenter":
        calls = datasets.load_callcenter("historical")
        centres = calls.groupby("center_ID").agg(calls=("call_CSAT", "size"), mean_csat=("call_CSAT", "mean"),
                                                 mean_age=("age", "mean"),
                                                 share_property=("reason", lambda r: float(np.mean(r == "property"))))
        centres = centres.reset_index().round(3)
        return centres, {"cluster_id": "center_ID", "covariates": ["calls", "mean_csat", "mean_age", "share_property"],
                         "n_treat": len(centres) // 2}
    raise ValueError(f"unknown example {key!r}")


def read_uploaded_csv(content: bytes, name: str) -> pd.DataFrame:
    """Parse an uploaded CSV (comma, semicolon or tab separated, as spreadsheets export it, see
    :func:`~crt_widgets.core.io.tables.read_table`); a problem is a ValueError with a message for the panel,
    and ``frame.attrs["notes"]`` says which columns were read as text and why.

    >>> read_uploaded_csv(b"site;size\\n1;10\\n2;12\\n", "eu.csv").columns.tolist()
    ['site', 'size']
    """
    frame, notes = read_table(content, name)
    frame.attrs["notes"] = notes  # columns read as text, and why (shown beside the data)
    if frame.shape[1] < 2 or len(frame) < 2:
        raise ValueError(f"{name} needs a header row, at least two columns (a cluster id and a covariate) "
                         f"and one row per cluster; it has {frame.shape[1]} column(s) and {len(frame)} row(s)")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:") or _is_number(c)]
    if len(unnamed) >= frame.shape[1] - 1:
        raise ValueError(f"{name}: the first row should name the columns (cluster id, covariates); "
                         f"found {', '.join(map(str, frame.columns[:4]))}")
    return frame


def _is_number(text) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


class DataPanel:
    """Load a CSV or a bundled example; preview it; show problems in the panel."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        self.example = w.Dropdown(options=[("(choose an example)", "")] + list(EXAMPLES.items()), value="",
                                  description="Example", layout=w.Layout(width="420px"))
        self.upload = w.FileUpload(accept=".csv", multiple=False, description="Upload CSV")
        self.upload.add_class(f"crt-upload-limit-{UPLOAD_LIMIT_BYTES}")  # the page's guard reads the limit here
        name_control(hide_file_count(self.upload), "Upload CSV of the clusters (one row each)")
        self.message = w.HTML()
        self.preview = w.HTML()
        self._syncing = False
        self.example.observe(self._on_example, names="value")
        self.upload.observe(self._on_upload, names="value")
        state.observe(self._show, names=["data", "error"])
        state.observe(self._follow_source, names="source")
        self.widget = w.VBox([w.HBox([self.example, self.upload]), self.message, self.preview])

    def _follow_source(self, change) -> None:
        self._syncing = True  # show which example is loaded without loading it again
        try:
            self.example.value = EXAMPLES.get(self.state.source, "")
        finally:
            self._syncing = False

    def _on_example(self, change) -> None:
        if change["new"] and not self._syncing:
            try:
                data, settings = load_example(change["new"])
            except (ImportError, AttributeError, ValueError, FileNotFoundError) as exc:
                self.message.value = message_html(f"That example is not available: {exc}")
                return
            self.state.load(data, self.example.label, **settings)

    def _on_upload(self, change) -> None:
        uploaded = take_upload(change, self.upload)
        if uploaded is None:
            return
        name, content, size = uploaded
        try:
            if size > UPLOAD_LIMIT_BYTES:  # the page sent a few bytes instead
                raise ValueError(f"{name} is {size / MB:.1f} MB, more than the {UPLOAD_LIMIT_BYTES / MB:.0f} MB "
                                 "one upload can carry")
            data = read_uploaded_csv(content, name)
        except ValueError as exc:
            self.message.value = message_html(str(exc))
            return
        self.state.load(data, name)
        self.message.value = message_html(self.state.error) or message_html(" ".join(data.attrs["notes"]), "warning")

    def set_data(self, data: pd.DataFrame, name: str = "data") -> None:
        """Load a DataFrame directly (for notebooks and tests)."""
        self.state.load(data, name)

    def _show(self, change=None) -> None:
        s = self.state
        if s.data is not None:
            # the table folds away: the controls and the histogram matter more on a small screen
            self.preview.value = (f"<details><summary><b>{html.escape(s.source or 'data')}</b>: {len(s.data)} "
                                  f"clusters, {s.data.shape[1]} columns (click to preview)</summary>"
                                  "<div style='max-height:220px;overflow:auto'>"
                                  + s.data.head(50).to_html(border=0, max_cols=12, index=False, classes="crt-preview")
                                  + "</div></details>")
        self.message.value = message_html(s.error)


class CovariatePanel:
    """Choose the cluster id, the covariates to balance and which of them are categorical."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        self.cluster_id = w.Dropdown(description="Cluster id", options=[""])
        self.covariates = w.SelectMultiple(rows=8, layout=w.Layout(width="225px"))
        self.categorical = w.SelectMultiple(rows=8, layout=w.Layout(width="190px"))
        name_control(self.covariates, "Covariates to balance on")
        name_control(self.categorical, "Categorical covariates")
        self.note = w.HTML()
        state.observe(self._refresh, names=["data", "covariates", "categorical", "cluster_id"])
        self.cluster_id.observe(lambda c: self._push("cluster_id", c["new"] or ""), names="value")
        self.covariates.observe(lambda c: self._push("covariates", list(c["new"])), names="value")
        self.categorical.observe(lambda c: self._push("categorical", list(c["new"])), names="value")
        self._syncing = False
        help_ = ("<small>Ctrl/Cmd-click to pick several. Text columns are categorical; a numeric column with "
                 "few values can be declared categorical too.</small>")
        self.widget = w.VBox([self.cluster_id,
                              w.HBox([w.VBox([w.HTML("Balance on"), self.covariates]),
                                      w.VBox([w.HTML("Categorical"), self.categorical])]),
                              w.HTML(help_), self.note])
        self._refresh()

    def _push(self, name: str, value) -> None:
        if not self._syncing and getattr(self.state, name) != value:
            setattr(self.state, name, value)

    def _refresh(self, change=None) -> None:
        s = self.state
        if s.data is None:
            return
        self._syncing = True
        try:
            cols = [str(c) for c in s.data.columns]
            self.cluster_id.options = [""] + cols
            self.cluster_id.value = s.cluster_id if s.cluster_id in cols else ""
            self.covariates.options = [c for c in cols if c != s.cluster_id]
            self.covariates.value = tuple(c for c in s.covariates if c in self.covariates.options)
            self.categorical.options = list(s.covariates)
            self.categorical.value = tuple(c for c in s.categorical if c in s.covariates)
        finally:
            self._syncing = False
        few = s.few_levels()
        self.note.value = message_html(
            f"Few distinct values in {', '.join(few)}: consider declaring them categorical." if few else "", "warning")


class WeightPanel:
    """One weight slider per covariate (0 switches it off) and a stratify toggle for categorical ones."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        self.sliders: dict[str, w.FloatSlider] = {}
        self.stratify: dict[str, w.Checkbox] = {}
        self.box = w.VBox()
        self._syncing = False
        self.widget = w.VBox([w.HTML("<b>Weights</b> (0 switches a covariate off)"),
                              w.HTML(help_html("weights", "weights") + help_html("stratify", "stratify")), self.box])
        state.observe(self._rebuild, names=["covariates", "categorical"])
        state.observe(self._sync, names=["weights", "stratify"])
        self._rebuild()

    def _rebuild(self, change=None) -> None:
        rows = []
        self.sliders, self.stratify = {}, {}
        for name in self.state.covariates:
            s = w.FloatSlider(value=float(self.state.weights.get(name, 1.0)), min=0, max=5, step=0.1,
                              description=name, tooltip=f"Weight of {name}", continuous_update=True,
                              readout_format=".1f", style={"description_width": "170px"},
                              # 380 px beside its stratify box when there is room, else the column's width
                              layout=w.Layout(flex="1 1 300px", min_width="0", max_width="380px"))
            name_control(s, f"Weight of {name}")
            s.observe(self._on_weight, names="value")
            self.sliders[name] = s
            row = [s]
            if name in self.state.categorical:
                box = w.Checkbox(value=name in self.state.stratify, description="stratify", indent=False,
                                 tooltip=f"Stratify on {name}", layout=w.Layout(width="90px"))
                name_control(box, f"Stratify on {name}")
                box.observe(self._on_stratify, names="value")
                self.stratify[name] = box
                row.append(box)
            rows.append(w.HBox(row))
        self.box.children = rows
        self._weights_in_use()

    def _weights_in_use(self) -> None:
        # a stratified covariate is balanced exactly: its weight does nothing, so it cannot be moved
        for name, s in self.sliders.items():
            exact = name in self.state.stratify
            s.disabled = exact
            s.tooltip = (f"Weight of {name}: not used, {name} is balanced exactly by stratification" if exact
                         else f"Weight of {name}")

    def _sync(self, change=None) -> None:
        # showing the state's values must not write half-updated values back (one re-score per change)
        self._syncing = True
        try:
            for name, s in self.sliders.items():
                s.value = float(self.state.weights.get(name, 1.0))
            for name, box in self.stratify.items():
                box.value = name in self.state.stratify
            self._weights_in_use()
        finally:
            self._syncing = False

    def _on_weight(self, change) -> None:
        if not self._syncing:
            self.state.weights = {name: s.value for name, s in self.sliders.items()}

    def _on_stratify(self, change) -> None:
        if not self._syncing:
            self.state.stratify = [name for name, box in self.stratify.items() if box.value]


def significant(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant digits (how people write a cutoff quantile).

    >>> significant(10 ** -1.30103), significant(0.0437158)
    (0.05, 0.0437)
    """
    return float(f"{value:.{digits}g}")


class CutoffPanel:
    """The cutoff quantile q (log scale, 0.001 to 1) or keep the best N; the live count and warnings."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        # a fine step on the log scale, and q kept to 3 significant digits: a typed 0.05 is recorded as 0.05
        self.quantile = w.FloatLogSlider(value=state.cutoff, base=10, min=-3, max=0, step=0.0001,
                                         description="cutoff q", readout_format=".3g", continuous_update=True,
                                         layout=w.Layout(width="420px"))
        # the readout shows q to 3 significant digits (0.0104, not 0.010), which the slider also announces
        name_control(log_keys(self.quantile), "cutoff q (share of schemes kept)")
        self.mode = w.ToggleButtons(options=[("quantile", False), ("best N", True)], value=state.use_n_best)
        name_control(self.mode, "Cutoff rule")
        self.n_best = w.BoundedIntText(value=state.n_best, min=2, max=10**9, description="N", layout=w.Layout(width="200px"))
        name_control(self.n_best, "Keep the best N schemes")
        self.count = w.HTML()
        self.warnings = w.HTML()
        w.link((self.quantile, "value"), (state, "cutoff"), transform=(significant, lambda q: q))
        w.link((self.mode, "value"), (state, "use_n_best"))
        w.link((self.n_best, "value"), (state, "n_best"))
        state.observe(self._show, names=["design", "error", "warnings"])
        state.observe(self._mode, names="use_n_best")
        # the dashboard shows the controls in a tab and the count and warnings below the tabs (always in view)
        self.controls = w.VBox([self.mode, self.quantile, self.n_best,
                                w.HTML(help_html("cutoff", "cutoff q") + help_html("best_n", "best N")
                                       + help_html("score", "balance score"))])
        self.status = w.VBox([self.count, self.warnings])
        self.widget = w.VBox([self.controls, self.status])
        self._mode()
        self._show()

    def _mode(self, change=None) -> None:
        # only the rule in force can be edited
        self.quantile.disabled = self.state.use_n_best
        self.n_best.disabled = not self.state.use_n_best

    def _show(self, change=None) -> None:
        s = self.state
        d = s.design
        if d is None:
            self.count.value = "<b>Schemes kept:</b> –"
            self.warnings.value = message_html(s.error)
            return
        cut = "" if d.cutoff_score is None else f" (cutoff score {d.cutoff_score:.3f})"
        self.count.value = (f'<b>Schemes kept:</b> <span class="crt-kept">{s.kept:,}</span> of '
                            f"{len(d.scores):,}{cut}")
        self.warnings.value = "".join(message_html(m, "warning") for m in s.warnings)


class ArmPanel:
    """Clusters in treatment, metric, enumerate or sample (and how many), and the seed."""

    def __init__(self, state: DesignState) -> None:
        self.state = state
        # unbounded on purpose: a bad count is reported by the core in the panel, not clamped silently
        self.n_treat = w.IntText(value=state.n_treat, description="intervention",
                                 tooltip="clusters in the intervention arm (two arms)")
        self.n_arms = w.BoundedIntText(value=state.n_arms, min=2, max=64, description="arms")
        name_control(self.n_arms, "Number of arms")
        # the arms' names (the screen and the report); the files keep the codes 0, 1, ...
        self.arm_names = w.Text(value=state.arm_names_text, description="arm names",
                                placeholder="Control, Intervention", continuous_update=False,
                                layout=w.Layout(width="420px"))
        name_control(self.arm_names, "Arm names, separated by commas")
        self.arm_names_note = w.HTML()
        w.link((self.arm_names, "value"), (state, "arm_names_text"))
        self.metric = w.ToggleButtons(options=["l2", "l1"], value=state.metric, description="metric")
        name_control(self.metric, "Balance score metric")
        self.sampling = w.Dropdown(options=[("enumerate if small", "auto"), ("enumerate all", "enumerate"),
                                            ("sample", "sample")], value=state.sampling, description="schemes")
        self.size = w.IntText(value=state.size, step=10_000, description="sample size")  # limits: a message
        # which candidates a sampled space holds; the draw's own seed is chosen at the draw (Draw panel)
        self.seed = w.IntText(value=state.seed, description="sampling seed", style={"description_width": "initial"})
        name_control(self.size, "sample size (schemes to sample)")
        name_control(self.sampling, "List all schemes or sample them")
        self.status = w.HTML()
        for widget, name in ((self.n_treat, "n_treat"), (self.n_arms, "n_arms"), (self.metric, "metric"),
                             (self.sampling, "sampling"), (self.size, "size"), (self.seed, "seed")):
            w.link((widget, "value"), (state, name))
        state.observe(self._show, names=["busy", "design", "data", "n_arms"])
        state.observe(self._show_names, names=["arm_names", "arm_names_error"])
        self.widget = w.VBox([self.n_arms, self.arm_names, self.arm_names_note, self.n_treat, self.metric,
                              self.sampling, self.size, self.seed, self.status,
                              w.HTML(help_html("arms", "arms") + help_html("arm_names", "arm names")
                                     + help_html("n_treat", "intervention clusters") + help_html("metric", "metric")
                                     + help_html("schemes", "schemes and seed"))])
        self._show()
        self._show_names()

    def _show_names(self, change=None) -> None:
        s = self.state
        self.arm_names_note.value = message_html(s.arm_names_error)
        intervention = s.arm_names[1] if len(s.arm_names) == 2 else "intervention"
        name_control(self.n_treat, f"intervention: clusters in the {intervention} arm")

    def _show(self, change=None) -> None:
        s = self.state
        self.n_treat.disabled = s.n_arms != 2
        self.sampling.disabled = s.n_arms != 2  # multi-arm candidates are always sampled
        if s.busy:
            self.status.value = "<i>building the randomization space…</i>"
        elif s.design is not None:
            message = getattr(s.design, "scheme_message", None) or (
                f"{len(s.design.scores):,} distinct allocations to {s.n_arms} arms sampled"
                f"{' (balanced within ' + s.stratify[0] + ')' if s.stratify else ''}")
            self.status.value = html.escape(message)
        else:
            self.status.value = ""


BUSY_HTML = ("<style>@keyframes crt-spin{to{transform:rotate(360deg)}}</style>"
             '<div class="crt-busy" style="padding:6px 10px;background:#eef4fb;border-left:4px solid #2b7bba">'
             '<span style="display:inline-block;width:12px;height:12px;border:2px solid #2b7bba;'
             'border-top-color:transparent;border-radius:50%;animation:crt-spin 0.8s linear infinite;'
             'margin-right:8px;vertical-align:-2px"></span>Building the randomization space…</div>')


class OutputPanel:
    """What describes the constrained space: the histogram of all scores with the cutoff, each
    covariate's |SMD| over the kept schemes, each cluster's probability of treatment, validity, messages.

    The scheme a draw would return is never shown before the draw; once drawn, its score is marked on
    the histogram. After an input error the results of the last valid inputs stay greyed, the message beside.
    """

    def __init__(self, state: DesignState) -> None:
        from crt_widgets.widgets.charts import full_histogram_spec, heatmap_reference, heatmap_spec, zoom_spec
        from crt_widgets.widgets.binning import histogram_data, zoom_data
        from crt_widgets.widgets.reflow import container_chart

        self._histogram_data, self._zoom_data = histogram_data, zoom_data
        self._histogram_spec, self._heatmap_spec, self._zoom_spec = full_histogram_spec, heatmap_spec, zoom_spec
        self._heatmap_reference = heatmap_reference
        self.state = state
        # each chart as wide as its box; the zoom beside the full histogram when there is room, else below;
        # the charts' menu exports (named files) and never offers the outside Vega Editor
        self.histogram = container_chart("crt_balance_scores")
        self.zoom = container_chart("crt_balance_scores_zoom")
        self.heatmap = container_chart("crt_pairs_same_arm")
        self.histogram.layout = w.Layout(flex="2 1 320px")
        self.zoom.layout = w.Layout(flex="1 1 220px")  # room for its title
        self.smd = w.HTML()
        self.probabilities = w.HTML()
        self.validity = w.HTML()
        self.messages = w.HTML()
        self.problem = w.HTML()
        self.progress = w.HTML()
        state.observe(self._show, names=["design", "allocation", "arm_names"])
        state.observe(self._stale, names="error")
        state.observe(self._busy, names="busy")
        state.building.observe(self._building, names=["running", "cancelled"])
        self.results = w.VBox([
            w.HBox([self.histogram, self.zoom], layout=w.Layout(flex_flow="row wrap")),
            w.HTML(help_html("score", "balance score")), self.messages,
            w.HTML("<h4>Balance across the constrained space: each covariate's |SMD| over the kept schemes "
                   "(the scheme to be drawn stays concealed; above 0.1 shaded, above 0.2 red)</h4>"), self.smd,
            w.HTML("<h4>Each cluster's probability of each arm in the constrained space</h4>"), self.probabilities,
            w.HTML("<h4>Randomization validity: how often each pair of clusters shares an arm in the constrained "
                   "space</h4>" + help_html("validity", "validity")), self.validity, self.heatmap])
        self.results.add_class("crt-results")
        self.widget = w.VBox([w.HTML(STALE_CSS), self.progress, self.problem, self.results])
        self._show()

    def _busy(self, change) -> None:
        self.progress.value = BUSY_HTML if self.state.busy else ""

    def _building(self, change=None) -> None:
        # a space being built in the background, or cancelled, has nothing to show yet (widgets/space_build.py)
        b = self.state.building
        self.results.layout.display = "none" if b.running or b.cancelled else None
        if b.running:  # the message of earlier inputs does not belong beside the space being built
            self.problem.value = ""

    def _stale(self, change=None) -> None:
        # results of earlier inputs stay visible but greyed, with the reason beside them
        s = self.state
        if s.error:
            self.results.add_class("crt-stale")
            # a cancelled build shows no results (see _building): nothing below to speak of
            stale = "" if s.building.cancelled else " (the results below are for the last valid inputs)"
            self.problem.value = message_html(f"{s.error}{stale}")
        else:
            self.results.remove_class("crt-stale")

    def _show(self, change=None) -> None:
        s = self.state
        d = s.design
        if d is None:
            self._stale()
            return
        try:
            self._render(d, s.allocation)
            self.problem.value = ""
            self.results.remove_class("crt-stale")
        except Exception as exc:  # a display problem must not hide the design or raise into the browser
            self.problem.value = message_html(f"Could not draw the outputs: {exc}")

    def _render(self, d, drawn) -> None:
        chosen = None if drawn is None else drawn.score  # marked only once drawn
        self.histogram.spec = self._histogram_spec(self._histogram_data(d), d.cutoff_score, chosen)
        self.zoom.spec = self._zoom_spec(self._zoom_data(d), d.cutoff_score, chosen)
        if len(d.cluster_ids) > HEATMAP_MAX_CLUSTERS or not d.validity.available:
            self.heatmap.spec = too_many_for_heatmap(len(d.cluster_ids))
        else:
            self.heatmap.spec = self._heatmap_spec(d.validity.same_fraction, d.cluster_ids, *self._heatmap_reference(d))
        self.smd.value = "" if self.state.smd is None else smd_distribution_html(self.state.smd)
        names = self.state.arm_names
        self.probabilities.value = probabilities_html(d.probabilities(), names)
        self.validity.value = (validity_table_words(d.validity.table()).to_html(
            float_format=lambda v: f"{v:.3f}", border=0, classes="crt-validity")
            if d.validity.available else message_html(d.validity.unavailable))
        # the design's messages (the assignment, scheme and cutoff); the choice comes with the draw
        self.messages.value = "".join(f"<div>{html.escape(assignment_words(m, names))}</div>"
                                      for m in d.messages.values())


def probabilities_html(probabilities: pd.DataFrame, arm_names=("Control", "Intervention")) -> str:
    """Each cluster's probability of the intervention arm (two arms: arms "0" and "1") or of each arm, one
    column per cluster, scrolling sideways; the arms are called ``arm_names``.

    >>> "P(Reminders)" in probabilities_html(pd.DataFrame({"0": [0.5, 0.5], "1": [0.5, 0.5]}, index=["a", "b"]),
    ...                                      ["Usual care", "Reminders"])
    True
    """
    frame = probabilities.to_frame() if isinstance(probabilities, pd.Series) else probabilities
    if [str(c) for c in frame.columns] == ["0", "1"]:
        frame = frame.iloc[:, [1]].set_axis([f"P({arm_names[1]})"], axis=1)
    else:
        named = list(arm_names) if len(arm_names) == frame.shape[1] else [f"arm {c}" for c in frame.columns]
        frame = frame.set_axis([f"P({name})" for name in named], axis=1)
    frame = frame.rename_axis("cluster").T
    return ("<div style='max-width:100%;overflow-x:auto'>"
            + frame.to_html(float_format=lambda v: f"{v:.2f}", border=0, classes="crt-probabilities") + "</div>")


class DrawPanel:
    """The commitment (the space's SHA-256), the draw's seed (typed, or the OS's entropy at the draw),
    Draw with a confirmation that names the seed, the allocation drawn and its downloads, earlier draws."""

    def __init__(self, state: DesignState) -> None:
        from crt_widgets.widgets.downloads import commitment_json, download_link, download_links

        self._links, self._link, self._commitment = download_links, download_link, commitment_json
        self.state = state
        self.commitment = w.HTML()
        self.seed = w.Text(value=state.draw_seed_text, description="draw seed",
                           placeholder="empty: the OS's entropy at the draw", layout=w.Layout(width="420px"))
        name_control(self.seed, "Draw seed (empty: the operating system's entropy at the draw)")
        self.seed_note = w.HTML()  # what Draw will do with the seed as the kernel has it
        self.button = w.Button(description="Draw allocation", button_style="primary", icon="random")
        self.question = w.HTML()
        self.confirm = w.Button(description="Confirm draw", button_style="warning", icon="check")
        self.cancel = w.Button(description="Cancel", icon="times")
        self.confirmation = w.VBox([self.question, w.HBox([self.confirm, self.cancel])])
        self.confirmation.add_class("crt-confirm")
        self.result = w.HTML()
        self.downloads = w.HTML()
        self.earlier = w.HTML()
        w.link((self.seed, "value"), (state, "draw_seed_text"))
        self.button.on_click(lambda _: state.propose_draw())
        self.confirm.on_click(lambda _: state.confirm_draw())
        self.cancel.on_click(lambda _: state.cancel_draw())
        state.observe(self._show_seed, names="draw_seed_text")
        state.observe(self._show_commitment, names=["space_sha256", "design"])
        state.observe(self._show_question, names=["pending", "draw_error", "design"])
        state.observe(self._show, names=["allocation", "design", "error", "arm_names"])
        state.observe(self._show_history, names=["draws", "allocation"])
        self.widget = w.VBox([self.commitment, self.seed, self.seed_note,
                              w.HTML(help_html("draw_seed", "draw seed") + help_html("commitment", "commitment")),
                              self.button, self.confirmation, self.result, self.downloads, self.earlier])
        self._show_seed()
        self._show_commitment()
        self._show_question()
        self._show()

    def _show_seed(self, change=None) -> None:
        text = self.state.draw_seed_text
        if not text.strip():
            note = "No seed typed: Draw takes one from the operating system's entropy at that moment."
        else:
            try:
                note = f"Draw will use seed {draw_seed(text)[0]} (typed)."
            except ValueError as exc:
                self.seed_note.value = message_html(str(exc))
                return
        self.seed_note.value = f'<div class="crt-seed-note" style="font-size:90%;margin:0 0 4px 90px">{html.escape(note)}</div>'

    def _show_commitment(self, change=None) -> None:
        s = self.state
        if s.design is None or not s.space_sha256:
            self.commitment.value = ""
            return
        try:
            link = self._link("space_commitment.json", self._commitment(s.design, s.space_sha256), "application/json",
                              "Download the commitment (JSON)")
        except Exception as exc:  # the hash is shown either way
            link = message_html(f"Could not prepare the commitment file: {exc}")
        self.commitment.value = (
            '<div class="crt-commitment" style="white-space:normal"><b>Commitment</b> before the seed is entered: '
            f"the space of {s.kept:,} schemes with its settings has SHA-256 <code style='word-break:break-all'>"
            f"{s.space_sha256}</code>. {link}</div>")

    def _show_question(self, change=None) -> None:
        s = self.state
        p = s.pending
        self.confirmation.layout.display = "none" if p is None else None
        if p is None:
            self.question.value = message_html(s.draw_error)
            return
        how = "typed by you" if p["seed_source"] == "typed" else "just drawn from the operating system's entropy"
        # states without arm names (the multi-period order, which borrows this panel) name their sequences
        names = p.get("arm_names") or arm_names_of(s) or (group_names(s.design) if s.design is not None else [])
        arms = " and ".join(html.escape(n) for n in names) if len(names) == 2 else ", ".join(
            html.escape(n) for n in names)
        self.question.value = (
            f'<div class="crt-question" style="white-space:normal">Allocate the clusters to '
            f'<span class="crt-pending-arms">{arms}</span> by drawing one scheme from the {p["n_schemes"]:,} of space '
            f"<code>{p['space_sha256'][:16]}…</code> with seed <b class='crt-pending-seed'>{p['seed']}</b> ({how})? "
            "The draw is final and recorded with the earlier ones.</div>")

    def _show(self, change=None) -> None:
        s = self.state
        a = s.allocation
        self.button.disabled = s.design is None
        if a is None:
            self.result.value = "" if s.design is not None else message_html("Fix the inputs to draw.", "warning")
            self.downloads.value = ""
            return
        entry = s.draws[-1]
        # the names as they were at the draw (the report says the same)
        names = arm_names_of(s, entry["draw"]) or group_names(a.design)
        named = allocation_words(a.allocation, names)
        if "arm" in a.allocation.columns:
            ids = named.columns[0]
            what = "; ".join(f"{name}: " + ", ".join(map(str, named.loc[named["arm"] == name, ids]))
                             for name in (names[::-1] if len(names) == 2 else names))
        else:  # the order of a multi-period trial: clusters per sequence
            what = "Clusters per sequence: " + ", ".join(f"sequence {k}: {v}" for k, v in a.arm_sizes().items())
        how = {"typed": "typed", "entropy": "from the operating system's entropy"}[entry["seed_source"]]
        # one row per cluster, scrolling: a trial of 80 clusters must not widen the column
        table = named.to_html(border=0, index=False, classes="crt-allocation")
        chosen = position_words(a.space_position, len(a.design.space))
        self.result.value = (f'<div class="crt-drawn" style="white-space:normal"><b>Draw {entry["draw"]} of this '
                             f"session</b> (seed {a.seed}, {how}; balance score {a.score:.3f}). "
                             f"{html.escape(what)}</div>"
                             f"<div>{html.escape(chosen[0].upper() + chosen[1:])} was drawn.</div>"
                             f"<div style='max-height:260px;overflow:auto;display:inline-block'>{table}</div>"
                             "<h4>Baseline by arm (the allocation drawn; SMD above 0.1 shaded, above 0.2 red)</h4>"
                             + smd_table_html(baseline_words(a.baseline_table, names, design_arm_labels(a.design))))
        saved = s.saved_to
        note = ("" if not saved else message_html(f"Could not save a copy on disk ({saved})", "warning")
                if saved.startswith("not saved") else
                message_html(f"Logged in {s.records_dir}/draws.jsonl; files saved in {saved}", "info"))
        try:
            self.downloads.value = self._links(s.draw_files(entry["draw"])) + note
        except Exception as exc:  # the allocation is shown above; say why the files are missing
            self.downloads.value = message_html(f"Could not prepare the downloads: {exc}") + note

    def _files_of(self, number: int) -> str:
        try:
            return self._links(self.state.draw_files(number))
        except Exception as exc:  # the draw stays listed (and logged); say why its files are missing
            return message_html(f"Could not prepare the downloads: {exc}")

    def _show_history(self, change=None) -> None:
        # nothing drawn is lost: earlier draws stay listed and downloadable after the inputs change
        s = self.state
        shown = len(s.draws) if s.allocation is not None else None
        earlier = [e for e in s.draws if e["draw"] != shown]
        if not earlier:
            self.earlier.value = ""
            return
        items = "".join(f"<li>Draw {e['draw']}: {html.escape(e['time'])}, seed {e['seed']} ({e['seed_source']}), "
                        f"{e['n_schemes']:,} schemes. {self._files_of(e['draw'])}</li>" for e in reversed(earlier))
        self.earlier.value = f"<details><summary>Earlier draws ({len(earlier)})</summary><ul>{items}</ul></details>"
