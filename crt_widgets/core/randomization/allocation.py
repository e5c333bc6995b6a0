"""The one type every design's ``draw()`` returns: the chosen member of the space, with what the trial's
records need (its seed, its position in the space, the audit record, the allocation table).

Designs add what is theirs in subclasses (cvcrand's summary for the two-arm constrained design, the
strata of a stratified one, the matched sets), but every allocation answers the same questions: which
arm each unit got (``arm``, ``arm_label``, ``allocation``), which space it came from
(``design.space``, ``space_position``), and the permutation space of a two-group comparison
(``to_permutation_space()``, ``two_arm(...)``).

>>> from crt_widgets import ConstrainedDesign
>>> from crt_widgets.datasets import load_dickinson
>>> a = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3).draw()
>>> sorted(a.audit())[:4], list(a.messages)[-1]
(['allocation', 'chosen_score', 'chosen_space_position', 'created'], 'choice_message')
>>> isinstance(a, AllocationRecord), a.to_permutation_space().chosen == a.space_position
(True, True)
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.io.audits import SPACE_FILES, space_file_entry
from crt_widgets.core.io.files import Content, FileSet, from_chunks, json_text, write_file
from crt_widgets.core.io.spacefiles import arm_space_chunks, space_json_bytes
from crt_widgets.core.randomization.protocol import two_group_space_of
from crt_widgets.core.spaces.comparisons import arm_groups, two_arm_space
from crt_widgets.core.spaces.saved import SavedSpace
from crt_widgets.core.spaces.schemes import SchemeSet


class AllocationRecord:
    """The chosen member of a design's space, with what the trial master file needs.

    Attributes
    ----------
    design : the design it was drawn from.
    seed : the seed of the draw.
    space_position : position of the chosen allocation in ``design.space`` (0-based).
    arm : arm index per unit (``design.space.arm_labels[arm]`` is its label), in the design's unit order.
    score : the allocation's balance score (None when the design does not score).
    created : time of the draw (UTC, ISO 8601).
    seeded_by_design : True when drawn with the design's own seed (``draw()``), False for ``draw(seed=...)``.
    """

    unit_word = "Allocation"  # what one member of the space is called in the messages

    def __init__(self, design: Any, space_position: int, seed: Any) -> None:
        self.design = design
        self.seed = seed
        self.space_position = int(space_position)
        space = design.space
        self.arm = space.arm_matrix(np.array([self.space_position]))[0].astype(int)
        self.score = None if space.scores is None else float(space.scores[self.space_position])
        self.created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.seeded_by_design = True

    # -- the allocation ------------------------------------------------------------------------------
    @property
    def arm_labels(self) -> list[str]:
        """The design's arm labels, in arm-index order."""
        return list(self.design.space.arm_labels)

    @property
    def arm_label(self) -> np.ndarray:
        """Each unit's arm label."""
        return np.asarray(self.arm_labels, dtype=object)[self.arm]

    @property
    def unit_ids(self) -> np.ndarray:
        return np.asarray(self.design.unit_ids)

    def arm_sizes(self) -> pd.Series:
        """Units per arm."""
        return pd.Series(np.bincount(self.arm, minlength=len(self.arm_labels)), index=self.arm_labels, name="units")

    @property
    def allocation(self) -> pd.DataFrame:
        """Unit id, arm index and arm label."""
        return pd.DataFrame({self.id_column: self.unit_ids, "arm": self.arm, "arm_label": self.arm_label})

    @property
    def id_column(self) -> str:
        return getattr(self.design, "cluster_id", None) or "cluster"

    def audit_arms(self) -> dict[str, Any]:
        """Unit id -> arm label, as the audit record writes it."""
        return {str(k): str(v) for k, v in zip(self.unit_ids, self.arm_label)}

    # -- the space of the analysis -----------------------------------------------------------------
    def to_permutation_space(self) -> SavedSpace:
        """The design's space as two groups with this allocation marked as used (two-arm designs)."""
        return two_group_space_of(self.design, self.space_position)

    def two_arm(self, *, factor: str | None = None, treated: Sequence[str] | None = None,
                control: Sequence[str] | None = None) -> SavedSpace:
        """The space of one two-group comparison for the permutation test: the main effect of ``factor``
        (arms that receive it against the others), the arms ``treated`` against the rest, or against the
        arms ``control`` with the others left out (see :mod:`crt_widgets.core.spaces.comparisons`)."""
        space = self.design.space
        group = arm_groups(list(space.arm_labels), treated, factor, control)
        return two_arm_space(space.arm_matrix(), group, self.space_position, space.unit_ids, space.scores,
                             space.arm_labels)

    # -- messages and records ------------------------------------------------------------------------
    @property
    def choice_message(self) -> str:
        score = "" if self.score is None else f"; its balance score is {self.score:.3f}"
        return (f"{self.unit_word} {self.space_position + 1:,} of the {len(self.design.space):,} in the "
                f"{self.design.space_name} was selected (seed {self.seed}){score}")

    @property
    def messages(self) -> dict[str, str]:
        """The design's messages and the choice (cvcrand's four for the two-arm constrained design)."""
        return {**self.design.messages, "choice_message": self.choice_message}

    def audit(self) -> dict[str, Any]:
        """The audit record: method, parameters, seed, versions, time, input hash, space, result."""
        from crt_widgets import __version__

        d = self.design
        space = d.space
        record = {
            "package": "crt-widgets", "package_version": __version__, "created": self.created,
            "design": type(d).__name__, "parameters": d.parameters(), "draw_seed": self.seed,
            "data_sha256": d.data_hash(),
            "space": {"n_allocations": len(space), "exhaustive": space.exhaustive, "n_possible": space.n_possible,
                      "sha256": space.sha256(d.parameters()), "arms": list(space.arm_labels)},
            "chosen_space_position": self.space_position, "chosen_score": self.score,
            "allocation": self.audit_arms(), "messages": self.messages, "diagnostics": d.diagnostics,
        }
        return {**record, **d.audit_fields()}

    def to_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the allocation table (atomically; an existing file is refused unless ``overwrite``)."""
        return write_file(path, self.allocation.to_csv(index=False), overwrite=overwrite)

    file_stem = "allocation"  # the saved files' name prefix (a design's command-line name)

    def save(self, directory: str | Path, stem: str | None = None, *, overwrite: bool = False,
             record: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write the allocation CSV, the space, and last the audit JSON (with each space file's SHA-256 and count,
        and ``record``'s entries). The space is the one multi-arm CSV (``scheme,chosen,score,<unit ids>``, arm
        labels in the unit columns); a two-arm design also writes the labelled JSON space the permutation test
        reads as it is. All or nothing, never over an existing file unless ``overwrite`` (see :meth:`save_files`).
        Designs with files of their own (cvcrand's CSV, a treatment matrix) extend it.

        >>> import tempfile
        >>> from crt_widgets import MatchedDesign, optimal_match
        >>> from crt_widgets.datasets import load_dickinson
        >>> pairs = MatchedDesign(optimal_match(load_dickinson(), ["inciis"], cluster_id="county"), seed=2)
        >>> sorted(path.name for path in pairs.draw().save(tempfile.mkdtemp()).values())
        ['match_allocation.csv', 'match_audit.json', 'match_space.csv', 'match_space.json.gz']
        """
        stem = stem or self.file_stem
        design, space = self.design, self.design.space
        arms, labels = space.arm_matrix(), [str(label) for label in space.arm_labels]
        files: dict[str, tuple[str, Content, int | None]] = {
            "allocation": (f"{stem}_allocation.csv", self.allocation.to_csv(index=False), None),
            "space": (f"{stem}_space.csv", from_chunks(arm_space_chunks(space.unit_ids, arms, labels,
                                                                        self.space_position, space.scores)), len(space))}
        if space.n_arms == 2:
            files["two_arm_space"] = (f"{stem}_space.json.gz", space_json_bytes(
                SchemeSet.from_matrix(arms.astype(np.uint8)), self.space_position, space.unit_ids, space.scores,
                parameters=design.parameters(), draw_seed=self.seed, data_sha256=design.data_hash()), len(space))
        return self.save_files(directory, files, f"{stem}_audit.json", overwrite=overwrite, record=record)

    def save_files(self, directory: str | Path, files: dict[str, tuple[str, Content, int | None]], audit_name: str,
                   *, overwrite: bool = False, record: dict[str, Any] | None = None) -> dict[str, Path]:
        """Save ``files`` (kind -> (file name, content, number of schemes for a space file, else None)) and then
        the audit record, which lists every space file's SHA-256 and scheme count (plus ``record``'s entries:
        the input file, the command line). All or nothing: each file goes to a temporary name first, and the
        names taken already are refused before anything is written (unless ``overwrite``)."""
        with FileSet(directory, overwrite=overwrite) as out:
            out.check_free([name for name, _, _ in files.values()] + [audit_name])
            written = {kind: out.add(name, content) for kind, (name, content, _) in files.items()}
            spaces = {w.path.name: space_file_entry(w.path, w.sha256, files[kind][2], w.size)
                      for kind, w in written.items() if files[kind][2] is not None}
            allocation = {w.path.name: w.sha256 for kind, w in written.items() if files[kind][2] is None}
            audit = {**self.audit(), **(record or {}), SPACE_FILES: spaces, "file_sha256": allocation}
            written["audit"] = out.add(audit_name, json_text(audit))
        return {kind: w.path for kind, w in written.items()}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}: {v}" for k, v in self.arm_sizes().items())
        score = "" if self.score is None else f"score={self.score:.4g}, "
        return (f"{type(self).__name__}({score}arm sizes {{{sizes}}}, seed={self.seed}, "
                f"position {self.space_position + 1:,} of {len(self.design.space):,})")
