"""The protocol every design follows: one declaration shape, the same verbs.

In the spirit of randomizr's ``declare_ra`` (Coppock 2017: every design is a declaration with its
space, its probabilities and a draw) and scikit-learn's estimator API (``get_params``, ``clone``),
a design holds its inputs and answers:

- ``space``: its :class:`~crt_widgets.core.spaces.space.RandomizationSpace` (one type, whatever the arms);
- ``probabilities()``: a units x arms DataFrame, rows summing to 1;
- ``get_params()``: every constructor argument, the seed included; ``with_params(**changes)`` declares
  the same design with some changed (``clone()`` with none);
- ``draw(seed=None)``: one allocation chosen uniformly from the space, an
  :class:`~crt_widgets.core.randomization.allocation.AllocationRecord` that knows its seed, its
  position in the space and its audit record;
- ``to_permutation_space()``: the space as two groups, which is what the permutation test reads.

So the analysis never asks what kind of design it got.

>>> from crt_widgets.datasets import load_dickinson
>>> from crt_widgets.core.randomization.constrained import ConstrainedDesign
>>> design = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=1)
>>> isinstance(design, Design), design.get_params()["seed"], design.with_params(seed=2).seed
(True, 1, 2)
>>> design.draw().space_position == design.clone().draw().space_position
True
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.seeds import generator
from crt_widgets.core.spaces.saved import SavedSpace
from crt_widgets.core.spaces.space import RandomizationSpace

TWO_GROUP_HINT = ("pass .two_arm(factor=...) for a factor's main effect, .two_arm(treated=[arms]) for those arms "
                  "against the rest, or .two_arm(treated=[arms], control=[arms]) against a control arm")


class Design:
    """Base class of every design. Subclasses call :meth:`_declare` first in ``__init__`` and define
    ``space``, ``unit_ids``, ``_choice_stream`` (the seed sequence of the choice) and ``allocation_type``."""

    allocation_type: type
    method_name: str = "randomization"  # the design's name in the audit record
    space_name: str = "randomization space"  # what the messages call the space

    # -- declaration ---------------------------------------------------------------------------------
    def _declare(self, arguments: dict[str, Any], seed: int) -> None:
        """Keep every constructor argument (the seed as the whole number it was resolved to)."""
        names = self._param_names()
        self._params = {k: arguments[k] for k in names if k in arguments}
        self._params["seed"] = seed

    # former argument names still accepted for one release, not part of the declaration
    _renamed_params: tuple[str, ...] = ()

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p.name for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                and p.name not in cls._renamed_params]

    def get_params(self) -> dict[str, Any]:
        """Every constructor argument, the seed included: ``type(d)(**d.get_params())`` declares the same design."""
        return dict(self._params)

    def with_params(self, **changes: Any) -> "Design":
        """The same design with some arguments changed (a new declaration: nothing is shared)."""
        unknown = set(changes) - set(self._param_names())
        if unknown:
            raise ValueError(f"with_params: {type(self).__name__} has no argument(s) {', '.join(sorted(unknown))}")
        return type(self)(**{**self._params, **changes})

    def clone(self) -> "Design":
        """The same declaration again (same seed: the same space and the same draw)."""
        return self.with_params()

    # -- the space -------------------------------------------------------------------------------------
    @property
    def space(self) -> RandomizationSpace:  # pragma: no cover - defined by every design
        raise NotImplementedError

    @property
    def unit_ids(self) -> np.ndarray:  # pragma: no cover - defined by every design
        raise NotImplementedError

    @property
    def arm_labels(self) -> tuple[str, ...]:
        return self.space.arm_labels

    def probabilities(self) -> pd.DataFrame:
        """Each unit's probability of each arm in the space (units x arms; rows sum to 1)."""
        return self.space.probabilities()

    def permutation_matrix(self) -> np.ndarray:
        """The space as an (S, n) matrix of arm indices (randomizr's ``obtain_permutation_matrix``)."""
        return self.space.arm_matrix()

    # -- drawing -----------------------------------------------------------------------------------------
    @property
    def _choice_stream(self) -> np.random.SeedSequence:  # pragma: no cover - defined by every design
        raise NotImplementedError

    def draw(self, seed: int | None = None):
        """Choose one allocation uniformly from the space. With ``seed=None`` the design's own seed is
        used, so the same design always draws the same allocation; pass another seed to draw again."""
        rng = generator(self._choice_stream if seed is None else seed)
        position = int(rng.integers(len(self.space)))
        allocation = self.allocation_type(self, position, self.seed if seed is None else seed)
        allocation.seeded_by_design = seed is None  # the choice came from the design's own seed stream
        return allocation

    def to_permutation_space(self) -> SavedSpace:
        """The space as two labelled groups for the permutation test (which allocation was used is the
        allocation's to say: :meth:`AllocationRecord.to_permutation_space`)."""
        return two_group_space_of(self, None)

    # -- records --------------------------------------------------------------------------------------
    def parameters(self) -> dict[str, Any]:
        """Every input that determines the result, as plain values for the audit record."""
        out = {"method": self.method_name}
        for k, v in self._params.items():
            if isinstance(v, pd.DataFrame):
                continue  # the data are recorded by their hash
            out["sampler" if k == "method" else k] = _plain(v)  # "method" names the design in the record
        return out

    def data_hash(self) -> str | None:
        """SHA-256 of the design's input data, when it has a table of them."""
        return None

    @property
    def messages(self) -> dict[str, str]:
        """What the design says about itself before the draw (cvcrand's messages, where it has them)."""
        return {}

    @property
    def diagnostics(self) -> list[str]:
        """Warnings a statistician should see before randomizing."""
        return []

    def audit_fields(self) -> dict[str, Any]:
        """What the design adds to an allocation's audit record."""
        return {}


def two_group_space_of(design: Design, chosen: int | None) -> SavedSpace:
    """A two-arm design's space as a :class:`SavedSpace` (second arm = treated); more arms need a comparison."""
    space = design.space
    if space.n_arms != 2:
        raise ValueError(f"space: the design has {space.n_arms} arms; the permutation test compares two groups: "
                         f"{TWO_GROUP_HINT}")
    return SavedSpace(space.schemes, chosen, np.asarray(space.unit_ids), space.scores,
                      {"arms": list(space.arm_labels), "design": type(design).__name__})


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Series):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value
