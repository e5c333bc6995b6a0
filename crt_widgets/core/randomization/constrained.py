"""Two-arm covariate-constrained randomization, as a declaration (cvcrand's ``cvrall`` and ``cvrcov``).

A :class:`ConstrainedDesign` holds the inputs. It exposes the candidate schemes (all of them, or a
random sample), their balance scores and histogram, the constrained space and each cluster's
probability of treatment; :meth:`ConstrainedDesign.draw` picks the allocation with a seed. Changing
weights, metric, cutoff or constraints with :meth:`ConstrainedDesign.rescore` reuses the candidates.

>>> from crt_widgets.datasets import load_dickinson
>>> design = ConstrainedDesign(load_dickinson(), n_treat=8, cluster_id="county",
...     covariates=["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
...     categorical=["location", "incomecat"], seed=12345)
>>> round(design.cutoff_score, 3), len(design.space)
(7.638, 1288)
>>> allocation = design.draw()
>>> int(allocation.arm.sum())
8
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.randomization.bounded_scores import BoundedScores
from crt_widgets.core.randomization.candidates import EnumeratedCandidates, SchemeCandidates, check_metric
from crt_widgets.core.randomization.constraints import Constraint, parse_constraint
from crt_widgets.core.covariates import CovariateMatrix
from crt_widgets.core.spaces.schemes import (StratumRule, enumerate_schemes, enumerate_stratified,
                                      sample_schemes, sample_stratified)
from crt_widgets.core.randomization.acceptance import CutoffRule, rule_changes
from crt_widgets.core.randomization.allocation import AllocationRecord
from crt_widgets.core.randomization.scored import ScoredDesign
from crt_widgets.core.progress import Cancelled, Progress, as_progress
from crt_widgets.core.seeds import check_seed
from crt_widgets.core.sizes import check_memory, fits_in_memory, format_count
from crt_widgets.core.spaces.space import RandomizationSpace
from crt_widgets.core.io.files import from_chunks
from crt_widgets.core.io.spacefiles import cvcrand_csv_chunks, space_json_bytes, write_cvcrand_csv, write_space_json
from crt_widgets.core.diagnostics.tables import baseline_table, score_summary
from crt_widgets.core.diagnostics.validity import SAMEARMHI, SAMEARMLO, Validity, cluster_coincidence

DEFAULT_SIZE = 50_000
# above this many schemes, the enumeration is scored block by block instead of stored
_EXPLICIT_LIMIT = 2_000_000
# the most candidate schemes one design holds: an enumeration is streamed (the cutoff needs no array of
# scores) but its kept positions, and the float32 scores if asked for, grow with it; beyond this a random
# sample represents the space just as well
MAX_CANDIDATES = 500_000_000
# what ConstrainedDesign.rescore may change: the scoring, the rule and the validity thresholds, never the candidates
RESCORE_CHANGES = {"weights", "metric", "cutoff", "n_best", "constraints", "samearmhi", "samearmlo"}


class ConstrainedDesign(ScoredDesign):
    """Covariate-constrained randomization of ``n`` clusters to two arms.

    Parameters
    ----------
    data : one row per cluster.
    covariates : columns to balance.
    n_treat : clusters in the treatment arm (0 < n_treat < n).
    categorical : covariates to dummy-code (reference level: first category of a pandas
        Categorical, else first in sorted order, as in cvcrand).
    cluster_id : column with the cluster labels (default 1..n).
    metric : ``"l2"`` (default) or ``"l1"``.
    weights : user weight per covariate (list or mapping); 0 switches a covariate off.
    cutoff : keep schemes scoring at or below this quantile q of all scores (0 < q <= 1; 1 is
        simple randomization); ties at the cutoff are kept.
    n_best : instead of ``cutoff``, keep exactly the ``n_best`` best schemes (``n_schemes``, its former
        name, is accepted for one release).
    constraints : instead of a score, one constraint per covariate in Greene's syntax
        (``"any"``, ``"s5"``, ``"sf.5"``, ``"m10"``, ``"mf0.2"``), as cvcrand's ``cvrcov``.
    stratify : columns whose strata must be balanced exactly: only schemes treating
        ``n_s * n_treat / n`` clusters of each stratum (rounded down or up) are candidates;
        the score then works on the other covariates.
    size : number of schemes to draw when the space is larger than this (default 50,000).
    enumerate : ``True`` to enumerate whatever the size, ``False`` to sample even a small space,
        ``None`` (default) to enumerate when the space has at most ``size`` schemes.
    seed : seed of the random draws (sampling and choice); ``None`` takes fresh entropy and
        records it, so every result can be reproduced.
    """

    method_name = "covariate-constrained randomization (two arms)"
    _renamed_params = ("n_schemes",)


    def __init__(
        self,
        data: pd.DataFrame,
        covariates: Sequence[str],
        n_treat: int,
        *,
        categorical: Sequence[str] = (),
        cluster_id: str | None = None,
        metric: str = "l2",
        weights: Sequence[float] | Mapping[str, float] | None = None,
        cutoff: float | None = 0.1,
        n_best: int | None = None,
        constraints: Sequence[str] | None = None,
        stratify: Sequence[str] | str | None = None,
        size: int = DEFAULT_SIZE,
        enumerate: bool | None = None,
        seed: int | None = None,
        samearmhi: float = SAMEARMHI,
        samearmlo: float = SAMEARMLO,
        n_schemes: int | None = None,
    ) -> None:
        if n_schemes is not None:  # the former name of n_best
            warnings.warn("n_schemes: renamed n_best (the same rule in every design)", DeprecationWarning, stacklevel=2)
            n_best = n_best if n_best is not None else n_schemes
        self.seed = check_seed(seed)
        self._declare({**locals(), "n_best": n_best}, self.seed)
        self.data = data
        self.covariates = list(covariates) if not isinstance(covariates, str) else covariates
        self.categorical = [categorical] if isinstance(categorical, str) else list(categorical or ())
        self.cluster_id = cluster_id
        self.stratify = [stratify] if isinstance(stratify, str) else list(stratify or ())
        self.size = size
        self.enumerate = enumerate
        self.samearmhi, self.samearmlo = samearmhi, samearmlo
        self.n_treat = self._check_n_treat(n_treat, len(data) if isinstance(data, pd.DataFrame) else 0)
        self._set_rule(metric, weights, cutoff, n_best, constraints)
        self._check_inputs()
        self._candidates = None

    # -- validation --------------------------------------------------------------------------
    @staticmethod
    def _check_n_treat(n_treat: int, n: int) -> int:
        if isinstance(n_treat, bool) or not isinstance(n_treat, (int, np.integer)):
            raise ValueError(f"n_treat: expected a whole number of clusters, got {n_treat!r}")
        if n >= 2 and not 0 < n_treat < n:
            raise ValueError(f"n_treat: must be between 1 and {n - 1} for {n} clusters, got {n_treat}")
        return int(n_treat)

    def _set_rule(self, metric, weights, cutoff, n_best, constraints) -> None:
        self.metric = check_metric(metric)
        self.weights = weights
        self.constraints = None if constraints is None else list(constraints)
        if self.constraints is not None:
            if len(self.constraints) != len(self.covariates):
                raise ValueError(f"constraints: got {len(self.constraints)} constraint(s) for "
                                 f"{len(self.covariates)} covariate(s); give one per covariate")
            self._parsed_constraints = [parse_constraint(c) for c in self.constraints]
            self.rule = None
        else:
            self.rule = CutoffRule.check(cutoff, n_best)

    @property
    def cutoff(self) -> float | None:
        """The quantile of the cutoff rule (None with ``n_best`` or constraints)."""
        return None if self.rule is None else self.rule.cutoff

    @property
    def n_best(self) -> int | None:
        """The number of best schemes kept (None with a quantile cutoff or constraints)."""
        return None if self.rule is None else self.rule.n_best

    def _check_inputs(self) -> None:
        if not isinstance(self.size, (int, np.integer)) or isinstance(self.size, bool) or self.size < 2:
            raise ValueError(f"size: must be a whole number of at least 2, got {self.size!r}")
        if not 0 <= self.samearmlo < self.samearmhi <= 1:
            raise ValueError("samearmlo and samearmhi: need 0 <= samearmlo < samearmhi <= 1")
        if isinstance(self.data, pd.DataFrame):
            missing = [c for c in self.stratify if c not in self.data.columns]
            if missing:
                raise ValueError(f"stratify: column(s) not in the data: {', '.join(missing)}")
            bad = [c for c in self.stratify if self.data[c].isna().any()]
            if bad:
                raise ValueError(f"stratify: missing values in {', '.join(bad)}")
        self.covariate_matrix  # validates data, covariates, categorical, cluster_id, weights
        unknown = [c for c in self.categorical if c not in self.covariates]
        if unknown:  # a categorical column that is not balanced on would otherwise be ignored without a word
            raise ValueError(f"categorical: {', '.join(map(str, unknown))} not among the covariates "
                             f"({', '.join(map(str, self.covariates))})")
        # a sample's packed schemes and scores must fit in memory: checked before any scheme is drawn
        sampled = self.size * ((self.n_clusters + 7) // 8 + 24.0)
        if (self.enumerate is not True and self.size <= MAX_CANDIDATES and not fits_in_memory(sampled)
                and not self.enumerated):
            check_memory(sampled, "size", f"{self.size:,} sampled schemes of {self.n_clusters:,} clusters")
        # size is also the threshold below which the space is enumerated: only a sample of it is limited
        if self.enumerated and self.n_possible > MAX_CANDIDATES:
            raise ValueError(f"enumerate: there are {format_count(self.n_possible)} possible schemes, too many to list "
                             f"(at most {MAX_CANDIDATES:,}); sample them instead (enumerate=False, a size "
                             "of at most that many)")
        if not self.enumerated and self.size > MAX_CANDIDATES:
            raise ValueError(f"size: at most {MAX_CANDIDATES:,} sampled schemes fit in memory, got {self.size:,}")
        # known before any scheme is built (sampling can only end with fewer, after duplicates go)
        if self.rule is not None:
            self.rule.check_candidates(self.n_possible if self.enumerated else min(self.size, self.n_possible))


    @cached_property
    def _seeds(self) -> list[np.random.SeedSequence]:
        # independent streams for sampling the candidates and for the final choice
        return np.random.SeedSequence(self.seed).spawn(2)

    @cached_property
    def stratum_rule(self) -> StratumRule | None:
        if not self.stratify:
            return None
        keys = self.data[self.stratify].astype(str).agg(" | ".join, axis=1)
        labels, codes = np.unique(keys.to_numpy(), return_inverse=True)
        return StratumRule.build(codes, tuple(labels), self.n_treat)

    @cached_property
    def n_possible(self) -> int:
        """Number of schemes in the (stratum-balanced) simple randomization space."""
        rule = self.stratum_rule
        return rule.space_size() if rule else math.comb(self.n_clusters, self.n_treat)

    @property
    def enumerated(self) -> bool:
        """Whether every possible scheme is a candidate (else a random sample)."""
        return self.enumerate if self.enumerate is not None else self.n_possible <= self.size

    # -- candidates and scores -----------------------------------------------------------
    @property
    def candidates(self):
        """The candidate schemes: every possible scheme, or a random sample without duplicates."""
        if self._candidates is None:
            self._candidates = self._build_candidates()
        return self._candidates

    def build(self, on_progress: Callable[[int, int], None] | None = None,
              stop: Callable[[], bool] | None = None) -> "ConstrainedDesign":
        """Build the candidate schemes and the constrained space now, reporting progress (what an app shows
        for a space of millions of schemes); returns the design itself.

        The work is counted in steps of schemes, twice the number of candidates: each scheme is generated,
        then its covariate sums are computed (the scores and the cutoff follow, in a fraction of that time).
        ``on_progress(done, total)`` is called with ``done`` increasing to ``total``, chunk by chunk for a
        stratified enumeration and explicit schemes; ``stop()`` is checked between chunks and raises
        :class:`~crt_widgets.core.progress.Cancelled`, leaving the design as unbuilt as it was.

        >>> from crt_widgets.datasets import load_dickinson
        >>> seen = []
        >>> d = ConstrainedDesign(load_dickinson(), ["inciis", "location"], 8, categorical=["location"],
        ...                       cluster_id="county", stratify="location", enumerate=True, seed=1)
        >>> len(d.build(on_progress=lambda done, total: seen.append((done, total))).space_index), seen[-1]
        (626, (9800, 9800))
        """
        as_progress(on_progress, stop)  # both checked before any work
        planned = self.n_possible if self.enumerated else int(self.size)
        total, reported = 2 * planned, [-1]

        def report(done: int) -> None:  # each count once, increasing, on the one scale of ``total``
            if on_progress is not None and done > reported[0]:
                reported[0] = done
                on_progress(int(done), int(total))
            if stop is not None and stop():
                raise Cancelled("cancelled: building the randomization space was stopped on request")

        report(0)
        if self._candidates is None:
            self._candidates = self._build_candidates(Progress(lambda done, _: report(done), stop))
        candidates = self._candidates
        n_candidates = len(candidates)
        if n_candidates != planned:  # a sample without its duplicates: count what is there
            total = 2 * n_candidates
        report(n_candidates)
        if isinstance(candidates, SchemeCandidates):
            name, x = (("raw_sums", self.covariate_matrix.raw) if self.constraints is not None
                       else ("standardized_sums", self.covariate_matrix.standardized))
            if name not in candidates.__dict__:
                sums = candidates.schemes.treated_sums(x, on_progress=lambda done, _: report(n_candidates + done),
                                                       stop=stop)
                candidates.__dict__[name] = sums  # the cached property, computed with progress
        self.space_index  # the scores, the cutoff and the kept schemes
        report(total)
        return self

    def _build_candidates(self, progress: Progress | None = None):
        cov = self.covariate_matrix
        n = self.n_clusters
        rule = self.stratum_rule
        progress = progress or Progress()
        if self.enumerated:
            if rule is not None:
                schemes = enumerate_stratified(rule, on_progress=progress.on_progress, stop=progress.stop)
                return SchemeCandidates(schemes, cov.standardized, cov.raw, True)
            if self.n_possible > _EXPLICIT_LIMIT and n <= 64:
                return EnumeratedCandidates(self.n_treat, cov.standardized, cov.raw)
            return SchemeCandidates(enumerate_schemes(n, self.n_treat), cov.standardized, cov.raw, True)
        rng = np.random.default_rng(self._seeds[0])
        if rule is not None:
            schemes, _ = sample_stratified(rule, self.size, rng)
        else:
            schemes, _ = sample_schemes(n, self.n_treat, self.size, rng)
        return SchemeCandidates(schemes, cov.standardized, cov.raw, False, n_drawn=self.size)

    @property
    def column_weights(self) -> np.ndarray:
        return self.covariate_matrix.weights

    @cached_property
    def scores(self) -> np.ndarray:
        """Balance score of every candidate scheme: float64, or float32 (4 bytes a scheme) when every
        scheme of more than 2,000,000 is enumerated; the cutoff, the kept set and ``space_scores`` are
        those of the float64 scores in either case."""
        held = self._bounded_scores
        return held.values if held.values is not None else \
            self.candidates.bounded_scores(self.column_weights, self.metric, stored=True).values

    @cached_property
    def _bounded_scores(self) -> BoundedScores:
        # a block enumeration streams them: the cutoff and kept set need two passes, not 4 bytes a scheme
        return self.candidates.bounded_scores(self.column_weights, self.metric)

    @cached_property
    def _acceptance(self) -> tuple[np.ndarray, float | None]:
        if self.constraints is not None:
            cons = _per_column(self._parsed_constraints, self.covariates, self.covariate_matrix)
            return self.candidates.satisfies(cons, self.n_treat), None
        self.rule.check_candidates(len(self.candidates))  # sampling can end with fewer after duplicates go
        if isinstance(self.candidates, EnumeratedCandidates):  # float32 scores: exact selection, no copy
            return self.rule.apply_bounded(self._bounded_scores)
        return self.rule.apply(self.scores)

    @cached_property
    def space(self) -> RandomizationSpace:
        """The constrained randomization space (packed two-arm schemes; arm "1" is the treatment)."""
        return RandomizationSpace.from_schemes(self.candidates.schemes_at(self.space_index), self.cluster_ids,
                                               scores=self.space_scores, exhaustive=self.enumerated,
                                               n_possible=self.n_possible)

    @cached_property
    def space_scores(self) -> np.ndarray:
        """float64 scores of the constrained space's schemes."""
        return self._bounded_scores.exact(self.space_index)

    def histogram(self, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Counts and bin edges of all candidate scores (binned here, not in the browser)."""
        return np.histogram(self.scores, bins=bins)

    @cached_property
    def validity(self) -> Validity:
        """Pair coincidence in the constrained space."""
        n, t = self.n_clusters, self.n_treat
        expected = (t * (t - 1) + (n - t) * (n - t - 1)) / (n * (n - 1))
        return cluster_coincidence(self.space.schemes, self.cluster_ids, expected_fraction=expected,
                                   samearmhi=self.samearmhi, samearmlo=self.samearmlo)

    # -- re-scoring ------------------------------------------------------------------------
    def rescore(self, **changes: Any) -> "ConstrainedDesign":
        """A copy with new ``weights``, ``metric``, ``cutoff``, ``n_best`` or ``constraints`` (and the
        validity thresholds), reusing the candidate schemes (the cheap path for sliders).

        >>> from crt_widgets.datasets import load_dickinson
        >>> d = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county", seed=1)
        >>> looser = d.rescore(cutoff=0.5)
        >>> looser.candidates is d.candidates, len(looser.space) > len(d.space)
        (True, True)
        """
        if "n_schemes" in changes:
            changes["n_best"] = changes.pop("n_schemes")
        unknown = set(changes) - RESCORE_CHANGES
        if unknown:
            raise ValueError(f"rescore: cannot change {', '.join(sorted(unknown))} without rebuilding "
                             "the candidates; make a new ConstrainedDesign")
        new = self.with_params(**rule_changes(self.get_params(), changes, ("cutoff", "n_best", "constraints")))
        new._candidates = self.candidates  # they depend on nothing a rescore may change
        return new

    # -- messages ---------------------------------------------------------------------------
    @property
    def assignment_message(self) -> str:
        return (f"You have indicated that you want to assign {self.n_treat} clusters to treatment "
                f"and {self.n_clusters - self.n_treat} to control")

    @property
    def scheme_message(self) -> str:
        strata = f" balancing every stratum of {', '.join(self.stratify)}" if self.stratify else ""
        if self.enumerated:
            return f"There are {format_count(self.n_possible)} possible schemes{strata}; all were enumerated"
        c = self.candidates
        return (f"There are {format_count(self.n_possible)} possible schemes{strata}, more than size = {self.size:,}: "
                f"{self.size:,} were drawn at random and {c.n_duplicates:,} duplicate(s) removed, "
                f"leaving {len(c):,}")

    @property
    def cutoff_message(self) -> str:
        kept = len(self.space_index)
        if self.constraints is not None:
            return (f"Covariate-by-covariate constraints ({', '.join(self.constraints)}): "
                    f"{kept:,} of {len(self.candidates):,} schemes ({kept / len(self.candidates):.1%}) "
                    "satisfy them all")
        how = self.rule.describe("schemes")
        return (f"Balance metric {self.metric}; the constrained space keeps {how}: cutoff score "
                f"{self.cutoff_score:.3f}, {kept:,} of {len(self.candidates):,} schemes")

    @property
    def diagnostics(self) -> list[str]:
        """Warnings a statistician should see before randomizing (small space, lost validity)."""
        out = self.small_space_notes()
        if self.constraints is None:  # cvrcov's constraints do not use the weights
            out += self.covariate_matrix.weight_notes()
        return out + self.validity.messages()

    def __repr__(self) -> str:
        rule = (f"constraints={self.constraints}" if self.constraints is not None else
                f"n_best={self.n_best}" if self.n_best is not None else f"cutoff={self.cutoff}")
        return (f"ConstrainedDesign(n_clusters={self.n_clusters}, n_treat={self.n_treat}, "
                f"covariates={self.covariates}, metric={self.metric!r}, {rule}, seed={self.seed})")

    # -- drawing --------------------------------------------------------------------------
    @property
    def allocation_type(self) -> type:
        return Allocation

    @property
    def _choice_stream(self) -> np.random.SeedSequence:
        return self._seeds[1]

    def parameters(self) -> dict[str, Any]:
        """Every input that determines the result (for the audit trail)."""
        return {
            **super().parameters(),
            "method": self.method_name,
            "covariates": self.covariates, "categorical": self.categorical,
            "cluster_id": self.cluster_id, "n_clusters": self.n_clusters, "n_treat": self.n_treat,
            "metric": self.metric,
            "weights": (dict(self.weights) if isinstance(self.weights, Mapping)
                        else None if self.weights is None else list(np.asarray(self.weights, float).tolist())),
            "cutoff": self.cutoff, "n_best": self.n_best, "constraints": self.constraints,
            "stratify": self.stratify, "size": self.size, "enumerate": self.enumerate, "enumerated": self.enumerated,
            "seed": self.seed, "samearmhi": self.samearmhi, "samearmlo": self.samearmlo,
        }

def _per_column(constraints: list[Constraint], covariates: list[str], cov: CovariateMatrix) -> list[Constraint]:
    by_name = dict(zip(covariates, constraints))
    return [by_name[src] for src in cov.source]


class Allocation(AllocationRecord):
    """The drawn allocation and everything the trial's records need.

    Attributes
    ----------
    design : the design it was drawn from.
    seed : the seed of the draw.
    space_position : position of the chosen scheme in the constrained space.
    arm : 0/1 per cluster (1 = treatment), in the data's row order.
    score : the chosen scheme's balance score.
    """

    unit_word = "Scheme"

    def __repr__(self) -> str:
        treated = ", ".join(map(str, self.treated_clusters))
        return (f"Allocation(score={self.score:.3f}, treated=[{treated}], seed={self.seed}, "
                f"space={len(self.design.space_index):,} schemes)")

    @property
    def treated_clusters(self) -> list:
        return [c.item() if hasattr(c, "item") else c for c in self.design.cluster_ids[self.arm == 1]]

    @property
    def allocation(self) -> pd.DataFrame:
        """Cluster id and arm (1 = treatment, 0 = control)."""
        name = self.design.cluster_id or "cluster"
        return pd.DataFrame({name: self.design.cluster_ids, "arm": self.arm})

    @property
    def data_cr(self) -> pd.DataFrame:
        """The data with the arm as its first column (cvcrand's ``data_CR``)."""
        d = self.design
        cols = ([d.cluster_id] if d.cluster_id else []) + [c for c in d.covariates if c != d.cluster_id]
        return pd.concat([pd.Series(self.arm, name="arm", index=d.data.index), d.data[cols]], axis=1)

    @property
    def summary(self) -> pd.DataFrame:
        """cvcrand's ``bscores`` table."""
        d = self.design
        cut = d.cutoff_score if d.cutoff_score is not None else float(np.max(d.space_scores))
        return score_summary(d.scores, self.score, cut)

    @property
    def baseline_table(self) -> pd.DataFrame:
        d = self.design
        return baseline_table(d.data, d.covariates, d.categorical, self.arm)

    @property
    def validity(self) -> Validity:
        return self.design.validity

    def audit_arms(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in zip(self.design.cluster_ids, self.arm)}

    def save_space(self, path: str | Path, format: str | None = None, *, overwrite: bool = False) -> Path:
        """Write the constrained space: ``"cvcrand"`` CSV, or our self-describing ``"json"``
        (chosen by the file name when ``format`` is None: .csv -> cvcrand, .json/.json.gz -> json);
        atomically, and an existing file is refused unless ``overwrite``."""
        path = Path(path)
        fmt = format or ("cvcrand" if path.suffix == ".csv" else "json")
        d = self.design
        if fmt == "cvcrand":
            return write_cvcrand_csv(path, d.space.schemes, self.space_position, d.cluster_ids, overwrite=overwrite)
        if fmt != "json":
            raise ValueError(f"format: must be 'cvcrand' or 'json', got {format!r}")
        return write_space_json(path, d.space.schemes, self.space_position, d.cluster_ids, d.space_scores,
                                overwrite=overwrite, **self._space_metadata())

    def _space_metadata(self) -> dict[str, Any]:
        d = self.design
        return dict(parameters=d.parameters(), draw_seed=self.seed, data_sha256=d.data_hash(), created=self.created,
                    cutoff_score=d.cutoff_score)

    def save(self, directory: str | Path, stem: str = "design", *, overwrite: bool = False,
             record: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write everything: allocation CSV, the space (cvcrand CSV and JSON), and last the audit JSON (with
        each space file's SHA-256 and scheme count, and ``record``'s entries). All or nothing, never over an
        existing file unless ``overwrite`` (see :meth:`save_files`)."""
        d = self.design
        chunks = from_chunks(cvcrand_csv_chunks(d.space.schemes, self.space_position, d.cluster_ids))
        json_space = space_json_bytes(d.space.schemes, self.space_position, d.cluster_ids, d.space_scores,
                                      **self._space_metadata())
        n = len(d.space)
        return self.save_files(directory, {
            "allocation": (f"{stem}_allocation.csv", self.allocation.to_csv(index=False), None),
            "space_cvcrand": (f"{stem}_space_cvcrand.csv", chunks, n),
            "space_json": (f"{stem}_space.json.gz", json_space, n),
        }, f"{stem}_audit.json", overwrite=overwrite, record=record)
