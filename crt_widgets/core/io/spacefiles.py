"""Saved randomization spaces: cvcrand's CSV, and our self-describing JSON for the audit trail.

cvcrand's CSV: a header ``"SchemeChosen","",...``, then one row per scheme: the chosen-scheme
indicator, then one 0/1 column per cluster (in the order of the design data). R's ``cptest``
reads ours and we read theirs.

Our JSON (``.json``, or ``.json.gz`` compressed) also keeps the cluster ids, each scheme's score,
the design parameters, the seed, the package version, the time and a hash of the input data::

    {"format": "crt-widgets/space", "format_version": 1, "cluster_ids": [...],
     "schemes": ["0110...", ...], "chosen": 17, "scores": [...], "parameters": {...}, ...}

>>> from crt_widgets.datasets import dickinson_cvcrand_space_path
>>> space = read_space(dickinson_cvcrand_space_path())
>>> len(space.schemes), space.chosen
(1287, 927)
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from crt_widgets.core.io.files import json_ready
from crt_widgets.core.spaces.multiarm import SavedMultiArmSpace
from crt_widgets.core.spaces.saved import SavedSpace
from crt_widgets.core.spaces.schemes import SchemeSet

FORMAT = "crt-widgets/space"
FORMAT_VERSION = 1


def write_cvcrand_csv(path: str | Path | TextIO, schemes: SchemeSet, chosen: int,
                      cluster_ids: Any = None) -> str | Path | TextIO:
    """Write a space in cvcrand's exact CSV format, to a path or an open text stream.

    The file has no cluster labels: cptest (and :func:`resolve_space`) take its columns to be the
    clusters in sorted id order. Given ``cluster_ids`` (the schemes' column labels), the columns are
    written in that order, so the file reads back right whatever the order of the design's rows.
    """
    order = None if cluster_ids is None else cvcrand_column_order(cluster_ids)
    if not isinstance(path, (str, Path)):
        _write_cvcrand_rows(path, schemes, chosen, order)
        return path
    path = Path(path)
    with open(path, "w", newline="") as fh:
        _write_cvcrand_rows(fh, schemes, chosen, order)
    return path


def cvcrand_column_order(cluster_ids: Any) -> np.ndarray:
    """Positions of the clusters in sorted id order: the order of a cvcrand CSV's columns.

    >>> cvcrand_column_order([13, 1, 7]).tolist()
    [1, 2, 0]
    """
    return np.argsort(np.asarray(cluster_ids), kind="stable")


def _write_cvcrand_rows(fh: TextIO, schemes: SchemeSet, chosen: int, order: np.ndarray | None = None) -> None:
    fh.write(",".join(['"SchemeChosen"'] + ['""'] * schemes.n_clusters) + "\n")
    flag = np.zeros((len(schemes), 1), dtype=np.uint8)
    flag[chosen] = 1
    for start, m in schemes.chunks(dtype=np.uint8):
        columns = m if order is None else m[:, order]
        np.savetxt(fh, np.hstack([flag[start:start + len(m)], columns]), fmt="%d", delimiter=",")


def read_cvcrand_csv(path: str | Path) -> SavedSpace:
    """Read cvcrand's CSV (first column: the chosen-scheme indicator)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, header=0)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise ValueError(f"space file {path.name}: not a readable CSV ({exc})") from None
    if frame.shape[1] < 3 or len(frame) < 1:
        raise ValueError(f"space file {path.name}: expected a chosen-scheme column and at least 2 "
                         f"cluster columns, got {frame.shape[1]} column(s) and {len(frame)} row(s)")
    if list(frame.columns[:3]) == ["scheme", "chosen", "score"]:
        raise ValueError(f"space file {path.name}: a multi-arm space (arm labels per cluster); the permutation "
                         "test compares two groups: say which (a factor's main effect, or arms against the "
                         "rest; read_multiarm_space(path).two_arm(...), or analyze --factor / --treated-arms)")
    values = frame.to_numpy()
    if pd.isna(values).any() or not np.isin(values, (0, 1)).all():
        raise ValueError(f"space file {path.name}: every entry must be 0 or 1")
    flags = values[:, 0].astype(int)
    return SavedSpace(SchemeSet.from_matrix(values[:, 1:].astype(np.uint8)), _one_chosen(flags, path.name))


def _one_chosen(flags: np.ndarray, name: str) -> int:
    chosen = np.flatnonzero(flags == 1)
    if len(chosen) == 0:
        raise ValueError(f"space file {name}: no scheme is marked as chosen in the first column")
    if len(chosen) > 1:
        raise ValueError(f"space file {name}: {len(chosen)} schemes are marked as chosen; expected one")
    return int(chosen[0])


def write_space_json(path: str | Path, schemes: SchemeSet, chosen: int, cluster_ids: Any,
                     scores: np.ndarray | None = None, **metadata: Any) -> Path:
    """Write a space in our self-describing JSON format (gzip-compressed when the name ends in .gz)."""
    from crt_widgets import __version__

    path = Path(path)
    rows = ["".join(map(str, row)) for _, m in schemes.chunks(dtype=np.uint8) for row in m.tolist()]
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "n_clusters": schemes.n_clusters,
        "n_schemes": len(schemes),
        "cluster_ids": json_ready(np.asarray(cluster_ids)),
        "chosen": int(chosen),
        **json_ready(metadata),
        "scores": None if scores is None else [float(f"{s:.12g}") for s in np.asarray(scores).tolist()],
        "schemes": rows,
    }
    text = json.dumps(doc, indent=None, separators=(",", ":"))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    return path


