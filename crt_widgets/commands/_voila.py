"""Voila with the app's server settings: ``python -m crt_widgets.commands._voila NOTEBOOK [voila options]``.

``crt-widgets dashboard`` runs this instead of ``python -m voila``: Voila's command line passes a tornado
setting as text, and tornado needs the websocket message limit as a number. Raising it lets an upload of
up to :data:`~crt_widgets.widgets.analysis.UPLOAD_LIMIT_BYTES` reach the kernel (Jupyter's default of
10 MiB drops the connection for larger files).

>>> server_settings()["websocket_max_message_size"] > UPLOAD_LIMIT_BYTES > 10 * 1024 * 1024
True
"""
from __future__ import annotations

import sys

MB = 1_000_000  # as file managers count (decimal megabytes)
# the largest file one upload carries: 200 MB, the largest measured end to end (bench/bench_upload.py: a
# 200 MB cvcrand CSV of 3.2 million schemes analysed in 41 s). The app's panels and the page's guard read
# it from here (a light module: the server does not import the app to learn it).
UPLOAD_LIMIT_BYTES = 200 * MB
# room for the message's framing around the file's bytes (the upload widget's JSON header)
FRAMING_BYTES = 16 * MB


def server_settings() -> dict:
    """The tornado settings of the app's server: websocket messages as large as one upload may be."""
    return {"websocket_max_message_size": UPLOAD_LIMIT_BYTES + FRAMING_BYTES}


def write_jupyter_server_config(path: str | None = None) -> str:
    """Add :func:`server_settings` to a Jupyter server's JSON config (Binder's ``voila/render`` runs in
    Jupyter's own server, which reads ``~/.jupyter/jupyter_server_config.json``); other settings are kept.

    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "jupyter_server_config.json")
    >>> _ = write_jupyter_server_config(path)
    >>> json.load(open(path))["ServerApp"]["tornado_settings"] == server_settings()
    True
    """
    import json
    import os

    path = path or os.path.join(os.path.expanduser("~"), ".jupyter", "jupyter_server_config.json")
    config = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    config.setdefault("ServerApp", {}).setdefault("tornado_settings", {}).update(server_settings())
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.partial"
    with open(temporary, "w", encoding="utf-8") as fh:
        json.dump(config, fh, indent=2)
    os.replace(temporary, path)
    return path


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - runs the server (the browser tests use it)
    import tornado.web
    from jupyter_server.utils import url_path_join
    from voila.app import Voila

    from crt_widgets.widgets.startup import BUNDLE_PATH, served_bundle

    class ChartBundle(tornado.web.RequestHandler):
        """The charts' offline JavaScript, from the cache the app's kernels keep it in (verified by SHA-256):
        one download per page instead of one copy per chart (crt_widgets.widgets.startup)."""

        def get(self, name: str) -> None:
            content = served_bundle(name)
            if content is None:
                raise tornado.web.HTTPError(404)
            self.set_header("Content-Type", "text/javascript; charset=utf-8")
            self.set_header("Cache-Control", "private, max-age=86400")
            self.finish(content)

    class App(Voila):
        def init_handlers(self) -> list:
            route = url_path_join(self.server_url, BUNDLE_PATH, r"([^/]+)")
            return [(route, ChartBundle), *super().init_handlers()]  # before the app's catch-all route

    App.launch_instance(argv=sys.argv[1:] if argv is None else argv, tornado_settings=server_settings())


if __name__ == "__main__":  # pragma: no cover
    main()
