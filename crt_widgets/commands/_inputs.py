"""Input and output arguments shared by the subcommands (not a subcommand itself: the name starts with _)."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from crt_widgets.core.io.files import Content, FileSet, file_sha256, json_text
from crt_widgets.core.io.tables import read_table


def add_data_source(p: argparse.ArgumentParser, rows: str, example: str, example_help: str) -> None:
    """``--data CSV`` or ``--example NAME``, exactly one of them; ``rows`` says what a row is."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help=f"CSV with one row per {rows}")
    src.add_argument("--example", choices=[example], help=example_help)


def add_output(p: argparse.ArgumentParser, files: str) -> None:
    """``--out DIR`` (``files`` says what goes there) and ``--force`` (replace a drawn allocation there)."""
    p.add_argument("--out", type=Path, help=f"folder for {files}")
    p.add_argument("--force", action="store_true",
                   help="replace the files of an allocation already drawn into --out (refused otherwise)")


def read_csv_argument(path: Path, option: str = "--data") -> pd.DataFrame:
    """The CSV at ``path``; a missing, unreadable or binary file, or a folder, is an error naming ``option``.
    Columns of numbers read as text (a typo in a cell, mixed decimal separators) are reported on stderr."""
    try:
        frame, notes = read_table(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{option}: no such file {path}") from None
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{option}: cannot read {path} ({exc.strerror or exc})") from None
    for note in notes:
        print(f"note: {option} {path.name}: {note}", file=sys.stderr)
    return frame


def check_out_folder(args: argparse.Namespace, names: list[str]) -> None:
    """Before any work: ``--out`` must be a folder (or a new one) that can be written, and must not hold a
    drawn allocation already (one of ``names``) unless ``--force``."""
    out = getattr(args, "out", None)
    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} is a file; give a folder for the allocation's files")
    taken = [n for n in names if (out / n).exists()]
    if taken and not getattr(args, "force", False):
        raise ValueError(f"--out: {out} already holds a drawn allocation ({', '.join(taken)}); a drawn allocation is "
                         "never replaced: choose another folder, or add --force to replace it")
    existing = next(p for p in [out, *out.absolute().parents] if p.exists())
    if not existing.is_dir():
        raise ValueError(f"--out: {existing} is a file, so {out} cannot be made a folder")
    try:  # a real probe: permissions, read-only file systems and quotas all show here
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".crt-widgets-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"--out: cannot write in {existing} ({exc.strerror or exc})") from None


def run_record(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """What a command-line run adds to the audit: the command line, every argument, and the input (an
    example's name, or the file's name and the SHA-256 of its bytes)."""
    data = getattr(args, "data", None)
    source = ({"file": str(data), "sha256": file_sha256(data)} if data
              else {"example": getattr(args, "example", None)})
    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if not k.startswith("_") and not callable(v)}
    argv = getattr(args, "_argv", None)
    line = shlex.join(["crt-widgets", *argv]) if argv is not None else f"crt-widgets {command}"
    return {"command": f"crt-widgets {command}", "command_line": line, "arguments": arguments, "input": source}


def save_run_files(args: argparse.Namespace, command: str, files: dict[str, tuple[str, Content, int | None]],
                   seed: int, allocation: pd.DataFrame, **result) -> dict[str, Path]:
    """Write a run's files into ``--out`` (see :class:`~crt_widgets.core.io.files.FileSet`: all or nothing, never
    over an existing file unless ``--force``), then its audit record ``<command>_audit.json`` last, with every
    argument, the seed, the input, each space file's SHA-256 and count, the package version and time."""
    from crt_widgets import __version__
    from crt_widgets.core.io.audits import SPACE_FILES, space_file_entry

    audit_name = f"{command}_audit.json"
    with FileSet(args.out, overwrite=getattr(args, "force", False)) as out:
        out.check_free([name for name, _, _ in files.values()] + [audit_name])
        written = {kind: out.add(name, content) for kind, (name, content, _) in files.items()}
        spaces = {w.path.name: space_file_entry(w.path, w.sha256, files[kind][2], w.size)
                  for kind, w in written.items() if files[kind][2] is not None}
        record = {"package": "crt-widgets", "package_version": __version__,
                  "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  **run_record(args, command), "seed": seed, **result, SPACE_FILES: spaces,
                  "file_sha256": {w.path.name: w.sha256 for kind, w in written.items() if files[kind][2] is None},
                  "allocation": allocation.to_dict(orient="records")}
        written["audit"] = out.add(audit_name, json_text(record))
    return {kind: w.path for kind, w in written.items()}


def print_fresh_seed(args: argparse.Namespace, seed: int) -> None:
    """With no ``--seed``, say which fresh seed was drawn and how to repeat the run."""
    if getattr(args, "seed", None) is None:
        print(f"seed: none given; a fresh seed was drawn: {seed} (repeat this run with --seed {seed})",
              file=sys.stderr if getattr(args, "json", False) else sys.stdout)
