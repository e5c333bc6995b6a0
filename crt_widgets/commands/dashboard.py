"""``crt-widgets dashboard``: serve the one app (Design, Analysis, Power) with Voilà, localhost only by default.

    crt-widgets dashboard                      # http://127.0.0.1:8866/
    crt-widgets dashboard --records trial/     # every draw logged in trial/draws.jsonl, its files kept
"""
from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

NAME = "dashboard"
THEMES = ("light", "dark")  # Voila's --theme values: JupyterLab Light and JupyterLab Dark
HELP = "Serve the app (design, analysis and power of a trial) with Voila on this machine (no code shown)."


def port_number(text: str) -> int:
    """An argparse type: a TCP port 1-65535 (argparse turns the error into a usage message)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {port}")
    return port


def ip_address(text: str) -> str:
    """An argparse type: an IPv4 or IPv6 address, or ``localhost``.

    >>> ip_address("127.0.0.1"), ip_address("::1")
    ('127.0.0.1', '::1')
    """
    import ipaddress

    if text == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid IP address (for example 127.0.0.1 for this machine "
                                         "only, or 0.0.0.0 for every network interface)") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=port_number, default=8866, help="port (default 8866; the next free one if it is taken)")
    p.add_argument("--ip", type=ip_address, default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--notebook", type=Path, help="serve this notebook instead of the bundled app "
                                                 "(e.g. notebooks/design.ipynb or notebooks/analysis_dashboard.ipynb)")
    p.add_argument("--theme", choices=THEMES, default="light",
                   help="JupyterLab's light or dark theme for the page (default light)")
    p.add_argument("--records", type=Path, metavar="DIR",
                   help="log every draw in DIR/draws.jsonl (one line each, never overwritten) and write each draw's "
                        "files (allocation, spaces, audit, report, input data) into a folder of its own in DIR")


# our Voila template ("crt-offline": Voila's lab template without its CDN stylesheets) lives here
SHARE = Path(__file__).parents[1] / "widgets" / "share"


def voila_command(notebook: Path, port: int, ip: str, theme: str = "light") -> list[str]:
    """The Voila invocation (no browser, no code cells, offline template, listening on ``ip:port``, in the
    ``theme``), through :mod:`crt_widgets.commands._voila`, which raises the server's websocket message limit
    for large uploads.

    >>> voila_command(Path("app.ipynb"), 8866, "127.0.0.1", theme="dark")[-2]
    '--theme=dark'
    """
    if theme not in THEMES:
        raise ValueError(f"theme: one of {', '.join(THEMES)}, got {theme!r}")
    # port_retries=0: Voila must listen where we said (it would otherwise move on silently)
    return [sys.executable, "-m", "crt_widgets.commands._voila", str(notebook), "--no-browser", f"--port={port}",
            "--Voila.port_retries=0", f"--Voila.ip={ip}", "--strip_sources=True", f"--theme={theme}",
            "--template=crt-offline"]


def free_port(ip: str, port: int, tries: int = 20) -> int | None:
    """``port`` if nothing listens there, else the next free one of ``tries`` (None if all are taken).
    An address this machine cannot listen on at all is a ValueError, not a busy port."""
    for candidate in range(port, min(port + tries, 65536)):
        with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
            try:
                s.bind((ip, candidate))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise ValueError(f"--ip: cannot listen on {ip} ({exc.strerror or exc}); is it an address of "
                                 "this machine?") from None
            return candidate
    return None


def voila_environment(records: Path | None = None) -> dict[str, str]:
    """The environment with our template directory on Jupyter's data path (and the records folder,
    which the dashboard's kernel reads)."""
    env = dict(os.environ)
    if records is not None:
        from crt_widgets.widgets.dashboard import RECORDS_VARIABLE

        env[RECORDS_VARIABLE] = str(records.resolve())
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(SHARE), env.get("JUPYTER_PATH", "")) if p)
    return env


def run(args: argparse.Namespace) -> int:
    from crt_widgets.widgets.notebook import PACKAGED_APP

    notebook = args.notebook or PACKAGED_APP
    if not notebook.is_file():
        raise FileNotFoundError(f"--notebook: no such file {notebook}")
    if args.records is not None:
        if args.records.exists() and not args.records.is_dir():
            raise ValueError(f"--records: {args.records} is a file; give a folder for the drawn allocations' files")
        try:
            args.records.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"--records: cannot make the folder {args.records} ({exc.strerror or exc})") from None
    port = free_port(args.ip, args.port)
    if port is None:
        print(f"crt-widgets dashboard: ports {args.port} to {args.port + 19} are all in use; "
              "choose another with --port", file=sys.stderr)
        return 2
    if port != args.port:
        print(f"crt-widgets dashboard: port {args.port} is in use, using {port}", flush=True)
    host = f"[{args.ip}]" if ":" in args.ip else args.ip
    print(f"crt-widgets dashboard: http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    # become Voila, so that signals (Ctrl-C, a test's terminate) reach the server itself
    command = voila_command(notebook, port, args.ip, args.theme)
    if args.records is not None:
        print(f"crt-widgets dashboard: every draw is logged in {args.records.resolve() / 'draws.jsonl'}, its files in a "
              "folder of its own there", flush=True)
    os.execve(command[0], command, voila_environment(args.records))
    return 0  # pragma: no cover - execv does not return
