"""A design session as one JSON file: the cluster data (records, with their dtypes) and every design setting,
the package version, and a SHA-256 of the file's own content that refuses an edited or damaged file.

The session is what a statistician saves at the end of a day's design work and re-opens the next: the data
exactly as loaded (every value and dtype round-trips) and every setting (covariates, weights, categorical,
stratify, metric, cutoff, arms, seeds...). Draws are not part of it: the draw log is the record of draws, and a
re-opened session shows no allocation until a new draw.

The integrity hash covers the canonical JSON of everything else in the file (sorted keys, no spaces), so that
re-indenting the file changes nothing but editing one value is detected. It is a check against damage and
careless edits, not a signature: whoever edits the file can recompute it.

>>> import tempfile
>>> data = pd.DataFrame({"site": ["a", "b", "c", "d"], "size": [10, 12, 9, 14], "rate": [0.5, 0.25, 0.75, 0.5]})
>>> folder = Path(tempfile.mkdtemp())
>>> first = write_session(folder / "trial_session.json", data, {"cluster_id": "site", "cutoff": 0.1})
>>> second = write_session(folder / "trial_session.json", data, {"cluster_id": "site", "cutoff": 0.2})
>>> first.name, second.name                      # never over a file already there: a new name
('trial_session.json', 'trial_session_2.json')
>>> session = read_session(second)
>>> session.settings["cutoff"], session.data.equals(data), session.data.dtypes["size"]
(0.2, True, dtype('int64'))
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.io.files import FileSet, json_ready

SESSION_FORMAT = "crt-widgets design session"
SESSION_FORMAT_VERSION = 1
INTEGRITY_KEY = "content_sha256"
# a session is a small file: a cluster-level table; far more would be the individual-level data by mistake
MAX_SESSION_ROWS = 1_000_000
_NEW_NAME_ATTEMPTS = 10_000


@dataclass(frozen=True)
class Session:
    """A design session read back: the data, the settings, where the data came from, and the file's facts."""

    data: pd.DataFrame
    settings: dict[str, Any]
    source: str = ""
    package_version: str = ""
    created: str = ""
    notes: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return (f"Session(source={self.source!r}, rows={len(self.data)}, columns={self.data.shape[1]}, "
                f"settings={sorted(self.settings)})")


