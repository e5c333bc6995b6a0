"""Space files checked against the audit record saved with them, before any analysis.

When a design saves its files, the audit record (written last) lists each space file's SHA-256, size and
number of schemes under ``"space_files"``. A space is verified against the audit that sits beside it (same
folder, the same stem: ``design_space_cvcrand.csv`` and ``design_audit.json``; or any audit JSON of the
folder that lists the file), or against the audit given: a file changed since the save (cut short, rows
removed, edited) is refused with a message naming it. A CSV space without an audit is read with a one-line
notice that it cannot be verified (our JSON space also checks itself: its scheme count and checksum).

>>> import tempfile, json
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "trial_space.csv").write_text("SchemeChosen,,\\n1,1,0\\n0,0,1\\n")
>>> entry = space_file_entry(folder / "trial_space.csv", file_sha256(folder / "trial_space.csv"), 2)
>>> _ = (folder / "trial_audit.json").write_text(json.dumps({"space_files": {"trial_space.csv": entry}}))
>>> check_space_file(folder / "trial_space.csv", file_sha256(folder / "trial_space.csv"), 2, csv=True)
('trial_audit.json', [])
>>> check_space_file(folder / "trial_space.csv", "0" * 64, 2, csv=True)
Traceback (most recent call last):
...
ValueError: space file trial_space.csv: its SHA-256 is not the one trial_audit.json recorded when the design saved it ...
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crt_widgets.core.io.files import file_sha256

SPACE_FILES = "space_files"
_MAX_AUDITS_SEARCHED = 50  # a folder of records holds a few audits; a huge folder is not searched file by file


def space_file_entry(path: str | Path, sha256: str, n_schemes: int, size: int | None = None) -> dict[str, Any]:
    """What an audit record keeps about one space file (under ``"space_files"``, by file name)."""
    path = Path(path)
    return {"sha256": sha256, "n_schemes": int(n_schemes), "bytes": int(path.stat().st_size if size is None else size)}


def audit_beside(space: Path) -> Path | None:
    """The audit record saved with ``space``: ``<stem>_audit.json`` in the same folder for ``<stem>_space...``,
    else an audit JSON of the folder that lists the file by name; None when there is none."""
    folder, name = space.parent, space.name
    if "_space" in name:
        candidate = folder / f"{name.split('_space')[0]}_audit.json"
        if candidate.is_file():
            return candidate
    try:
        others = sorted(p for p in folder.glob("*audit*.json") if p.is_file())[:_MAX_AUDITS_SEARCHED]
    except OSError:
        return None
    for candidate in others:
        try:
            record = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and name in (record.get(SPACE_FILES) or {}):
            return candidate
    return None


def read_audit(audit: str | Path | dict, space_name: str) -> tuple[str, dict]:
    """The audit record (a path or an already-read dict) and the name to show for it."""
    if isinstance(audit, dict):
        return "the audit record given", audit
    path = Path(audit)
    if not path.is_file():
        raise ValueError(f"audit: no such file {path} (the audit record the design saved beside {space_name})")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"audit: {path.name} is not a readable JSON audit record ({exc}); it cannot verify "
                         f"{space_name} (move it away, or use an intact copy)") from None
    if not isinstance(record, dict):
        raise ValueError(f"audit: {path.name} is not an audit record (a JSON object)")
    return path.name, record


def check_space_file(path: str | Path, sha256: str, n_schemes: int, *, csv: bool,
                     audit: str | Path | dict | None = None) -> tuple[str | None, list[str]]:
    """Verify a space file read with ``n_schemes`` schemes and bytes hashing to ``sha256`` against its audit.

    Returns (the audit's name or None, notes). Raises ValueError, naming the file, when the audit records
    another hash or scheme count, or when an audit given explicitly does not list the file. A CSV space
    with no audit to check gets a one-line notice (``csv=True``); our JSON space checks itself.
    """
    path = Path(path)
    found = audit if audit is not None else audit_beside(path)
    if found is None:
        return None, ([f"{path.name} could not be verified: no audit record beside it lists its SHA-256 "
                       "(a CSV space has no checksum of its own)"] if csv else [])
    audit_name, record = read_audit(found, path.name)
    entries = record.get(SPACE_FILES) or {}
    entry = entries.get(path.name) or next((e for e in entries.values() if e.get("sha256") == sha256), None)
    if entry is None:
        if audit is not None:
            raise ValueError(f"audit: {audit_name} does not list the space file {path.name} "
                             f"(it lists {', '.join(entries) or 'no space files'})")
        return None, ([f"{path.name} could not be verified: {audit_name} beside it records no SHA-256 for it "
                       "(saved by an older version, or the file was renamed)"] if csv else [])
    if entry.get("sha256") != sha256:
        raise ValueError(f"space file {path.name}: its SHA-256 is not the one {audit_name} recorded when the "
                         f"design saved it ({n_schemes:,} schemes read, {int(entry.get('n_schemes', -1)):,} saved): "
                         "the file was changed or cut short since; refusing to analyse it (use the file as saved)")
    if int(entry.get("n_schemes", n_schemes)) != n_schemes:
        raise ValueError(f"space file {path.name}: {n_schemes:,} schemes read, {int(entry['n_schemes']):,} recorded in "
                         f"{audit_name}; refusing to analyse it")
    return audit_name, []


__all__ = ["space_file_entry", "audit_beside", "read_audit", "check_space_file", "file_sha256", "SPACE_FILES"]
