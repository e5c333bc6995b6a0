"""Files a trial keeps: hashes that tie a record to its input, JSON records with numpy values made plain.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def data_sha256(data: pd.DataFrame) -> str:
    """SHA-256 of the cluster data as CSV (no index): ties an audit record to its input file.

    >>> data_sha256(pd.DataFrame({"x": [1, 2]}))[:12]
    'aea284871dde'
    """
    return hashlib.sha256(data.to_csv(index=False).encode()).hexdigest()


def write_json_audit(path: str | Path, record: dict) -> Path:
    """Write an audit record as indented JSON (numpy values made plain)."""
    path = Path(path)
    path.write_text(json.dumps(json_ready(record), indent=2))
    return path


def json_ready(value: Any) -> Any:
    """Plain JSON values: numpy arrays and scalars as Python ones, infinite limits as ``"inf"``/``"-inf"``
    (an interval can be open), NaN as null.

    >>> json_ready({"ci": np.array([0.5, np.inf]), "se": np.float64("nan")})
    {'ci': [0.5, 'inf'], 'se': None}
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