def read_space_json(path: str | Path) -> SavedSpace:
    """Read our JSON format."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"space file {path.name}: not a readable JSON space ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"space file {path.name}: not a crt-widgets space (missing format {FORMAT!r})")
    rows = doc["schemes"]
    n = int(doc["n_clusters"])
    if any(len(r) != n for r in rows):
        raise ValueError(f"space file {path.name}: every scheme must have {n} entries")
    matrix = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), n) - ord("0")
    flags = np.zeros(len(rows), dtype=int)
    chosen = int(doc["chosen"])
    if not 0 <= chosen < len(rows):
        raise ValueError(f"space file {path.name}: chosen scheme {chosen} is out of range")
    flags[chosen] = 1
    scores = None if doc.get("scores") is None else np.asarray(doc["scores"], dtype=float)
    meta = {k: v for k, v in doc.items() if k not in {"schemes", "scores", "cluster_ids", "chosen"}}
    return SavedSpace(SchemeSet.from_matrix(matrix), chosen, np.asarray(doc["cluster_ids"]), scores, meta)


def read_space(path: str | Path) -> SavedSpace:
    """Read a saved space, cvcrand's CSV or our JSON, by its content."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"space file not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if path.suffix in {".json", ".gz"} or head in (b"{\"", b"\x1f\x8b"):
        return read_space_json(path)
    return read_cvcrand_csv(path)


# cvcrand's own name, for users porting scripts
read_cvcrand_space = read_cvcrand_csv


def write_arm_space(path, unit_ids: Sequence, space: np.ndarray, arm_labels: Sequence[str],
                    chosen: int, scores: np.ndarray | None = None):
    """Write a K-arm space as CSV (to a path or an open text stream): ``scheme,chosen,score,<unit ids...>``,
    one row per allocation, arm labels in the unit columns (``score`` empty when the design has none)."""
    path = Path(path) if isinstance(path, str) else path
    labels = np.asarray(list(arm_labels), dtype=object)
    table = pd.DataFrame(labels[np.asarray(space)], columns=[str(c) for c in unit_ids])
    table.insert(0, "score", scores if scores is not None else np.nan)
    flag = np.zeros(len(table), dtype=int)
    flag[chosen] = 1
    table.insert(0, "chosen", flag)
    table.insert(0, "scheme", np.arange(1, len(table) + 1))
    table.to_csv(path, index=False, float_format="%.10g")
    return path


def read_multiarm_space(path: str | Path) -> SavedMultiArmSpace:
    """Read a space written by :meth:`MultiArmAllocation.save_space`."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(table.columns[:3]) != ["scheme", "chosen", "score"]:
        raise ValueError(f"{path}: not a multi-arm space (expected columns scheme, chosen, score, units...)")
    chosen = np.flatnonzero(table["chosen"].astype(int).to_numpy() == 1)
    if len(chosen) != 1:
        raise ValueError(f"{path}: expected exactly one chosen allocation, found {len(chosen)}")
    return SavedMultiArmSpace(list(table.columns[3:]), table.iloc[:, 3:].to_numpy(), int(chosen[0]),
                              pd.to_numeric(table["score"].replace("", np.nan)).to_numpy(dtype=float))
