"""The dashboard's single state object: every input as a trait, every result derived by the core.

Panels are thin views: they link their widgets to these traits. A change of data, covariates, arm
counts or space size rebuilds the candidate schemes; a change of weights, metric or cutoff only
re-scores them (:meth:`ConstrainedDesign.rescore`). Problems never raise out of a callback: they
land in ``error`` for the panels to show.

Until the draw, the state holds only what describes the constrained space (scores, kept count,
validity, each cluster's probability of treatment, the distribution of each covariate's SMD over the
kept schemes, the space's SHA-256): never the scheme a draw would return, as a sealed envelope keeps
its allocation. A draw names its seed first (:meth:`DesignState.propose_draw`: typed by the user, or
fresh entropy from the operating system), is confirmed (:meth:`DesignState.confirm_draw`), and is
logged like every other draw of the session.

>>> from crt_widgets.datasets import load_dickinson
>>> state = DesignState()
>>> state.load(load_dickinson(), "Dickinson counties")
>>> state.kept > 0, state.error, state.allocation
(True, '', None)
>>> state.cutoff = 0.05
>>> state.kept < 1288
True
>>> state.draw_seed_text = "2024"
>>> state.propose_draw()
>>> state.pending["seed"], state.pending["seed_source"]
(2024, 'typed')
>>> state.confirm_draw().seed, len(state.draws)
(2024, 1)
"""
from __future__ import annotations

import re
import threading
import time
import uuid
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import traitlets as t

from crt_widgets.core.covariates import FEW_LEVELS
from crt_widgets.core.diagnostics.smd import smd_distribution
from crt_widgets.core.io.drawlog import SEED_SOURCES, DrawLog, draw_entry, draw_seed
from crt_widgets.core.io.spacehash import sha256_of_space
from crt_widgets.core.randomization.constrained import ConstrainedDesign
from crt_widgets.core.power.analytic import AnalyticPower, crt_clusters_needed, crt_power, power_curve
from crt_widgets.core.power.design_simulation import DesignPower, design_space_power
from crt_widgets.core.seeds import check_seed
from crt_widgets.core.sizes import format_count
from crt_widgets.widgets.undo import SettingsHistory

# traits whose change needs new candidate schemes, and those that only re-score them
STRUCTURAL = ("data", "cluster_id", "covariates", "categorical", "stratify", "n_treat", "n_arms", "size",
              "sampling", "seed")
SCORING = ("weights", "metric", "cutoff", "use_n_best", "n_best")
# every setting of the design (what a saved session keeps and Undo reverts), in the order they are applied
DESIGN_SETTINGS = ("cluster_id", "covariates", "categorical", "stratify", "weights", "n_treat", "n_arms", "metric",
                   "cutoff", "use_n_best", "n_best", "size", "sampling", "seed")
# the most candidate schemes the dashboard builds (scores and packed schemes stay well under 1 GB)
MAX_SCHEMES = 20_000_000


def detect_categorical(data: pd.DataFrame, columns: list[str]) -> list[str]:
    """Columns that look categorical: text, boolean or category dtype.

    >>> detect_categorical(pd.DataFrame({"size": [1.5, 2.0], "rural": ["yes", "no"]}), ["size", "rural"])
    ['rural']
    """
    return [c for c in columns if not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c])]


def default_covariates(data: pd.DataFrame, cluster_id: str | None) -> list[str]:
    """Every column but the cluster id, skipping constant ones and text labels (a different value
    for every cluster, such as names: one category per cluster balances nothing).

    >>> default_covariates(pd.DataFrame({"id": [1, 2], "name": ["a", "b"], "size": [3, 4], "k": [1, 1]}), "id")
    ['size']
    """
    def label(c) -> bool:
        return not pd.api.types.is_numeric_dtype(data[c]) and data[c].nunique(dropna=True) == len(data)

    return [c for c in data.columns if c != cluster_id and data[c].nunique(dropna=True) > 1 and not label(c)]


# names that say "this column names the clusters": a whole word (site, county, ...) or an id/code suffix
ID_NAME = re.compile(r"^(id|name|code|cluster|county|site|centre|center|practice|school|hospital|clinic|ward|village|"
                     r"district|ed|unit|facility)(s?[ _.-]?(id|no|code|name))?$|[ _.-](id|code)$", re.IGNORECASE)


