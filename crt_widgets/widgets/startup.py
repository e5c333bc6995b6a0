"""What the app's kernel does to draw the first chart sooner: a deferred import, and the charts' offline
JavaScript kept between kernels.

**The offline bundle.** Altair's offline mode (``JupyterChart.enable_offline``) has vl-convert bundle Vega,
Vega-Lite and vega-embed into one ES module of about 0.9 MB in every new kernel: 5.5 s of CPU on a shared
2-core machine, the largest part of a kernel's start. The bundle depends only on Altair's widget source and
the Vega-Lite and vl-convert versions, so :func:`enable_offline_charts` keeps it in the user's cache folder
(``$XDG_CACHE_HOME/crt-widgets`` or ``~/.cache/crt-widgets``) under a name made of the SHA-256 of those inputs,
with the bundle's own SHA-256 beside it; a file that does not match its hash is ignored and made again.
It is written under a temporary name and renamed, so kernels starting together never read half a file.
Under ``crt-widgets dashboard`` the charts do not carry the bundle at all: each gets a two-line loader
(:func:`bundle_loader`) that imports it from the app's server, which serves the cached file
(:func:`served_bundle`), so a page downloads and evaluates it once rather than once per chart.

**A deferred import.** jsonschema (which Altair validates its charts with) imports ``rfc3987_syntax`` when it is installed (Jupyter's
event schemas pull it in) to check the ``iri`` string format, and that import compiles a Lark grammar: 1 to 9 s
of a kernel's start on a shared machine, before any chart. Vega-Lite's schema uses no ``iri`` format (only
``uri``, ``uri-reference`` and ``color-hex``), so the import is deferred: jsonschema gets a stand-in whose
``is_valid_syntax`` imports the real module on its first call and hands over to it, so a check of an ``iri``
still gives the real answer, only later.

>>> defer_slow_imports() in (True, False)
True
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import tempfile
import types
from pathlib import Path

DEFERRED = "rfc3987_syntax"
# set by ``crt-widgets dashboard`` for its kernels: the path (from the server's root) its server serves the
# cached offline bundles under (see ``crt_widgets.commands._voila``)
BUNDLE_URL_VARIABLE = "CRT_WIDGETS_CHART_BUNDLE_URL"
BUNDLE_PATH = "/crt-widgets/charts/"
BUNDLE_NAME = re.compile(r"altair-offline-[0-9a-f]{64}\.js")


def _real(name: str):
    """The real module, imported now (the stand-in removed first)."""
    if getattr(sys.modules.get(name), "__crt_deferred__", False):
        del sys.modules[name]
    return importlib.import_module(name)


def defer_slow_imports() -> bool:
    """Put the stand-in for ``rfc3987_syntax`` in place unless jsonschema or the module itself is imported
    already, or the module is not installed; True when the stand-in is in place."""
    if DEFERRED in sys.modules:
        return bool(getattr(sys.modules[DEFERRED], "__crt_deferred__", False))
    spec = None if "jsonschema" in sys.modules else importlib.util.find_spec(DEFERRED)
    if spec is None:
        return False
    stand_in = types.ModuleType(DEFERRED, "Stand-in: the real module is imported on the first check of an IRI.")
    stand_in.__crt_deferred__ = True
    stand_in.__spec__ = spec  # asked where the module is, the stand-in answers as the real one would

    def is_valid_syntax(*args, **kwargs):
        return _real(DEFERRED).is_valid_syntax(*args, **kwargs)

    def __getattr__(name: str):  # anything else asked of the module: the real one answers
        if name.startswith("__"):  # the import system's questions (``__path__``...) are not a use of it
            raise AttributeError(name)
        return getattr(_real(DEFERRED), name)

    stand_in.is_valid_syntax = is_valid_syntax
    stand_in.__getattr__ = __getattr__
    sys.modules[DEFERRED] = stand_in
    return True


def cache_folder() -> Path:
    """Where the offline bundle is kept between kernels."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "crt-widgets"


