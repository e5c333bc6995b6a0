"""The log of every draw made in the interactive app: one JSON line per draw in ``draws.jsonl``, and
each draw's files in a folder of its own. Nothing is ever overwritten or truncated.

A line is appended with one ``write`` to a file opened with ``O_APPEND``: the operating system puts each
line whole at the end, even when two sessions share the folder, and a crash cannot cut an earlier line.
A draw's files are written under temporary names and renamed, all or nothing, into a folder that did not
exist before (:class:`~crt_widgets.core.io.files.FileSet`, which never overwrites a file).

Trial randomization services keep every allocation request (sealed envelopes, REDCap's randomization
module); this log does the same for constrained randomization, where a user could otherwise draw until
the arms look pleasing and keep only the last draw.

>>> import tempfile
>>> from crt_widgets import ConstrainedDesign
>>> from crt_widgets.datasets import load_dickinson
>>> design = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county", seed=1)
>>> seed, how = draw_seed("20240611")
>>> allocation = design.draw(seed)
>>> log = DrawLog(tempfile.mkdtemp())
>>> folder = log.record(draw_entry(allocation, number=1, seed_source=how, session="demo"),
...                     {"allocation.csv": allocation.allocation.to_csv(index=False)})
>>> [e["seed"] for e in log.entries()], (folder / "allocation.csv").exists()
([20240611], True)
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from crt_widgets.core.io.files import FileSet, json_ready
from crt_widgets.core.io.spacehash import sha256_of_space
from crt_widgets.core.seeds import check_seed

LOG_NAME = "draws.jsonl"
# how the seed of a draw was chosen, as the log records it
SEED_SOURCES = {
    "typed": "typed by the user (for example a pre-registered seed)",
    "entropy": "drawn from the operating system's entropy at the moment of the draw",
}


def draw_seed(typed: str | int | None = None) -> tuple[int, str]:
    """The seed of a draw and how it was chosen: the user's whole number (``"typed"``), or, when nothing
    is typed, fresh entropy from the operating system at this moment (``"entropy"``, numpy's
    ``SeedSequence``, which reads ``os.urandom``).

    >>> draw_seed(" 42 ")
    (42, 'typed')
    >>> draw_seed("")[1]
    'entropy'
    >>> draw_seed("4.5")
    Traceback (most recent call last):
    ...
    ValueError: draw seed: expected a whole number of at least 0 (or nothing, for a seed from the operating system's entropy), got '4.5'
    """
    if typed is None or (isinstance(typed, str) and not typed.strip()):
        return check_seed(None), "entropy"
    if isinstance(typed, str):
        text = typed.strip().replace("_", "").replace(",", "")
        if not re.fullmatch(r"[0-9]+", text):
            raise ValueError("draw seed: expected a whole number of at least 0 (or nothing, for a seed from the "
                             f"operating system's entropy), got {typed!r}")
        typed = int(text)
    return check_seed(typed, "draw seed"), "typed"


def arms_of(allocation) -> dict[str, list]:
    """The chosen scheme as cluster ids by arm (arm labels as the audit writes them).

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> a = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3).draw()
    >>> sorted(arms_of(a)), len(arms_of(a)["1"])
    (['0', '1'], 8)
    """
    ids = json_ready(np.asarray(allocation.design.cluster_ids))
    arms = [str(a) for a in allocation.audit_arms().values()]
    out: dict[str, list] = {}
    for cluster, arm in zip(ids, arms):
        out.setdefault(arm, []).append(cluster)
    return dict(sorted(out.items()))


def draw_entry(allocation, *, number: int, seed_source: str, session: str = "",
               space_sha256: str | None = None) -> dict[str, Any]:
    """The log line of one draw: when, the seed and how it was chosen, the space's SHA-256, the
    design's settings, the chosen scheme (cluster ids by arm), which draw of the session it is, the version.

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> a = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3).draw(7)
    >>> entry = draw_entry(a, number=2, seed_source="typed")
    >>> entry["draw"], entry["seed"], entry["n_schemes"]
    (2, 7, 1576)
    """
    from crt_widgets import __version__

    if seed_source not in SEED_SOURCES:
        raise ValueError(f"seed_source: expected one of {sorted(SEED_SOURCES)}, got {seed_source!r}")
    if int(number) < 1:
        raise ValueError(f"number: draws are counted from 1, got {number}")
    design = allocation.design
    return {
        "draw": int(number), "session": session, "time": allocation.created,
        "seed": allocation.seed, "seed_source": seed_source,
        "space_sha256": space_sha256 or sha256_of_space(design),
        "n_schemes": int(len(design.space_index)), "chosen_position": int(allocation.space_position),
        "settings": design.parameters(), "allocation": arms_of(allocation),
        "package_version": __version__,
    }


class DrawLog:
    """The draws kept in ``directory``: ``draws.jsonl`` (one line per draw) and one folder per draw."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME

    def __repr__(self) -> str:
        return f"DrawLog({str(self.directory)!r}, {len(self.entries())} draws)"

    def append(self, entry: Mapping[str, Any]) -> None:
        """Add one line at the end of the log: one ``write`` with ``O_APPEND``, never a truncation."""
        line = (json.dumps(json_ready(dict(entry)), separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
        finally:
            os.close(fd)
        if written != len(line):  # pragma: no cover - a full disk; the partial line is visible and says so
            raise OSError(f"{self.path}: only {written} of {len(line)} bytes of the draw's line were written")

    def entries(self) -> list[dict[str, Any]]:
        """Every draw logged so far, oldest first."""
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def new_folder(self, stem: str) -> Path:
        """A folder that did not exist before (``stem``, else ``stem_2``, ``stem_3``, ...)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^0-9A-Za-z_.-]+", "", stem) or "draw"
        for suffix in range(1, 10_000):
            folder = self.directory / (stem if suffix == 1 else f"{stem}_{suffix}")
            try:
                folder.mkdir()  # atomic: two sessions cannot both create it
            except FileExistsError:
                continue
            return folder
        raise OSError(f"{self.directory}: no free folder name for {stem}")  # pragma: no cover

    def record(self, entry: Mapping[str, Any], files: Mapping[str, str | bytes]) -> Path:
        """Keep one draw: write ``files`` (name -> content) into a new folder, all or nothing (see
        :class:`~crt_widgets.core.io.files.FileSet`; an audit record last, then the entry as ``draw.json``),
        then append the entry (with its folder's name) to the log. The line is appended even when the files
        cannot be written (the draw happened either way); the error is raised after it."""
        stamp = re.sub(r"[^0-9]", "", str(entry.get("time", "")))[:14] or dt.datetime.now(dt.timezone.utc).strftime(
            "%Y%m%d%H%M%S")
        entry = dict(entry)
        problem = None
        folder = None
        try:
            folder = self.new_folder(f"{stamp}_draw{entry.get('draw', '')}_seed{entry.get('seed', '')}")
            entry["folder"] = folder.name
            audits = [name for name in files if name.startswith("audit")]
            with FileSet(folder) as out:
                for name in [n for n in files if n not in audits] + audits:
                    out.add(name, files[name])
                out.add("draw.json", json.dumps(json_ready(entry), indent=2))
        except OSError as exc:
            problem = exc
            entry["files_error"] = str(exc)
        self.append(entry)
        if problem is not None:
            raise problem
        return folder
