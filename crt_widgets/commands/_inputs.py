"""Input arguments shared by the subcommands (not a subcommand itself: the name starts with _)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def add_data_source(p: argparse.ArgumentParser, rows: str, example: str, example_help: str) -> None:
    """``--data CSV`` or ``--example NAME``, exactly one of them; ``rows`` says what a row is."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help=f"CSV with one row per {rows}")
    src.add_argument("--example", choices=[example], help=example_help)


def read_csv_argument(path: Path, option: str = "--data") -> pd.DataFrame:
    """The CSV at ``path``; a missing or unreadable file is an error naming ``option``."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{option}: no such file {path}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{option}: cannot read {path} as CSV ({exc})") from None
