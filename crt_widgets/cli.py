"""The ``crt-widgets`` command line.

Subcommands live in :mod:`crt_widgets.commands`, one module each. Errors in the
user's input print as one line (``error: ...``) with exit status 2, never as a traceback.

>>> from crt_widgets.cli import main
>>> main(["design", "--example", "dickinson", "--seed", "1"])  # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from crt_widgets import __version__
from crt_widgets import commands as _commands


def _load_commands() -> list:
    names = sorted(m.name for m in pkgutil.iter_modules(_commands.__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"crt_widgets.commands.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="crt-widgets",
        description="Design and analyse cluster randomized trials.",
    )
    parser.add_argument("--version", action="version", version=f"crt-widgets {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _load_commands():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args._argv = argv  # the command line, for the audit record
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        try:
            return int(args._run(args) or 0)
        except (ValueError, KeyError, OSError) as exc:  # OSError: a file or folder the system refused
            print(f"error: {_message(exc)}", file=sys.stderr)
            return 2


def _message(exc: BaseException) -> str:
    """One line for the user: a KeyError's key, an OS error's file and reason, else the message."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror:
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
        return f"{where}: {exc.strerror}" if where else exc.strerror
    return str(exc)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
