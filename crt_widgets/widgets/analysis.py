"""The analysis dashboard: the clustered permutation test over the saved space, live.

Load the individual-level outcomes (CSV, or the Dickinson example) and the randomization space the
design saved (cvcrand's CSV, our JSON, or a multi-arm CSV: then choose the two groups to compare);
choose the outcome, cluster column, adjustment covariates and outcome type; the test, its inverted interval, the permutation histogram and the GEE and mixed
model companions follow every change. All numbers are the core's :func:`analyze_trial`.

>>> dash = AnalysisDashboard(example="dickinson")
>>> round(dash.state.result.permutation.p_value * 1287)
54
"""
from __future__ import annotations

import datetime as dt
import html
import json
import tempfile
from pathlib import Path

import ipywidgets as w
import pandas as pd
import traitlets as t

from crt_widgets.core.analysis.trial import MODELS, analyze_trial
from crt_widgets.core.spaces.comparisons import comparisons, two_group_space
from crt_widgets.core.io.spacefiles import read_multiarm_space
from crt_widgets.core.spaces.multiarm import SavedMultiArmSpace
from crt_widgets.core.permutation.test import ALTERNATIVES
from crt_widgets.core.io.files import data_sha256, json_ready
from crt_widgets.core.io.spacefiles import read_space
from crt_widgets.core.spaces.saved import SavedSpace
from crt_widgets.widgets.formatting import message_html
from crt_widgets.widgets.panels import read_uploaded_csv

FAMILIES = {"continuous": "gaussian", "binary": "binomial", "count": "poisson"}
EXAMPLE = "Dickinson counties (cvcrand paper)"


def guess_family(values: pd.Series) -> str:
    """``binomial`` for a 0/1 outcome, ``poisson`` for other whole numbers >= 0, else ``gaussian``.

    >>> guess_family(pd.Series([0, 1, 1])), guess_family(pd.Series([0, 3, 7])), guess_family(pd.Series([0.5, 2]))
    ('binomial', 'poisson', 'gaussian')
    """
    v = pd.to_numeric(values, errors="coerce").dropna()
    if len(v) and v.isin([0, 1]).all():
        return "binomial"
    if len(v) and (v >= 0).all() and (v == v.round()).all():
        return "poisson"
    return "gaussian"


def read_uploaded_space(content: bytes, name: str, audit: bytes | None = None) -> SavedSpace | SavedMultiArmSpace:
    """A saved space from uploaded bytes (cvcrand's CSV, our JSON or a multi-arm CSV, by content), verified
    against ``audit`` (the bytes of the audit record uploaded with it) when given; a ValueError otherwise."""
    safe = Path(name).name or "space.csv"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / safe  # the uploaded name: the audit lists the file under it
        path.write_bytes(content)
        try:
            record = None
            if audit is not None:
                record = json.loads(audit.decode("utf-8-sig"))
                if not isinstance(record, dict):
                    raise ValueError("the audit record is not a JSON object")
            if content.lstrip(b"\xef\xbb\xbf").startswith(b"scheme,chosen,score"):
                return read_multiarm_space(path, audit=record)
            return read_space(path, audit=record)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{name}: {exc}") from None