def canonical_json(record: dict) -> bytes:
    """The bytes the integrity hash is taken of: sorted keys, no whitespace, UTF-8, NaN refused.

    >>> canonical_json({"b": 1, "a": [1.5, "x"]})
    b'{"a":[1.5,"x"],"b":1}'
    """
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _dtype_name(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return str(dtype)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return str(dtype)
    if dtype == object:
        return "object"
    return str(dtype)  # text: pandas' "str" (missing as NaN) or "string" (missing as NA)


def _column_values(series: pd.Series, dtype: str) -> list:
    """The column as plain JSON values (missing as null; datetimes as ISO 8601 text)."""
    if dtype.startswith("datetime64"):
        return [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in series]
    values = series.astype(object)
    return [None if (v is None or (not isinstance(v, str) and pd.isna(v))) else json_ready(v) for v in values]


def data_record(data: pd.DataFrame) -> dict[str, Any]:
    """The data as JSON: column names in order, each column's dtype (categories too) and the rows as records.

    >>> data_record(pd.DataFrame({"id": [1, 2], "x": [0.5, None]}))["records"]
    [{'id': 1, 'x': 0.5}, {'id': 2, 'x': None}]
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    names = list(data.columns)
    if any(not isinstance(c, str) for c in names):
        raise ValueError("data: every column name must be text to be saved in a session "
                         f"(found {', '.join(repr(c) for c in names if not isinstance(c, str))})")
    if len(set(names)) != len(names):
        raise ValueError("data: column names must be unique to be saved in a session")
    if len(data) > MAX_SESSION_ROWS:
        raise ValueError(f"data: {len(data):,} rows; a design session holds cluster-level data "
                         f"(at most {MAX_SESSION_ROWS:,} rows)")
    dtypes = {c: _dtype_name(data[c]) for c in names}
    columns = {c: _column_values(data[c], dtypes[c]) for c in names}
    categories = {c: [json_ready(v) for v in data[c].cat.categories] for c in names if dtypes[c] == "category"}
    records = [dict(zip(names, row)) for row in zip(*(columns[c] for c in names))]
    return {"columns": names, "dtypes": dtypes, "categories": categories, "records": records}


def data_from_record(record: dict[str, Any]) -> pd.DataFrame:
    """The data frame :func:`data_record` describes, with the same dtypes; a ValueError if it is malformed."""
    try:
        names = list(record["columns"])
        dtypes = dict(record["dtypes"])
        records = list(record["records"])
        categories = dict(record.get("categories") or {})
    except (KeyError, TypeError) as exc:
        raise ValueError(f"session: the data part is incomplete ({exc})") from None
    if set(dtypes) != set(names) or any(not isinstance(r, dict) or set(r) != set(names) for r in records):
        raise ValueError("session: the data part is inconsistent (its records and columns do not match)")
    frame = pd.DataFrame({c: pd.Series([r[c] for r in records], dtype=object) for c in names}, columns=names)
    for c in names:
        kind = dtypes[c]
        try:
            if kind == "object":  # mixed values stay as JSON gave them (numbers stay numbers)
                continue
            if kind in ("str", "string"):
                frame[c] = frame[c].astype(kind)  # a missing value stays missing
            elif kind == "category":
                frame[c] = pd.Categorical(frame[c], categories=categories.get(c))
            elif kind.startswith("datetime64"):
                frame[c] = pd.to_datetime(frame[c], format="ISO8601").astype(kind)
            else:
                frame[c] = frame[c].astype(kind)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"session: column {c!r} cannot be read as {kind} ({exc})") from None
    return frame


def session_record(data: pd.DataFrame, settings: dict[str, Any], source: str = "") -> dict[str, Any]:
    """The session as a JSON-ready dict, its integrity hash included."""
    from crt_widgets import __version__

    if not isinstance(settings, dict):
        raise ValueError(f"settings: expected a dict of design settings, got {type(settings).__name__}")
    record = {
        "format": SESSION_FORMAT, "format_version": SESSION_FORMAT_VERSION, "package_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "source": str(source),
        "settings": json_ready(settings), "data": data_record(data),
    }
    for part in ("settings", "data"):
        try:
            canonical_json(record[part])
        except (TypeError, ValueError) as exc:  # json's own refusal of a value it cannot write
            raise ValueError(f"{part}: a value cannot be saved in JSON ({exc})") from None
    record[INTEGRITY_KEY] = hashlib.sha256(canonical_json(record)).hexdigest()
    return record


def session_json(data: pd.DataFrame, settings: dict[str, Any], source: str = "") -> str:
    """The session file's text (indented JSON; the integrity hash ignores the indentation)."""
    return json.dumps(session_record(data, settings, source), indent=1, ensure_ascii=False, allow_nan=False)


def free_name(path: str | Path) -> Path:
    """``path`` if no file has that name, else the first free ``stem_2.ext``, ``stem_3.ext``, ...

    >>> free_name("/nonexistent/folder/session.json").name
    'session.json'
    """
    path = Path(path)
    if not path.exists():
        return path
    for number in range(2, _NEW_NAME_ATTEMPTS):
        candidate = path.with_name(f"{path.stem}_{number}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"{path}: no free name after {_NEW_NAME_ATTEMPTS:,} attempts")


def write_session(path: str | Path, data: pd.DataFrame, settings: dict[str, Any], source: str = "") -> Path:
    """Write the session atomically; a file already there is never replaced: the session takes a new name
    (``_2``, ``_3``, ...). Returns the path written."""
    text = session_json(data, settings, source)  # a problem with the data or settings before any file
    path = Path(path)
    for _ in range(_NEW_NAME_ATTEMPTS):
        target = free_name(path)
        try:
            with FileSet(target.parent) as files:
                files.add(target.name, text)
            return target
        except FileExistsError:  # taken between the check and the rename: the next free name
            continue
    raise FileExistsError(f"{path}: no free name")  # pragma: no cover - thousands of concurrent writers


def read_session(source: str | Path | bytes, name: str | None = None) -> Session:
    """Read a session file (a path, or the bytes of an upload, called ``name`` in messages) and check its
    integrity hash. A damaged, edited, truncated or foreign file is a ValueError saying which."""
    if isinstance(source, (bytes, bytearray)):
        raw, name = bytes(source), name or "the session file"
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"session: no such file {path}")
        raw, name = path.read_bytes(), path.name
    try:
        record = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"session: {name} is not a readable JSON file (cut short or damaged?); "
                         "open an intact copy") from None
    if not isinstance(record, dict) or record.get("format") != SESSION_FORMAT:
        raise ValueError(f"session: {name} is not a crt-widgets design session (a session file says "
                         f"\"format\": \"{SESSION_FORMAT}\")")
    version = record.get("format_version")
    if not isinstance(version, int) or version > SESSION_FORMAT_VERSION:
        raise ValueError(f"session: {name} has format version {version!r}; this version of crt-widgets reads "
                         f"version {SESSION_FORMAT_VERSION} (update crt-widgets to open it)")
    stated = record.pop(INTEGRITY_KEY, None)
    if not isinstance(stated, str):
        raise ValueError(f"session: {name} carries no {INTEGRITY_KEY}: it cannot be checked; refusing it")
    try:
        actual = hashlib.sha256(canonical_json(record)).hexdigest()
    except ValueError:
        actual = ""
    if actual != stated:
        raise ValueError(f"session: {name} was changed since it was saved (its content no longer matches its "
                         "SHA-256); refusing to open it: open the file as saved, or set the design up again")
    settings = record.get("settings")
    if not isinstance(settings, dict) or not isinstance(record.get("data"), dict):
        raise ValueError(f"session: {name} lacks its settings or its data")
    data = data_from_record(record["data"])
    return Session(data, settings, str(record.get("source", "")), str(record.get("package_version", "")),
                   str(record.get("created", "")))


__all__ = ["Session", "session_record", "session_json", "write_session", "read_session", "free_name",
           "data_record", "data_from_record", "canonical_json", "SESSION_FORMAT"]
