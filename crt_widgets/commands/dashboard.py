"""``crt-widgets dashboard``: serve the design dashboard with Voilà (localhost only by default).

    crt-widgets dashboard            # http://127.0.0.1:8866/
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

NAME = "dashboard"
HELP = "Serve the design dashboard with Voila on this machine (no code shown)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8866)
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--notebook", type=Path, help="serve this notebook instead of the bundled dashboard")


def voila_command(notebook: Path, port: int, ip: str) -> list[str]:
    """The Voila invocation (no browser, no code cells, listening on ``ip:port``)."""
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
            f"--Voila.ip={ip}", "--strip_sources=True", "--theme=light"]


def run(args: argparse.Namespace) -> int:
    from crt_widgets.widgets.notebook import write_dashboard_notebook

    if args.notebook is not None and not args.notebook.exists():
        raise FileNotFoundError(f"--notebook: no such file {args.notebook}")
    with tempfile.TemporaryDirectory() as tmp:
        notebook = args.notebook or write_dashboard_notebook(Path(tmp) / "design.ipynb")
        print(f"crt-widgets dashboard: http://{args.ip}:{args.port}/  (Ctrl-C to stop)", flush=True)
        try:
            return subprocess.call(voila_command(notebook, args.port, args.ip))
        except KeyboardInterrupt:
            return 0