def is_audit_record(content: bytes) -> bool:
    """Whether uploaded bytes are an audit record (a JSON object listing space files), not a space."""
    try:
        doc = json.loads(content.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and "space_files" in doc


def _describe_space(space) -> str:
    """A short label of a space object for the sources line."""
    if isinstance(space, (str, Path)):
        return Path(space).name
    design = getattr(space, "design", None)
    if design is not None and hasattr(space, "seed"):
        return f"the allocation drawn in this session (seed {space.seed}, {len(design.space_index):,} schemes)"
    return type(space).__name__


class AnalysisState(t.HasTraits):
    """Inputs and result of the analysis dashboard; ``result`` is a :class:`TrialAnalysis` or None."""

    data = t.Instance(pd.DataFrame, allow_none=True)
    source = t.Unicode("")
    space = t.Any(None, allow_none=True)        # a SavedSpace, or an allocation/design of this session
    space_source = t.Unicode("")
    comparison = t.Unicode("")                  # a multi-arm space's two-group comparison ("factor:a", "arm:X")
    outcome = t.Unicode("")
    cluster = t.Unicode("")
    covariates = t.List(t.Unicode())
    categorical = t.List(t.Unicode())
    family = t.Enum(list(FAMILIES.values()), default_value="gaussian")
    alternative = t.Enum(list(ALTERNATIVES), default_value="two-sided")
    alpha = t.Float(0.05)
    models = t.Bool(True)                       # GEE and mixed model beside the permutation test
    result = t.Any(None, allow_none=True)
    error = t.Unicode("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._loading = False
        self.observe(self._new_space, names="space")
        self.observe(self._changed, names=["data", "space", "comparison", "outcome", "cluster", "covariates",
                                           "categorical", "family", "alternative", "alpha", "models"])

    def _new_space(self, change) -> None:
        """A multi-arm space starts on its first comparison (a factor's main effect where there are factors)."""
        options = comparisons(change["new"])
        loading, self._loading = self._loading, True  # the space's own change runs the analysis, once
        try:
            self.comparison = options[0][1] if options else ""
        finally:
            self._loading = loading

    def load(self, data: pd.DataFrame, source: str, space: SavedSpace | None = None, space_source: str = "",
             **settings) -> None:
        """New outcome data (and optionally a space) with sensible defaults, then one analysis."""
        self._loading = True
        try:
            with self.hold_trait_notifications():
                self.data, self.source = data, source
                if space is not None:
                    self.space, self.space_source = space, space_source
                columns = list(data.columns)
                self.outcome = settings.get("outcome") or ("outcome" if "outcome" in columns else columns[-1])
                self.cluster = settings.get("cluster") or columns[0]
                self.covariates = list(settings.get("covariates", []))
                self.categorical = list(settings.get("categorical", []))
                self.family = settings.get("family") or guess_family(data[self.outcome])
        finally:
            self._loading = False
        self.analyse()

    def _changed(self, change) -> None:
        if not self._loading:
            self.analyse()

    def analyse(self) -> None:
        """Run the core on the current inputs; any problem lands in ``error``."""
        if self.data is None or self.space is None:
            self.result = None
            self.error = "" if self.data is None else "Load the randomization space the design saved."
            return
        try:
            if self.outcome == self.cluster:
                raise ValueError("outcome: choose a column other than the cluster id")
            # the outcome and the cluster id are never adjusted for, whatever else is ticked
            adjust = [c for c in self.covariates if c not in (self.outcome, self.cluster)]
            space = self._compared = two_group_space(self.space, self.comparison)
            self.result = analyze_trial(self.data, self.outcome, self.cluster, space, adjust,
                                        [c for c in self.categorical if c in adjust], self.family,
                                        alternative=self.alternative, alpha=self.alpha, models=MODELS if self.models else ())
            self.error = ""
        except (ValueError, KeyError, TypeError) as exc:
            self.result = None
            self.error = str(exc.args[0] if exc.args else exc)

    def _data_sha256(self) -> str:
        """The outcome data's hash, computed once per data set (it serialises every row)."""
        if getattr(self, "_hashed", None) is not self.data:
            self._hash, self._hashed = data_sha256(self.data), self.data
        return self._hash

    def record(self) -> dict:
        """The analysis for the trial's records: every input (the outcome file's SHA-256, the space and the
        comparison), every setting, the package version, the time, and the results (see :meth:`TrialAnalysis.to_dict`)."""
        from crt_widgets import __version__

        if self.result is None:
            raise ValueError("record: there is no result to record")
        metadata = getattr(self._compared, "metadata", None) or {}  # the space the result was computed over
        return {
            "method": "clustered permutation test over the design's randomization space, with GEE and mixed model",
            "package": f"crt-widgets {__version__}",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "outcomes": {"source": self.source, "rows": len(self.data), "sha256": self._data_sha256()},
            "space": {"source": self.space_source, "n_schemes": self.result.permutation.n_schemes,
                      "comparison": metadata.get("comparison"), "treated_arms": metadata.get("treated_arms"),
                      "control_arms": metadata.get("control_arms")},
            "settings": {"outcome": self.outcome, "cluster": self.cluster, "covariates": list(self.covariates),
                         "categorical": list(self.categorical), "family": self.family,
                         "alternative": self.alternative, "alpha": self.alpha, "models": self.models},
            **self.result.to_dict(),
        }


class AnalysisDashboard:
    """Panels over one :class:`AnalysisState`; ``.widget`` is what a notebook displays.

    Parameters
    ----------
    example : ``"dickinson"`` opens cvcrand's example trial (its outcomes and saved space), None starts empty.
    space : the randomization space to analyse over, when it is not a file: an allocation or design of this
        session (what :func:`~crt_widgets.core.permutation.resolve_space` accepts); see also :meth:`follow`.
    offline : render charts with the JavaScript bundled in Altair (no network).
    """

    def __init__(self, example: str | None = "dickinson", offline: bool = True, space=None,
                 space_label: str = "") -> None:
        import altair as alt

        if offline:
            alt.JupyterChart.enable_offline()
        self.state = AnalysisState()
        s = self.state
        self.example = w.Dropdown(options=[("(choose an example)", ""), (EXAMPLE, "dickinson")], value="",
                                  description="Example")
        self.upload_data = w.FileUpload(accept=".csv", multiple=False, description="Outcomes CSV")
        # the space file, and optionally the audit record saved with it (selected together) to verify it
        self.upload_space = w.FileUpload(accept=".csv,.json,.gz", multiple=True, description="Space file")
        self.sources = w.HTML()
        self.outcome = w.Dropdown(description="outcome")
        self.cluster = w.Dropdown(description="cluster")
        self.covariates = w.SelectMultiple(description="adjust for", rows=6)
        self.categorical = w.SelectMultiple(description="categorical", rows=4)
        self.family = w.ToggleButtons(options=list(FAMILIES.items()), description="outcome type")
        self.alternative = w.Dropdown(options=[("two-sided", "two-sided"), ("treatment > control", "greater"),
                                               ("treatment < control", "less")], description="alternative")
        self.alpha = w.FloatText(description="alpha")
        # shown only for a multi-arm space: which two groups of arms the test compares
        self.comparison = w.Dropdown(description="compare", layout=w.Layout(width="400px"))
        self.models = w.Checkbox(description="GEE and mixed model too", indent=False)
        self.message = w.HTML()
        self.statement = w.HTML()
        self.table = w.HTML()
        self.downloads = w.HTML()
        self.histogram = alt.JupyterChart(alt.Chart(pd.DataFrame({"x": []})).mark_bar())
        # the column lists depend on the data, so the inputs follow the state by hand (a link would
        # set a value before its options exist)
        self._inputs = {"outcome": self.outcome, "cluster": self.cluster, "covariates": self.covariates,
                        "categorical": self.categorical, "family": self.family,
                        "alternative": self.alternative, "alpha": self.alpha,
                        "models": self.models, "comparison": self.comparison}
        self._syncing = False
        self._follow_state()
        for name, widget in self._inputs.items():
            widget.observe(lambda change, name=name: self._to_state(name, change["new"]), names="value")
        self.example.observe(self._on_example, names="value")
        self.upload_data.observe(self._on_data, names="value")
        self.upload_space.observe(self._on_space, names="value")
        s.observe(self._follow_state, names=["data", "space", *self._inputs])
        s.observe(self._show, names=["result", "error", "source", "space_source"])
        controls = w.VBox([self.comparison, self.outcome, self.cluster, self.covariates, self.categorical,
                           self.family, self.alternative, self.alpha, self.models], layout=w.Layout(width="430px", min_width="430px"))
        outputs = w.VBox([self.message, self.statement, self.histogram, self.table, self.downloads])
        self.widget = w.VBox([
            w.HTML("<h2 style='margin:0'>crt-widgets: analysis by the clustered permutation test</h2>"
                   "<p style='margin:0 0 6px'>Load the outcomes (one row per person) and the space the design "
                   "saved; the test, its interval and the model-based companions follow every change.</p>"),
            w.HBox([self.example, self.upload_data, self.upload_space]), self.sources, w.HBox([controls, outputs])])
        if example:
            self.example.value = example
        if space is not None:
            self.use_space(space, space_label)
        self._show()

    def use_space(self, space, label: str = "") -> None:
        """Analyse over ``space`` (an allocation, a design, a :class:`SavedSpace` or a file path)."""
        self.state.space, self.state.space_source = space, label or _describe_space(space)

    def follow(self, design_dashboard) -> None:
        """Analyse over the allocation a :class:`DesignDashboard` draws, as soon as it is drawn (same session)."""
        def drawn(change) -> None:
            if change["new"] is not None:
                self.use_space(change["new"])
        design_dashboard.state.observe(drawn, names="allocation")
        if design_dashboard.state.allocation is not None:
            self.use_space(design_dashboard.state.allocation)

    # -- loading ---------------------------------------------------------------------------------
    def _on_example(self, change) -> None:
        if change["new"] != "dickinson":
            return
        from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome

        self.state.load(load_dickinson_outcome(), EXAMPLE, read_space(dickinson_cvcrand_space_path()),
                        "cvcrand's constrained space of the paper (1,287 schemes)", outcome="outcome",
                        cluster="county", covariates=["location", "inciis", "uptodateonimmunizations", "hispanic",
                                                      "incomecat"], categorical=["location", "incomecat"])

    @staticmethod
    def _uploaded(change, widget) -> tuple[str, bytes] | None:
        files = change["new"]
        if not files:
            return None
        f = files[0] if isinstance(files, (list, tuple)) else list(files.values())[0]
        name = f.get("name", "the file") if isinstance(f, dict) else getattr(f, "name", "the file")
        content = bytes(f["content"] if isinstance(f, dict) else f.content)
        widget.value = ()  # ready for the next file, even the same one corrected
        return name, content

    def _on_data(self, change) -> None:
        uploaded = self._uploaded(change, self.upload_data)
        if uploaded is None:
            return
        try:
            data = read_uploaded_csv(uploaded[1], uploaded[0])
        except ValueError as exc:
            self.state.error = str(exc)
            return
        self.example.value = ""
        self.state.load(data, uploaded[0])

    def _on_space(self, change) -> None:
        files = [self._uploaded({"new": [f]}, self.upload_space) for f in (change["new"] or ())]
        if not files:
            return
        audits = [content for _, content in files if is_audit_record(content)]
        spaces = [(name, content) for name, content in files if not is_audit_record(content)]
        try:  # a damaged or changed file is a message, and the previous file's results go
            if len(spaces) != 1 or len(audits) > 1:
                raise ValueError("choose one space file (and, to verify it, the audit record saved with it)")
            space = read_uploaded_space(spaces[0][1], spaces[0][0], audits[0] if audits else None)
        except (ValueError, OSError, EOFError) as exc:
            self.state.space, self.state.space_source = None, ""
            self.state.error = str(exc)
            return
        self.state.space, self.state.space_source = space, spaces[0][0]

    # -- views -----------------------------------------------------------------------------------
    def _follow_state(self, change=None) -> None:
        s = self.state
        columns = [] if s.data is None else [str(c) for c in s.data.columns]
        self._syncing = True
        try:
            for widget in (self.outcome, self.cluster, self.covariates, self.categorical):
                if list(widget.options) != columns:
                    widget.options = columns
            self.outcome.value = s.outcome if s.outcome in columns else None
            self.cluster.value = s.cluster if s.cluster in columns else None
            self.covariates.value = tuple(c for c in s.covariates if c in columns)
            self.categorical.value = tuple(c for c in s.categorical if c in columns)
            self.family.value, self.alternative.value = s.family, s.alternative
            self.alpha.value, self.models.value = s.alpha, s.models
            options = comparisons(s.space)
            if list(self.comparison.options) != options:
                self.comparison.options = options
            self.comparison.value = s.comparison if options else None
            self.comparison.layout.display = None if options else "none"
        finally:
            self._syncing = False

    def _to_state(self, name: str, value) -> None:
        if self._syncing or value is None:
            return
        setattr(self.state, name, list(value) if isinstance(value, tuple) else value)

    def _show(self, change=None) -> None:
        from crt_widgets.widgets.charts import permutation_histogram
        from crt_widgets.widgets.downloads import download_link

        s = self.state
        data = "none" if s.data is None else f"{html.escape(s.source)} ({len(s.data):,} rows)"
        space = html.escape(s.space_source) or "none"
        self.sources.value = f"<b>Outcomes:</b> {data} &nbsp; <b>Space:</b> {space}"
        self.message.value = message_html(s.error)
        r = s.result
        self.histogram.layout.display = None if r is not None else "none"  # no stale chart beside an error
        if r is None:
            self.statement.value = self.table.value = self.downloads.value = ""
            return
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.permutation.notes)
        self.statement.value = (f'<p class="crt-statement"><b>{html.escape(r.permutation.statement)}</b></p>'
                                + (f'<ul class="crt-notes" style="margin:0 0 6px">{notes}</ul>' if notes else ""))
        self.histogram.chart = permutation_histogram(r.permutation)
        self.table.value = r.table().to_html(float_format=lambda v: f"{v:.4g}", border=0, na_rep="",
                                             classes="crt-models")
        record = json.dumps(json_ready(s.record()), indent=2, allow_nan=False)
        self.downloads.value = (download_link("analysis_record.json", record, "application/json", "Analysis record (JSON)")
                                + download_link("analysis_results.csv", r.table().to_csv(), "text/csv", "Results (CSV)"))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
