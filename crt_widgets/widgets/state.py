"""The dashboard's single state object: every input as a trait, every result derived by the core.

Panels are thin views: they link their widgets to these traits. A change of data, covariates, arm
counts or space size rebuilds the candidate schemes; a change of weights, metric or cutoff only
re-scores them (:meth:`ConstrainedDesign.rescore`). Problems never raise out of a callback: they
land in ``error`` for the panels to show.

>>> from crt_widgets.datasets import load_dickinson
>>> state = DesignState()
>>> state.load(load_dickinson(), "Dickinson counties")
>>> state.kept > 0, state.error
(True, '')
>>> state.cutoff = 0.05
>>> state.kept < 1288
True
"""
from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass

import pandas as pd
import traitlets as t

from crt_widgets.core.covariates import FEW_LEVELS
from crt_widgets.core.randomization.constrained import ConstrainedDesign
from crt_widgets.core.power.analytic import AnalyticPower, crt_clusters_needed, crt_power
from crt_widgets.core.seeds import check_seed
from crt_widgets.core.sizes import format_count

# traits whose change needs new candidate schemes, and those that only re-score them
STRUCTURAL = ("data", "cluster_id", "covariates", "categorical", "stratify", "n_treat", "n_arms", "size",
              "sampling", "seed")
SCORING = ("weights", "metric", "cutoff", "use_n_best", "n_best")
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
    seed = t.Int(12345)

    design = t.Any(None, allow_none=True)       # ConstrainedDesign or None
    preview = t.Any(None, allow_none=True)      # the allocation the seed would draw now
    allocation = t.Any(None, allow_none=True)   # the allocation drawn with the Draw button
    history = t.List()                          # every allocation drawn in this session, newest last
    error = t.Unicode("")
    warnings = t.List(t.Unicode())
    busy = t.Bool(False)
    last_update_ms = t.Float(0.0)
    records_dir = t.Unicode("")                # if set, every drawn allocation's files are also written here
    saved_to = t.Unicode("")                   # the folder of the last draw's files (or why they could not be)
    power_inputs = t.Instance(PowerInputs, ())  # the analytic power question (see analytic_power)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._loading = False
        self.observe(self._on_structure, names=list(STRUCTURAL))
        self.observe(self._on_scoring, names=list(SCORING))

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
        self.allocation = None
        if self.n_arms != 2:
            self._run(self._multiarm, rebuild=True)
            return
        self._run(self._two_arm, rebuild=True)

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
        self.allocation = None
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
                preview = design.draw()
                design.validity
                caught = [str(w.message) for w in seen]
        except Exception as exc:  # any problem is a message in the panel, never a traceback in the browser
            known = isinstance(exc, (ValueError, KeyError, TypeError))
            text = str(exc.args[0] if exc.args else exc)
            self.error = text if known else f"Unexpected problem ({type(exc).__name__}): {text}"
            self.design = None
            self.preview = None
        else:
            self.error = ""
            self.warnings = caught + list(design.diagnostics)
            self.design = design
            self.preview = preview
        finally:
            self.busy = False
            self.last_update_ms = (time.perf_counter() - start) * 1000

    # -- results ----------------------------------------------------------------------------------
    @property
    def kept(self) -> int:
        """Schemes in the constrained space (0 when there is no valid design)."""
        return 0 if self.design is None else len(self.design.space_index)

    def draw(self):
        """Draw the final allocation with the seed (the same as the preview: the draw is reproducible);
        an :class:`Allocation` for two arms, a ``MultiArmAllocation`` for more."""
        if self.design is not None and self.allocation is None:  # drawing again would repeat the same draw
            allocation = self.design.draw()
            self.saved_to = self._record(allocation)
            self.allocation = allocation
            self.history = [*self.history, allocation]
        return self.allocation

    def _record(self, allocation) -> str:
        if not self.records_dir:
            return ""
        from crt_widgets.widgets.downloads import save_allocation_files

        try:
            return str(save_allocation_files(allocation, self.records_dir))
        except Exception as exc:  # the draw stands and stays downloadable; say why there is no copy on disk
            return f"not saved: {exc}"

    def few_levels(self) -> list[str]:
        """Numeric covariates with few distinct values that are not declared categorical."""
        if self.data is None:
            return []
        return [c for c in self.covariates if c not in self.categorical
                and pd.api.types.is_numeric_dtype(self.data[c]) and self.data[c].nunique() <= FEW_LEVELS]


@dataclass(frozen=True)
class PowerAnswer:
    """Analytic power for the current cluster counts, and the clusters per arm that 80% and 90% need."""

    result: AnalyticPower
    comparison: str                 # which arms the power is for
    needed: dict[float, int | None]  # target power -> clusters per arm (equal arms; None: beyond 10,000)


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
    result = crt_power(effect, clusters_per_arm=k_treat, clusters_control=k_control, **common)
    needed = {}
    for target in (0.8, 0.9):
        try:
            needed[target] = crt_clusters_needed(effect, power=target, **common)
        except ValueError:  # more than the search allows: say so rather than fail the whole answer
            needed[target] = None
    return PowerAnswer(result, comparison, needed)
