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


def kernel_count(text: str) -> int:
    """An argparse type: how many preheated kernels, 0 to 8 (each holds the app: about 300 MB).

    >>> kernel_count("2")
    2
    """
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= count <= MAX_PREHEATED:
        raise argparse.ArgumentTypeError(f"between 0 and {MAX_PREHEATED} kernels, got {count}")
    return count


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
    p.add_argument("--preheat", type=kernel_count, default=1, metavar="N",
                   help="kernels kept running the app ahead of the next visitors (default 1; 0: start one per visit)")
    p.add_argument("--theme", choices=THEMES, default="light",
                   help="JupyterLab's light or dark theme for the page (default light)")
    p.add_argument("--records", type=Path, metavar="DIR",
                   help="log every draw in DIR/draws.jsonl (one line each, never overwritten) and write each draw's "
                        "files (allocation, spaces, audit, report, input data) into a folder of its own in DIR")


# the most kernels kept preheated (each holds a Python process with the app built, about 300 MB)
MAX_PREHEATED = 8
# our Voila template ("crt-offline": Voila's lab template without its CDN stylesheets) lives here
SHARE = Path(__file__).parents[1] / "widgets" / "share"


def voila_command(notebook: Path, port: int, ip: str, preheat: int = 1, theme: str = "light") -> list[str]:
    """The Voila invocation (no browser, no code cells, offline template, listening on ``ip:port``, in the
    ``theme``), through :mod:`crt_widgets.commands._voila`, which raises the server's websocket message limit
    for large uploads.

    With ``preheat`` kernels, Voila runs the app in that many kernels before anyone asks (its preheated
    kernel pool): a visitor gets a page already rendered, the first chart drawn as soon as the browser has
    the page, and the pool is filled again behind them. Each visitor still has a kernel and a session of
    their own, and a kernel holds nothing a draw will pick (the draw's seed is taken at the draw).

    >>> "--preheat_kernel=True" in voila_command(Path("app.ipynb"), 8866, "127.0.0.1")
    True
    >>> any("preheat" in part for part in voila_command(Path("app.ipynb"), 8866, "127.0.0.1", preheat=0))
    False
    >>> "--theme=dark" in voila_command(Path("app.ipynb"), 8866, "127.0.0.1", theme="dark")
    True
    """
    if theme not in THEMES:
        raise ValueError(f"theme: one of {', '.join(THEMES)}, got {theme!r}")
    # port_retries=0: Voila must listen where we said (it would otherwise move on silently)
    command = [sys.executable, "-m", "crt_widgets.commands._voila", str(notebook), "--no-browser", f"--port={port}",
               "--Voila.port_retries=0", f"--Voila.ip={ip}", "--strip_sources=True", f"--theme={theme}",
               "--template=crt-offline"]
    if preheat:
        command += ["--preheat_kernel=True", f"--pool_size={int(preheat)}"]
    return command


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


def announce_when_ready(ip: str, port: int, url: str, timeout: float = 600.0, poll: float = 0.25) -> bool:
    """Print ``url`` once something accepts connections on ``ip:port`` (a wildcard address is tried on the
    loopback); False, and nothing printed, if ``timeout`` seconds pass or the process that started this one
    (the server) ends first.

    >>> announce_when_ready("127.0.0.1", free_port("127.0.0.1", 50123), "http://127.0.0.1/", timeout=0.3)
    False
    """
    import time

    target = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(ip, ip)
    parent = os.getppid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and os.getppid() == parent:
        try:
            with socket.create_connection((target, port), timeout=1):
                pass
        except OSError:
            time.sleep(poll)
            continue
        print(f"crt-widgets dashboard: ready at {url}  (Ctrl-C to stop)", flush=True)
        return True
    return False


def voila_environment(records: Path | None = None) -> dict[str, str]:
    """The environment with our template directory on Jupyter's data path (and the records folder,
    which the dashboard's kernel reads)."""
    env = dict(os.environ)
    if records is not None:
        from crt_widgets.widgets.dashboard import RECORDS_VARIABLE

        env[RECORDS_VARIABLE] = str(records.resolve())
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(SHARE), env.get("JUPYTER_PATH", "")) if p)
    # the kernels point their charts at the offline bundle this server serves (crt_widgets.widgets.startup)
    from crt_widgets.widgets.startup import BUNDLE_PATH, BUNDLE_URL_VARIABLE

    env[BUNDLE_URL_VARIABLE] = BUNDLE_PATH
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
    url = f"http://{host}:{port}/"
    # become Voila, so that signals (Ctrl-C, a test's terminate) reach the server itself
    command = voila_command(notebook, port, args.ip, getattr(args, "preheat", 1), getattr(args, "theme", "light"))
    if args.records is not None:
        print(f"crt-widgets dashboard: every draw is logged in {args.records.resolve() / 'draws.jsonl'}, its files in a "
              "folder of its own there", flush=True)
    if hasattr(os, "fork"):
        # the address is printed once the server accepts connections (a browser opened on it earlier is refused):
        # a small watcher process waits for the port while this process becomes Voila
        print(f"crt-widgets dashboard: starting the server on port {port}...", flush=True)
        if os.fork() == 0:  # pragma: no cover - the watcher (announce_when_ready is tested on its own)
            try:
                announce_when_ready(args.ip, port, url)
            finally:
                os._exit(0)
    else:  # pragma: no cover - no fork (Windows): say where it will be
        print(f"crt-widgets dashboard: {url}  (Ctrl-C to stop)", flush=True)
    os.execve(command[0], command, voila_environment(args.records))
    return 0  # pragma: no cover - execv does not return