def guess_cluster_id(data: pd.DataFrame) -> str:
    """The column that names the clusters: one named like an id (even with duplicates, so that the
    problem is reported rather than another column silently used), else the first column of unique labels.

    >>> guess_cluster_id(pd.DataFrame({"size": [3, 4], "site_id": ["a", "b"]}))
    'site_id'
    """
    for c in data.columns:
        if ID_NAME.search(str(c)) or str(c).endswith("ID"):
            return c
    for c in data.columns:
        if data[c].is_unique and data[c].notna().all() and (
                not pd.api.types.is_float_dtype(data[c]) or (data[c] == data[c].round()).all()):
            return c
    return ""


class PowerInputs(t.HasTraits):
    """The analytic power question asked of the current design (the instant first answer).

    Continuous outcomes: ``effect`` is the difference in means and ``sd`` the individual SD (the
    default 1 reads the effect in SD units). Binary: the two proportions."""

    outcome = t.Enum(["continuous", "binary"], default_value="continuous")
    effect = t.Float(0.3)
    sd = t.Float(1.0)
    p_control = t.Float(0.3)
    p_treatment = t.Float(0.4)
    icc = t.Float(0.05)
    cluster_size = t.Float(50.0)
    cv = t.Float(0.0)
    alpha = t.Float(0.05)
    icc_band = t.List(t.Float(), maxlen=2)  # (low, high): an ICC interval (a pilot's) shaded on the power curve


