"""The analysis dashboard: the clustered permutation test over the saved space, live.

Load the individual-level outcomes (CSV, or the Dickinson example) and the randomization space the
design saved (cvcrand's CSV, our JSON, or a multi-arm CSV: then choose the two groups to compare; plain
or gzip-compressed, recognised by their content), or follow the allocation drawn in the same session.
The columns are guessed from the data's structure (:func:`guess_columns`): the cluster column matches the
space's cluster ids, the outcome varies within clusters, per-person ids are left out, and the covariates
the design balanced are proposed for adjustment. The test, its inverted interval, the permutation
histogram and the GEE and mixed model companions follow every change. All numbers are the core's
:func:`analyze_trial`.

>>> dash = AnalysisDashboard(example="dickinson")
>>> round(dash.state.result.permutation.p_value * 1287)
54
>>> p_value_text(dash.state.result.permutation)
'p = 0.04196 (54 of 1,287 schemes at least as extreme)'
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets as t

from crt_widgets.commands._voila import MB, UPLOAD_LIMIT_BYTES
from crt_widgets.core.analysis.trial import MODELS, analyze_trial
from crt_widgets.core.spaces.comparisons import comparisons, two_group_space
from crt_widgets.core.io.spacefiles import read_cvcrand_csv, read_multiarm_space, read_space_json
from crt_widgets.core.io.spacehash import sha256_of_space
from crt_widgets.core.spaces.multiarm import SavedMultiArmSpace
from crt_widgets.core.permutation.data import as_extreme
from crt_widgets.core.permutation.test import ALTERNATIVES
from crt_widgets.core.io.files import data_sha256, json_ready
from crt_widgets.core.io.spacefiles import read_space
from crt_widgets.core.spaces.saved import SavedSpace
from crt_widgets.widgets.accessibility import PageHelpers, hide_file_count, name_control
from crt_widgets.widgets.glossary import help_html
from crt_widgets.widgets.words import DEFAULT_TWO_ARMS, result_columns_words
from crt_widgets.widgets.formatting import STALE_CSS, message_html
from crt_widgets.widgets.panels import read_uploaded_csv
from crt_widgets.widgets.reflow import ChartReflow, container_chart
from crt_widgets.widgets.state import ID_NAME
from crt_widgets.widgets.theme import PAGE_CSS
from crt_widgets.widgets.uploads import take_upload

FAMILIES = {"continuous": "gaussian", "binary": "binomial", "count": "poisson"}
EXAMPLE = "Dickinson counties (cvcrand paper)"
# UPLOAD_LIMIT_BYTES: the largest file one upload carries; ``crt-widgets dashboard`` lets the server take
# messages this large (Jupyter's default of 10 MiB drops the connection for an 11.9 MB cvcrand CSV of 192,038
# schemes), and the page refuses larger files before sending them (see the crt-offline template)
# the most text a compressed space may expand to (a cvcrand CSV compresses about tenfold)
UNCOMPRESSED_LIMIT_BYTES = 1000 * MB
# names that say "this column is the outcome" (when several columns vary within clusters)
OUTCOME_NAME = re.compile(r"^(outcome|response|y|result|endpoint)([ _.-].*)?$", re.IGNORECASE)


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


def too_large(name: str, size: int, limit: int = UPLOAD_LIMIT_BYTES) -> str:
    """The message for a file above the upload limit ('' when it fits).

    >>> too_large("space.csv", 300 * MB)
    'space.csv is 300.0 MB, more than the 200 MB one upload can carry: compress it (.csv.gz or .json.gz; a space compresses about tenfold) and upload that'
    """
    if size <= limit:
        return ""
    return (f"{name} is {size / MB:.1f} MB, more than the {limit / MB:.0f} MB one upload can carry: compress it "
            "(.csv.gz or .json.gz; a space compresses about tenfold) and upload that")


def _gunzip(content: bytes, name: str, limit: int) -> bytes:
    """Decompress gzip bytes (several members too), refusing output above ``limit``."""
    out, rest = [], content
    total = 0
    try:
        while rest:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = inflater.decompress(rest, limit + 1 - total)
            total += len(chunk)
            out.append(chunk)
            if total > limit or inflater.unconsumed_tail:
                raise ValueError(f"{name}: it expands to more than {limit / MB:.0f} MB; split the analysis or "
                                 "use the command line (crt-widgets analyze --space FILE)")
            if not inflater.eof:
                raise ValueError(f"{name}: the gzip file is cut short")
            rest = inflater.unused_data.lstrip(b"\x00")
    except zlib.error as exc:
        raise ValueError(f"{name}: not a readable gzip file ({exc})") from None
    return b"".join(out)


def space_format(content: bytes) -> str:
    """What saved space the (uncompressed) bytes hold, by their content: ``"json"`` (ours),
    ``"multiarm"`` (``scheme,chosen,score,...``) or ``"cvcrand"`` (anything else is tried as cvcrand's CSV).

    >>> space_format(b'{"format": "crt-widgets/space"}'), space_format(b"scheme,chosen,score,a,b"), space_format(b'"SchemeChosen",""')
    ('json', 'multiarm', 'cvcrand')
    """
    head = content[:4096].lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"{"):
        return "json"
    if head.startswith(b"scheme,chosen,score") or head.startswith(b'"scheme","chosen","score"'):
        return "multiarm"
    return "cvcrand"


def read_uploaded_space(content: bytes, name: str, audit: bytes | None = None, limit: int = UPLOAD_LIMIT_BYTES,
                        declared_size: int | None = None) -> SavedSpace | SavedMultiArmSpace:
    """A saved space from uploaded bytes: cvcrand's CSV, our JSON or a multi-arm CSV, each plain or
    gzip-compressed, told apart by their content (gzip's magic bytes, then the text), never by the name;
    verified against ``audit`` (the bytes of the audit record uploaded with it) when given; a ValueError
    naming the file otherwise (too large, damaged, not a space, not the file the audit lists).
    ``declared_size``: the size the browser gave (the page sends a few bytes in place of a file above the limit).

    >>> from crt_widgets.datasets import dickinson_cvcrand_space_path
    >>> import gzip
    >>> raw = dickinson_cvcrand_space_path().read_bytes()
    >>> len(read_uploaded_space(gzip.compress(raw), "space.json.gz").schemes)  # the name misleads; the content decides
    1287
    """
    message = too_large(name, max(len(content), declared_size or 0), limit)
    if message:
        raise ValueError(message)
    if not content.strip():
        raise ValueError(f"{name}: the file is empty")
    safe = Path(name).name or "space.csv"
    text = _gunzip(content, name, UNCOMPRESSED_LIMIT_BYTES) if content[:2] == b"\x1f\x8b" else content
    kind = space_format(text)
    try:
        record = None
        if audit is not None:
            record = json.loads(audit.decode("utf-8-sig"))
            if not isinstance(record, dict):
                raise ValueError("the audit record is not a JSON object")
        with tempfile.TemporaryDirectory() as folder:
            if kind == "json":  # the core reads our JSON plain or compressed: the uploaded bytes, as the audit lists them
                path = Path(folder) / (safe if safe.endswith((".json", ".gz")) else "space.json")
                path.write_bytes(content)
                return read_space_json(path, audit=record)
            # a CSV compressed by hand: the text it holds, under the name the audit lists the CSV by
            path = Path(folder) / (safe[:-3] if text is not content and safe.endswith(".gz") else safe)
            path.write_bytes(text)
            if kind == "multiarm":
                return read_multiarm_space(path, audit=record)
            return read_cvcrand_csv(path, audit=record)
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ValueError(f"{name}: {detail}") from None


def is_audit_record(content: bytes) -> bool:
    """Whether uploaded bytes are an audit record (a JSON object listing space files), not a space.

    >>> is_audit_record(b'{"space_files": {}}'), is_audit_record(b'"SchemeChosen",""')
    (True, False)
    """
    try:
        doc = json.loads(content.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and "space_files" in doc


# -- guessing the columns from the data's structure -------------------------------------------------
@dataclass(frozen=True)
class ColumnGuess:
    """The columns :func:`guess_columns` proposes, and why."""

    cluster: str
    outcome: str
    adjustable: list[str]                  # what "adjust for" offers: not the cluster, the outcome or person ids
    covariates: list[str]                  # proposed: the covariates the design balanced
    categorical: list[str]
    person_ids: list[str] = field(default_factory=list)
    note: str = ""                         # one sentence on the proposed adjustment


def space_cluster_count(space) -> int | None:
    """How many clusters a space has (None without a space)."""
    if space is None:
        return None
    for holder in (getattr(space, "design", None), space):
        if holder is not None and getattr(holder, "cluster_ids", None) is not None:
            return len(holder.cluster_ids)
    if hasattr(space, "schemes"):
        return space.schemes.n_clusters
    if hasattr(space, "unit_ids"):
        return len(space.unit_ids)
    return None


def space_cluster_ids(space) -> list[str] | None:
    """The space's cluster ids as text (None for a cvcrand CSV, which has none)."""
    if space is None:
        return None
    for holder in (getattr(space, "design", None), space):
        ids = None if holder is None else getattr(holder, "cluster_ids", None)
        if ids is not None:
            return [str(c) for c in np.asarray(ids).tolist()]
    if hasattr(space, "unit_ids"):
        return [str(c) for c in space.unit_ids]
    return None


def design_covariates(space) -> tuple[list[str], list[str]] | None:
    """The covariates the design balanced and which were categorical, as the space carries them (an
    allocation or design of this session, or our JSON space's parameters); None when it does not say.

    >>> design_covariates(SavedSpace(None, 0, metadata={"parameters": {"covariates": ["a"], "categorical": []}}))
    (['a'], [])
    """
    design = getattr(space, "design", None) if space is not None else None
    if design is None and hasattr(space, "covariates") and hasattr(space, "parameters"):
        design = space
    if design is not None:
        return list(design.covariates), list(getattr(design, "categorical", []))
    parameters = (getattr(space, "metadata", None) or {}).get("parameters") or {}
    if parameters.get("covariates"):
        return list(parameters["covariates"]), list(parameters.get("categorical") or [])
    return None


def _whole_numbers(values: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(values) or (
        pd.api.types.is_float_dtype(values) and bool((values.dropna() == values.dropna().round()).all()))


def _identifier_like(data: pd.DataFrame, column) -> bool:
    values = data[column]
    named = bool(ID_NAME.search(str(column))) or str(column).endswith("ID")
    return (not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
            or (named and _whole_numbers(values)))


def guess_columns(data: pd.DataFrame, space=None) -> ColumnGuess:
    """Guess the analysis columns from the data's structure (never from their order):

    * the cluster column holds the space's cluster ids; for a cvcrand CSV, which has none, it is an
      identifier-like column (text, or a whole-number column named like an id) with as many distinct
      values as the space has clusters; never a per-person id or an outcome;
    * per-person ids are text or whole numbers, different on every row;
    * the outcome is a numeric column that varies within clusters (cluster-level covariates are constant
      within them), preferably one named like an outcome;
    * "adjust for" offers the other columns and proposes the covariates the design balanced, which the
      space carries: analyses after constrained randomization should adjust for the constrained
      covariates (Li et al. 2016, 2017).

    >>> from crt_widgets.datasets import load_dickinson_outcome
    >>> g = guess_columns(load_dickinson_outcome().assign(child=lambda d: range(len(d))))
    >>> g.cluster, g.outcome, g.person_ids
    ('county', 'outcome', ['child'])
    """
    columns = list(data.columns)
    n_rows = len(data)
    distinct = data.nunique(dropna=True)
    ids_like = [c for c in columns if _identifier_like(data, c)]
    # a different label on every row (text or whole numbers): a person, not a cluster or a measurement
    person = [c for c in columns if distinct[c] == n_rows and n_rows > 1 and data[c].notna().all()
              and (c in ids_like or _whole_numbers(data[c]))]
    wanted_ids = space_cluster_ids(space)
    n_clusters = space_cluster_count(space)
    cluster = ""
    if wanted_ids is not None:
        wanted = set(wanted_ids)
        overlap = {c: len(set(data[c].dropna().astype(str)) & wanted) for c in columns if c not in person}
        matching = [c for c in columns if c in overlap and overlap[c] == len(wanted) == distinct[c]]
        best = max(overlap, key=overlap.get, default=None)
        cluster = matching[0] if matching else (best if best is not None and overlap[best] > 0 else "")
    if not cluster:
        candidates = [c for c in ids_like if c not in person and (n_clusters is None or distinct[c] == n_clusters)]
        # named like an id first, then the most distinct labels (a cluster column repeats, but has many values)
        repeated = sorted((c for c in candidates if distinct[c] < n_rows),
                          key=lambda c: (not (ID_NAME.search(str(c)) or str(c).endswith("ID")), -distinct[c]))
        cluster = (repeated or candidates or [c for c in columns if c not in person] or columns)[0]
    numeric = [c for c in columns if c != cluster and c not in person and pd.api.types.is_numeric_dtype(data[c])
               and not pd.api.types.is_bool_dtype(data[c])]
    varying = []
    if numeric:
        within = data.groupby(cluster, dropna=True)[numeric].nunique(dropna=True).max()
        varying = [c for c in numeric if within.get(c, 0) > 1]
    named = [c for c in varying if OUTCOME_NAME.match(str(c))]
    outcome = (named or varying[-1:] or [c for c in numeric if OUTCOME_NAME.match(str(c))] or numeric[-1:]
               or [c for c in columns if c != cluster] or [cluster])[0]
    adjustable = [c for c in columns if c not in (cluster, outcome) and c not in person]
    balanced = design_covariates(space)
    if balanced is not None:
        covariates = [c for c in balanced[0] if c in adjustable]
        categorical = [c for c in covariates if c in balanced[1] or not pd.api.types.is_numeric_dtype(data[c])]
        missing = [c for c in balanced[0] if c not in adjustable]
        note = (f"Proposed adjustment: the covariates the design balanced ({', '.join(covariates) or 'none found'}"
                + (f"; not in the outcome data: {', '.join(missing)}" if missing else "")
                + "): analyses after constrained randomization should adjust for the constrained covariates "
                "(Li et al. 2016, 2017).")
    else:
        covariates, categorical = [], []
        note = ("The space does not name the covariates the design balanced (a cvcrand CSV carries no names): tick "
                "them under \u201cadjust for\u201d; analyses after constrained randomization should adjust for the "
                "constrained covariates (Li et al. 2016, 2017).") if space is not None else ""
    return ColumnGuess(str(cluster), str(outcome), [str(c) for c in adjustable], covariates, categorical,
                       [str(c) for c in person], note)


def p_value_count(result) -> tuple[int, int]:
    """The p-value as an exact count: schemes at least as extreme as the observed one, and all schemes."""
    extreme = as_extreme(np.asarray(result.distribution, dtype=float), result.statistic)[result.alternative]
    return int(np.count_nonzero(extreme)), int(result.n_schemes)


def p_value_text(result) -> str:
    """The p-value with its exact count: ``p = 0.04196 (54 of 1,287 schemes ...)``, or ``p < 0.001 (...)``."""
    count, total = p_value_count(result)
    shown = "p < 0.001" if result.p_value < 0.001 else f"p = {result.p_value:.4g}"
    return f"{shown} ({count:,} of {total:,} schemes at least as extreme)"


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
    adjustable = t.List(t.Unicode())            # what "adjust for" offers (no cluster id, outcome, person ids)
    adjust_note = t.Unicode("")                 # why the proposed covariates are proposed
    result = t.Any(None, allow_none=True)
    error = t.Unicode("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._loading = False
        self._guess: dict = {}
        self.observe(self._new_space, names="space")
        self.observe(self._changed, names=["data", "space", "comparison", "outcome", "cluster", "covariates",
                                           "categorical", "family", "alternative", "alpha", "models"])
        self.observe(self._new_columns, names=["cluster", "outcome"])

    def _new_space(self, change) -> None:
        """A multi-arm space starts on its first comparison (a factor's main effect where there are factors);
        the guessed columns follow the new space (its cluster ids, the covariates its design balanced),
        unless the user changed them."""
        options = comparisons(change["new"])
        loading, self._loading = self._loading, True  # the space's own change runs the analysis, once
        try:
            self.comparison = options[0][1] if options else ""
            if self.data is not None and not loading:
                self._apply_guess(guess_columns(self.data, change["new"]), only_unchanged=True)
        finally:
            self._loading = loading

    def _apply_guess(self, guess: ColumnGuess, only_unchanged: bool = False, **settings) -> None:
        """Set the guessed columns (the ones ``settings`` does not name); with ``only_unchanged``, only those
        still at the previous guess (a user's own choice stands)."""
        proposed = {"cluster": guess.cluster, "outcome": guess.outcome, "covariates": guess.covariates,
                    "categorical": guess.categorical}
        for name, value in proposed.items():
            if name in settings:
                value = settings[name]
            elif only_unchanged and getattr(self, name) != self._guess.get(name):
                continue
            setattr(self, name, list(value) if isinstance(value, list) else value)
        self._guess = proposed
        self.adjust_note = guess.note if "covariates" not in settings else (
            f"Adjusted for {', '.join(settings['covariates']) or 'no covariates'}: analyses after constrained "
            "randomization should adjust for the constrained covariates (Li et al. 2016, 2017).")
        self._offer(guess)

    def _offer(self, guess: ColumnGuess | None = None) -> None:
        if self.data is None:
            self.adjustable = []
            return
        person = guess.person_ids if guess is not None else guess_columns(self.data, self.space).person_ids
        self.adjustable = [str(c) for c in self.data.columns if c not in (self.cluster, self.outcome) and c not in person]

    def _new_columns(self, change) -> None:
        if not self._loading:
            self._offer()

    def load(self, data: pd.DataFrame, source: str, space: SavedSpace | None = None, space_source: str = "",
             **settings) -> None:
        """New outcome data (and optionally a space); the columns not given in ``settings`` are guessed from
        the data's structure (:func:`guess_columns`); then one analysis."""
        self._loading = True
        try:
            with self.hold_trait_notifications():
                self.data, self.source = data, source
                if space is not None:
                    self.space, self.space_source = space, space_source
                self._apply_guess(guess_columns(data, self.space),
                                  **{k: v for k, v in settings.items() if k in ("cluster", "outcome", "covariates",
                                                                                "categorical")})
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

    def _space_sha256(self) -> str:
        """The analysed space's SHA-256 (the one the draw log and the report give), computed once per space."""
        if getattr(self, "_fingerprinted", None) is not self._compared:
            self._fingerprint, self._fingerprinted = sha256_of_space(self._compared), self._compared
        return self._fingerprint

    def record(self) -> dict:
        """The analysis for the trial's records: every input (the outcome file's SHA-256, the space with its
        SHA-256 and the comparison), every setting, the package version, the time, and the results (see
        :meth:`TrialAnalysis.to_dict`)."""
        from crt_widgets import __version__

        if self.result is None:
            raise ValueError("record: there is no result to record")
        metadata = getattr(self._compared, "metadata", None) or {}  # the space the result was computed over
        return {
            "method": "clustered permutation test over the design's randomization space, with GEE and mixed model",
            "package": f"crt-widgets {__version__}",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "outcomes": {"source": self.source, "rows": len(self.data), "sha256": self._data_sha256()},
            "space": {"source": self.space_source, "sha256": self._space_sha256(),
                      "n_schemes": self.result.permutation.n_schemes,
                      "comparison": metadata.get("comparison"), "treated_arms": metadata.get("treated_arms"),
                      "control_arms": metadata.get("control_arms")},
            "settings": {"outcome": self.outcome, "cluster": self.cluster, "covariates": list(self.covariates),
                         "categorical": list(self.categorical), "family": self.family,
                         "alternative": self.alternative, "alpha": self.alpha, "models": self.models},
            **self.result.to_dict(),
        }


def alternative_options(arm_names) -> list[tuple[str, str]]:
    """The alternative hypotheses in the arms' words (control first in ``arm_names``).

    >>> alternative_options(["Usual care", "Reminders"])[1]
    ('Reminders > Usual care', 'greater')
    """
    control, intervention = arm_names
    return [("two-sided", "two-sided"), (f"{intervention} > {control}", "greater"),
            (f"{intervention} < {control}", "less")]


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
                 space_label: str = "", title: bool = True) -> None:

        if offline:
            from crt_widgets.widgets.startup import enable_offline_charts

            enable_offline_charts()  # the bundle kept between kernels (startup.py)
        self.state = AnalysisState()
        s = self.state
        self.example = w.Dropdown(options=[("(choose an example)", ""), (EXAMPLE, "dickinson")], value="",
                                  description="Example")
        self.upload_data = w.FileUpload(accept=".csv", multiple=False, description="Outcomes (CSV)",
                                        layout=w.Layout(width="auto"))
        # the space file, and optionally the audit record saved with it (selected together) to verify it
        self.upload_space = w.FileUpload(accept=".csv,.json,.gz", multiple=True,
                                         description="Space file (CSV, JSON, .gz)", layout=w.Layout(width="auto"))
        for upload in (self.upload_data, self.upload_space):
            # the page refuses a file above the limit before sending it (the crt-offline template reads this)
            upload.add_class(f"crt-upload-limit-{UPLOAD_LIMIT_BYTES}")
            hide_file_count(upload)
        name_control(self.upload_data, "Outcomes (CSV): upload, one row per person")
        name_control(self.upload_space, "Space file (CSV, JSON, .gz): upload, with its audit record")
        name_control(self.example, "Example trial to analyse")
        self.sources = w.HTML()
        self.outcome = w.Dropdown(description="outcome")
        self.cluster = w.Dropdown(description="cluster")
        self.covariates = w.SelectMultiple(description="adjust for", rows=6)
        self.adjust_note = w.HTML()
        self.categorical = w.SelectMultiple(description="categorical", rows=4)
        self.family = w.ToggleButtons(options=list(FAMILIES.items()), description="outcome type")
        name_control(self.family, "Outcome type")
        self.arm_names = list(DEFAULT_TWO_ARMS)  # the Design section's names when it follows one
        self.alternative = w.Dropdown(options=alternative_options(self.arm_names), description="alternative")
        name_control(self.alternative, "Alternative hypothesis")
        self.alpha = w.FloatText(description="alpha")
        # shown only for a multi-arm space: which two groups of arms the test compares
        self.comparison = w.Dropdown(description="compare", layout=w.Layout(width="400px"))
        self.models = w.Checkbox(description="GEE and mixed model too", indent=False)
        self.message = w.HTML()
        self.pvalue = w.HTML()
        self.statement = w.HTML()
        self.table = w.HTML()
        self.downloads = w.HTML()
        self.histogram = container_chart("crt_permutation_distribution")  # as wide as the results column
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
        s.observe(self._follow_state, names=["data", "space", "adjustable", "adjust_note", *self._inputs])
        s.observe(self._show, names=["result", "error", "source", "space_source"])
        controls = w.VBox([self.comparison, self.outcome, self.cluster, self.covariates, self.adjust_note,
                           self.categorical, self.family, self.alternative, self.alpha, self.models,
                           w.HTML(help_html("adjust", "adjustment") + help_html("alternative", "the alternative"))],
                          layout=w.Layout(flex="0 1 430px", min_width="0", max_width="100%"))
        self.results = w.VBox([self.pvalue, self.statement, self.histogram, self.table, self.downloads])
        self.results.add_class("crt-results")
        # the results beside the controls when both fit, else below them (see theme.PAGE_CSS)
        outputs = w.VBox([self.message, self.results], layout=w.Layout(flex="1 1 420px", min_width="0"))
        columns = w.HBox([controls, outputs], layout=w.Layout(flex_flow="row wrap"))
        columns.add_class("crt-columns")
        heading = ([w.HTML("<h2 style='margin:0'>crt-widgets: analysis by the clustered permutation test</h2>")]
                   if title else [])
        self.widget = w.VBox([
            w.HTML(STALE_CSS + PAGE_CSS), ChartReflow(), PageHelpers(), *heading,
            w.HTML("<p style='margin:0 0 6px'>Upload the outcomes (one row per person) and the space the design "
                   "saved (cvcrand's CSV, the JSON space, either gzip-compressed), or draw in the Design section: "
                   "the allocation drawn there is analysed here, no file in between. The test, its interval and the "
                   "model-based companions follow every change.</p>"),
            w.HBox([self.example, self.upload_data, self.upload_space]), self.sources, columns])
        self.widget.add_class("crt-section")
        if example:
            self.example.value = example
        if space is not None:
            self.use_space(space, space_label)
        self._show()

    def use_space(self, space, label: str = "") -> None:
        """Analyse over ``space`` (an allocation, a design, a :class:`SavedSpace` or a file path)."""
        self.state.space, self.state.space_source = space, label or _describe_space(space)

    def set_arm_names(self, names) -> None:
        """Call the two groups compared ``names`` (control first) in the choices and the chart."""
        self.arm_names = [str(n) for n in names]
        self._syncing = True
        try:
            value = self.alternative.value
            self.alternative.options = alternative_options(self.arm_names)
            self.alternative.value = value
        finally:
            self._syncing = False
        self._show()

    def follow(self, design_dashboard) -> None:
        """Analyse over the allocation a :class:`DesignDashboard` draws, as soon as it is drawn (same session)."""
        def drawn(change) -> None:
            if change["new"] is not None:
                self.use_space(change["new"])

        def named(change=None) -> None:
            names = design_dashboard.state.arm_names
            self.set_arm_names(names if len(names) == 2 else DEFAULT_TWO_ARMS)
        design_dashboard.state.observe(drawn, names="allocation")
        design_dashboard.state.observe(named, names="arm_names")
        named()
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

    def _on_data(self, change) -> None:
        uploaded = take_upload(change, self.upload_data)
        if uploaded is None:
            return
        try:
            message = too_large(uploaded[0], max(len(uploaded[1]), uploaded[2]))
            if message:
                raise ValueError(message)
            data = read_uploaded_csv(uploaded[1], uploaded[0])
        except ValueError as exc:
            self.state.error = str(exc)
            return
        self.example.value = ""
        self.state.load(data, uploaded[0])

    def _on_space(self, change) -> None:
        files = [take_upload({"new": [f]}, self.upload_space) for f in (change["new"] or ())]
        if not files:
            return
        audits = [content for _, content, _ in files if is_audit_record(content)]
        spaces = [(name, content, size) for name, content, size in files if not is_audit_record(content)]
        try:  # a damaged or changed file is a message, and the previous file's results go
            if len(spaces) != 1 or len(audits) > 1:
                raise ValueError("choose one space file (and, to verify it, the audit record saved with it)")
            space = read_uploaded_space(spaces[0][1], spaces[0][0], audits[0] if audits else None,
                                        declared_size=spaces[0][2])
        except (ValueError, OSError, EOFError) as exc:
            self.state.space, self.state.space_source = None, ""
            self.state.error = str(exc)
            return
        self.state.space, self.state.space_source = space, spaces[0][0]

    # -- views -----------------------------------------------------------------------------------
    def _follow_state(self, change=None) -> None:
        s = self.state
        columns = [] if s.data is None else [str(c) for c in s.data.columns]
        adjustable = [c for c in s.adjustable if c in columns]
        self._syncing = True
        try:
            for widget, options in ((self.outcome, columns), (self.cluster, columns), (self.covariates, adjustable),
                                    (self.categorical, adjustable)):
                if list(widget.options) != options:
                    widget.options = options
            self.outcome.value = s.outcome if s.outcome in columns else None
            self.cluster.value = s.cluster if s.cluster in columns else None
            self.covariates.value = tuple(c for c in s.covariates if c in adjustable)
            self.categorical.value = tuple(c for c in s.categorical if c in adjustable)
            self.adjust_note.value = (f'<div class="crt-adjust-note" style="font-size:90%;margin:0 0 6px 90px;'
                                      f'white-space:normal">{html.escape(s.adjust_note)}</div>' if s.adjust_note else "")
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
        r = s.result
        # an error beside a result of earlier inputs: the result stays, greyed, the message above it
        stale = bool(s.error) and r is not None
        self.message.value = message_html(s.error + (" (the result below is for the inputs before this file)"
                                                     if stale else ""))
        if stale:
            self.results.add_class("crt-stale")
        else:
            self.results.remove_class("crt-stale")
        self.histogram.layout.display = None if r is not None else "none"  # no stale chart beside an error
        if r is None:
            self.pvalue.value = self.statement.value = self.table.value = self.downloads.value = ""
            return
        self.pvalue.value = (f'<div class="crt-pvalue" style="font-size:120%;margin:4px 0">'
                             f"<b>{html.escape(p_value_text(r.permutation))}</b></div>")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.permutation.notes)
        self.statement.value = (f'<p class="crt-statement"><b>{html.escape(r.permutation.statement)}</b></p>'
                                + (f'<ul class="crt-notes" style="margin:0 0 6px">{notes}</ul>' if notes else ""))
        self.histogram.chart = permutation_histogram(r.permutation, arm_names=self.arm_names)
        # the columns in words on the screen; the CSV below keeps their program names
        self.table.value = result_columns_words(r.table(), s.alpha).to_html(
            float_format=lambda v: f"{v:.4g}", border=0, na_rep="", classes="crt-models")
        record = json.dumps(json_ready(s.record()), indent=2, allow_nan=False)
        self.downloads.value = (download_link("analysis_record.json", record, "application/json", "Analysis record (JSON)")
                                + download_link("analysis_results.csv", r.table().to_csv(), "text/csv", "Results (CSV)"))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
