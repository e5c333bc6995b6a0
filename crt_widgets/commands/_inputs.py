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


def write_run_audit(path: Path, command: str, args: argparse.Namespace, seed: int,
                    allocation: pd.DataFrame, **result) -> Path:
    """The audit record of a command-line run: every argument, the seed, the input (an example's
    name, or the file and its SHA-256), the allocation and the package version and time."""
    import datetime as dt
    import hashlib

    from crt_widgets import __version__
    from crt_widgets.core.io.files import write_json_audit

    data = getattr(args, "data", None)
    source = ({"file": str(data), "sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest()} if data
              else {"example": getattr(args, "example", None)})
    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if not k.startswith("_") and not callable(v)}
    return write_json_audit(path, {
        "package": "crt-widgets", "package_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": f"crt-widgets {command}", "arguments": arguments, "seed": seed, "input": source,
        **result, "allocation": allocation.to_dict(orient="records"),
    })
