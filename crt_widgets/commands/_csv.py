"""Reading the CSV a subcommand was given, with one-line errors (not a subcommand: the name starts with _)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_csv_argument(path: Path, option: str = "--data") -> pd.DataFrame:
    """The CSV at ``path``; a missing or unreadable file is an error naming ``option``."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{option}: no such file {path}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{option}: cannot read {path} as CSV ({exc})") from None
