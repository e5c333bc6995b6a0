"""What every drawn allocation keeps for the trial's records: cvcrand's messages, the audit record, the CSV.

Two-arm (:class:`~crt_widgets.core.design.Allocation`) and multi-arm
(:class:`~crt_widgets.core.multiarm.MultiArmAllocation`) allocations share it; each names its arms for
the audit (``audit_arms``) and says what a member of its space is called (``unit_word``).

>>> from crt_widgets import ConstrainedDesign
>>> from crt_widgets.datasets import load_dickinson
>>> a = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3).draw()
>>> sorted(a.audit())[:4], list(a.messages)[-1]
(['allocation', 'chosen_score', 'chosen_space_position', 'created'], 'choice_message')
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from crt_widgets.core.io.audits import SPACE_FILES, space_file_entry
from crt_widgets.core.io.files import Content, FileSet, json_text, write_file


class AllocationRecord:
    """The chosen member of a design's constrained space, with what the trial master file needs.

    Subclasses set ``arm`` and ``allocation`` and define :meth:`audit_arms`."""

    unit_word = "Scheme"  # what one member of the space is called in the messages

    def __init__(self, design: Any, space_position: int, seed: Any) -> None:
        self.design = design
        self.seed = seed
        self.space_position = space_position
        self.candidate_index = int(design.space_index[space_position])
        self.score = float(design.scores[self.candidate_index])
        self.created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    @property
    def allocation(self) -> pd.DataFrame:  # pragma: no cover - defined by every subclass
        raise NotImplementedError

    def audit_arms(self) -> dict[str, Any]:  # pragma: no cover - defined by every subclass
        """Cluster id -> arm, as the audit record writes it."""
        raise NotImplementedError

    @property
    def choice_message(self) -> str:
        return (f"{self.unit_word} {self.space_position + 1:,} of the {len(self.design.space_index):,} in the "
                f"constrained space was selected (seed {self.seed}); its balance score is {self.score:.3f}")

    @property
    def messages(self) -> dict[str, str]:
        """cvcrand's four messages: assignment, scheme, cutoff, choice."""
        d = self.design
        return {"assignment_message": d.assignment_message, "scheme_message": d.scheme_message,
                "cutoff_message": d.cutoff_message, "choice_message": self.choice_message}

    def audit(self) -> dict[str, Any]:
        """The audit record: method, parameters, seed, versions, time, input hash, result."""
        from crt_widgets import __version__

        d = self.design
        return {
            "package": "crt-widgets", "package_version": __version__, "created": self.created,
            "parameters": d.parameters(), "draw_seed": self.seed, "data_sha256": d.data_hash(),
            "n_candidates": len(d.scores), "n_constrained": len(d.space_index),
            "cutoff_score": d.cutoff_score, "chosen_space_position": self.space_position,
            "chosen_score": self.score, "allocation": self.audit_arms(),
            "messages": self.messages, "diagnostics": d.diagnostics,
        }

    def to_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the allocation table (atomically; an existing file is refused unless ``overwrite``)."""
        return write_file(path, self.allocation.to_csv(index=False), overwrite=overwrite)

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
