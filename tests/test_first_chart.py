"""The app's first chart sooner: preheated Voila kernels, the offline chart bundle kept between kernels (and
served once per page by the app's server), rfc3987_syntax's import deferred. The timings themselves are in
bench/bench_first_chart.py (no timed tests); these check that each piece does what it claims."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from crt_widgets.widgets import startup
from crt_widgets.widgets.startup import (BUNDLE_PATH, BUNDLE_URL_VARIABLE, _read_bundle, _write_bundle, bundle_loader,
                                         served_bundle)

ROOT = Path(__file__).resolve().parents[1]
NAME = "altair-offline-" + "ab" * 32 + ".js"


def _python(code: str, **env) -> dict:
    """Run ``code`` in a fresh Python (a kernel's start) and return the JSON it prints last."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dashboard_preheats_one_kernel_by_default(capsys):
    from crt_widgets.cli import main
    from crt_widgets.commands.dashboard import voila_command, voila_environment

    command = voila_command(Path("app.ipynb"), 8866, "127.0.0.1")
    assert command[-2:] == ["--preheat_kernel=True", "--pool_size=1"]
    assert voila_command(Path("app.ipynb"), 8866, "127.0.0.1", preheat=3)[-1] == "--pool_size=3"
    assert not [part for part in voila_command(Path("app.ipynb"), 8866, "127.0.0.1", preheat=0) if "pool" in part]
    assert voila_environment()[BUNDLE_URL_VARIABLE] == BUNDLE_PATH == "/crt-widgets/charts/"
    for bad, message in (("9", "between 0 and 8 kernels, got 9"), ("x", "not a whole number: 'x'")):
        with pytest.raises(SystemExit):
            main(["dashboard", "--preheat", bad])
        assert message in capsys.readouterr().err


def test_bundle_cache_files_are_verified(tmp_path):
    path = tmp_path / "cache" / NAME
    _write_bundle(path, "export default {render() {}};")
    assert _read_bundle(path) == "export default {render() {}};"
    assert path.with_suffix(".sha256").read_text() == hashlib.sha256(b"export default {render() {}};").hexdigest()
    assert served_bundle(NAME, tmp_path / "cache") == b"export default {render() {}};"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".partial")]  # written, then renamed
    path.write_text("export default {render() {alert(1)}};")   # changed since it was cached: not used
    assert _read_bundle(path) is None and served_bundle(NAME, tmp_path / "cache") is None
    assert served_bundle("../" + NAME, tmp_path / "cache") is None                # only bundle names are served
    assert served_bundle("altair-offline-xyz.js", tmp_path / "cache") is None
    assert _read_bundle(tmp_path / "missing.js") is None


def test_bundle_loader_imports_the_served_bundle_once_per_page():
    loader = bundle_loader("/crt-widgets/charts/" + NAME)
    assert f'import(new URL("/crt-widgets/charts/{NAME}", document.baseURI).href)' in loader
    assert loader.endswith("export default bundle.default;") and len(loader) < 200


OFFLINE = """
import hashlib, json, time
from crt_widgets.widgets.startup import enable_offline_charts
import altair as alt
t0 = time.perf_counter()
how = enable_offline_charts()
print(json.dumps({"how": how, "esm": hashlib.sha256(alt.JupyterChart._esm.encode()).hexdigest(),
                  "length": len(alt.JupyterChart._esm), "again": enable_offline_charts(),
                  "offline": alt.JupyterChart._is_offline}))
"""


def test_offline_bundle_made_once_then_read_from_the_cache(tmp_path):
    first = _python(OFFLINE, XDG_CACHE_HOME=str(tmp_path))
    assert first["how"] == "made" and first["again"] == "already" and first["offline"] and first["length"] > 100_000
    (bundle,) = (tmp_path / "crt-widgets").glob("altair-offline-*.js")
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == first["esm"]   # what enable_offline made, kept
    second = _python(OFFLINE, XDG_CACHE_HOME=str(tmp_path))
    assert second["how"] == "cached" and second["esm"] == first["esm"] and second["offline"]
    # under crt-widgets dashboard the charts carry a loader of the served bundle, not the bundle
    served = _python(OFFLINE, XDG_CACHE_HOME=str(tmp_path), **{BUNDLE_URL_VARIABLE: BUNDLE_PATH})
    assert served["how"] == "cached" and served["length"] < 200
    bundle.write_bytes(bundle.read_bytes()[:-10])      # damaged: made again, and the cache repaired
    assert _python(OFFLINE, XDG_CACHE_HOME=str(tmp_path))["how"] == "made"
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == first["esm"]


def test_rfc3987_syntax_import_is_deferred_and_iri_checks_still_answer():
    result = _python("""
import json, sys
import crt_widgets.widgets
deferred = getattr(sys.modules.get("rfc3987_syntax"), "__crt_deferred__", False)
import jsonschema
checker = jsonschema.FormatChecker()
answers = [checker.conforms(text, "iri") for text in ("http://example.org/\u00e4", "no scheme, spaces")]
real = not getattr(sys.modules["rfc3987_syntax"], "__crt_deferred__", False)
print(json.dumps({"deferred": deferred, "answers": answers, "real_after_use": real}))
""")
    if not startup.importlib.util.find_spec(startup.DEFERRED):
        pytest.skip("rfc3987_syntax is not installed here: nothing to defer")
    assert result == {"deferred": True, "answers": [True, False], "real_after_use": True}


def test_app_server_serves_the_cached_bundle(tmp_path):
    """The dashboard's own server answers the charts' loader from the cache (and nothing else)."""
    import socket

    cache = tmp_path / "crt-widgets"
    _write_bundle(cache / NAME, "export default {render() {}};")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path))
    server = subprocess.Popen([sys.executable, "-m", "crt_widgets", "dashboard", "--port", str(port), "--preheat", "0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    base = f"http://127.0.0.1:{port}{BUNDLE_PATH}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(base + NAME, timeout=5) as answer:
                    body, kind = answer.read(), answer.headers["Content-Type"]
                break
            except urllib.error.HTTPError:
                raise
            except OSError:
                assert server.poll() is None and time.time() < deadline, "the dashboard did not start"
                time.sleep(0.5)  # waiting for the server to listen (not a timed assertion)
        assert body == b"export default {render() {}};" and kind.startswith("text/javascript")
        for missing in ("altair-offline-" + "cd" * 32 + ".js", "draws.jsonl"):
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(base + missing, timeout=5)
            assert error.value.code == 404
    finally:
        server.terminate()
        server.wait(30)
