"""What every covariate-constrained design shares: candidates scored for balance, the best kept.

Constrained randomization (Moulton 2004; Li et al. 2016) lists or samples candidate allocations, scores
each for covariate balance and keeps those passing the one acceptance rule
(:mod:`crt_widgets.core.randomization.acceptance`). The two-arm, multi-arm and stepped-wedge engines
differ in their candidates and scores; the kept positions, the cutoff score, the messages, the small-space
warning and the audit fields are the same, and live here.

>>> from crt_widgets import ConstrainedDesign, MultiArmDesign
>>> from crt_widgets.datasets import load_dickinson
>>> two = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=1)
>>> three = MultiArmDesign(load_dickinson(), ["inciis"], 3, cluster_id="county", size=2000, seed=1)
>>> isinstance(two, ScoredDesign), isinstance(three, ScoredDesign), list(three.messages)[-1]
(True, True, 'cutoff_message')
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.covariates import CovariateMatrix, prepare_covariates
from crt_widgets.core.io.files import data_sha256
from crt_widgets.core.randomization.protocol import Design

# the smallest space in which a two-sided permutation test can reach p < 0.05
MIN_SCHEMES_FOR_TEST = 40


class ScoredDesign(Design):
    """Base of the constrained designs. Subclasses define ``candidates`` (sized), ``_acceptance`` (the kept
    positions or a mask over the candidates, and the cutoff score), ``assignment_message``,
    ``scheme_message``, ``cutoff_message`` and the ``data`` and ``cluster_ids`` they were declared with."""

    space_name = "constrained space"
    candidate_word = "schemes"  # what the messages call the candidates

    # -- inputs ------------------------------------------------------------------------------
    @cached_property
    def covariate_matrix(self) -> CovariateMatrix:
        """The prepared covariates that enter the score: stratification columns excluded, ``weights`` as a
        sequence in the covariates' order or a mapping (a design without strata overrides this)."""
        scored = [c for c in self.covariates if c not in self.stratify] or self.covariates
        weights = self.weights
        if weights is not None and not isinstance(weights, Mapping):
            w = list(np.asarray(weights, dtype=float).ravel())
            if len(w) != len(self.covariates):
                raise ValueError(f"weights: got {len(w)} weight(s) for {len(self.covariates)} covariate(s)")
            weights = dict(zip(self.covariates, w))
        if isinstance(weights, Mapping):
            unknown = [k for k in weights if k not in self.covariates]
            if unknown:
                raise ValueError(f"weights: {', '.join(map(str, unknown))} not among the covariates")
            weights = {k: v for k, v in weights.items() if k in scored}
        return prepare_covariates(self.data, scored, [c for c in self.categorical if c in scored],
                                  self.cluster_id, weights)

    @property
    def cluster_ids(self) -> np.ndarray:
        return self.covariate_matrix.cluster_ids

    @property
    def n_clusters(self) -> int:
        return len(self.data)

    @property
    def unit_ids(self) -> np.ndarray:
        return self.cluster_ids

    @property
    def n_candidates(self) -> int:
        """How many candidate allocations were scored."""
        return len(self.candidates)

    @property
    def accepted(self) -> np.ndarray:
        """Boolean mask over the candidates: which are in the constrained space."""
        kept = self._acceptance[0]
        if kept.dtype != bool:  # positions (a block enumeration keeps those, not a mask of every scheme)
            mask = np.zeros(self.n_candidates, dtype=bool)
            mask[kept] = True
            return mask
        return kept

    @property
    def cutoff_score(self) -> float | None:
        """The largest score kept in the constrained space, the score of a real allocation as cvcrand reports
        it (None when the space is defined by constraints rather than a score)."""
        return self._acceptance[1]

    @cached_property
    def space_index(self) -> np.ndarray:
        """Positions of the constrained space's allocations among the candidates."""
        kept = self._acceptance[0]
        index = np.flatnonzero(kept) if kept.dtype == bool else kept
        if len(index) < 2:
            raise ValueError(f"the constrained space has {len(index)} {self.candidate_word[:-1]}(s): at least 2 are "
                             "needed to randomize; loosen the cutoff or the constraints")
        return index

    def probabilities(self) -> pd.DataFrame:
        """Each cluster's probability of each arm in the constrained space (rows sum to 1)."""
        return super().probabilities().rename_axis("cluster")

    @property
    def messages(self) -> dict[str, str]:
        """cvcrand's messages before the choice: assignment, candidates, cutoff."""
        return {"assignment_message": self.assignment_message, "scheme_message": self.scheme_message,
                "cutoff_message": self.cutoff_message}

    def small_space_notes(self) -> list[str]:
        """The warning when the space is too small for a permutation test to reach p < 0.05."""
        kept = len(self.space_index)
        if kept >= MIN_SCHEMES_FOR_TEST:
            return []
        return [f"only {kept} {self.candidate_word} remain: a two-sided permutation test needs at least "
                f"{MIN_SCHEMES_FOR_TEST} to reach p < 0.05"]

    def audit_fields(self) -> dict[str, Any]:
        return {"n_candidates": self.n_candidates, "n_constrained": len(self.space_index),
                "cutoff_score": self.cutoff_score}

    def data_hash(self) -> str:
        """SHA-256 of the cluster data (CSV serialisation), to tie a result to its input."""
        return data_sha256(self.data)