def _bundle_key() -> str:
    """SHA-256 of what the bundle is made from: Altair's widget source and the versions that bundle it."""
    import altair
    import vl_convert
    from altair.jupyter.jupyter_chart import load_js_src
    from altair.utils._importers import vl_version_for_vl_convert

    inputs = "\n".join([altair.__version__, vl_convert.__version__, vl_version_for_vl_convert(), load_js_src()])
    return hashlib.sha256(inputs.encode()).hexdigest()


def _read_bundle(path: Path) -> str | None:
    """The cached bundle if it is there and matches the SHA-256 written beside it, else None."""
    try:
        content = path.read_bytes()
        expected = path.with_suffix(".sha256").read_text(encoding="ascii").strip()
    except OSError:
        return None
    return content.decode() if hashlib.sha256(content).hexdigest() == expected else None


def _write_bundle(path: Path, bundle: str) -> None:
    """Write the bundle and its SHA-256 (each to a temporary name, then renamed; the hash last)."""
    content = bundle.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, data in ((path, content), (path.with_suffix(".sha256"), hashlib.sha256(content).hexdigest().encode())):
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{target.name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as fh:
                fh.write(data)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def enable_offline_charts(folder: Path | None = None) -> str:
    """Altair's offline mode for :class:`altair.JupyterChart` (charts drawn with bundled JavaScript, nothing
    fetched), with the bundle read from the cache when it is there: ``"cached"``, ``"made"`` (bundled now and
    kept; ``"made, not kept"`` when the cache folder cannot be written) or ``"already"``.

    >>> enable_offline_charts() in ("cached", "made", "made, not kept", "already")
    True
    """
    import altair as alt

    chart = alt.JupyterChart
    if getattr(chart, "_is_offline", False):
        return "already"
    try:
        path = (folder or cache_folder()) / f"altair-offline-{_bundle_key()}.js"
    except Exception:  # another Altair than the one this was written for: its own offline mode, uncached
        chart.enable_offline()
        return "made, not kept"
    bundle = _read_bundle(path)
    if bundle is not None and hasattr(chart, "_esm"):
        chart._esm, chart._is_offline = bundle, True  # what enable_offline sets, from the same inputs
        how = "cached"
    else:
        chart.enable_offline()
        try:
            _write_bundle(path, chart._esm)
        except OSError:  # a read-only home: the app works, each kernel bundles again
            return "made, not kept"
        how = "made"
    prefix = os.environ.get(BUNDLE_URL_VARIABLE, "")
    if prefix:  # served by crt-widgets dashboard: every chart of the page shares one download of the bundle
        server = os.environ.get("VOILA_SERVER_URL", "/").rstrip("/")  # Voila tells its kernels where it is served
        chart._esm = bundle_loader(server + prefix + path.name)
    return how


def bundle_loader(url_path: str) -> str:
    """A few lines of JavaScript that stand for the offline bundle in every chart of a page: the bundle is
    imported from the app's own server (``url_path``, from the server's root), so the browser fetches and
    evaluates it once for all the charts, where each chart would otherwise carry its own 0.9 MB copy through
    the kernel's websocket and evaluate it again.

    >>> print(bundle_loader("/crt-widgets/charts/altair-offline-0a.js"))
    const bundle = await import(new URL("/crt-widgets/charts/altair-offline-0a.js", document.baseURI).href);
    export default bundle.default;
    """
    return (f"const bundle = await import(new URL({json.dumps(url_path)}, document.baseURI).href);\n"
            "export default bundle.default;")


def served_bundle(name: str, folder: Path | None = None) -> bytes | None:
    """The content of the cached bundle ``name`` (``altair-offline-<64 hex digits>.js``) if it is there and
    matches its SHA-256, else None: what the app's server answers to the loader's request.

    >>> served_bundle("../../etc/passwd") is None
    True
    """
    if not BUNDLE_NAME.fullmatch(name):
        return None
    content = _read_bundle((folder or cache_folder()) / name)
    return None if content is None else content.encode()
