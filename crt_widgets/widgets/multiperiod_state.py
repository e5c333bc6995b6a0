"""The state of the app's Multi-period section: a multi-period design, its power, and the constrained
randomization of the order in which the clusters of the Design section cross over.

Three parts, each derived by the core and nothing more:

- :class:`MultiPeriodInputs`: the design (type, clusters, steps or periods) and the power question (cluster-period
  size, ICC, CAC or decay, cross-sectional or cohort, effect and SD or proportions, alpha);
  :func:`build_design` makes the :class:`~crt_widgets.core.multiperiod.designs.MultiPeriodDesign`,
  :func:`design_power` calls :func:`~crt_widgets.core.multiperiod.power.multiperiod_power` and
  :func:`design_power_curves` draws power against the number of steps and against the clusters per step;
- :class:`OrderState`: :class:`~crt_widgets.core.randomization.stepped_wedge.SteppedWedgeDesign` over the Design
  section's clusters (its data, cluster id and covariates), with its own weights, balance and cutoff; the draw is
  the Design section's protocol (a seed named, confirmed, then logged with ``--records``), and nothing of the
  order a draw will return is held before the draw.

>>> inputs = MultiPeriodInputs(n_clusters=24, steps=4)
>>> build_design(inputs).clusters_per_sequence.tolist()
[6, 6, 6, 6]
>>> round(design_power(inputs).power, 4)          # crt.multiperiod_power(crt.stepped_wedge(4, 6), 0.2, ...)
0.7649
>>> inputs.steps = 30
>>> design_power(inputs)
Traceback (most recent call last):
...
ValueError: steps: 30 steps need at least one cluster each; there are 24 clusters
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import traitlets as t

from crt_widgets.core.diagnostics.smd import smd_distribution
from crt_widgets.core.io.spacehash import sha256_of_space
from crt_widgets.core.multiperiod.designs import MultiPeriodDesign, cluster_crossover, parallel_arms, stepped_wedge
from crt_widgets.core.multiperiod.power import MultiPeriodPower, multiperiod_power, normal_power
from crt_widgets.core.randomization.stepped_wedge import SteppedWedgeDesign
from crt_widgets.core.seeds import check_seed
from crt_widgets.widgets.state import DesignState

KINDS = ("stepped wedge", "parallel", "parallel with baseline", "two-period crossover", "multi-period crossover")
CORRELATIONS = ("block exchangeable", "exponential decay")
# the largest design the section draws and computes (a grid of 2,000 x 200 cells is already unreadable)
MAX_CLUSTERS, MAX_PERIODS = 2_000, 200
# the steps curve goes up to this many steps (each step count is a design of its own size)
MAX_CURVE_STEPS = 20
# candidate orders the section lists or samples (SteppedWedgeDesign's size); the core's limit is far higher
ORDER_SIZE = 50_000
MAX_ORDER_SIZE = 2_000_000


class MultiPeriodInputs(t.HasTraits):
    """The multi-period design and the power question asked of it.

    Design: ``kind``; ``n_clusters`` spread over the sequences as evenly as possible (the first take one more);
    ``steps`` (stepped wedge: the sequences, one switching at each step, after one baseline period) and
    ``extra_periods`` (all-treated periods after the last step); ``periods`` (parallel: periods measured; with
    baseline: periods after the ``baseline_periods``; multi-period crossover: periods, alternating).
    Power: individuals per cluster-period, ICC, the correlation over periods (block exchangeable: ``cac``;
    exponential decay: ``decay``, one period apart), a closed cohort (``cohort``, ``iac``), the outcome with
    ``effect`` and ``sd`` (continuous) or the two proportions (binary), ``alpha``."""

    kind = t.Enum(KINDS, default_value="stepped wedge")
    n_clusters = t.Int(16)
    steps = t.Int(4)
    extra_periods = t.Int(0)
    periods = t.Int(4)
    baseline_periods = t.Int(1)
    cluster_size = t.Float(20.0)
    icc = t.Float(0.05)
    correlation = t.Enum(CORRELATIONS, default_value="block exchangeable")
    cac = t.Float(0.8)
    decay = t.Float(0.8)
    cohort = t.Bool(False)
    iac = t.Float(0.4)
    outcome = t.Enum(["continuous", "binary"], default_value="continuous")
    effect = t.Float(0.2)
    sd = t.Float(1.0)
    p_control = t.Float(0.3)
    p_treatment = t.Float(0.4)
    alpha = t.Float(0.05)


DESIGN_TRAITS = ("kind", "n_clusters", "steps", "extra_periods", "periods", "baseline_periods")


def spread(n_clusters: int, n_sequences: int) -> np.ndarray:
    """``n_clusters`` over ``n_sequences`` as evenly as possible, the first sequences taking one more.

    >>> spread(16, 3).tolist()
    [6, 5, 5]
    """
    return n_clusters // n_sequences + (np.arange(n_sequences) < n_clusters % n_sequences)


def _whole(value: int, name: str, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise ValueError(f"{name}: {what} between {low:,} and {high:,}, got {value}")
    return int(value)


def build_design(inputs: MultiPeriodInputs) -> MultiPeriodDesign:
    """The :class:`MultiPeriodDesign` the inputs describe; a ValueError names the input that is wrong.

    >>> build_design(MultiPeriodInputs(kind="two-period crossover", n_clusters=9)).sequences
    array([[1., 0.],
           [0., 1.]])
    """
    n = _whole(inputs.n_clusters, "clusters", 2, MAX_CLUSTERS, "a whole number of clusters")
    kind = inputs.kind
    if kind == "stepped wedge":
        steps = _whole(inputs.steps, "steps", 2, MAX_PERIODS, "a stepped wedge has a number of steps")
        if steps > n:
            raise ValueError(f"steps: {steps} steps need at least one cluster each; there are {n} clusters")
        extra = _whole(inputs.extra_periods, "extra periods", 0, MAX_PERIODS - steps - 1,
                       "all-treated periods after the last step")
        return stepped_wedge(steps, spread(n, steps), extra_periods=extra)
    two_arms = spread(n, 2)
    if kind == "two-period crossover":
        return cluster_crossover(two_arms, n_periods=2)
    if kind == "multi-period crossover":
        periods = _whole(inputs.periods, "periods", 3, MAX_PERIODS, "a multi-period crossover alternates over")
        return cluster_crossover(two_arms, n_periods=periods)
    periods = _whole(inputs.periods, "periods", 1, MAX_PERIODS, "periods measured")
    if kind == "parallel":
        return parallel_arms(two_arms, n_periods=periods)
    baseline = _whole(inputs.baseline_periods, "baseline periods", 1, MAX_PERIODS - periods,
                      "a parallel design with baseline has baseline periods")
    return parallel_arms(two_arms, n_periods=periods, baseline_periods=baseline)


def power_question(inputs: MultiPeriodInputs) -> tuple[float, dict]:
    """The effect and the other arguments of :func:`multiperiod_power` (all but the design).

    >>> effect, settings = power_question(MultiPeriodInputs(outcome="binary", correlation="exponential decay"))
    >>> round(effect, 2), sorted(settings)
    (0.1, ['alpha', 'cluster_size', 'decay', 'iac', 'icc', 'outcome', 'p_control'])
    """
    q = inputs
    settings: dict = {"icc": q.icc, "cluster_size": q.cluster_size, "alpha": q.alpha, "outcome": q.outcome,
                      "iac": q.iac if q.cohort else 0.0}
    if q.correlation == "block exchangeable":
        settings["cac"] = q.cac
    else:
        settings["decay"] = q.decay
    if q.outcome == "continuous":
        effect = q.effect
        settings["sd"] = q.sd
    else:
        for name, p in (("control proportion", q.p_control), ("treatment proportion", q.p_treatment)):
            if not 0 < p < 1:
                raise ValueError(f"{name}: must be between 0 and 1, got {p:g}")
        effect = q.p_treatment - q.p_control
        settings["p_control"] = q.p_control
    if effect == 0:
        raise ValueError("effect: a difference of zero has no power to speak of; enter the effect to detect")
    return effect, settings


def _core(call):
    """The core's ValueErrors with the section's names for its arguments (what the panel labels them)."""
    try:
        return call()
    except ValueError as exc:
        text = str(exc)
        for core_name, label in (("cluster_size", "individuals per cluster-period"), ("icc", "ICC"),
                                 ("cac", "CAC"), ("decay", "decay"), ("iac", "IAC"), ("sd", "SD")):
            if text.startswith(core_name + " "):
                text = f"{label}: {text}"
                break
        raise ValueError(text) from None


def design_power(inputs: MultiPeriodInputs) -> MultiPeriodPower:
    """:func:`multiperiod_power` of the design the inputs describe (one scenario)."""
    design = build_design(inputs)
    effect, settings = power_question(inputs)
    return _core(lambda: multiperiod_power(design, effect, **settings))


def clusters_per_step_curve(inputs: MultiPeriodInputs, largest: int | None = None) -> pd.DataFrame:
    """Power against the number of clusters on each sequence (each step of a stepped wedge, each arm of a parallel
    or crossover design), the same on every sequence: ``clusters_per_step`` 1 .. ``largest`` and ``power``.

    One GLS computation: the information adds over clusters, so ``m`` clusters on every sequence have the
    variance of one cluster on each divided by ``m`` (the argument of ``multiperiod_clusters_needed``).
    ``current`` marks the design's own count (its mean over sequences, the design's own power).

    >>> curve = clusters_per_step_curve(MultiPeriodInputs(n_clusters=24, steps=4))
    >>> row = curve.query("current")
    >>> int(row.clusters_per_step.iloc[0]), round(float(row.power.iloc[0]), 4)
    (6, 0.7649)
    """
    design = build_design(inputs)
    effect, settings = power_question(inputs)
    one_each = design.with_clusters(np.ones(design.n_sequences, dtype=int))
    base = _core(lambda: multiperiod_power(one_each, effect, **settings))
    mean = design.n_clusters / design.n_sequences
    largest = int(largest or max(12, int(np.ceil(2.5 * mean))))
    per = np.arange(1, largest + 1)
    curve = pd.DataFrame({"clusters_per_step": per.astype(float),
                          "power": normal_power(effect, base.se / np.sqrt(per), base.alpha)})
    current = _core(lambda: multiperiod_power(design, effect, **settings))
    if mean not in set(per.tolist()):  # uneven counts: the design's own point, between two equal-count designs
        curve = pd.concat([curve, pd.DataFrame({"clusters_per_step": [mean], "power": [current.power]})])
        curve = curve.sort_values("clusters_per_step", ignore_index=True)
    curve["current"] = curve["clusters_per_step"] == mean
    curve.attrs["against"] = "clusters_per_step"
    return curve


def steps_curve(inputs: MultiPeriodInputs, most: int | None = None) -> pd.DataFrame:
    """Power of a stepped wedge against its number of steps (2 .. ``most``), two lines: the design's clusters per
    step kept (more steps, more clusters and periods) and its total number of clusters kept (spread over the
    steps). Columns ``steps``, ``power``, ``line``, ``current``.

    Each step count is a design of another size (S + 1 + extra periods), so there is one vectorised GLS call per
    design and line: at most 2 x 19 small calls.

    >>> curve = steps_curve(MultiPeriodInputs(n_clusters=24, steps=4))
    >>> curve.query("current").power.round(4).tolist()
    [0.7649, 0.7649]
    """
    design = build_design(inputs)
    if inputs.kind != "stepped wedge":
        raise ValueError("steps: the power against the number of steps is for a stepped wedge")
    effect, settings = power_question(inputs)
    n, steps = design.n_clusters, design.n_sequences
    per_step = max(1, int(round(n / steps)))
    most = int(most or min(MAX_CURVE_STEPS, max(2 * steps, 8)))
    rows = []
    for label, counts_of in ((f"{per_step} clusters per step", lambda s: np.full(s, per_step)),
                             (f"{n} clusters in all", lambda s: spread(n, s) if s <= n else None)):
        for s in range(2, most + 1):
            counts = counts_of(s)
            if counts is None:
                continue
            candidate = stepped_wedge(s, counts, extra_periods=inputs.extra_periods)
            power = _core(lambda: multiperiod_power(candidate, effect, **settings)).power
            rows.append({"steps": float(s), "power": power, "line": label,
                         "current": s == steps and candidate == design})
    curve = pd.DataFrame(rows)
    curve.attrs["against"] = "steps"
    return curve


def design_power_curves(inputs: MultiPeriodInputs) -> dict[str, pd.DataFrame]:
    """The section's curves: against the clusters per step (every design) and the number of steps (stepped wedge).

    >>> sorted(design_power_curves(MultiPeriodInputs()))
    ['clusters per step', 'steps']
    >>> sorted(design_power_curves(MultiPeriodInputs(kind="parallel")))
    ['clusters per step']
    """
    curves = {"clusters per step": clusters_per_step_curve(inputs)}
    if inputs.kind == "stepped wedge":
        curves["steps"] = steps_curve(inputs)
    return curves


class OrderState(t.HasTraits):
    """The constrained randomization of the order: :class:`SteppedWedgeDesign` of the Design section's clusters
    over the multi-period design of ``inputs``; ``design`` is None (and ``error`` says why) when they do not fit.

    The draw is :class:`~crt_widgets.widgets.state.DesignState`'s own protocol (the same methods, so the same
    seed confirmation, draw log and files): :meth:`propose_draw` names the seed, :meth:`confirm_draw` draws and
    logs. Before it, nothing here depends on the order a draw will return.

    >>> from crt_widgets.datasets import load_dickinson
    >>> clusters = DesignState()
    >>> clusters.load(load_dickinson(), "Dickinson counties", cluster_id="county", covariates=["inciis", "hispanic"])
    >>> order = OrderState(clusters, MultiPeriodInputs(n_clusters=16, steps=4))
    >>> order.design.n_possible, order.kept, order.error
    (63063000, 4999, '')
    >>> order.draw(2024).arm_sizes().tolist(), len(order.draws)
    ([4, 4, 4, 4], 1)
    """

    covariates = t.List(t.Unicode())
    stratify = t.List(t.Unicode())             # categorical covariates spread evenly over the sequences, exactly
    weights = t.Dict()
    balance = t.Enum(["sequences", "time"], default_value="sequences")
    metric = t.Enum(["l2", "l1"], default_value="l2")
    cutoff = t.Float(0.1)
    use_n_best = t.Bool(False)
    n_best = t.Int(100)
    size = t.Int(ORDER_SIZE)
    seed = t.Int(12345)                         # which candidate orders a sampled space holds

    design = t.Any(None, allow_none=True)       # SteppedWedgeDesign or None
    smd = t.Instance(pd.DataFrame, allow_none=True)
    time_balance = t.Instance(pd.DataFrame, allow_none=True)  # balance_comparison(): |r| with time, vs simple
    space_sha256 = t.Unicode("")
    error = t.Unicode("")
    warnings = t.List(t.Unicode())
    last_update_ms = t.Float(0.0)
    # the draw, as DesignState has it (its methods below use these traits)
    draw_seed_text = t.Unicode("")
    pending = t.Dict(allow_none=True, default_value=None)
    draw_error = t.Unicode("")
    allocation = t.Any(None, allow_none=True)
    history = t.List()
    draws = t.List()
    session = t.Unicode()
    records_dir = t.Unicode("")
    saved_to = t.Unicode("")

    def __init__(self, clusters: DesignState, inputs: MultiPeriodInputs, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clusters, self.inputs = clusters, inputs
        if "session" not in kwargs:  # the app's session, so the log ties the order's draws to the Design section's
            self.session = f"{clusters.session}-order"
        self._files: dict[int, dict] = {}
        self._syncing = False
        if not self.records_dir:
            self.records_dir = clusters.records_dir
        self._follow_data()
        clusters.observe(self._on_data, names=["data", "cluster_id", "covariates", "categorical"])
        inputs.observe(lambda change: self.rebuild(), names=list(DESIGN_TRAITS))
        self.observe(self._on_covariates, names=["covariates"])
        self.observe(lambda change: self.rebuild(), names=["size", "seed", "stratify"])
        self.observe(lambda change: self.rescore(), names=["weights", "balance", "metric", "cutoff", "use_n_best",
                                                            "n_best"])
        self.observe(lambda change: self.propose_draw() if self.pending is not None else None,
                     names="draw_seed_text")
        self.rebuild()

    # -- the Design section's clusters -------------------------------------------------------------------------
    def _follow_data(self) -> None:
        """Balance on the Design section's covariates; the design's cluster count follows the data."""
        c = self.clusters
        self._syncing = True
        try:
            with self.hold_trait_notifications():
                self.covariates = list(c.covariates)
                self.stratify = [name for name in c.stratify if name in c.covariates]
                self.weights = {name: float(c.weights.get(name, 1.0)) for name in c.covariates}
            if c.data is not None and self.inputs.n_clusters != len(c.data):
                self.inputs.n_clusters = len(c.data)  # rebuilds (an observer of the inputs)
        finally:
            self._syncing = False

    def _on_data(self, change) -> None:
        self._follow_data()
        self.rebuild()

    def _on_covariates(self, change) -> None:
        if self._syncing:
            return
        self._syncing = True  # one rebuild for the covariates and what follows from them
        try:
            self.weights = {name: self.weights.get(name, 1.0) for name in self.covariates}
            self.stratify = [name for name in self.stratify if name in self.covariates]
        finally:
            self._syncing = False
        self.rebuild()

    # -- building and scoring ----------------------------------------------------------------------------------
    def _rule(self) -> dict:
        return {"n_best": int(self.n_best), "cutoff": None} if self.use_n_best else {"cutoff": float(self.cutoff)}

    def _build(self) -> SteppedWedgeDesign:
        c = self.clusters
        if c.data is None:
            raise ValueError("clusters: load the clusters in the Design section first")
        multiperiod = build_design(self.inputs)
        if multiperiod.n_clusters != len(c.data):
            raise ValueError(f"clusters: the design has {multiperiod.n_clusters} clusters and the Design section's "
                             f"data {len(c.data)}; set the number of clusters to {len(c.data)} to randomize them")
        if not self.covariates:
            raise ValueError("covariates: choose at least one covariate to balance the order on")
        _whole(self.size, "candidate orders", 2, MAX_ORDER_SIZE, "a number of sampled orders")
        check_seed(self.seed, "sampling seed")
        categorical = [name for name in c.categorical if name in self.covariates]
        return SteppedWedgeDesign(c.data, self.covariates, multiperiod, cluster_id=c.cluster_id or None,
                                  categorical=categorical, stratify=list(self.stratify), weights=[self.weights.get(k, 1.0) for k in self.covariates],
                                  metric=self.metric, balance=self.balance, size=int(self.size), seed=int(self.seed),
                                  **self._rule())

    def rebuild(self) -> None:
        """New candidate orders for the current clusters, covariates and multi-period design."""
        if self._syncing:
            return
        self.allocation = self.pending = None  # a confirmation names a space: a new one needs a new confirmation
        self._run(self._build)

    def rescore(self) -> None:
        """Score the orders already listed with the current weights, balance, metric and cutoff."""
        if self._syncing:
            return
        self.allocation = self.pending = None
        if self.design is None or self.design.covariates != self.covariates:
            self._run(self._build)
            return
        weights = [float(self.weights.get(k, 1.0)) for k in self.covariates]
        self._run(lambda: self.design.rescore(weights=weights, balance=self.balance, metric=self.metric,
                                              **self._rule()))

    def _run(self, make) -> None:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                design = make()
                design.space  # build now
                # what describes the space, never the order a draw would pick
                smd, comparison, fingerprint = smd_distribution(design), design.balance_comparison(), \
                    sha256_of_space(design)
                # numpy's arithmetic warnings (an SMD over a sequence without spread) say nothing to a user: the
                # panel explains small sequences itself
                caught = [str(w.message) for w in seen if not issubclass(w.category, RuntimeWarning)]
        except Exception as exc:  # any problem is a message in the panel, never a traceback in the browser
            known = isinstance(exc, (ValueError, KeyError, TypeError))
            text = str(exc.args[0] if exc.args else exc)
            with self.hold_trait_notifications():
                self.error = text if known else f"Unexpected problem ({type(exc).__name__}): {text}"
                self.design, self.smd, self.time_balance, self.space_sha256 = None, None, None, ""
        else:
            with self.hold_trait_notifications():
                self.error = ""
                self.warnings = caught + list(design.diagnostics)
                self.smd, self.time_balance, self.space_sha256 = smd, comparison, fingerprint
                self.design = design
        finally:
            self.last_update_ms = (time.perf_counter() - start) * 1000

    @property
    def kept(self) -> int:
        """Orders in the constrained space (0 when there is no valid design)."""
        return 0 if self.design is None else len(self.design.space_index)

    # the Design section's draw protocol, one implementation: seed named and confirmed, the draw logged
    propose_draw = DesignState.propose_draw
    cancel_draw = DesignState.cancel_draw
    confirm_draw = DesignState.confirm_draw
    draw = DesignState.draw
    draw_files = DesignState.draw_files
    _record = DesignState._record