class SimulationRun(t.HasTraits):
    """The simulated power of the design being made (:func:`design_space_power`), run in a background
    thread so the kernel keeps answering; ``cancel()`` stops it between chunks of trials.

    ``done``/``total`` count trials for the progress bar; ``result`` is the core's ``DesignPower`` (covering
    the trials done when cancelled); ``message`` says what happened (cancelled, or why it could not run).
    """

    n_trials = t.Int(200)
    covariate_r2 = t.Float(0.5)   # share of the between-cluster variance the balanced covariates explain
    seed = t.Int(1)
    running = t.Bool(False)
    done = t.Int(0)
    total = t.Int(0)
    result = t.Instance(DesignPower, allow_none=True)
    message = t.Unicode("")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outdated = False  # the inputs changed while running: the run's result is for other inputs

    def start(self, state: "DesignState") -> None:
        """Start the simulation of ``state``'s design with its power inputs (nothing if one is running)."""
        if self.running:
            return
        try:
            kwargs = simulation_inputs(state)
            check_seed(self.seed)
            if self.n_trials < 1:
                raise ValueError(f"trials: at least 1, got {self.n_trials}")
        except ValueError as exc:
            self.result, self.message = None, str(exc)
            return
        self._stop.clear()
        self._outdated = False
        self.result, self.message, self.done, self.total = None, "", 0, int(self.n_trials)
        self.running = True
        self._thread = threading.Thread(target=self._run, args=(kwargs,), daemon=True, name="crt-power-simulation")
        self._thread.start()

    def _run(self, kwargs: dict) -> None:
        try:
            result = design_space_power(**kwargs, covariate_r2=self.covariate_r2, n_trials=int(self.n_trials),
                                        seed=int(self.seed), on_progress=self._progress, stop=self._stop.is_set)
        except Exception as exc:  # a message in the panel, never a traceback in a thread nobody sees
            cancelled = self._stop.is_set()
            self.result = None
            self.message = ("Cancelled before the first trials finished." if cancelled else
                            str(exc.args[0] if exc.args else exc) if isinstance(exc, ValueError) else
                            f"Unexpected problem ({type(exc).__name__}): {exc}")
        else:
            self.result = result
            self.message = (f"Cancelled after {result.settings['n_trials']:,} of {result.settings['n_trials_planned']:,} "
                            "trials: the power below is from those trials (its Monte Carlo SE is wider)."
                            if result.settings["stopped"] else "")
        finally:
            if self._outdated:  # never a result beside inputs it was not computed for
                self.result = None
                self.message = "Stopped: the design or the power inputs changed while simulating; simulate again."
            self.running = False

    def _progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def cancel(self) -> None:
        """Stop after the chunk of trials now running."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (for scripts and tests); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def clear(self) -> None:
        """Forget a result that no longer matches the design (a running simulation is stopped, and says so)."""
        if self.running:
            self._outdated = True
            self.cancel()
            return
        self.result, self.message, self.done = None, "", 0


class DesignState(t.HasTraits):
    """Inputs and results of the design dashboard (two arms: :class:`ConstrainedDesign`; more:
    ``MultiArmDesign``)."""

    data = t.Instance(pd.DataFrame, allow_none=True)
    source = t.Unicode("")
    cluster_id = t.Unicode("")
    covariates = t.List(t.Unicode())
    categorical = t.List(t.Unicode())
    stratify = t.List(t.Unicode())
    weights = t.Dict()
    n_treat = t.Int(0)
    n_arms = t.Int(2)                           # 2: ConstrainedDesign; more: MultiArmDesign
    metric = t.Enum(["l2", "l1"], default_value="l2")
    cutoff = t.Float(0.1)
    use_n_best = t.Bool(False)
    n_best = t.Int(100)
    size = t.Int(50_000)
    sampling = t.Enum(["auto", "enumerate", "sample"], default_value="auto")
    seed = t.Int(12345)                         # the design's seed: which candidates a sampled space holds

    design = t.Any(None, allow_none=True)       # ConstrainedDesign or None
    smd = t.Instance(pd.DataFrame, allow_none=True)  # each covariate's |SMD| over the kept schemes
    space_sha256 = t.Unicode("")               # the space's fingerprint (the commitment before a draw)
    draw_seed_text = t.Unicode("")             # the draw's seed as typed; empty: the OS's entropy at the draw
    pending = t.Dict(allow_none=True, default_value=None)  # a draw awaiting confirmation: its seed and how chosen
    draw_error = t.Unicode("")                 # why a draw could not be proposed (a bad seed)
    allocation = t.Any(None, allow_none=True)   # the allocation drawn last, until the inputs change
    history = t.List()                          # every allocation drawn in this session, oldest first
    draws = t.List()                            # the draw log entries of this session, oldest first
    session = t.Unicode()                       # this session's id in the draw log
    error = t.Unicode("")
    warnings = t.List(t.Unicode())
    busy = t.Bool(False)
    last_update_ms = t.Float(0.0)
    records_dir = t.Unicode("")                # if set, every draw is logged and its files written here
    saved_to = t.Unicode("")                   # the folder of the last draw's files (or why they could not be)
    power_inputs = t.Instance(PowerInputs, ())  # the analytic power question (see analytic_power)
    simulation = t.Instance(SimulationRun, ())  # the simulated power of the design being made
    undo_steps = t.Int(0)                       # settings changes Undo can revert (see widgets/undo.py)

    @t.default("session")
    def _new_session(self) -> str:
        return uuid.uuid4().hex[:12]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._loading = False
        self._files: dict[int, dict] = {}
        self._undo = SettingsHistory()
        self.observe(self._on_structure, names=list(STRUCTURAL))
        self.observe(self._on_scoring, names=list(SCORING))
        # a confirmation names the seed as typed: a later keystroke (which can arrive after the click on Draw)
        # names the new one
        self.observe(lambda change: self.propose_draw() if self.pending is not None else None, names="draw_seed_text")
        # a simulated power belongs to the design and inputs it was run for
        self.observe(lambda change: self.simulation.clear(), names="design")
        self.power_inputs.observe(lambda change: self.simulation.clear(), names=list(PowerInputs.class_trait_names()))

    # -- loading data ---------------------------------------------------------------------------
    def load(self, data: pd.DataFrame, source: str = "", **settings) -> None:
        """Set new data with sensible defaults (cluster id, covariates, categorical, half treated)."""
        if data is None or data.empty or data.shape[1] < 2:
            self.error = "The data need at least two columns (a cluster id and a covariate) and one row per cluster."
            return
        cid = settings.pop("cluster_id", None) or guess_cluster_id(data)
        covs = settings.pop("covariates", None) or default_covariates(data, cid)
        self._loading = True  # one rebuild at the end, not one per trait
        try:
            with self.hold_trait_notifications():
                self.data = data
                self.source = source
                self.cluster_id = cid
                self.covariates = list(covs)
                self.categorical = settings.pop("categorical", None) or detect_categorical(data, self.covariates)
                self.stratify = settings.pop("stratify", [])
                self.weights = {c: 1.0 for c in self.covariates}
                self.n_treat = settings.pop("n_treat", len(data) // 2)
                # how the space is built belongs to the data set; the user's metric and cutoff carry over
                settings = {"sampling": "auto", "size": 50_000, **settings}
                for key, value in settings.items():
                    setattr(self, key, value)
        finally:
            self._loading = False
        self.rebuild()

    # -- reactions --------------------------------------------------------------------------------
    def _on_structure(self, change) -> None:
        if self._loading:
            return
        if change["name"] in ("covariates", "cluster_id"):  # follow-up changes, then one rebuild
            self._loading = True
            try:
                # the column that names the clusters is not balanced on
                self.covariates = [c for c in self.covariates if c != self.cluster_id]
                self.weights = {c: self.weights.get(c, 1.0) for c in self.covariates}
                self.categorical = [c for c in self.categorical if c in self.covariates]
                self.stratify = [c for c in self.stratify if c in self.covariates]
            finally:
                self._loading = False
        self.rebuild()

    def _on_scoring(self, change) -> None:
        if not self._loading:
            self.rescore()

    def _rule(self) -> dict:
        weights = [float(self.weights.get(c, 1.0)) for c in self.covariates]
        rule = {"metric": self.metric, "weights": weights}
        if self.use_n_best:
            rule["n_best"] = int(self.n_best)
        else:
            rule["cutoff"] = float(self.cutoff)
        return rule

    def rebuild(self) -> None:
        """New candidate schemes for the current data, covariates and arm counts."""
        if self.data is None:
            return
        self._remember()
        self.allocation = self.pending = None  # a confirmation names a space: a new one needs a new confirmation
        if self.n_arms != 2:
            self._run(self._multiarm, rebuild=True)
            return
        self._run(self._two_arm, rebuild=True)

    # -- settings: saved sessions and Undo ----------------------------------------------------------
    def settings(self) -> dict:
        """Every design setting now in force (copies: later changes do not alter it)."""
        out = {}
        for key in DESIGN_SETTINGS:
            value = getattr(self, key)
            out[key] = dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value
        return out

    def _snapshot(self) -> dict:
        return {"data": self.data, "source": self.source, **self.settings()}

    def _remember(self) -> None:
        self._undo.record(self._snapshot())
        self.undo_steps = len(self._undo)

    def restore(self, data: pd.DataFrame, settings: dict, source: str = "") -> None:
        """Set the data and every setting exactly as given (a saved session, or an Undo), then build the space
        once. Nothing drawn is shown again: the allocation waits for a new draw."""
        self._loading = True
        try:
            with self.hold_trait_notifications():
                self.data = data
                self.source = source
                for key in DESIGN_SETTINGS:
                    if key in settings:
                        setattr(self, key, settings[key])
        finally:
            self._loading = False
        self.rebuild()

    def undo(self) -> bool:
        """Revert the last settings change (data included); False when there is nothing to undo."""
        before = self._undo.undo()
        self.undo_steps = len(self._undo)
        if before is None:
            return False
        scoring_only = before["data"] is self.data and all(
            before[key] == getattr(self, key) for key in DESIGN_SETTINGS if key not in SCORING)
        if scoring_only:  # re-score the schemes already built, as the slider itself would
            self._loading = True
            try:
                with self.hold_trait_notifications():
                    for key in SCORING:
                        setattr(self, key, before[key])
            finally:
                self._loading = False
            self.rescore()
        else:
            self.restore(before["data"], before, before["source"])
        return True

    def _check_seed(self) -> None:
        check_seed(self.seed)

    def _two_arm(self) -> ConstrainedDesign:
        self._check_seed()
        enumerate_ = {"auto": None, "enumerate": True, "sample": False}[self.sampling]
        if enumerate_ is False and int(self.size) > MAX_SCHEMES:
            raise ValueError(f"sample size: at most {MAX_SCHEMES:,} schemes in the dashboard")

        def design(enumerate_: bool | None) -> ConstrainedDesign:
            return ConstrainedDesign(
                self.data, self.covariates, int(self.n_treat), categorical=self.categorical,
                cluster_id=self.cluster_id or None, stratify=self.stratify, size=int(self.size),
                enumerate=enumerate_, seed=int(self.seed), **self._rule())

        # the dashboard holds fewer schemes than the engine: say so before the engine tries to list them
        planned = design(None if enumerate_ else enumerate_)
        listed = planned.enumerated or enumerate_
        if listed and planned.n_possible > MAX_SCHEMES:
            raise ValueError(f"enumerate: there are {format_count(planned.n_possible)} possible schemes, more than the "
                             f"{MAX_SCHEMES:,} the dashboard can hold; choose 'sample' (or 'enumerate if small')")
        if not listed and int(self.size) > MAX_SCHEMES:
            raise ValueError(f"sample size: at most {MAX_SCHEMES:,} schemes in the dashboard")
        return design(True) if enumerate_ else planned

    def _multiarm(self):
        from crt_widgets.core.randomization.multiarm import MultiArmDesign

        self._check_seed()
        rule = self._rule()
        if len(self.stratify) > 1:
            raise ValueError("stratify: a multi-arm design balances the arms within one stratification column")
        if int(self.size) > MAX_SCHEMES:
            raise ValueError(f"sample size: at most {MAX_SCHEMES:,} schemes in the dashboard")
        return MultiArmDesign(self.data, self.covariates, int(self.n_arms), categorical=self.categorical,
                              cluster_id=self.cluster_id or None, strata=self.stratify[0] if self.stratify else None,
                              size=int(self.size), seed=int(self.seed), **rule)

    def _multiarm_rescored(self):
        """The multi-arm design with the current weights, metric and cutoff, over the candidates already drawn."""
        rule = self._rule()
        if "n_schemes" in rule:
            return self.design.rescore(metric=rule["metric"], weights=rule["weights"], n_best=rule["n_schemes"])
        return self.design.rescore(**rule)

    def rescore(self) -> None:
        """Re-score the existing candidates with the current weights, metric and cutoff."""
        if self.design is None:
            self.rebuild()
            return
        self._remember()
        self.allocation = self.pending = None
        if self.n_arms != 2:
            self._run(self._multiarm_rescored)
            return
        self._run(lambda: self.design.rescore(**self._rule()))

    def _run(self, make, rebuild: bool = False) -> None:
        start = time.perf_counter()
        self.busy = rebuild
        caught: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                design = make()
                if rebuild:
                    design.candidates  # build now, inside the progress indicator
                design.validity
                # what describes the space, never the scheme a draw would pick
                smd, fingerprint = smd_distribution(design), sha256_of_space(design)
                caught = [str(w.message) for w in seen]
        except Exception as exc:  # any problem is a message in the panel, never a traceback in the browser
            known = isinstance(exc, (ValueError, KeyError, TypeError))
            text = str(exc.args[0] if exc.args else exc)
            self.error = text if known else f"Unexpected problem ({type(exc).__name__}): {text}"
            self.design, self.smd, self.space_sha256 = None, None, ""
        else:
            self.error = ""
            self.warnings = caught + list(design.diagnostics)
            with self.hold_trait_notifications():
                self.smd, self.space_sha256 = smd, fingerprint
                self.design = design
        finally:
            self.busy = False
            self.last_update_ms = (time.perf_counter() - start) * 1000

    # -- results ----------------------------------------------------------------------------------
    @property
    def kept(self) -> int:
        """Schemes in the constrained space (0 when there is no valid design)."""
        return 0 if self.design is None else len(self.design.space_index)

    # -- drawing ----------------------------------------------------------------------------------
    def propose_draw(self) -> None:
        """Name the seed of the next draw, for the confirmation: the typed one, or else fresh entropy from
        the operating system now. Nothing is drawn yet; a bad seed lands in ``draw_error``."""
        if self.design is None:
            self.pending = None
            return
        try:
            seed, how = draw_seed(self.draw_seed_text)
        except ValueError as exc:
            self.draw_error, self.pending = str(exc), None
            return
        self.draw_error = ""
        self.pending = {"seed": seed, "seed_source": how, "space_sha256": self.space_sha256,
                        "n_schemes": self.kept}

    def cancel_draw(self) -> None:
        """Withdraw the proposed draw (nothing was drawn, nothing is logged)."""
        self.pending = None

    def confirm_draw(self):
        """Draw with the proposed seed from the constrained space; log it (with ``records_dir``: one line of
        ``draws.jsonl`` and the draw's files in a folder of their own) and return the allocation (an
        :class:`Allocation` for two arms, a ``MultiArmAllocation`` for more). Every confirmed draw counts,
        the same seed again included."""
        proposal = self.pending
        if proposal is None or self.design is None:
            return None
        if proposal["space_sha256"] != self.space_sha256:  # pragma: no cover - rebuilds clear the proposal
            self.pending, self.draw_error = None, "draw: the space changed since the seed was named; draw again"
            return None
        allocation = self.design.draw(proposal["seed"])
        entry = draw_entry(allocation, number=len(self.draws) + 1, seed_source=proposal["seed_source"],
                           session=self.session, space_sha256=self.space_sha256)
        saved = self._record(allocation, entry)
        with self.hold_trait_notifications():
            self.pending = None
            self.saved_to = saved
            self.draws = [*self.draws, entry]
            self.history = [*self.history, allocation]
            self.allocation = allocation
        return allocation

    def draw(self, seed: int | str | None = None):
        """Propose and confirm a draw in one call (notebooks and scripts, where the call is the deliberate
        act): ``seed`` as typed, or None for the typed ``draw_seed_text`` (empty: the OS's entropy)."""
        if seed is not None:
            self.draw_seed_text = str(seed)
        self.propose_draw()
        return self.confirm_draw()

    def draw_files(self, number: int) -> dict[str, tuple]:
        """The files of draw ``number`` (1 = the session's first): name -> (content, mime, label), built once."""
        if number not in self._files:
            from crt_widgets.widgets.downloads import allocation_files

            self._files[number] = allocation_files(self.history[number - 1], self.draws[number - 1],
                                                   self.draws[:number - 1])
        return self._files[number]

    def _record(self, allocation, entry: dict) -> str:
        if not self.records_dir:
            return ""
        from crt_widgets.widgets.downloads import allocation_files

        log = DrawLog(self.records_dir)
        try:
            files = allocation_files(allocation, entry, self.draws)
            self._files[entry["draw"]] = files
            written = {name: content for name, (content, _mime, _label) in files.items()}
        except Exception as exc:  # the draw is logged even when its files cannot be made
            written = {}
            problem = f"not saved: the files could not be made ({exc})"
        else:
            problem = ""
        try:
            folder = log.record(entry, written)
        except Exception as exc:  # the draw stands and stays downloadable; say why there is no copy on disk
            return f"not saved: {exc}"
        return problem or str(folder)

    def few_levels(self) -> list[str]:
        """Numeric covariates with few distinct values that are not declared categorical."""
        if self.data is None:
            return []
        return [c for c in self.covariates if c not in self.categorical
                and pd.api.types.is_numeric_dtype(self.data[c]) and self.data[c].nunique() <= FEW_LEVELS]


def simulation_inputs(state: DesignState) -> dict:
    """The arguments of :func:`design_space_power` for the state's design and power inputs (continuous:
    the effect in SD units; binary: the log odds ratio, the ICC read on the latent scale).
    Raises ``ValueError`` naming what is missing.

    >>> from crt_widgets.datasets import load_dickinson
    >>> state = DesignState()
    >>> state.load(load_dickinson(), "Dickinson counties")
    >>> sorted(simulation_inputs(state))
    ['baseline', 'cluster_size', 'design', 'effect', 'icc', 'outcome']
    """
    if state.design is None:
        raise ValueError("simulation: there is no valid design to simulate; fix the design's inputs first")
    if state.n_arms != 2:
        raise ValueError("simulation: the power of the design's own space is simulated for two arms")
    q = state.power_inputs
    if q.outcome == "continuous":
        if q.sd <= 0:
            raise ValueError(f"SD of an individual: must be positive, got {q.sd}")
        effect, baseline = q.effect / q.sd, None
    else:
        for name, p in (("control proportion", q.p_control), ("treatment proportion", q.p_treatment)):
            if not 0 < p < 1:
                raise ValueError(f"{name}: must be between 0 and 1, got {p}")
        effect, baseline = float(np.log(q.p_treatment / (1 - q.p_treatment)) - np.log(q.p_control / (1 - q.p_control))), q.p_control
    if effect == 0:
        raise ValueError("effect: a difference of zero has no power to speak of; enter the effect to detect")
    if q.cluster_size < 1:
        raise ValueError(f"mean cluster size: at least 1, got {q.cluster_size}")
    return {"design": state.design, "effect": effect, "icc": q.icc, "cluster_size": int(round(q.cluster_size)),
            "outcome": q.outcome, "baseline": baseline}


@dataclass(frozen=True)
class PowerAnswer:
    """Analytic power for the current cluster counts, and the clusters per arm that 80% and 90% need."""

    result: AnalyticPower
    comparison: str                 # which arms the power is for
    needed: dict[float, int | None]  # target power -> clusters per arm (equal arms; None: beyond 10,000)


def _power_question(state: DesignState) -> tuple[float, dict, int, int, str]:
    """The effect, the shared arguments of :func:`crt_power`, the cluster counts and their description."""
    if state.data is None:
        raise ValueError("power: load the clusters first")
    q = state.power_inputs
    n = len(state.data)
    common = dict(icc=q.icc, cluster_size=q.cluster_size, cv=q.cv, alpha=q.alpha)
    if q.outcome == "continuous":
        effect = q.effect
        common.update(sd=q.sd)
    else:
        effect = q.p_treatment - q.p_control
        common.update(outcome="binary", p_control=q.p_control)
    if effect == 0:
        raise ValueError("effect: a difference of zero has no power to speak of; enter the effect to detect")
    if state.n_arms == 2:
        k_treat, k_control = int(state.n_treat), n - int(state.n_treat)
        comparison = f"treatment ({k_treat} clusters) against control ({k_control})"
    else:
        k_treat = k_control = n // int(state.n_arms)
        comparison = f"any two of the {state.n_arms} arms ({k_treat} clusters each, the smallest arm size)"
    return effect, common, k_treat, k_control, comparison


def analytic_power(state: DesignState) -> PowerAnswer:
    """The core's :func:`crt_power` for the state's clusters: treatment against control with two arms;
    any two arms (of the smallest size) with more. Raises ``ValueError`` naming a bad input.

    >>> from crt_widgets.datasets import load_dickinson
    >>> state = DesignState()
    >>> state.load(load_dickinson(), "Dickinson counties")
    >>> answer = analytic_power(state)
    >>> round(answer.result.power, 3), answer.needed[0.8]
    (0.566, 14)
    """
    effect, common, k_treat, k_control, comparison = _power_question(state)
    result = crt_power(effect, clusters_per_arm=k_treat, clusters_control=k_control, **common)
    needed = {}
    for target in (0.8, 0.9):
        try:
            needed[target] = crt_clusters_needed(effect, power=target, **common)
        except ValueError:  # more than the search allows: say so rather than fail the whole answer
            needed[target] = None
    return PowerAnswer(result, comparison, needed)


def power_curves(state: DesignState, points: int = 41) -> dict[str, pd.DataFrame]:
    """Analytic power against the clusters per arm and against the ICC (at the design's cluster counts), as
    :func:`power_curve` tables with ``current`` True at the design's own value. Unequal arms keep the
    design's ratio of control to treated clusters along the first curve (one vectorised :func:`crt_power`:
    ``power_curve`` varies one arm count at a time).

    >>> from crt_widgets.datasets import load_dickinson
    >>> state = DesignState()
    >>> state.load(load_dickinson(), "Dickinson counties")
    >>> curves = power_curves(state)
    >>> row = curves["clusters per arm"].query("current")
    >>> int(row.clusters_per_arm.iloc[0]), round(float(row.power.iloc[0]), 3)
    (8, 0.566)
    """
    effect, common, k_treat, k_control, _ = _power_question(state)
    ks = np.arange(2, max(3 * k_treat, 20) + 1)
    controls = ks if k_control == k_treat else np.maximum(2, np.round(ks * k_control / k_treat)).astype(int)
    if k_control == k_treat:
        by_k = power_curve(effect, against="clusters_per_arm", values=ks, **common)
    else:
        by_k = pd.DataFrame({"clusters_per_arm": ks, "power": crt_power(
            effect, clusters_per_arm=ks, clusters_control=controls, **common).power})
        by_k.attrs["against"] = "clusters_per_arm"
    band = state.power_inputs.icc_band
    if len(band) == 2:  # the power at both ends of an ICC interval (a pilot's): the band the chart shades
        low, high = (crt_power(effect, clusters_per_arm=ks, clusters_control=controls, **{**common, "icc": end}).power
                     for end in (min(band), max(band)))
        by_k["power_low"], by_k["power_high"] = np.minimum(low, high), np.maximum(low, high)
        by_k.attrs["band_label"] = f"ICC from {min(band):.3g} to {max(band):.3g}"
    icc = common.pop("icc")
    iccs = np.unique(np.append(np.linspace(0.0, min(max(0.2, 2 * icc), 0.99), points), icc))
    by_icc = power_curve(effect, against="icc", values=iccs, clusters_per_arm=k_treat, clusters_control=k_control,
                         **common)
    by_k["current"] = by_k["clusters_per_arm"] == k_treat
    by_icc["current"] = by_icc["icc"] == icc
    return {"clusters per arm": by_k, "ICC": by_icc}
